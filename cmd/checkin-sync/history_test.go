package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/store"
)

// historyStore writes a minimal config and opens the store it names; it
// returns the config's path and the open store.
func historyStore(t *testing.T) (string, *store.Store) {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	t.Setenv("CS_TEST_SECRET", "s")
	t.Setenv("CS_TEST_KEY", "k")
	doc := `wecom: {corp_id: ww1, secret: "${CS_TEST_SECRET}"}
jiandaoyun: {api_key: "${CS_TEST_KEY}", app_id: a, entry_id: e}
mapping: {key: k, fields: {k: {source: key}}}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	st, err := openStore(cfg, "test", zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	return path, st
}

// runHistory runs `history` with args, requires exit 0 and returns what it
// printed.
func runHistory(t *testing.T, args ...string) string {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(context.Background(), append([]string{"checkin-sync", "history"}, args...), &out, &errb, []*cli.Command{historyCommand()}); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	return out.String()
}

// A long Chinese error is cut at a character boundary in the history table.
func TestHistoryCutsErrorsAtCharacters(t *testing.T) {
	path, st := historyStore(t)
	// After the 7-byte "48002: ", byte 60 falls inside the 18th character
	// (3 bytes each).
	msg := "应用没有调用打卡接口的权限请在管理后台开启权限"
	start := time.Date(2026, 3, 5, 1, 0, 0, 0, time.UTC)
	err := st.PutRun(store.Run{ID: "0001", Command: "sync", Start: start, End: start.Add(time.Second),
		Months: []string{"2026-03"}, ExitCode: 4, Outcome: "failed", Error: "48002: " + msg})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	out := runHistory(t, "--config", path)
	if !utf8.ValidString(out) {
		t.Errorf("history printed invalid UTF-8:\n%q", out)
	}
	want := "48002: " + msg[:51] + "…" // 7 bytes + 17 characters = 58 bytes
	if !strings.Contains(out, want) || strings.Contains(out, msg[:54]) {
		t.Errorf("error not cut to %q:\n%s", want, out)
	}
}

// A run still recorded as running when history can open the store is from
// a process that is gone: it is shown as killed, in JSON and in the table;
// the other outcomes are shown as stored.
func TestHistoryShowsAStaleRunningRunAsKilled(t *testing.T) {
	path, st := historyStore(t)
	start := time.Date(2026, 3, 5, 1, 0, 0, 0, time.UTC)
	for i, o := range []string{"running", "interrupted", "success"} {
		if err := st.PutRun(store.Run{ID: fmt.Sprintf("000%d", i), Command: "sync", Start: start.Add(time.Duration(i) * time.Hour),
			Months: []string{"2026-03"}, Outcome: o}); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	var h struct{ Runs []store.Run }
	if err := json.Unmarshal([]byte(runHistory(t, "--json", "--config", path)), &h); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range h.Runs {
		got = append(got, r.ID+" "+r.Outcome)
	}
	if want := []string{"0002 success", "0001 interrupted", "0000 killed"}; !slices.Equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if out := runHistory(t, "--config", path); strings.Contains(out, "running") || !strings.Contains(out, "killed") {
		t.Errorf("table:\n%s", out)
	}
}

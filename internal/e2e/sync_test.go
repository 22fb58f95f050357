package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"checkin-sync/internal/month"
)

var (
	jan = month.MustParse("2026-01")
	feb = month.MustParse("2026-02")
)

func TestInitialSyncRerunAndPartialChange(t *testing.T) {
	e := newEnv(t, envOptions{users: 250})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}

	e.mustRun(0, args...)
	e.checkForm(jan, feb)
	if n := e.srv.Calls("data/batch_create"); n != 6 {
		t.Errorf("initial load used %d batch_create calls, want 6 (250 users in batches of 100, two months)", n)
	}

	c0, u0 := e.writes()
	r := e.mustRun(0, args...)
	if c, u := e.writes(); c != c0 || u != u0 {
		t.Fatalf("unchanged rerun wrote: %d creates, %d updates\n%s", c-c0, u-u0, r)
	}

	users := e.company.Users()
	for _, u := range users[:7] {
		e.company.Bump(u.UserID, feb)
	}
	e.mustRun(0, args...)
	c, u := e.writes()
	if c != c0 || u-u0 != 7 {
		t.Fatalf("after changing 7 users: %d creates, %d updates; want 0 and 7", c-c0, u-u0)
	}
	e.checkForm(jan, feb)

	st := e.statusJSON("2026-03-15")
	rows := map[string]map[string]any{}
	for _, m := range st["months"].([]any) {
		row := m.(map[string]any)
		rows[row["month"].(string)] = row
	}
	for m, wm := range map[string]string{"2026-01": "2026-01-31", "2026-02": "2026-02-28"} {
		row := rows[m]
		if row == nil || row["watermark"] != wm || row["records"].(float64) != 250 || row["synced"].(float64) != 250 || row["state"] != "settled" {
			t.Errorf("status of %s: %v", m, row)
		}
	}
	if row := rows["2026-03"]; row == nil || row["state"] != "never" || row["watermark"] != nil || row["last_run"] != nil {
		t.Errorf("status of 2026-03 (in the window, never synced): %v", rows["2026-03"])
	}
}

func TestDryRunWritesNothing(t *testing.T) {
	e := newEnv(t, envOptions{users: 60})
	r := e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02", "--dry-run", "-v")
	if c, u := e.writes(); c+u != 0 {
		t.Fatalf("dry run wrote %d times", c+u)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state.db")); !os.IsNotExist(err) {
		t.Fatalf("dry run created the store: %v", err)
	}
	if !strings.Contains(r.stdout, "create") || strings.Count(r.stdout, "\ncreate ") < 1 {
		t.Fatalf("dry run shows no plan lines\n%s", r)
	}
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	e.checkForm(feb)

	// With a store: the plan shows the changes, and still writes nothing.
	for _, u := range e.company.Users()[:3] {
		e.company.Bump(u.UserID, feb)
	}
	before, err := os.ReadFile(filepath.Join(e.dir, "state.db"))
	if err != nil {
		t.Fatal(err)
	}
	c0, u0 := e.writes()
	r = e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02", "--dry-run")
	if c, u := e.writes(); c != c0 || u != u0 {
		t.Fatal("dry run wrote to Jiandaoyun")
	}
	after, _ := os.ReadFile(filepath.Join(e.dir, "state.db"))
	if string(before) != string(after) {
		t.Fatal("dry run changed the store")
	}
	if !strings.Contains(r.stdout, "TOTAL") {
		t.Fatalf("no plan table\n%s", r)
	}
}

func TestLostStoreAdoptsRecords(t *testing.T) {
	e := newEnv(t, envOptions{users: 120})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	e.mustRun(0, args...)
	if err := os.Remove(filepath.Join(e.dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	c0, _ := e.writes()
	e.mustRun(0, args...)
	if c, _ := e.writes(); c != c0 {
		t.Fatalf("after losing the store, sync created %d batches", c-c0)
	}
	e.checkForm(feb)
	// The adopted checkpoints make the next run a no-op.
	c0, u0 := e.writes()
	e.mustRun(0, args...)
	if c, u := e.writes(); c != c0 || u != u0 {
		t.Fatalf("rerun after adoption wrote %d/%d", c-c0, u-u0)
	}
}

func TestResetThenSync(t *testing.T) {
	e := newEnv(t, envOptions{users: 80})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}
	e.mustRun(0, args...)
	e.mustRun(0, "reset", "--month", "2026-01")
	st := e.statusJSON("2026-03-15")
	for _, m := range st["months"].([]any) {
		if row := m.(map[string]any); row["month"] == "2026-01" {
			t.Fatalf("reset month still listed: %v", row)
		}
	}
	c0, _ := e.writes()
	e.mustRun(0, args...)
	if c, _ := e.writes(); c != c0 {
		t.Fatalf("sync after reset created %d batches", c-c0)
	}
	e.checkForm(jan, feb)
}

func TestHandDeletedAndDuplicatedRecords(t *testing.T) {
	e := newEnv(t, envOptions{users: 40})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	e.mustRun(0, args...)
	recs := e.srv.Records()

	// A record deleted by hand answers 4001 to its update: it is looked up
	// by key and created again, once.
	e.srv.DeleteRecord(recs[0].ID)
	e.company.Bump(recs[0].Data["acctid"].(string), feb)
	e.mustRun(0, args...)
	e.checkForm(feb)

	// A duplicate typed in by hand, then a lost store: the lookup adopts the
	// oldest record, reports the other, and creates nothing.
	dup := map[string]any{}
	for k, v := range recs[1].Data {
		dup[k] = v
	}
	e.srv.InsertRecord(dup)
	if err := os.Remove(filepath.Join(e.dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	c0, _ := e.writes()
	r := e.mustRun(0, args...)
	if c, _ := e.writes(); c != c0 {
		t.Fatalf("created %d batches with every key already in the form", c-c0)
	}
	if !strings.Contains(r.stderr, "several Jiandaoyun records hold this key") {
		t.Errorf("duplicate not reported\n%s", r)
	}
	keys := e.srv.Duplicates("sync_key")
	if len(keys) != 1 {
		t.Fatalf("duplicates: %v", keys)
	}
	for _, ids := range keys {
		if len(ids) != 2 || ids[0] != recs[1].ID {
			t.Fatalf("duplicate set %v should hold the original %s first", ids, recs[1].ID)
		}
	}
}

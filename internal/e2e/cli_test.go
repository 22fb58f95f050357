package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/store"
)

func TestInterruptSavesCheckpointsAndExits130(t *testing.T) {
	e := newEnv(t, envOptions{users: 300})
	e.srv.SetFaults(fakeapi.Faults{Latency: 40 * time.Millisecond})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}
	cmd := e.command(t.Context(), nil, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once some records are in.
	deadline := time.Now().Add(time.Minute)
	for len(e.srv.Records()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if code := cmd.ProcessState.ExitCode(); code != 130 {
		t.Fatalf("interrupted sync exited %d (%v), want 130", code, err)
	}
	h := e.mustRun(0, "history", "--json")
	var hist struct{ Runs []store.Run }
	if err := json.Unmarshal([]byte(h.stdout), &hist); err != nil || len(hist.Runs) != 1 || hist.Runs[0].Outcome != "interrupted" {
		t.Fatalf("history after the interrupt: %v\n%s", err, h)
	}
	e.srv.SetFaults(fakeapi.Faults{})
	e.mustRun(0, args...)
	e.checkForm(jan, feb)
}

func TestAlertsOnFailureAndRecovery(t *testing.T) {
	e := newEnv(t, envOptions{users: 10, alert: true})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	bad := []string{"E2E_SECRET=wrong-secret"}
	if r := e.runEnv(bad, args...); r.code != 4 {
		t.Fatalf("wrong secret: %s", r)
	}
	if r := e.runEnv(bad, args...); r.code != 4 {
		t.Fatalf("wrong secret again: %s", r)
	}
	msgs := e.srv.WebhookMessages()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "failed") || !strings.Contains(msgs[0], "40001") {
		t.Fatalf("after two identical failures, want one failure alert; got %q", msgs)
	}
	for _, m := range msgs {
		if strings.Contains(m, "wrong-secret") {
			t.Fatal("an alert holds the secret")
		}
	}
	e.mustRun(0, args...)
	e.mustRun(0, args...)
	msgs = e.srv.WebhookMessages()
	if len(msgs) != 2 || !strings.Contains(msgs[1], "recovered") {
		t.Fatalf("after recovery, want one recovery alert; got %q", msgs)
	}
}

func TestCheck(t *testing.T) {
	e := newEnv(t, envOptions{users: 10})
	r := e.mustRun(0, "check")
	for _, want := range []string{"✓ wecom token", "✓ wecom users: 10 visible", "✓ wecom month report", "✓ form fields", "All checks passed"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q\n%s", want, r)
		}
	}
	r = e.runEnv([]string{"E2E_SECRET=nope"}, "check")
	if r.code != 4 || !strings.Contains(r.stdout, "✗ wecom token") || !strings.Contains(r.stdout, "fix:") {
		t.Errorf("check with a wrong secret: %s", r)
	}
	if strings.Contains(r.stdout+r.stderr, "nope") {
		t.Error("check printed the secret")
	}
	// A mapped field missing from the form.
	cfg, _ := os.ReadFile(e.config)
	bad := strings.Replace(string(cfg), "    name: {source: base_info.name}\n", "    name: {source: base_info.name}\n    late_count: {source: \"exception_infos[exception=1].count\"}\n", 1)
	if err := os.WriteFile(e.config, []byte(bad), 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("check")
	if r.code != 2 || !strings.Contains(r.stdout, "✗ form fields") || !strings.Contains(r.stdout, "late_count") {
		t.Errorf("check with a field missing from the form: %s", r)
	}
	if r := e.run("--today", "2026-03-15", "sync"); r.code != 2 || !strings.Contains(r.stderr, "late_count") {
		t.Errorf("sync with a field missing from the form: %s", r)
	}
	if c, u := e.writes(); c+u != 0 {
		t.Error("a bad mapping still wrote")
	}
}

func TestForeignAndCorruptStoresAreRefused(t *testing.T) {
	e := newEnv(t, envOptions{users: 5})
	path := filepath.Join(e.dir, "state.db")
	st, err := store.Open(path, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Bind(store.Identity{CorpID: "wwother", AppID: "a", EntryID: "b"}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	r := e.run("--today", "2026-03-15", "sync")
	if r.code != 2 || !strings.Contains(r.stderr, "store:") {
		t.Errorf("foreign store: %s", r)
	}

	junk := []byte("this is not a checkpoint store\n")
	if err := os.WriteFile(path, junk, 0o600); err != nil {
		t.Fatal(err)
	}
	r = e.run("--today", "2026-03-15", "sync")
	if r.code != 2 || !strings.Contains(r.stderr, "corrupt") {
		t.Errorf("corrupt store: %s", r)
	}
	if got, _ := os.ReadFile(path); string(got) != string(junk) {
		t.Error("the corrupt store was modified")
	}
	if c, u := e.writes(); c+u != 0 {
		t.Error("wrote with a refused store")
	}
}

func TestForceUpdatesEveryKnownRecord(t *testing.T) {
	e := newEnv(t, envOptions{users: 25})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	e.mustRun(0, args...)
	_, u0 := e.writes()
	e.mustRun(0, append(args, "--force")...)
	if _, u := e.writes(); u-u0 != 25 {
		t.Fatalf("--force sent %d updates, want 25", u-u0)
	}
	e.checkForm(feb)
}

package e2e

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/store"
)

func TestFaultsAreAbsorbed(t *testing.T) {
	e := newEnv(t, envOptions{users: 150})
	e.srv.SetFaults(fakeapi.Faults{RateLimit: 0.1, Busy: 0.1, ServerError: 0.1})
	// The token expires after the users are listed with it: the month-data
	// call that finds it expired must refresh it and go on.
	e.srv.FailNext("getcheckin_monthdata", 42001, 1)
	r := e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02")
	if n := e.srv.Calls("gettoken"); n < 2 {
		t.Errorf("gettoken called %d times; the expired token was not refreshed during the run", n)
	}
	if !strings.Contains(r.stdout, "RETRIES") {
		t.Errorf("summary has no retry counts\n%s", r)
	}
	e.srv.SetFaults(fakeapi.Faults{})
	e.checkForm(jan, feb)
}

func TestLostAcknowledgements(t *testing.T) {
	e := newEnv(t, envOptions{users: 200})
	e.srv.SetFaults(fakeapi.Faults{LostAck: 0.3, Endpoints: []string{"data/batch_create", "data/update"}})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}
	r := e.run(args...)
	if r.code != 0 && r.code != 1 {
		t.Fatalf("lost acknowledgements: %s", r)
	}
	if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
		t.Fatalf("duplicates after lost acknowledgements: %v", d)
	}
	for _, u := range e.company.Users()[:20] {
		e.company.Bump(u.UserID, jan)
	}
	e.run(args...)
	e.srv.SetFaults(fakeapi.Faults{})
	e.mustRun(0, args...)
	e.checkForm(jan, feb)
}

// TestKillAndRerun kills the sync with SIGKILL at many moments of an
// initial load — each after a random number of API calls — and reruns it
// each time; finally every key must be held by exactly one record with the
// right values.
func TestKillAndRerun(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("E2E_KILL_SEED"); s != "" {
		if err := json.Unmarshal([]byte(s), &seed); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("kill moments from seed %d (replay with E2E_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	e := newEnv(t, envOptions{users: 1000})
	e.srv.SetFaults(fakeapi.Faults{Latency: 5 * time.Millisecond})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}
	work := func() int {
		return e.srv.Calls("getcheckin_monthdata") + e.srv.Calls("data/list") + e.srv.Calls("data/batch_create") + e.srv.Calls("data/update")
	}
	kills := 0
	for i := 0; i < 24; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		start, after := work(), 1+rng.IntN(25)
		cmd := e.command(ctx, nil, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-time.After(time.Millisecond):
				if work()-start >= after {
					_ = cmd.Process.Signal(syscall.SIGKILL)
					<-done
					kills++
					break wait
				}
			}
		}
		cancel()
		if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
			t.Fatalf("duplicates after run %d (killed after %d calls): %v", i, after, d)
		}
		if i%6 == 5 {
			// Some changes between crashes, so resumed runs also update.
			for _, u := range e.company.Users()[i : i+3] {
				e.company.Bump(u.UserID, feb)
			}
		}
	}
	t.Logf("%d of 24 runs killed; %d records in the form before the final run", kills, len(e.srv.Records()))
	e.srv.SetFaults(fakeapi.Faults{})
	e.mustRun(0, args...)
	e.checkForm(jan, feb)
	if kills < 20 {
		t.Errorf("only %d runs were killed before they finished", kills)
	}
}

func TestConcurrentRunsAndStatusDuringSync(t *testing.T) {
	e := newEnv(t, envOptions{users: 120})
	// The latency keeps the first sync running for several seconds.
	e.srv.SetFaults(fakeapi.Faults{Latency: 300 * time.Millisecond})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	first := e.command(ctx, nil, "--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02")
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- first.Wait() }()
	// Wait until the first sync holds the store.
	lockInfo := store.LockInfoPath(filepath.Join(e.dir, "state.db"))
	for {
		if _, err := os.Stat(lockInfo); err == nil {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("first sync ended before the test could race it: %v", err)
		case <-time.After(20 * time.Millisecond):
		}
	}
	st := e.statusJSON("2026-03-15")
	running, _ := st["running"].(map[string]any)
	if running == nil || int(running["pid"].(float64)) != first.Process.Pid {
		t.Errorf("status during sync: %v", st)
	}
	second := e.run("--today", "2026-03-15", "sync", "--month", "2026-02")
	if second.code != 3 {
		t.Fatalf("second sync: %s", second)
	}
	if pid := first.Process.Pid; !strings.Contains(second.stderr, itoa(pid)) {
		t.Errorf("exit-3 message does not name pid %d:\n%s", pid, second.stderr)
	}
	for _, cmd := range [][]string{{"history"}, {"reset", "--month", "2026-01"}, {"sync", "--month", "2026-01", "--dry-run"}} {
		if r := e.run(append([]string{"--today", "2026-03-15"}, cmd...)...); r.code != 3 {
			t.Errorf("%v while a sync runs: %s", cmd, r)
		}
	}
	if err := <-done; err != nil {
		t.Fatalf("first sync: %v", err)
	}
	if st := e.statusJSON("2026-03-15"); st["running"] != nil {
		t.Errorf("status after the sync still shows it running: %v", st)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

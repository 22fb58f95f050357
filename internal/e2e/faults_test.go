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
	e.srv.ExpireTokens()
	r := e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02")
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
// initial load, reruns it each time, and finally checks that every key is
// held by exactly one record with the right values.
func TestKillAndRerun(t *testing.T) {
	seed := time.Now().UnixNano()
	if s := os.Getenv("E2E_KILL_SEED"); s != "" {
		if err := json.Unmarshal([]byte(s), &seed); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("kill moments from seed %d (replay with E2E_KILL_SEED=%d)", seed, seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	e := newEnv(t, envOptions{users: 300})
	e.srv.SetFaults(fakeapi.Faults{Latency: 15 * time.Millisecond})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}
	kills := 0
	for i := 0; i < 22; i++ {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := e.command(ctx, nil, args...)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rng.IntN(700)+20) * time.Millisecond
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case <-done:
		case <-time.After(delay):
			_ = cmd.Process.Signal(syscall.SIGKILL)
			<-done
			kills++
		}
		cancel()
		if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
			t.Fatalf("duplicates after kill %d (delay %s): %v", i, delay, d)
		}
		if i%5 == 4 {
			// Some changes between crashes, so resumed runs also update.
			for _, u := range e.company.Users()[i : i+3] {
				e.company.Bump(u.UserID, feb)
			}
		}
	}
	t.Logf("%d runs killed", kills)
	e.srv.SetFaults(fakeapi.Faults{})
	e.mustRun(0, args...)
	e.checkForm(jan, feb)
	if kills < 20 {
		t.Errorf("only %d of the runs were killed before they finished", kills)
	}
}

func TestConcurrentRunsAndStatusDuringSync(t *testing.T) {
	e := newEnv(t, envOptions{users: 120})
	e.srv.SetFaults(fakeapi.Faults{Latency: 150 * time.Millisecond})
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
	st := e.statusJSON("2026-03-15")
	running, _ := st["running"].(map[string]any)
	if running == nil || int(running["pid"].(float64)) != first.Process.Pid {
		t.Errorf("status during sync: %v", st)
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

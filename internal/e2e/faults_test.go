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

// TestLostAcknowledgements loses the answer of every batch_create: the
// fake commits the batch, then drops the connection. Each answer is
// "unknown", so each batch is deferred; its lookup, consistency_delay
// after the send, finds every key and adopts it. The outcome is exact: no
// resend, no second record, exit 0, and a rerun writes nothing.
func TestLostAcknowledgements(t *testing.T) {
	e := newEnv(t, envOptions{users: 200, consistencyDelay: 200 * time.Millisecond})
	e.srv.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"data/batch_create"}})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02"}
	r := e.mustRun(0, args...)
	e.checkForm(jan, feb)
	if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
		t.Fatalf("duplicates after lost acknowledgements: %v", d)
	}
	// 200 users in two months: two batches of 100 a month, each sent once.
	// A resend would mean a lookup missed records the fake had committed.
	wantCalls(t, e, map[string]int{
		"data/batch_create": 4,
		// Per month: the lookup before each of the two creates (100 keys,
		// none in the form: one short page), then each deferred batch's
		// lookup (100 keys, each there once: a full page, then an empty
		// one; with the answer lost, no _id is known to stop at).
		"data/list":   12,
		"data/update": 0,
		"data/create": 0,
	})
	if n := strings.Count(r.stderr, "batch_create outcome unknown"); n != 4 {
		t.Errorf("%d batches deferred as unknown, want all 4\n%s", n, r)
	}
	st := monthRows(t, e.statusJSON("2026-03-15"))
	for m, wm := range map[string]string{"2026-01": "2026-01-31", "2026-02": "2026-02-28"} {
		if row := st[m]; row["synced"] != 200.0 || row["pending"] != 0.0 || row["watermark"] != wm {
			t.Errorf("status of %s after the adopted batches: %v", m, row)
		}
	}

	// The second run finds every record checkpointed: no write, no lookup.
	before := e.srv.CallCounts()
	e.mustRun(0, args...)
	wantDelta(t, e, before, map[string]int{"data/batch_create": 0, "data/create": 0, "data/update": 0, "data/list": 0})
	e.checkForm(jan, feb)
}

// wantCalls asserts the fake's call counts for the endpoints named.
func wantCalls(t *testing.T, e *env, want map[string]int) {
	t.Helper()
	wantDelta(t, e, nil, want)
}

// wantDelta asserts how many calls each named endpoint got since before.
func wantDelta(t *testing.T, e *env, before, want map[string]int) {
	t.Helper()
	now := e.srv.CallCounts()
	for ep, n := range want {
		if got := now[ep] - before[ep]; got != n {
			t.Errorf("%s: %d calls, want %d (all calls: %v)", ep, got, n, now)
		}
	}
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
	e := newEnv(t, envOptions{users: 1000, consistencyDelay: 200 * time.Millisecond})
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

// TestConcurrentRunsAndStatusDuringSync holds the first sync's first
// batch_create at the fake, so the first sync is provably inside its run,
// holding the store, while a second sync, status, history, reset and a dry
// run are tried; then it lets the first sync finish.
func TestConcurrentRunsAndStatusDuringSync(t *testing.T) {
	e := newEnv(t, envOptions{users: 120, consistencyDelay: 200 * time.Millisecond})
	entered, release := e.srv.HoldNext("data/batch_create")
	defer release()
	first := e.start("--today", "2026-03-15", "sync", "--month", "2026-01", "--month", "2026-02")
	first.inside("its first batch_create", entered)
	before := e.srv.CallCounts()

	if _, err := os.Stat(store.LockInfoPath(filepath.Join(e.dir, "state.db"))); err != nil {
		t.Errorf("no lock-info file while the sync runs: %v", err)
	}
	st := e.statusJSON("2026-03-15")
	running, _ := st["running"].(map[string]any)
	if running == nil || running["pid"] != float64(first.cmd.Process.Pid) {
		t.Errorf("status during sync: %v", st)
	}
	second := e.run("--today", "2026-03-15", "sync", "--month", "2026-02")
	if second.code != 3 {
		t.Fatalf("second sync: %s", second)
	}
	if pid := first.cmd.Process.Pid; !strings.Contains(second.stderr, itoa(pid)) {
		t.Errorf("exit-3 message does not name pid %d:\n%s", pid, second.stderr)
	}
	for _, cmd := range [][]string{{"history"}, {"reset", "--month", "2026-01"}, {"sync", "--month", "2026-01", "--dry-run"}} {
		if r := e.run(append([]string{"--today", "2026-03-15"}, cmd...)...); r.code != 3 {
			t.Errorf("%v while a sync runs: %s", cmd, r)
		}
	}
	// Refused runs write nothing to Jiandaoyun.
	wantDelta(t, e, before, map[string]int{"data/create": 0, "data/update": 0, "data/batch_delete": 0, "data/delete": 0})
	select {
	case <-first.done:
		t.Fatalf("the first sync ended while its batch_create was held\n%s", first.res)
	default:
	}

	release()
	if r := first.wait(); r.code != 0 {
		t.Fatalf("first sync: %s", r)
	}
	e.checkForm(jan, feb)
	// 120 users in two months: two batches a month, each sent once; the
	// refused runs sent none.
	wantCalls(t, e, map[string]int{"data/batch_create": 4, "data/update": 0})
	if st := e.statusJSON("2026-03-15"); st["running"] != nil {
		t.Errorf("status after the sync still shows it running: %v", st)
	}
	if _, err := os.Stat(store.LockInfoPath(filepath.Join(e.dir, "state.db"))); !os.IsNotExist(err) {
		t.Errorf("lock-info file left after the sync: %v", err)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

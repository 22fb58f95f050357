package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// pendingPlan runs a dry run and returns the transaction_ids its plan shows
// for pending keys, with how many keys each action covers.
func pendingPlan(t *testing.T, e *env, args ...string) (txIDs map[string]int, actions map[string]int) {
	t.Helper()
	r := e.mustRun(0, append(args, "--dry-run")...)
	txIDs, actions = map[string]int{}, map[string]int{}
	for _, line := range strings.Split(r.stdout, "\n") {
		if !strings.HasPrefix(line, "pending: ") {
			continue
		}
		_, tx, ok := strings.Cut(line, "(transaction_id ")
		if !ok {
			t.Fatalf("pending plan line without its transaction_id: %q", line)
		}
		txIDs[strings.TrimSuffix(tx, ")")]++
		actions[strings.Join(strings.Fields(line)[:3], " ")]++
	}
	return txIDs, actions
}

// wantPendingPlan requires the dry run of args to show one pending batch
// whose n keys all take action (as "pending: would create"), with two
// lookups and no batch_create; it returns the batch's transaction_id.
func wantPendingPlan(t *testing.T, e *env, action string, n int, args ...string) string {
	t.Helper()
	before := e.srv.CallCounts()
	txIDs, actions := pendingPlan(t, e, args...)
	if len(txIDs) != 1 || actions[action] != n || len(actions) != 1 {
		t.Fatalf("dry-run plan of the pending batch: %v %v", txIDs, actions)
	}
	wantDelta(t, e, before, map[string]int{"data/batch_create": 0, "data/list": 2})
	var tx string
	for tx = range txIDs {
	}
	return tx
}

// wantSettled requires that no batch is pending after what, and that a
// rerun of args makes no lookup, batch_create or update.
func wantSettled(t *testing.T, e *env, what string, args ...string) {
	t.Helper()
	if txIDs, _ := pendingPlan(t, e, args...); len(txIDs) != 0 {
		t.Errorf("still pending after %s: %v", what, txIDs)
	}
	before := e.srv.CallCounts()
	e.mustRun(0, args...)
	wantDelta(t, e, before, map[string]int{"data/batch_create": 0, "data/update": 0, "data/list": 0})
}

// TestPendingBatchNeverSentIsReplayed kills a sync while its only
// batch_create is held at the fake, before the fake has seen it: the store
// holds the batch as pending and the form holds nothing. The next run
// resolves the pending batch first: its lookup finds none of the keys, so
// it resends the identical batch under the same transaction_id, exactly
// once, and the month's own pass creates nothing more.
func TestPendingBatchNeverSentIsReplayed(t *testing.T) {
	e := newEnv(t, envOptions{users: 60, consistencyDelay: 200 * time.Millisecond})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	leavePending(t, e, false, "2026-02")
	if n := len(e.srv.Records()); n != 0 {
		t.Fatalf("the held batch wrote %d records", n)
	}
	wantCalls(t, e, map[string]int{"data/batch_create": 1, "data/list": 1})

	// The dry run shows the one pending batch, all its keys still to
	// create, and writes nothing. Lookups: the pending batch's, and the
	// month's plan, which counts the same keys as its creates.
	tx := wantPendingPlan(t, e, "pending: would create", 60, args...)

	before := e.srv.CallCounts()
	r := e.mustRun(0, args...)
	e.checkForm(feb)
	// One resend; lookups: the pending batch's (60 keys: one call), then
	// the confirmation of the resend's success (one call).
	wantDelta(t, e, before, map[string]int{"data/batch_create": 1, "data/list": 2, "data/update": 0, "data/create": 0})
	resent := 0
	for _, line := range strings.Split(r.stderr, "\n") {
		if strings.Contains(line, "resending the identical batch") {
			resent++
			if !strings.Contains(line, `"transaction_id":"`+tx+`"`) {
				t.Errorf("resend under another transaction_id than the pending %s: %s", tx, line)
			}
		}
	}
	if resent != 1 {
		t.Errorf("%d resends logged, want 1\n%s", resent, r)
	}
	wantSettled(t, e, "the replay", args...)
}

// TestPendingBatchCommittedBeforeCrashIsAdopted loses the answer of the
// only batch_create (the fake commits it), and kills the sync while the
// deferred lookup is held at the fake. The next run's lookup finds every
// key and adopts it: no batch_create, no update, no second record.
func TestPendingBatchCommittedBeforeCrashIsAdopted(t *testing.T) {
	e := newEnv(t, envOptions{users: 60, consistencyDelay: 200 * time.Millisecond})
	args := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	// The lookup before the create is done; the next data/list is the
	// deferred lookup of the batch whose answer is lost.
	leavePending(t, e, true, "2026-02")
	if n := len(e.srv.Records()); n != 60 {
		t.Fatalf("the lost batch committed %d records, want 60", n)
	}
	wantCalls(t, e, map[string]int{"data/batch_create": 1, "data/list": 2})

	wantPendingPlan(t, e, "pending: would adopt", 60, args...)

	before := e.srv.CallCounts()
	r := e.mustRun(0, args...)
	e.checkForm(feb)
	if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
		t.Fatalf("duplicates: %v", d)
	}
	// Adopted by content: one lookup, no write at all.
	wantDelta(t, e, before, map[string]int{"data/batch_create": 0, "data/list": 1, "data/update": 0, "data/create": 0})
	if strings.Contains(r.stderr, "resending the identical batch") {
		t.Errorf("a committed batch was resent\n%s", r)
	}
	wantSettled(t, e, "the adoption", args...)
}

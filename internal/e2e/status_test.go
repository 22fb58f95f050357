package e2e

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
)

// statusRow is one month of `status --json`.
type statusRow = sync.StatusRow

// statusRowKeys are the JSON names of a status row: the
// contract's eight, then the added ones.
var statusRowKeys = []string{"month", "state", "watermark", "records", "synced", "pending", "failed", "last_run",
	"pending_batches", "deferred", "next_lookup"}

type statusDoc struct {
	Months   []statusRow    `json:"months"`
	NextSync []string       `json:"next_sync"`
	Running  map[string]any `json:"running"`
}

// status runs `status --json`, requires every month to hold exactly the
// names statusRowKeys and decodes it strictly.
func (e *env) status(today string) statusDoc {
	e.t.Helper()
	r := e.mustRun(0, "--today", today, "status", "--json")
	var raw struct{ Months []map[string]json.RawMessage }
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r)
	}
	for _, m := range raw.Months {
		if keys := slices.Sorted(maps.Keys(m)); !slices.Equal(keys, slices.Sorted(slices.Values(statusRowKeys))) {
			e.t.Fatalf("status --json: a month holds %v, want %v\n%s", keys, statusRowKeys, r)
		}
	}
	var st statusDoc
	d := json.NewDecoder(strings.NewReader(r.stdout))
	d.DisallowUnknownFields()
	if err := d.Decode(&st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r)
	}
	return st
}

func (s statusDoc) row(t *testing.T, m string) statusRow {
	t.Helper()
	for _, r := range s.Months {
		if r.Month == m {
			return r
		}
	}
	t.Fatalf("status has no row for %s: %+v", m, s.Months)
	return statusRow{}
}

// history runs `history --json`.
func (e *env) history() []store.Run {
	e.t.Helper()
	r := e.mustRun(0, "history", "--json")
	var h struct{ Runs []store.Run }
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		e.t.Fatalf("history --json: %v\n%s", err, r)
	}
	return h.Runs
}

// wantRow compares a status row with what it must be; LastRun is only
// required to be set or null.
func wantRow(t *testing.T, got statusRow, want statusRow, lastRun bool) {
	t.Helper()
	if (got.LastRun != nil) != lastRun {
		t.Errorf("%s: last_run %v, want set=%v", got.Month, got.LastRun, lastRun)
	}
	got.LastRun, want.LastRun = nil, nil
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", got.Month, show(got), show(want))
	}
}

// wantPendingRow requires month m's row to show a partial month of
// records records, all in one pending batch, deferred, with the time of its
// next lookup; it returns the row.
func wantPendingRow(t *testing.T, st statusDoc, m string, records int) statusRow {
	t.Helper()
	row := st.row(t, m)
	if row.NextLookup == nil {
		t.Fatalf("no next lookup for the pending batch: %s", show(row))
	}
	wantRow(t, row, statusRow{Month: m, State: "partial", Records: records, Pending: records,
		PendingBatches: 1, Deferred: 1, NextLookup: row.NextLookup}, true)
	return row
}

func show(r statusRow) string {
	b, _ := json.Marshal(r)
	return string(b)
}

func ptr(s string) *string { return &s }

const statusToday = "2026-03-15"

var (
	jun25 = month.MustParse("2025-06")
	mar   = month.MustParse("2026-03")
)

// A backfill of a month long settled, interrupted with SIGINT while its
// only batch_create is held at the fake: the month is partial, the plain
// `sync` that cron runs covers it (status says so), and that sync
// finishes it.
func TestInterruptedBackfillIsFinishedByAPlainSync(t *testing.T) {
	e := newEnv(t, envOptions{users: 100, consistencyDelay: 200 * time.Millisecond})
	entered, release := e.srv.HoldNext("data/batch_create")
	defer release()
	p := e.start("--today", statusToday, "sync", "--month", "2025-06")
	p.inside("its batch_create", entered)
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// The held create is never answered: the run abandons it after the
	// drain time, and the batch stays pending.
	if r := p.wait(); r.code != 130 {
		t.Fatalf("interrupted sync: %s", r)
	}
	st := e.status(statusToday)
	if want := []string{"2025-06", "2026-03"}; !reflect.DeepEqual(st.NextSync, want) {
		t.Errorf("next_sync %v, want %v", st.NextSync, want)
	}
	wantPendingRow(t, st, "2025-06", 100)
	text := e.mustRun(0, "--today", statusToday, "status")
	if !strings.Contains(text.stdout, "The next plain `sync` covers 2025-06, 2026-03.") ||
		!strings.Contains(text.stdout, "2025-06: 1 pending batch") {
		t.Errorf("status text:\n%s", text.stdout)
	}
	if h := e.history(); len(h) != 1 || h[0].Outcome != "interrupted" || !reflect.DeepEqual(h[0].Months, []string{"2025-06"}) {
		t.Errorf("history: %+v", h)
	}

	release()
	e.mustRun(0, "--today", statusToday, "sync")
	e.checkBackfill()
	st = e.status(statusToday)
	if want := []string{"2026-03"}; !reflect.DeepEqual(st.NextSync, want) {
		t.Errorf("next_sync after the plain sync: %v, want %v", st.NextSync, want)
	}
	wantRow(t, st.row(t, "2025-06"), statusRow{Month: "2025-06", State: "settled", Watermark: ptr("2025-06-30"), Records: 100, Synced: 100}, true)
	wantRow(t, st.row(t, "2026-03"), statusRow{Month: "2026-03", State: "open", Watermark: ptr("2026-03-14"), Records: 100, Synced: 100}, true)
	if h := e.history(); len(h) != 2 || h[0].Outcome != "success" || !reflect.DeepEqual(h[0].Months, []string{"2025-06", "2026-03"}) || h[1].Outcome != "interrupted" {
		t.Errorf("history: %+v", h)
	}
}

// kill -9 while the month's batch_create is held: the month is partial
// (not never, not settled), and history shows the run as killed once the
// store is free, not running forever. The plain sync finishes the month.
func TestKilledRunIsPartialAndShownKilled(t *testing.T) {
	e := newEnv(t, envOptions{users: 100, consistencyDelay: 200 * time.Millisecond})
	leavePending(t, e, false, "2025-06")
	st := e.status(statusToday)
	wantPendingRow(t, st, "2025-06", 100)
	if want := []string{"2025-06", "2026-03"}; !reflect.DeepEqual(st.NextSync, want) {
		t.Errorf("next_sync %v, want %v", st.NextSync, want)
	}
	h := e.history()
	if len(h) != 1 || h[0].Outcome != "killed" || !reflect.DeepEqual(h[0].Months, []string{"2025-06"}) {
		t.Fatalf("history after kill -9: %+v", h)
	}
	if text := e.mustRun(0, "history"); !strings.Contains(text.stdout, " killed ") || strings.Contains(text.stdout, "running") {
		t.Errorf("history text:\n%s", text.stdout)
	}

	e.mustRun(0, "--today", statusToday, "sync")
	e.checkBackfill()
	wantRow(t, e.status(statusToday).row(t, "2025-06"), statusRow{Month: "2025-06", State: "settled", Watermark: ptr("2025-06-30"), Records: 100, Synced: 100}, true)
	if h := e.history(); len(h) != 2 || h[0].Outcome != "success" || h[1].Outcome != "killed" {
		t.Errorf("history: %+v", h)
	}
}

// A batch whose answer was lost, killed while its deferred lookup is held:
// status shows the pending batch, deferred, and when a sync started now
// would look it up. reset then calls no API and keeps the batch; the next
// sync resolves it by key and creates nothing twice.
func TestDeferredBatchInStatusAndKeptByReset(t *testing.T) {
	delay := 200 * time.Millisecond
	e := newEnv(t, envOptions{users: 60, consistencyDelay: delay})
	args := []string{"--today", statusToday, "sync", "--month", "2026-02"}
	leavePending(t, e, true, "2026-02")

	before := time.Now()
	st := e.status(statusToday)
	after := time.Now()
	row := wantPendingRow(t, st, "2026-02", 60)
	at, err := time.Parse(time.RFC3339, *row.NextLookup)
	if err != nil {
		t.Fatal(err)
	}
	// Sent a moment ago: a sync started now waits the consistency delay.
	if lo, hi := before.Add(delay).Truncate(time.Second), after.Add(delay); at.Before(lo) || at.After(hi) {
		t.Errorf("next lookup %s, want between %s and %s", at, lo, hi)
	}
	if text := e.mustRun(0, "--today", statusToday, "status"); !strings.Contains(text.stdout, "2026-02: 1 pending batch, 1 deferred") ||
		!strings.Contains(text.stdout, "a sync started now looks it up at ") {
		t.Errorf("status text:\n%s", text.stdout)
	}

	calls := e.srv.CallCounts()
	r := e.mustRun(0, "--today", statusToday, "reset", "--month", "2026-02")
	if want := "2026-02: 0 checkpoints and the watermark forgotten; the next sync looks its records up by key, so it creates no duplicates; " +
		"1 pending batch (60 records) kept: the next sync resolves it first\n"; r.stdout != want {
		t.Errorf("reset said %q, want %q", r.stdout, want)
	}
	if now := e.srv.CallCounts(); !maps.Equal(now, calls) {
		t.Errorf("reset called the APIs: %v, before %v", now, calls)
	}
	row = e.status(statusToday).row(t, "2026-02")
	wantRow(t, row, statusRow{Month: "2026-02", State: "never", Records: 60, Pending: 60,
		PendingBatches: 1, Deferred: 1, NextLookup: row.NextLookup}, false)

	before2 := e.srv.CallCounts()
	e.mustRun(0, args...)
	e.checkForm(feb)
	if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
		t.Fatalf("duplicates: %v", d)
	}
	// The lost batch was committed: the pending batch's lookup adopts it.
	wantDelta(t, e, before2, map[string]int{"data/batch_create": 0, "data/create": 0, "data/update": 0})
	wantRow(t, e.status(statusToday).row(t, "2026-02"), statusRow{Month: "2026-02", State: "settled", Watermark: ptr("2026-02-28"), Records: 60, Synced: 60}, true)
}

// reset of a month the store never had says there was nothing to forget,
// and a store that does not exist is not created.
func TestResetOfAnUnknownMonthForgetsNothing(t *testing.T) {
	e := newEnv(t, envOptions{users: 5})
	path := filepath.Join(e.dir, "state.db")
	r := e.mustRun(0, "reset", "--month", "2025-01")
	if want := "2025-01: nothing to forget: the store " + path + " does not exist yet\n"; r.stdout != want {
		t.Errorf("reset without a store said %q, want %q", r.stdout, want)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("reset created the store: %v", err)
	}
	e.mustRun(0, "--today", statusToday, "sync", "--month", "2026-02")
	r = e.mustRun(0, "reset", "--month", "2025-01", "--month", "2026-02")
	if want := "2025-01: nothing to forget: the store holds no checkpoint of this month\n" +
		"2026-02: 5 checkpoints and the watermark forgotten; the next sync looks its records up by key, so it creates no duplicates\n"; r.stdout != want {
		t.Errorf("reset said %q, want %q", r.stdout, want)
	}
}

// checkBackfill asserts that the form holds exactly one record per user
// for 2025-06 and for the current month (2026-03, which the plain sync
// also covers), and nothing else.
func (e *env) checkBackfill() {
	e.t.Helper()
	mp := e.mapper()
	per := map[string]int{}
	for _, r := range e.srv.Records() {
		k, _ := r.Data["sync_key"].(string)
		per[k]++
	}
	for _, m := range []month.Month{jun25, mar} {
		for _, u := range e.company.Users() {
			if n := per[mp.Key(u.UserID, m)]; n != 1 {
				e.t.Errorf("%s: %d records, want exactly 1", mp.Key(u.UserID, m), n)
			}
		}
	}
	if n, want := len(e.srv.Records()), 2*len(e.company.Users()); n != want {
		e.t.Errorf("the form holds %d records, want %d", n, want)
	}
}

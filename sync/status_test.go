package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// A month a run started and did not go through joins the default window
// whatever its age; one with pending records too; one with only failed
// (rejected) records does not.
func TestDefaultWindowPullsInUnfinishedMonths(t *testing.T) {
	ran := func(m string, f func(*store.MonthInfo)) store.MonthInfo {
		mi := store.MonthInfo{Month: m, Watermark: m + "-28", LastRunID: "r1"}
		f(&mi)
		return mi
	}
	inProgress := func(mi *store.MonthInfo) { mi.InProgress = true }
	for _, tc := range []struct {
		name  string
		infos []store.MonthInfo
		want  string
	}{
		{"interrupted long ago", []store.MonthInfo{ran("2024-11", inProgress)}, "[2024-11 2026-03]"},
		{"interrupted, never processed before", []store.MonthInfo{{Month: "2025-06", InProgress: true}}, "[2025-06 2026-03]"},
		{"pending records", []store.MonthInfo{ran("2025-12", func(mi *store.MonthInfo) { mi.Pending, mi.Dirty = 100, true })}, "[2025-12 2026-03]"},
		{"rejected records only", []store.MonthInfo{ran("2025-12", func(mi *store.MonthInfo) { mi.Failed, mi.Dirty = 3, true })}, "[2026-03]"},
		{"pending records of a month no run processed (reset)", []store.MonthInfo{{Month: "2025-12", Pending: 4}}, "[2026-03]"},
		{"in the window anyway", []store.MonthInfo{ran("2026-02", inProgress)}, "[2026-02 2026-03]"},
		{"the current month", []store.MonthInfo{ran("2026-03", inProgress)}, "[2026-03]"},
		{"a future month is never pulled in", []store.MonthInfo{{Month: "2026-05", InProgress: true}}, "[2026-03]"},
		{"several", []store.MonthInfo{ran("2025-01", inProgress), ran("2025-12", func(mi *store.MonthInfo) { mi.Failed = 1 }), ran("2025-10", inProgress)},
			"[2025-01 2025-10 2026-03]"},
	} {
		if got := fmt.Sprint(DefaultWindow(date(t, "2026-03-15"), 2, 5, tc.infos)); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}

func TestStatusOf(t *testing.T) {
	cst := month.CST
	run := time.Date(2026, 3, 3, 18, 0, 4, 0, time.UTC)
	now := time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC)
	delay := 10 * time.Second
	infos := []store.MonthInfo{
		{Month: "2025-11", Watermark: "2025-11-30", Synced: 10, Pending: 2, InProgress: true, LastRunID: "r", LastRunStart: run},
		{Month: "2025-12", Watermark: "2025-12-31", Synced: 10, LastRunID: "r", LastRunStart: run},
		{Month: "2026-01", Watermark: "2026-01-31", Synced: 9, Failed: 1, Dirty: true, LastRunID: "r", LastRunStart: run},
		{Month: "2026-02", Synced: 400, InProgress: true, LastRunID: "r", LastRunStart: run}, // killed on its first run
		{Month: "2026-03", Synced: 5, LastRunID: "r", LastRunStart: run},
	}
	pendings := []store.Pending{
		// 2025-11: one sent long ago (due at once), one sent 3s ago (deferred).
		{TxID: "a", Month: "2025-11", UserIDs: []string{"u1"}, Hashes: []uint64{1}, FirstSentAt: now.Add(-time.Hour), LastSentAt: now.Add(-time.Hour)},
		{TxID: "b", Month: "2025-11", UserIDs: []string{"u2"}, Hashes: []uint64{2}, FirstSentAt: now.Add(-3 * time.Second), LastSentAt: now.Add(-3 * time.Second)},
		// 2025-09: a month the store has no entry for (reset), deferred.
		{TxID: "c", Month: "2025-09", UserIDs: []string{"u3"}, Hashes: []uint64{3}, FirstSentAt: now.Add(-time.Minute), LastSentAt: now.Add(-time.Minute)},
	}
	window := DefaultWindow(date(t, "2026-03-15"), 2, 5, infos)
	st := StatusOf(StatusInput{Infos: infos, Window: window, Pendings: pendings, ConsistencyDelay: delay, Now: now, Loc: cst})
	str := func(s string) *string { return &s }
	last := str("2026-03-04T02:00:04+08:00")
	want := Status{
		NextSync: []string{"2025-11", "2026-02", "2026-03"},
		Months: []StatusRow{
			{Month: "2025-09", State: StateNever, PendingBatches: 1, Deferred: 1, NextLookup: str("2026-03-15T10:00:10+08:00")},
			{Month: "2025-11", State: StatePartial, Watermark: str("2025-11-30"), Records: 12, Synced: 10, Pending: 2, LastRun: last,
				PendingBatches: 2, Deferred: 1, NextLookup: str("2026-03-15T10:00:00+08:00")},
			{Month: "2025-12", State: StateSettled, Watermark: str("2025-12-31"), Records: 10, Synced: 10, LastRun: last},
			{Month: "2026-01", State: StatePartial, Watermark: str("2026-01-31"), Records: 10, Synced: 9, Failed: 1, LastRun: last},
			{Month: "2026-02", State: StatePartial, Records: 400, Synced: 400, LastRun: last},
			{Month: "2026-03", State: StateOpen, Records: 5, Synced: 5, LastRun: last},
		},
	}
	if !reflect.DeepEqual(st, want) {
		got, _ := json.MarshalIndent(st, "", " ")
		exp, _ := json.MarshalIndent(want, "", " ")
		t.Errorf("status:\n%s\nwant:\n%s", got, exp)
	}

	// The JSON keeps the contract's fields and adds the new ones.
	b, err := json.Marshal(StatusOf(StatusInput{Window: []month.Month{month.MustParse("2026-03")}, Now: now, Loc: cst}))
	if err != nil {
		t.Fatal(err)
	}
	const wantJSON = `{"months":[{"month":"2026-03","state":"never","watermark":null,"records":0,"synced":0,"pending":0,"failed":0,"last_run":null,` +
		`"pending_batches":0,"deferred":0,"next_lookup":null}],"next_sync":["2026-03"]}`
	if string(b) != wantJSON {
		t.Errorf("JSON:\n%s\nwant\n%s", b, wantJSON)
	}
}

// status's next lookup follows the rule the engine applies to a batch an
// earlier run left pending.
func TestLookupAtFollowsTheEngine(t *testing.T) {
	start := time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC)
	delay := 200 * time.Millisecond
	r := &run{e: &Engine{opts: Options{ConsistencyDelay: delay}}, start: start}
	for _, ago := range []time.Duration{0, time.Second, delay + inheritedSendSlack - time.Millisecond, delay + inheritedSendSlack, time.Hour} {
		p := store.Pending{LastSentAt: start.Add(-ago)}
		if got, want := LookupAt(p, start, delay), r.inheritedLastSend(p).Add(delay); !got.Equal(want) {
			t.Errorf("sent %v before the run: LookupAt %v, the engine waits until %v", ago, got, want)
		}
	}
	if got := LookupAt(store.Pending{LastSentAt: start.Add(-time.Second)}, start, delay); !got.Equal(start.Add(delay)) {
		t.Errorf("a batch sent a second ago: %v, want the delay after the start", got)
	}
	if got := LookupAt(store.Pending{LastSentAt: start.Add(-time.Hour)}, start, delay); !got.Equal(start.Add(-time.Hour + delay)) {
		t.Errorf("a batch sent an hour ago: %v, want the delay after its last send", got)
	}
}

func TestShownOutcome(t *testing.T) {
	for stored, shown := range map[string]string{
		OutcomeRunning:     OutcomeKilled,
		OutcomeSuccess:     OutcomeSuccess,
		OutcomePartial:     OutcomePartial,
		OutcomeFailed:      OutcomeFailed,
		OutcomeInterrupted: OutcomeInterrupted,
		OutcomeKilled:      OutcomeKilled,
	} {
		if got := ShownOutcome(stored); got != shown {
			t.Errorf("%s shown as %s, want %s", stored, got, shown)
		}
	}
}

// newStatusRig is newMemRig with a mapping compiled from the template with
// its placeholders filled in.
func newStatusRig(t *testing.T, users int) *memRig {
	t.Helper()
	return newRigWith(t, users, templateMapper(t))
}

func templateMapper(t *testing.T) *mapping.Mapper {
	t.Helper()
	return configMapper(t, regexp.MustCompile(`EDIT_ME_[A-Z_]+`).ReplaceAll(config.Template(), []byte("x1")))
}

// runStop runs months with its own stop signal.
func (r *memRig) runStop(stop context.Context, cp Checkpoints, months ...month.Month) *Summary {
	r.t.Helper()
	if cp == nil {
		cp = r.cp
	}
	eng := New(r.src, r.sink, cp, r.mapper, Options{Concurrency: 3, ConsistencyDelay: time.Millisecond, Log: zerolog.Nop(), Now: r.clock})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return eng.Run(ctx, stop, Request{Command: "test", Months: months, Today: memToday})
}

func (r *memRig) monthInfo(m month.Month) store.MonthInfo {
	r.t.Helper()
	mi, _, err := r.cp.Month(m.String())
	if err != nil {
		r.t.Fatal(err)
	}
	return mi
}

// The mark: set in one store transaction before anything is fetched,
// kept by an interrupted run, cleared by the run that completes the month.
func TestInterruptedMonthStaysInProgress(t *testing.T) {
	r := newStatusRig(t, 250)
	old := month.MustParse("2025-06")
	stop, cancel := context.WithCancel(context.Background())
	defer cancel()
	r.sink.afterCreate = func() { cancel() } // stop after the first batch is written
	s := r.runStop(stop, nil, old)
	r.want(s, OutcomeInterrupted, ExitInterrupted)
	mi := r.monthInfo(old)
	if !mi.InProgress || mi.Watermark != "" || mi.LastRunID != s.RunID || !mi.LastRunStart.Equal(s.Start) {
		t.Fatalf("after the interrupted run: %+v", mi)
	}
	if w := fmt.Sprint(DefaultWindow(memToday, 2, 5, []store.MonthInfo{mi})); w != "[2025-06 2026-03]" {
		t.Fatalf("window after the interruption: %s", w)
	}

	r.sink.afterCreate = nil
	s = r.runStop(context.Background(), nil, old)
	r.want(s, OutcomeSuccess, ExitOK)
	r.expectForm(old)
	mi = r.monthInfo(old)
	if mi.InProgress || mi.Dirty || mi.Watermark != "2025-06-30" || mi.LastRunID != s.RunID {
		t.Fatalf("after the run that completed it: %+v", mi)
	}
	if w := fmt.Sprint(DefaultWindow(memToday, 2, 5, []store.MonthInfo{mi})); w != "[2026-03]" {
		t.Fatalf("window after completion: %s", w)
	}
}

// A run stopped before it fetched anything (a signal at once) still leaves
// its months marked, as kill -9 would: the mark is the first write.
func TestMarkIsTheFirstWrite(t *testing.T) {
	r := newStatusRig(t, 10)
	stop, cancel := context.WithCancel(context.Background())
	cancel()
	cp := &countingCheckpoints{memCheckpoints: r.cp}
	s := r.runStop(stop, cp, memMonth, month.MustParse("2026-03"))
	r.want(s, OutcomeInterrupted, ExitInterrupted)
	if len(cp.writes) == 0 || !reflect.DeepEqual(cp.writes[0], []string{"2026-02 in progress", "2026-03 in progress"}) {
		t.Fatalf("store writes: %v, want the two months marked in the first", cp.writes)
	}
	if r.src.calls != 0 {
		t.Fatalf("%d fetches", r.src.calls)
	}
	for _, m := range []string{"2026-02", "2026-03"} {
		if mi, _, _ := r.cp.Month(m); !mi.InProgress {
			t.Errorf("%s not in progress: %+v", m, mi)
		}
	}
}

// On the 1st the current month has no complete day: it is not marked, so
// it stays never.
func TestMonthWithoutACompleteDayIsNotMarked(t *testing.T) {
	r := newStatusRig(t, 10)
	eng := New(r.src, r.sink, r.cp, r.mapper, Options{Concurrency: 3, ConsistencyDelay: time.Millisecond, Log: zerolog.Nop(), Now: r.clock})
	s := eng.Run(context.Background(), context.Background(), Request{Command: "test", Months: []month.Month{month.MustParse("2026-03")}, Today: month.Date{Year: 2026, Mon: 3, Day: 1}})
	r.want(s, OutcomeSuccess, ExitOK)
	if mi, found, _ := r.cp.Month("2026-03"); found {
		t.Fatalf("a month with no complete day was written: %+v", mi)
	}
}

// Records Jiandaoyun rejected leave the month partial (Dirty) but not in
// progress, so they do not keep it in the default window.
func TestRejectedRecordsDoNotKeepAMonthInProgress(t *testing.T) {
	r := newStatusRig(t, 4)
	old := month.MustParse("2025-06")
	r.sink.rejectKey[r.mapper.Key(r.src.users[0], old)] = true
	s := r.runStop(context.Background(), nil, old)
	r.want(s, OutcomePartial, ExitPartial)
	mi := r.monthInfo(old)
	if mi.InProgress || !mi.Dirty || mi.Watermark != "" {
		t.Fatalf("after rejections: %+v", mi)
	}
	if w := fmt.Sprint(DefaultWindow(memToday, 2, 5, []store.MonthInfo{mi})); w != "[2026-03]" {
		t.Fatalf("window: %s", w)
	}
	if st := BuildStatus([]store.MonthInfo{mi}, nil, month.CST); st.Months[0].State != StatePartial {
		t.Fatalf("state: %s", st.Months[0].State)
	}
}

// A batch left pending keeps the month in progress.
func TestPendingBatchKeepsAMonthInProgress(t *testing.T) {
	r := newStatusRig(t, 4)
	old := month.MustParse("2025-06")
	r.sink.lose = 1      // the create commits and its answer is lost: deferred
	r.sink.failAfter = 1 // the plan's lookup works, the deferred lookup fails
	s := r.runStop(context.Background(), nil, old)
	r.want(s, OutcomePartial, ExitPartial)
	mi := r.monthInfo(old)
	if !mi.InProgress || !mi.Dirty || mi.Watermark != "" {
		t.Fatalf("after a batch left pending: %+v", mi)
	}
	if ps, _ := r.cp.Pendings(); len(ps) != 1 {
		t.Fatalf("pending batches: %d", len(ps))
	}
	r.sink.failAfter = 0
	s = r.runStop(context.Background(), nil, DefaultWindow(memToday, 2, 5, []store.MonthInfo{mi})...)
	r.want(s, OutcomeSuccess, ExitOK)
	per := r.sink.perKey()
	for _, u := range r.src.users {
		for _, m := range []month.Month{old, month.MustParse("2026-03")} {
			if n := per[r.mapper.Key(u, m)]; n != 1 {
				t.Errorf("%s: %d records", r.mapper.Key(u, m), n)
			}
		}
	}
	if len(per) != 8 {
		t.Errorf("%d keys in the form, want 8", len(per))
	}
	if mi := r.monthInfo(old); mi.InProgress || mi.Dirty || mi.Watermark != "2025-06-30" {
		t.Fatalf("after the plain run: %+v", mi)
	}
}

// A store write that fails (a full disk) after the mark leaves the month
// in progress.
func TestFailedStoreWriteKeepsAMonthInProgress(t *testing.T) {
	r := newStatusRig(t, 4)
	cp := &countingCheckpoints{memCheckpoints: r.cp, failAfter: 1}
	s := r.runStop(context.Background(), cp, memMonth)
	if o, _ := Verdict(s); o == OutcomeSuccess {
		t.Fatalf("run: %s", o)
	}
	if mi := r.monthInfo(memMonth); !mi.InProgress || mi.LastRunID != s.RunID {
		t.Fatalf("after a full disk: %+v", mi)
	}
}

var errDiskFull = errors.New("no space left on device")

// countingCheckpoints notes the months each write marks, and fails every
// write after failAfter of them when failAfter > 0.
type countingCheckpoints struct {
	*memCheckpoints
	failAfter int
	writes    [][]string
}

func (c *countingCheckpoints) Apply(w *store.Write) error {
	if c.failAfter > 0 && len(c.writes) >= c.failAfter {
		return errDiskFull
	}
	var marks []string
	for _, mi := range w.Months {
		if mi.InProgress {
			marks = append(marks, mi.Month+" in progress")
		}
	}
	c.writes = append(c.writes, marks)
	return c.memCheckpoints.Apply(w)
}

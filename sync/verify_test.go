package sync

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

func (r *memRig) engine(dryRun bool, onPlan func(PlanLine)) *Engine {
	var sink Sink = r.sink
	var cp Checkpoints = r.cp
	if dryRun {
		sink, cp = DryRunSink{Sink: r.sink}, readOnlyMem{r.cp}
	}
	return New(r.src, sink, cp, r.mapper, Options{
		Concurrency: 3, ConsistencyDelay: time.Millisecond, Log: zerolog.Nop(), Now: r.clock, OnPlan: onPlan,
	})
}

func (r *memRig) verify(months ...month.Month) *VerifyReport {
	r.t.Helper()
	rep, err := r.engine(false, nil).Verify(context.Background(), months)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

func (r *memRig) repair(rep *VerifyReport, dryRun bool, onPlan func(PlanLine)) *Summary {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.engine(dryRun, onPlan).Repair(ctx, ctx, rep, Request{Command: "verify", Today: memToday, DryRun: dryRun})
}

func wantCounts(t *testing.T, rep *VerifyReport, want map[string]int) {
	t.Helper()
	for _, k := range kindOrder {
		if rep.Counts[k] != want[k] {
			t.Fatalf("counts %v, want %v; findings %+v", rep.Counts, want, rep.Findings)
		}
	}
}

// injectDrift makes one record of each kind of drift: one deleted by hand,
// one edited by hand, one key copied twice by hand, and one hand-made row
// with a key the store does not know.
func (r *memRig) injectDrift() (missing, differ, dup string) {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	gone := r.sink.recs[1]
	r.sink.remove([]string{gone.id})
	r.sink.recs[2].row["work_days"] = json.Number("999")
	src := r.sink.recs[4]
	for i := 0; i < 2; i++ {
		row := map[string]any{}
		for k, v := range src.row {
			row[k] = map[string]any{"value": v}
		}
		b, _ := json.Marshal(row)
		r.sink.insert("alice", b, 0)
	}
	b, _ := json.Marshal(map[string]any{r.sink.keyField: map[string]any{"value": "nobody|2026-02"}})
	r.sink.insert("alice", b, 0)
	b, _ = json.Marshal(map[string]any{r.sink.keyField: map[string]any{"value": ""}})
	r.sink.insert("alice", b, 0)
	return gone.key, r.sink.recs[2].key, src.key
}

func TestVerifyFindsEachKindAndFixRepairsIt(t *testing.T) {
	r := newMemRig(t, 10)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	if rep := r.verify(); len(rep.Findings) != 0 {
		t.Fatalf("a clean form has findings: %+v", rep.Findings)
	}
	missing, differ, dup := r.injectDrift()
	rep := r.verify()
	wantCounts(t, rep, map[string]int{KindMissing: 1, KindDiffer: 1, KindDuplicate: 1, KindUnknown: 2})
	if !rep.Drift() {
		t.Fatal("drift not reported")
	}
	byKind := map[string]Finding{}
	for _, f := range rep.Findings {
		byKind[f.Kind] = f
	}
	if byKind[KindMissing].Key != missing || byKind[KindDiffer].Key != differ || byKind[KindDuplicate].Key != dup {
		t.Fatalf("findings %+v; want missing %s, differ %s, duplicate %s", rep.Findings, missing, differ, dup)
	}
	if ids := byKind[KindDuplicate].DataIDs; len(ids) != 3 || ids[0] >= ids[1] {
		t.Fatalf("duplicate ids %v, want 3, oldest first", ids)
	}
	// --deep names the field edited by hand.
	calls := r.src.calls
	if err := r.engine(false, nil).Deep(context.Background(), rep, memToday); err != nil {
		t.Fatal(err)
	}
	for _, f := range rep.Findings {
		if f.Kind == KindDiffer && (len(f.Fields) != 1 || f.Fields[0] != "work_days") {
			t.Fatalf("deep: fields %v, want [work_days]", f.Fields)
		}
	}
	if r.src.calls != calls+1 {
		t.Fatalf("deep made %d month-data calls, want 1", r.src.calls-calls)
	}

	// A dry run plans and writes nothing.
	var plan []PlanLine
	r.resetCalls()
	s := r.repair(rep, true, func(l PlanLine) { plan = append(plan, l) })
	r.want(s, OutcomeSuccess, ExitOK)
	if n := r.sink.count("create") + r.sink.count("update") + r.sink.count("delete"); n != 0 {
		t.Fatalf("a dry run wrote %d times", n)
	}
	actions := map[string]int{}
	for _, l := range plan {
		actions[l.Action]++
	}
	if actions["create"] != 1 || actions["update"] != 1 || actions["delete"] != 2 {
		t.Fatalf("dry-run plan %v", actions)
	}
	if again := r.verify(); again.Counts[KindMissing] != 1 {
		t.Fatal("a dry run changed something")
	}

	r.resetCalls()
	s = r.repair(rep, false, nil)
	r.want(s, OutcomeSuccess, ExitOK)
	if c, u, d := r.sink.count("create"), r.sink.count("update"), r.sink.count("delete"); c != 1 || u != 1 || d != 2 {
		t.Fatalf("repair: %d creates, %d updates, %d deletes; want 1, 1, 2", c, u, d)
	}
	if len(s.Deleted) != 2 || s.Deleted[0].Key != dup || len(s.Deleted[0].Content) == 0 {
		t.Fatalf("deleted records kept in the run: %+v", s.Deleted)
	}
	if last := r.cp.runs[len(r.cp.runs)-1]; len(last.Deleted) != 2 {
		t.Fatalf("the run history keeps %d deleted records, want 2", len(last.Deleted))
	}
	again := r.verify()
	wantCounts(t, again, map[string]int{KindUnknown: 2})
	if again.Drift() {
		t.Fatal("drift left after the repair")
	}
	// The month's state is left as the last sync left it.
	if mi, _, _ := r.cp.Month(memMonth.String()); mi.InProgress || mi.Dirty {
		t.Fatalf("the repair changed the month's state: %+v", mi)
	}
}

// A duplicate whose stored data_id is the newer copy: the repair deletes
// that copy and adopts the oldest.
func TestFixAdoptsTheOldestCopy(t *testing.T) {
	r := newMemRig(t, 3)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	first := r.sink.recs[0]
	// An older copy: a smaller _id than every record the sync made.
	row := map[string]any{}
	for k, v := range first.row {
		row[k] = v
	}
	r.sink.recs = append(r.sink.recs, &memRecord{id: "000000000000000000000000", key: first.key, row: row, creator: "alice", created: r.now})
	r.sink.mu.Unlock()
	rep := r.verify()
	wantCounts(t, rep, map[string]int{KindDuplicate: 1})
	r.want(r.repair(rep, false, nil), OutcomeSuccess, ExitOK)
	if r.sink.find(first.id) != nil {
		t.Fatal("the newer copy is still there")
	}
	var rec [1]store.Record
	var found [1]bool
	_ = r.cp.Lookup(memMonth.String(), []string{first.key[:len(first.key)-8]}, rec[:], found[:])
	if rec[0].DataID != "000000000000000000000000" {
		t.Fatalf("the store holds %q, want the oldest copy", rec[0].DataID)
	}
	wantCounts(t, r.verify(), nil)
}

func TestVerifyMonthFilterAndPending(t *testing.T) {
	r := newMemRig(t, 4)
	other := month.MustParse("2026-01")
	r.want(r.run(memMonth, other), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	r.sink.remove([]string{r.sink.recs[0].id}) // of the first month synced
	r.sink.mu.Unlock()
	if rep := r.verify(memMonth, other); rep.Counts[KindMissing] != 1 {
		t.Fatalf("both months: %v", rep.Counts)
	}
	gone := 0
	for _, m := range []month.Month{memMonth, other} {
		gone += r.verify(m).Counts[KindMissing]
	}
	if gone != 1 {
		t.Fatalf("a month filter found %d missing in total, want 1", gone)
	}
	// A record still pending is pending, never missing.
	_ = r.cp.Apply(&store.Write{Records: []store.KeyedRecord{{Month: memMonth.String(), UserID: "zz", Record: store.Record{State: store.StatePending}}}})
	rep := r.verify(memMonth)
	if rep.Counts[KindPending] != 1 {
		t.Fatalf("pending not reported: %v", rep.Counts)
	}
}

// rebuild after the store is lost: a sync of unchanged data writes
// nothing, and a record edited by hand is updated.
func TestRebuildThenSyncWritesOnlyTheHandEdit(t *testing.T) {
	r := newMemRig(t, 12)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	edited := r.sink.recs[5]
	edited.row["work_days"] = json.Number("999")
	r.sink.mu.Unlock()
	r.cp = newMemCheckpoints()
	rep, err := r.engine(false, nil).Rebuild(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Months) != 1 || rep.Months[0].Adopted != 12 || len(rep.Findings) != 0 {
		t.Fatalf("rebuild: %+v", rep)
	}
	if s, _, _ := r.cp.states(memMonth.String()); s != 12 {
		t.Fatalf("%d synced checkpoints, want 12", s)
	}
	// verify sees the edit as adopted: the store holds the form's hash.
	wantCounts(t, r.verify(), nil)
	r.resetCalls()
	s := r.run()
	r.want(s, OutcomeSuccess, ExitOK)
	r.calls(0, 0, 1)
	r.expectForm(memMonth)
	if r.sink.find(edited.id).row["work_days"] == json.Number("999") {
		t.Fatal("the hand edit was not updated")
	}
}

// rebuild keeps pending batches and reports duplicates without touching
// them.
func TestRebuildKeepsPendingAndReportsDuplicates(t *testing.T) {
	r := newMemRig(t, 6)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	src := r.sink.recs[0]
	b, _ := json.Marshal(map[string]any{r.sink.keyField: map[string]any{"value": src.key}})
	r.sink.insert("alice", b, 0)
	r.sink.mu.Unlock()
	p := store.Pending{TxID: "tx1", Month: memMonth.String(), UserIDs: []string{"pendinguser"}, Hashes: []uint64{7},
		FirstSentAt: r.now, LastSentAt: r.now}
	_ = r.cp.Apply(&store.Write{PutPending: []store.Pending{p}, Records: []store.KeyedRecord{{Month: memMonth.String(), UserID: "pendinguser", Record: store.Record{Hash: 7, State: store.StatePending}}}})
	rep, err := r.engine(false, nil).Rebuild(context.Background(), []month.Month{memMonth})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Findings) != 1 || rep.Findings[0].Kind != KindDuplicate || rep.Months[0].KeptPending != 1 {
		t.Fatalf("rebuild: %+v", rep)
	}
	if ps, _ := r.cp.Pendings(); len(ps) != 1 {
		t.Fatal("the pending batch was dropped")
	}
	if s, pend, _ := r.cp.states(memMonth.String()); s != 6 || pend != 1 {
		t.Fatalf("synced %d pending %d, want 6 and 1", s, pend)
	}
	if r.sink.count("delete") != 0 {
		t.Fatal("rebuild deleted a record")
	}
}

// Settle resolves pending batches before a verify, so a key left pending
// by a crash is not reported missing.
func TestSettleResolvesPendingBeforeVerify(t *testing.T) {
	r := newMemRig(t, 5)
	r.sink.lose = 1 // the create commits, its answer is lost
	r.sink.failAfter = 1
	s := r.run()
	r.want(s, OutcomePartial, ExitPartial)
	r.sink.failAfter = 0
	if rep := r.verify(); rep.Counts[KindPending] != 5 {
		t.Fatalf("before settling: %v", rep.Counts)
	}
	ctx := context.Background()
	sum, err := r.engine(false, nil).Settle(ctx, ctx, "verify", memToday)
	if err != nil || sum == nil {
		t.Fatalf("settle: %v %v", sum, err)
	}
	r.want(sum, OutcomeSuccess, ExitOK)
	wantCounts(t, r.verify(), nil)
	r.expectForm(memMonth)
}

// The scan reads the next page while the last one is decoded; a page that
// fails, however far in, fails verify and rebuild, and nothing is taken
// from a partial scan.
func TestScanOfManyPages(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	rep := r.verify()
	if rep.Records != 250 || len(rep.Findings) != 0 {
		t.Fatalf("%d records, findings %+v; want 250, none", rep.Records, rep.Findings)
	}
	if n := r.sink.calls["scan"]; n != 3 {
		t.Fatalf("%d scan calls, want 3 pages", n)
	}
	_, differ, _ := r.injectDrift()
	rep = r.verify()
	wantCounts(t, rep, map[string]int{KindMissing: 1, KindDiffer: 1, KindDuplicate: 1, KindUnknown: 2})
	for _, f := range rep.Findings {
		if f.Kind == KindDiffer && (f.Key != differ || f.row == nil) {
			t.Fatalf("differ finding %+v, want %s with its row kept", f, differ)
		}
		if f.Kind != KindDiffer && f.row != nil {
			t.Fatalf("%s finding keeps a row", f.Kind)
		}
	}

	for _, tc := range []struct {
		name      string
		failScan  int
		badPage   int
		wantError error
	}{
		{"the second page is refused", 2, 0, errScan},
		{"the third page is refused", 3, 0, errScan},
		{"the first page does not decode", 0, 1, errDecode},
		{"the last page does not decode", 0, 3, errDecode},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r.sink.mu.Lock()
			r.sink.calls["scan"] = 0
			r.sink.failScan, r.sink.badPage = tc.failScan, tc.badPage
			r.sink.mu.Unlock()
			if rep, err := r.engine(false, nil).Verify(context.Background(), nil); !errors.Is(err, tc.wantError) {
				t.Fatalf("verify: %+v, %v; want %v", rep, err, tc.wantError)
			}
			r.sink.mu.Lock()
			r.sink.calls["scan"] = 0
			r.sink.mu.Unlock()
			before, err := r.cp.Months()
			if err != nil {
				t.Fatal(err)
			}
			if rep, err := r.engine(false, nil).Rebuild(context.Background(), nil); !errors.Is(err, tc.wantError) {
				t.Fatalf("rebuild: %+v, %v; want %v", rep, err, tc.wantError)
			}
			if after, _ := r.cp.Months(); !reflect.DeepEqual(before, after) {
				t.Fatalf("a failed rebuild changed the store's months: %+v → %+v", before, after)
			}
		})
	}
}

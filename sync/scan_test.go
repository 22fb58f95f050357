package sync

import (
	"context"
	"reflect"
	"sort"
	"strings"
	"testing"

	"checkin-sync/store"
)

// splitForms makes forms of more than n records count as large enough to
// split, for the length of a test.
func splitForms(t *testing.T, n int) {
	old := minPartition
	minPartition = n
	t.Cleanup(func() { minPartition = old })
}

// verifyCalls runs verify and returns the report and the sink calls it made.
func (r *memRig) verifyCalls() (*VerifyReport, map[string]int) {
	r.t.Helper()
	r.sink.mu.Lock()
	r.sink.calls["scan"], r.sink.calls["get"] = 0, 0
	r.sink.mu.Unlock()
	rep := r.verify()
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	return rep, map[string]int{"scan": r.sink.calls["scan"], "get": r.sink.calls["get"]}
}

func sameReport(t *testing.T, what string, got, want *VerifyReport) {
	t.Helper()
	if got.Records != want.Records || !reflect.DeepEqual(got.Counts, want.Counts) || !reflect.DeepEqual(got.Findings, want.Findings) {
		t.Fatalf("%s: %d records, %v, %+v\nwant %d records, %v, %+v", what, got.Records, got.Counts, got.Findings,
			want.Records, want.Counts, want.Findings)
	}
}

// A form large enough is read in partitions at once, split at data_ids
// the store knows and the form still has; the report is the one a single
// walk makes.
func TestScanSplitsAtKnownIDs(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.injectDrift()
	one, calls := r.verifyCalls()
	if want := map[string]int{"scan": 3, "get": 0}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("one walk: calls %v, want %v", calls, want)
	}

	// The rig's engine has 3 requests in flight: 3 partitions, 2 starts.
	splitForms(t, 50)
	split, calls := r.verifyCalls()
	sameReport(t, "in partitions", split, one)
	if want := map[string]int{"scan": 3, "get": 2}; !reflect.DeepEqual(calls, want) {
		t.Fatalf("in partitions: calls %v, want %v", calls, want)
	}

	// A start the form no longer has is passed over for the next _id.
	ids := r.storedIDs()
	gone := ids[len(ids)/3]
	r.sink.mu.Lock()
	r.sink.remove([]string{gone})
	r.sink.mu.Unlock()
	serial := func() *VerifyReport {
		splitForms(t, 1<<30)
		defer splitForms(t, 50)
		rep, _ := r.verifyCalls()
		return rep
	}()
	split, calls = r.verifyCalls()
	sameReport(t, "a start deleted", split, serial)
	if calls["get"] != 3 {
		t.Fatalf("a start deleted: %d data/get calls, want 3", calls["get"])
	}
	if serial.Counts[KindMissing] != 2 {
		t.Fatalf("%d missing, want the 2 deleted", serial.Counts[KindMissing])
	}
}

// Partitions rely on _ids ascending as strings. A form that serves them in
// another order is read again in one walk, and nothing is lost.
func TestScanOutOfOrderFallsBackToOneWalk(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.injectDrift()
	reversed := func(a, b string) bool { return reverse(a) < reverse(b) }
	r.sink.mu.Lock()
	r.sink.scanOrder = reversed
	r.sink.mu.Unlock()
	one, _ := r.verifyCalls()
	if one.Records != 253 {
		t.Fatalf("%d records read, want 253", one.Records)
	}
	splitForms(t, 50)
	split, calls := r.verifyCalls()
	sameReport(t, "out of order", split, one)
	// Each of the 3 partitions reads at most the form's 3 pages, and at
	// least one page is read before the disorder shows; the walk reads 3.
	if calls["get"] != 2 || calls["scan"] < 1+3 || calls["scan"] > 3*3+3 {
		t.Fatalf("calls %v: want 2 starts checked, 1 to 9 pages in partitions, then a walk of 3", calls)
	}
}

func reverse(s string) string {
	b := []byte(s)
	for i, j := 0, len(b)-1; i < j; i, j = i+1, j-1 {
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// storedIDs are the store's data_ids, ascending.
func (r *memRig) storedIDs() []string {
	r.t.Helper()
	ids, err := r.engine(false, nil).knownDataIDs()
	if err != nil {
		r.t.Fatal(err)
	}
	sort.Strings(ids)
	return ids
}

// A record whose key was edited by hand is still the record its
// checkpoint names: it differs, and its new key is unknown.
func TestScanFindsARecordUnderAnotherKey(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	rec := r.sink.recs[7]
	old := rec.key
	rec.key = "handmade|2026-02"
	rec.row[r.sink.keyField] = rec.key
	r.sink.mu.Unlock()
	for _, size := range []int{1 << 30, 50} {
		splitForms(t, size)
		rep, _ := r.verifyCalls()
		wantCounts(t, rep, map[string]int{KindDiffer: 1, KindUnknown: 1})
		for _, f := range rep.Findings {
			switch {
			case f.Kind == KindDiffer && (f.Key != old || len(f.DataIDs) != 1 || f.DataIDs[0] != rec.id || f.row == nil):
				t.Fatalf("differ finding %+v, want %s, %s, with its row", f, old, rec.id)
			case f.Kind == KindUnknown && (f.Key != rec.key || len(f.DataIDs) != 1 || f.DataIDs[0] != rec.id):
				t.Fatalf("unknown finding %+v, want %s, %s", f, rec.key, rec.id)
			}
		}
	}
}

// A form that ignores the cursor fails the scan instead of reading its
// first page forever.
func TestScanStopsWhenTheCursorDoesNotMove(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	r.sink.scanStuck = true
	r.sink.mu.Unlock()
	_, err := r.engine(false, nil).Verify(context.Background(), nil)
	if err == nil || !strings.Contains(err.Error(), "ends with that record again") {
		t.Fatalf("verify: %v, want the stuck cursor named", err)
	}
	if n := r.sink.calls["scan"]; n != 2 {
		t.Fatalf("%d scan calls, want 2", n)
	}
}

// Two checkpoints naming one record (a key edited by hand, then adopted
// under another) are each checked against it: the one whose content it
// holds finds it the same, the other finds it different, neither missing.
func TestScanChecksEveryCheckpointOfARecord(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	ms := memMonth.String()
	ids := make([]string, 0, 2)
	r.cp.mu.Lock()
	for u := range r.cp.recs[ms] {
		ids = append(ids, u)
	}
	sort.Strings(ids)
	first, second := ids[0], ids[1]
	rec := r.cp.recs[ms][second]
	rec.DataID = r.cp.recs[ms][first].DataID
	r.cp.mu.Unlock()
	if err := r.cp.Apply(&store.Write{Records: []store.KeyedRecord{{Month: ms, UserID: second, Record: rec}}}); err != nil {
		t.Fatal(err)
	}
	for _, size := range []int{1 << 30, 50} {
		splitForms(t, size)
		rep, _ := r.verifyCalls()
		wantCounts(t, rep, map[string]int{KindDiffer: 1})
		if f := rep.Findings[0]; f.Key != r.mapper.Key(second, memMonth) || f.DataIDs[0] != rec.DataID {
			t.Fatalf("finding %+v, want %s differing, naming %s", f, second, rec.DataID)
		}
	}
}

// Rebuild splits its scan at the _ids the store still knows, and adopts
// what a single walk adopts.
func TestRebuildInPartitions(t *testing.T) {
	r := newMemRig(t, 250)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.injectDrift()
	rebuild := func() (*RebuildReport, map[string]int) {
		t.Helper()
		r.sink.mu.Lock()
		r.sink.calls["scan"], r.sink.calls["get"] = 0, 0
		r.sink.mu.Unlock()
		rep, err := r.engine(false, nil).Rebuild(context.Background(), nil)
		if err != nil {
			t.Fatal(err)
		}
		r.sink.mu.Lock()
		defer r.sink.mu.Unlock()
		return rep, map[string]int{"scan": r.sink.calls["scan"], "get": r.sink.calls["get"]}
	}
	one, calls := rebuild()
	if calls["get"] != 0 {
		t.Fatalf("one walk: calls %v", calls)
	}
	splitForms(t, 50)
	split, calls := rebuild()
	if calls["get"] != 2 {
		t.Fatalf("in partitions: calls %v, want 2 starts checked", calls)
	}
	if !reflect.DeepEqual(split, one) {
		t.Fatalf("in partitions: %+v\nwant %+v", split, one)
	}
}

// A start deleted after its check, on a form that answers nothing after
// an _id it does not hold, would lose the records of its part: the part
// before meets records past the start without the start, and the form is
// read again in one walk.
func TestScanStartDeletedAfterItsCheck(t *testing.T) {
	splitForms(t, 50)
	for _, get := range []int{1, 2} {
		r := newMemRig(t, 250)
		r.want(r.run(), OutcomeSuccess, ExitOK)
		r.sink.mu.Lock()
		r.sink.emptyAfter, r.sink.dropOnGet = true, get
		r.sink.mu.Unlock()
		split, calls := r.verifyCalls()
		// The deleted record is missing, every other one found.
		if split.Records != 249 || split.Counts[KindMissing] != 1 || len(split.Findings) != 1 {
			t.Fatalf("get %d deletes its start: %d records, %v", get, split.Records, split.Counts)
		}
		if calls["get"] != 2 || calls["scan"] < 1+3 {
			t.Fatalf("get %d deletes its start: calls %v, want 2 starts checked, then a walk of 3 pages after the parts", get, calls)
		}
	}
}

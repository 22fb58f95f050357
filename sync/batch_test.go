package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// want asserts a run's exact outcome.
func (r *memRig) want(s *Summary, outcome string, code int) {
	r.t.Helper()
	if o, c := Verdict(s); o != outcome || c != code {
		r.t.Fatalf("run ended %s (exit %d), want %s (exit %d); err=%v failures=%v", o, c, outcome, code, s.Err, s.Failures)
	}
}

func (r *memRig) calls(create, lookup, update int) {
	r.t.Helper()
	if c, l, u := r.sink.count("create"), r.sink.count("lookup"), r.sink.count("update"); c != create || l != lookup || u != update {
		r.t.Fatalf("calls: create %d, lookup %d, update %d; want %d, %d, %d", c, l, u, create, lookup, update)
	}
}

func (r *memRig) noPending() {
	r.t.Helper()
	if ps, _ := r.cp.Pendings(); len(ps) != 0 {
		r.t.Fatalf("%d batches still pending", len(ps))
	}
	if _, p, _ := r.cp.states(memMonth.String()); p != 0 {
		r.t.Fatalf("%d records still pending", p)
	}
}

func (r *memRig) resetCalls() {
	r.sink.mu.Lock()
	r.sink.calls = map[string]int{}
	r.sink.mu.Unlock()
}

// A clean batch: lookup, save, create, lookup, settle. Two store
// transactions for the batch, one to mark the month in progress and one
// to finish it.
func TestCleanBatchCostsTwoStoreTransactions(t *testing.T) {
	r := newMemRig(t, 40)
	s := r.run()
	r.want(s, OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(1, 2, 0)
	if r.cp.applies != 4 {
		t.Fatalf("%d store transactions, want 4 (mark, pending, commit, month)", r.cp.applies)
	}
	if got := s.Totals().Created; got != 40 {
		t.Fatalf("created %d, want 40", got)
	}
	r.noPending()

	r.resetCalls()
	s = r.run()
	r.want(s, OutcomeSuccess, ExitOK)
	r.calls(0, 0, 0)
	if got := s.Totals().Unchanged; got != 40 {
		t.Fatalf("unchanged %d, want 40", got)
	}
}

// A key that a successful create has not shown yet is deferred, never
// created again at once.
func TestSuccessNotYetVisibleIsDeferred(t *testing.T) {
	r := newMemRig(t, 30)
	r.sink.lag = 1 // the lookup right after the create misses every record
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(1, 3, 0) // plan, confirm (misses), deferred lookup (finds)
	r.noPending()
}

// Some keys visible after a success: they are adopted, and the rest wait
// under the same transaction_id, for lookup only.
func TestSomeVisibleAfterSuccessAreAdoptedTheRestDeferred(t *testing.T) {
	r := newMemRig(t, 30)
	r.sink.lag, r.sink.lagHalf = 1, true
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(1, 3, 0)
	r.noPending()
}

// Reproduced case 1 (and case 2): a lost answer, then a resend answered
// with a record-class code or an unknown code, with a list that lags. The
// batch is never split and never re-sent under a new transaction_id while
// its keys may exist.
func TestLostAnswerThenResendAnsweredWithAnError(t *testing.T) {
	for _, code := range []int{4000, 99999} {
		t.Run(fmt.Sprint(code), func(t *testing.T) {
			r := newMemRig(t, 8)
			r.sink.mode, r.sink.resendCode = txReject, code
			r.sink.lose, r.sink.lag = 1, 1
			r.want(r.run(), OutcomeSuccess, ExitOK)
			r.expectForm(memMonth)
			// create (lost) → lookup misses (lag) → identical resend
			// (answered with an error) → lookup finds them.
			r.calls(2, 3, 0)
			r.noPending()
		})
	}
}

// transaction_id ignored: a lost answer is settled by the lookup alone.
func TestLostAnswerWithTransactionIDIgnored(t *testing.T) {
	r := newMemRig(t, 8)
	r.sink.mode, r.sink.lose = txIgnore, 1
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(1, 2, 0)
}

// transaction_id de-duplicates while the list lags: the identical resend
// creates nothing.
func TestLostAnswerWithLagIsResentIdentically(t *testing.T) {
	r := newMemRig(t, 8)
	r.sink.lose, r.sink.lag = 1, 2
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(2, 4, 0) // plan, deferred (miss), confirm after resend (miss), deferred (finds)
	if len(r.sink.txs) != 1 {
		t.Fatalf("%d transaction ids used, want 1", len(r.sink.txs))
	}
}

// A resend that overwrites the earlier batch still leaves one record per
// key.
func TestResendThatOverwrites(t *testing.T) {
	r := newMemRig(t, 8)
	r.sink.mode, r.sink.lose, r.sink.lag = txOverwrite, 1, 1
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.noPending()
}

// A short success_count is unknown: the form decides, and only the keys
// it does not hold go into a new batch with a new transaction_id.
func TestShortSuccessCountRebatchesOnlyTheMissing(t *testing.T) {
	r := newMemRig(t, 10)
	r.sink.partial = 1
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(2, 3, 0) // plan, deferred (finds half), confirm of the new batch
	if len(r.sink.txs) != 2 {
		t.Fatalf("%d transaction ids used, want 2", len(r.sink.txs))
	}
	r.noPending()
}

// A rejected batch is split only after a lookup shows none of its keys,
// down to the one bad record, which fails.
func TestRejectedBatchIsSplitAfterTheLookup(t *testing.T) {
	r := newMemRig(t, 8)
	bad := r.mapper.Key(r.src.users[7], memMonth)
	r.sink.rejectKey[bad] = true
	s := r.run()
	r.want(s, OutcomePartial, ExitPartial)
	// 8 → 4 ok + 4 bad → 2 ok + 2 bad → 1 ok + 1 bad.
	if c := r.sink.count("create"); c != 7 {
		t.Fatalf("%d batch_create calls, want 7", c)
	}
	per := r.sink.perKey()
	if per[bad] != 0 || len(per) != 7 {
		t.Fatalf("form holds %v", per)
	}
	for k, n := range per {
		if n != 1 {
			t.Fatalf("key %s has %d records", k, n)
		}
	}
	if s.Totals().Failed != 1 || s.Totals().Created != 7 {
		t.Fatalf("failed %d created %d", s.Totals().Failed, s.Totals().Created)
	}
	if _, _, f := r.cp.states(memMonth.String()); f != 1 {
		t.Fatalf("%d failed records in the store, want 1", f)
	}
	if ps, _ := r.cp.Pendings(); len(ps) != 0 {
		t.Fatalf("%d pending batches left", len(ps))
	}
}

// A lookup that fails after its retries leaves the batch pending: the
// month is partial and the next run settles it without a duplicate.
func TestFailedLookupLeavesTheBatchPending(t *testing.T) {
	r := newMemRig(t, 8)
	r.sink.lose, r.sink.failAfter = 1, 1 // the plan lookup works; the deferred one fails
	s := r.run()
	r.want(s, OutcomePartial, ExitPartial)
	if ps, _ := r.cp.Pendings(); len(ps) != 1 {
		t.Fatalf("%d pending batches, want 1", len(ps))
	}
	if s.Totals().Pending != 8 {
		t.Fatalf("pending %d, want 8", s.Totals().Pending)
	}
	r.sink.failAfter = 0
	r.advance(time.Minute)
	r.resetCalls()
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	r.calls(0, 1, 0) // the inherited batch's lookup adopts every key
	r.noPending()
}

// savePending leaves a batch as a run that died after saving it would.
func (r *memRig) savePending(n int, sentAt time.Time, send bool) store.Pending {
	r.t.Helper()
	var items []item
	var data []json.RawMessage
	for _, u := range r.src.users[:n] {
		out, err := r.mapper.Map(mapping.Input{UserID: u, Month: memMonth, Report: jsonShaped(r.company.Report(u, memMonth))})
		if err != nil {
			r.t.Fatal(err)
		}
		items = append(items, item{userID: u, storeID: strings.ToLower(u), key: r.mapper.Key(u, memMonth), data: out.Data, hash: out.Hash, hasData: true})
		data = append(data, out.Data)
	}
	p := newPending(memMonth, items, sentAt)
	if err := r.cp.Apply(&store.Write{PutPending: []store.Pending{p}, Records: pendingRecords(memMonth.String(), items)}); err != nil {
		r.t.Fatal(err)
	}
	if send {
		if _, _, err := r.sink.Create(context.Background(), p.TxID, data); err != nil {
			r.t.Fatal(err)
		}
	}
	r.cp.applies = 0
	r.resetCalls()
	return p
}

// After a crash: a batch saved but never sent is resent identically
// under its transaction_id; one that was sent is adopted.
func TestInheritedBatchIsResolvedByTheSameRule(t *testing.T) {
	t.Run("never sent", func(t *testing.T) {
		r := newMemRig(t, 6)
		p := r.savePending(6, r.clock().Add(-5*time.Minute), false)
		r.want(r.run(), OutcomeSuccess, ExitOK)
		r.expectForm(memMonth)
		if _, ok := r.sink.txs[p.TxID]; !ok || len(r.sink.txs) != 1 {
			t.Fatalf("the batch was not resent under its own transaction_id: %v", r.sink.txs)
		}
		r.noPending()
	})
	t.Run("sent", func(t *testing.T) {
		r := newMemRig(t, 6)
		r.savePending(6, r.clock().Add(-5*time.Minute), true)
		r.want(r.run(), OutcomeSuccess, ExitOK)
		r.expectForm(memMonth)
		r.calls(0, 1, 0)
		r.noPending()
	})
	t.Run("past the window", func(t *testing.T) {
		r := newMemRig(t, 6)
		p := r.savePending(6, r.clock().Add(-2*time.Hour), false)
		r.want(r.run(), OutcomeSuccess, ExitOK)
		r.expectForm(memMonth)
		if _, ok := r.sink.txs[p.TxID]; ok || len(r.sink.txs) != 1 {
			t.Fatalf("a batch past the window was resent under its old transaction_id")
		}
	})
	t.Run("changed data", func(t *testing.T) {
		r := newMemRig(t, 6)
		p := r.savePending(6, r.clock().Add(-5*time.Minute), false)
		r.company.Bump(r.src.users[0], memMonth)
		r.want(r.run(), OutcomeSuccess, ExitOK)
		r.expectForm(memMonth)
		if _, ok := r.sink.txs[p.TxID]; ok {
			t.Fatalf("a batch whose content changed was resent under its transaction_id")
		}
	})
}

// Reproduced case 5: a record that fails while a pending batch of an
// older month is resolved is counted in that month, and the run is
// partial.
func TestFailureOutsideTheRunsMonthsIsCounted(t *testing.T) {
	r := newMemRig(t, 4)
	r.savePending(4, r.clock().Add(-5*time.Minute), false)
	bad := r.mapper.Key(r.src.users[0], memMonth)
	r.sink.rejectKey[bad] = true
	s := r.run(month.MustParse("2026-03"))
	r.want(s, OutcomePartial, ExitPartial)
	var feb *MonthSummary
	for _, ms := range s.Months {
		if ms.Month == memMonth.String() {
			feb = ms
		}
	}
	if feb == nil || feb.Failed != 1 {
		t.Fatalf("the failure is not counted in %s: %+v", memMonth, s.Months)
	}
	if mi, ok, _ := r.cp.Month(memMonth.String()); !ok || !mi.Dirty {
		t.Fatalf("month %s not marked partial: %+v", memMonth, mi)
	}
}

// A user rejected in one month is still asked for in the others.
func TestUserRejectedInOneMonthIsTriedInTheOthers(t *testing.T) {
	r := newMemRig(t, 5)
	jan := month.MustParse("2026-01")
	u := r.src.users[2]
	r.src.rejects[jan.String()] = map[string]bool{u: true}
	s := r.run(jan, memMonth)
	r.want(s, OutcomeSuccess, ExitOK)
	if len(s.Skipped) != 1 || s.Skipped[0].UserID != u || s.Skipped[0].Month != jan.String() {
		t.Fatalf("skipped: %+v", s.Skipped)
	}
	if r.sink.perKey()[r.mapper.Key(u, memMonth)] != 1 {
		t.Fatalf("the user rejected in %s was not synced in %s", jan, memMonth)
	}
}

// A lost store on unchanged data costs lookups only: records are adopted
// by comparing their content. A record edited by hand is updated.
func TestAdoptionComparesContent(t *testing.T) {
	r := newMemRig(t, 20)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	r.sink.recs[3].row["work_days"] = json.Number("999")
	r.sink.mu.Unlock()
	r.cp = newMemCheckpoints() // the store is lost
	r.resetCalls()
	s := r.run()
	r.want(s, OutcomeSuccess, ExitOK)
	r.calls(0, 1, 1)
	r.expectForm(memMonth)
	if s.Totals().Unchanged != 19 || s.Totals().Updated != 1 {
		t.Fatalf("unchanged %d updated %d", s.Totals().Unchanged, s.Totals().Updated)
	}
}

// Lookups see every copy: a fresh store adopting duplicated keys counts
// each extra copy, and updates only the oldest.
func TestLookupsSeeEveryCopy(t *testing.T) {
	r := newMemRig(t, 10)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	for _, rec := range append([]*memRecord(nil), r.sink.recs[:3]...) {
		b, _ := json.Marshal(map[string]any{r.sink.keyField: map[string]any{"value": rec.key}})
		r.sink.insert("alice", b, 0)
	}
	r.sink.mu.Unlock()
	r.cp = newMemCheckpoints()
	s := r.run()
	r.want(s, OutcomeSuccess, ExitOK)
	if d := s.Totals().Duplicates; d != 3 {
		t.Fatalf("duplicates %d, want 3", d)
	}
	if r.sink.count("delete") != 0 {
		t.Fatal("a copy made by hand was deleted")
	}
}

// Two writers on one form converge: a newer copy that cannot hold
// anyone's work is deleted, with its content kept in the run history.
func TestTwoWritersConverge(t *testing.T) {
	a := newMemRig(t, 12)
	a.want(a.run(), OutcomeSuccess, ExitOK)
	// Writer b shares the form but not the store; its planning lookup
	// does not see a's records yet, its lookup after the create does.
	b := &memRig{t: t, company: a.company, src: a.src, sink: a.sink, cp: newMemCheckpoints(), mapper: a.mapper, now: a.now}
	a.sink.mu.Lock()
	for _, rec := range a.sink.recs {
		rec.hidden = 1
	}
	// One of a's records has a value in a field the mapping does not
	// write: that copy holds someone's work and is never deleted.
	a.sink.recs[0].row["note"] = "checked by HR"
	a.sink.mu.Unlock()
	s := b.run()
	b.want(s, OutcomeSuccess, ExitOK)
	// b keeps a's (older) records; its own newer copies go, except where
	// the newer copy is b's and a's has work in it... b's copy of key 0
	// is newer and empty, so it goes too.
	if n := len(s.Deleted); n != 12 {
		t.Fatalf("%d copies deleted, want 12", n)
	}
	for _, d := range s.Deleted {
		if d.Key == "" || d.DataID == "" || d.Kept == "" || len(d.Content) == 0 || d.DataID <= d.Kept {
			t.Fatalf("deleted record kept badly in history: %+v", d)
		}
	}
	b.expectForm(memMonth)
	if last := b.cp.runs[len(b.cp.runs)-1]; len(last.Deleted) != 12 {
		t.Fatalf("history keeps %d deletes, want 12", len(last.Deleted))
	}
	// Each runs again: zero writes.
	a.resetCalls()
	a.want(a.run(), OutcomeSuccess, ExitOK)
	b.want(b.run(), OutcomeSuccess, ExitOK)
	a.calls(0, 0, 0)
}

// twoWriters gives writer b the form of writer a, whose records b's
// planning lookup does not see yet (they are newer than b's planning),
// while the lookup after b's create does.
func twoWriters(t *testing.T, users int) (a, b *memRig) {
	a = newMemRig(t, users)
	a.want(a.run(), OutcomeSuccess, ExitOK)
	b = &memRig{t: t, company: a.company, src: a.src, sink: a.sink, cp: newMemCheckpoints(), mapper: a.mapper, now: a.now}
	a.sink.mu.Lock()
	for _, rec := range a.sink.recs {
		rec.hidden = 1
	}
	a.sink.mu.Unlock()
	return a, b
}

// A newer copy that may hold someone's work stays, and is reported as a
// duplicate: one with a value in an unmapped field, or one another
// creator made.
func TestCopiesThatMayHoldWorkAreKept(t *testing.T) {
	t.Run("unmapped value", func(t *testing.T) {
		_, b := twoWriters(t, 4)
		b.sink.extraValue = "typed by hand"
		s := b.run()
		b.want(s, OutcomeSuccess, ExitOK)
		if len(s.Deleted) != 0 || s.Totals().Duplicates != 4 {
			t.Fatalf("deleted %d, duplicates %d; want 0 and 4", len(s.Deleted), s.Totals().Duplicates)
		}
	})
	t.Run("another creator", func(t *testing.T) {
		_, b := twoWriters(t, 4)
		// Someone types a copy of each key right after b's create: b's own
		// copies go, the typed ones stay.
		b.sink.afterCreate = func() {
			b.sink.afterCreate = nil
			for _, u := range b.src.users {
				raw, _ := json.Marshal(map[string]any{b.sink.keyField: map[string]any{"value": b.mapper.Key(u, memMonth)}})
				b.sink.insert("alice", raw, 0)
			}
		}
		s := b.run()
		b.want(s, OutcomeSuccess, ExitOK)
		if len(s.Deleted) != 4 || s.Totals().Duplicates != 4 {
			t.Fatalf("deleted %d, duplicates %d; want 4 and 4", len(s.Deleted), s.Totals().Duplicates)
		}
		for _, rec := range b.sink.recs {
			if rec.creator != "alice" && rec.creator != "api" {
				t.Fatalf("unexpected creator %q", rec.creator)
			}
		}
	})
	t.Run("older than an hour", func(t *testing.T) {
		_, b := twoWriters(t, 4)
		// b's clock runs two hours ahead of the form's, so every copy
		// looks over an hour old: none may be deleted.
		b.now = b.now.Add(2 * time.Hour)
		s := b.run()
		b.want(s, OutcomeSuccess, ExitOK)
		if len(s.Deleted) != 0 || s.Totals().Duplicates != 4 {
			t.Fatalf("deleted %d, duplicates %d; want 0 and 4", len(s.Deleted), s.Totals().Duplicates)
		}
	})
}

// Identity is case-insensitive: a change of spelling finds the same record.
func TestUserIDCaseDoesNotMakeANewRecord(t *testing.T) {
	r := newMemRig(t, 6)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.src.upper = true
	r.resetCalls()
	s := r.run()
	r.want(s, OutcomeSuccess, ExitOK)
	if r.sink.count("create") != 0 {
		t.Fatal("a change of spelling created records")
	}
	if len(r.sink.perKey()) != 6 {
		t.Fatalf("form: %v", r.sink.perKey())
	}
}

// A dry run looks pending keys up and plans, and writes nothing.
func TestDryRunPlansOnly(t *testing.T) {
	r := newMemRig(t, 6)
	r.savePending(3, r.clock().Add(-5*time.Minute), true)
	var lines []PlanLine
	s := r.runWithPlan(Request{Command: "test", DryRun: true}, func(l PlanLine) { lines = append(lines, l) })
	if s.Err != nil {
		t.Fatal(s.Err)
	}
	r.calls(0, 2, 0) // the pending batch's lookup, the plan's lookup
	if got := s.Totals().PlanCreate; got != 3 {
		t.Fatalf("plan create %d, want 3", got)
	}
	adopt := 0
	for _, l := range lines {
		if l.Action == "pending: would adopt" {
			adopt++
		}
	}
	if adopt != 3 {
		t.Fatalf("%d pending plan lines, want 3: %+v", adopt, lines)
	}
	if r.cp.applies != 0 || len(r.cp.runs) != 0 || len(r.sink.txs) != 1 {
		t.Fatal("a dry run wrote")
	}
}

// A record deleted by hand (4001 on update) is looked up again and, if
// really gone, created once.
func TestRecordDeletedByHandIsCreatedAgain(t *testing.T) {
	r := newMemRig(t, 5)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	r.sink.mu.Lock()
	gone := r.sink.recs[1]
	r.sink.remove([]string{gone.id})
	r.sink.mu.Unlock()
	r.resetCalls()
	s := r.runWith(Request{Command: "test", Force: true})
	r.want(s, OutcomeSuccess, ExitOK)
	r.expectForm(memMonth)
	if c := r.sink.count("create"); c != 1 {
		t.Fatalf("%d creates, want 1", c)
	}
}

func TestVerdict(t *testing.T) {
	fatal := &apierr.Error{Class: apierr.Fatal}
	for _, tc := range []struct {
		s       Summary
		outcome string
		code    int
	}{
		{Summary{}, OutcomeSuccess, ExitOK},
		{Summary{Months: []*MonthSummary{{Failed: 1}}}, OutcomePartial, ExitPartial},
		{Summary{Months: []*MonthSummary{{Pending: 1}}}, OutcomePartial, ExitPartial},
		{Summary{Err: fmt.Errorf("x: %w", fatal)}, OutcomeFailed, ExitFatal},
		{Summary{Err: fmt.Errorf("save checkpoints: %w", store.ErrCorrupt)}, OutcomeFailed, ExitUsage},
		{Summary{Err: errors.New("disk full")}, OutcomeFailed, ExitPartial},
		{Summary{Interrupted: true, Err: fatal}, OutcomeInterrupted, ExitInterrupted},
	} {
		if o, c := Verdict(&tc.s); o != tc.outcome || c != tc.code {
			t.Errorf("%+v: %s %d, want %s %d", tc.s, o, c, tc.outcome, tc.code)
		}
	}
}

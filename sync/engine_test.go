package sync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/config"
	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/jiandaoyun"
	"checkin-sync/mapping"
	"checkin-sync/store"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

var (
	feb   = month.MustParse("2026-02")
	today = month.Date{Year: 2026, Mon: 3, Day: 15}
)

// rig runs the engine in-process against the fakes, with a store in a
// temporary directory and a clock the test controls.
type rig struct {
	t       *testing.T
	srv     *fakeapi.Server
	company *fakeapi.Company
	st      *store.Store
	wc      *wecom.Client
	jc      *jiandaoyun.Client
	mapper  *mapping.Mapper
	now     time.Time
}

func newRig(t *testing.T, users int) *rig {
	t.Helper()
	company := fakeapi.NewCompany(3, users)
	srv := fakeapi.New(fakeapi.Options{Company: company, MonthDataPerMinute: -1,
		JDY: fakeapi.JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1}})
	base, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	cr := srv.Credentials()
	pol := retry.Policy{Base: time.Millisecond, MaxAttempts: 4, BlockWait: 5 * time.Millisecond}
	wc, err := wecom.New(wecom.Config{BaseURL: base, CorpID: cr.CorpID, Secret: cr.Secret, RatePerMinute: 100000, ListPerMinute: 100000, Retry: pol})
	if err != nil {
		t.Fatal(err)
	}
	fast := jiandaoyun.Rates{Create: 1000, BatchCreate: 1000, Update: 1000, List: 1000, Global: 1000}
	jc, err := jiandaoyun.New(jiandaoyun.Config{BaseURL: base, APIKey: cr.APIKey, AppID: cr.AppID, EntryID: cr.EntryID, Rates: fast, Retry: pol})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(t.TempDir(), "state.db"), store.Options{Command: "test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &rig{t: t, srv: srv, company: company, st: st, wc: wc, jc: jc, mapper: defaultMapper(t), now: time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC)}
}

func defaultMapper(t *testing.T) *mapping.Mapper {
	t.Helper()
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	if err := writeFile(path, config.Template()); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, func(string) (string, bool) { return "x", true })
	if err != nil {
		t.Fatal(err)
	}
	compiled, err := mapping.Compile(cfg.Mapping)
	if err != nil {
		t.Fatal(err)
	}
	var ws []mapping.Widget
	for _, w := range fakeapi.DefaultWidgets() {
		ws = append(ws, mapping.Widget{Name: w.Name, WidgetName: w.WidgetName, Label: w.Label, Type: w.Type})
	}
	m, err := compiled.Bind(ws)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (r *rig) run(dryRun bool, months ...month.Month) *sync.Summary {
	r.t.Helper()
	var cp sync.Checkpoints = r.st
	var sink sync.Sink = r.jc
	if dryRun {
		cp, sink = sync.DryRunCheckpoints{Store: r.st}, sync.DryRunSink{Sink: r.jc}
	}
	eng := sync.New(r.wc, sink, cp, r.mapper, sync.Options{
		Selection:   wecom.Selection{Departments: []int{1}},
		Concurrency: 4,
		Retry:       retry.Policy{Base: time.Millisecond, MaxAttempts: 4},
		Log:         zerolog.Nop(),
		Now:         func() time.Time { return r.now },
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return eng.Run(ctx, ctx, sync.Request{Command: "test", Months: months, Today: today, DryRun: dryRun})
}

// mapped returns the payloads of the first n users for a month, in
// userid order.
func (r *rig) mapped(m month.Month, n int) (ids []string, data []json.RawMessage, hashes []uint64) {
	r.t.Helper()
	for _, u := range r.company.Users()[:n] {
		res, err := r.mapper.Map(mapping.Input{UserID: u.UserID, Month: m, Report: jsonShaped(r.t, r.company.Report(u.UserID, m))})
		if err != nil {
			r.t.Fatal(err)
		}
		ids = append(ids, u.UserID)
		data = append(data, res.Data)
		hashes = append(hashes, res.Hash)
	}
	return ids, data, hashes
}

// leavePending stores a pending batch as a crashed run would have left it.
func (r *rig) leavePending(txID string, m month.Month, ids []string, hashes []uint64, sentAt time.Time) {
	r.t.Helper()
	w := &store.Write{PutPending: []store.Pending{{TxID: txID, Month: m.String(), UserIDs: ids, Hashes: hashes, FirstSentAt: sentAt}}}
	for i, u := range ids {
		w.Records = append(w.Records, store.KeyedRecord{Month: m.String(), UserID: u, Record: store.Record{Hash: hashes[i], State: store.StatePending}})
	}
	if err := r.st.Apply(w); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rig) expect(records int) {
	r.t.Helper()
	if n := len(r.srv.Records()); n != records {
		r.t.Errorf("form holds %d records, want %d", n, records)
	}
	if d := r.srv.Duplicates("sync_key"); len(d) != 0 {
		r.t.Errorf("duplicates: %v", d)
	}
	ps, err := r.st.Pendings()
	if err != nil || len(ps) != 0 {
		r.t.Errorf("pending batches left: %v %v", ps, err)
	}
}

func (r *rig) sendDirect(txID string, data []json.RawMessage) {
	r.t.Helper()
	if _, err := r.jc.BatchCreate(context.Background(), txID, data); err != nil {
		r.t.Fatal(err)
	}
}

const tx1 = "0b6c7d9e-5f41-4a3e-9c11-2a7e4b1d8f00"

func TestPendingBatchReplayedWithinWindow(t *testing.T) {
	r := newRig(t, 10)
	ids, data, hashes := r.mapped(feb, 10)
	r.sendDirect(tx1, data) // sent, then the answer was lost and the process died
	r.leavePending(tx1, feb, ids, hashes, r.now.Add(-10*time.Minute))

	sum := r.run(false, feb)
	if sum.Err != nil {
		t.Fatal(sum.Err)
	}
	if n := r.srv.Calls("data/batch_create"); n != 2 {
		t.Errorf("batch_create calls = %d, want 2 (the lost send and its replay)", n)
	}
	r.expect(10)
	if tot := sum.Totals(); tot.Created != 10 || tot.Updated != 0 {
		t.Errorf("totals %+v; want the 10 replayed records counted as created", tot)
	}
}

func TestPendingBatchPastWindowResolvedByKey(t *testing.T) {
	r := newRig(t, 10)
	ids, data, hashes := r.mapped(feb, 10)
	r.sendDirect(tx1, data)
	r.leavePending(tx1, feb, ids, hashes, r.now.Add(-50*time.Minute))

	if sum := r.run(false, feb); sum.Err != nil {
		t.Fatal(sum.Err)
	}
	if n := r.srv.Calls("data/batch_create"); n != 1 {
		t.Errorf("batch_create calls = %d, want 1: past the window a batch is resolved by key, never replayed", n)
	}
	r.expect(10)
	// Adopted with the hash that was sent, the records are unchanged now.
	if _, u := r.srv.Calls("data/batch_create"), r.srv.Calls("data/update"); u != 0 {
		t.Errorf("%d updates for records that hold the sent content", u)
	}
}

func TestPendingBatchNeverSentIsCreatedOnce(t *testing.T) {
	r := newRig(t, 10)
	ids, _, hashes := r.mapped(feb, 10)
	r.leavePending(tx1, feb, ids, hashes, r.now.Add(-2*time.Hour))
	if sum := r.run(false, feb); sum.Err != nil {
		t.Fatal(sum.Err)
	}
	r.expect(10)
}

func TestPendingBatchWithChangedDataIsNotReplayed(t *testing.T) {
	r := newRig(t, 10)
	ids, data, hashes := r.mapped(feb, 10)
	r.sendDirect(tx1, data)
	r.leavePending(tx1, feb, ids, hashes, r.now.Add(-5*time.Minute))
	for _, u := range ids[:3] {
		r.company.Bump(u, feb)
	}
	sum := r.run(false, feb)
	if sum.Err != nil {
		t.Fatal(sum.Err)
	}
	if n := r.srv.Calls("data/batch_create"); n != 1 {
		t.Errorf("batch_create calls = %d, want 1: changed data must not be replayed under the old transaction_id", n)
	}
	if n := r.srv.Calls("data/update"); n != 3 {
		t.Errorf("updates = %d, want 3 (the changed users)", n)
	}
	r.expect(10)
}

func TestRejectedBatchIsSplitUntilTheBadRecordIsIsolated(t *testing.T) {
	r := newRig(t, 4)
	// The first three sends are rejected: the batch of 4, its first half,
	// and the first record of that half, which is then marked failed.
	r.srv.FailNext("data/batch_create", 4000, 3)
	sum := r.run(false, feb)
	if sum.Err != nil {
		t.Fatal(sum.Err)
	}
	tot := sum.Totals()
	if tot.Failed != 1 || tot.Created != 3 {
		t.Fatalf("failed %d, created %d; want 1 and 3", tot.Failed, tot.Created)
	}
	if sum.Outcome() != "partial" {
		t.Errorf("outcome %q, want partial", sum.Outcome())
	}
	r.expect(3)
	info, _, _ := r.st.Month(feb.String())
	if info.Failed != 1 || info.Watermark != "" || !info.Dirty {
		t.Errorf("month after a failed record: %+v", info)
	}
	// The next run retries the failed record and completes the month.
	if sum := r.run(false, feb); sum.Err != nil || sum.Totals().Failed != 0 {
		t.Fatalf("rerun: %v %+v", sum.Err, sum.Totals())
	}
	r.expect(4)
	if info, _, _ := r.st.Month(feb.String()); info.Watermark != "2026-02-28" || info.Dirty {
		t.Errorf("month after the rerun: %+v", info)
	}
}

func TestTransactionIDConflictResolvesByKey(t *testing.T) {
	r := newRig(t, 12)
	r.srv.FailNext("data/batch_create", 17026, 1)
	if sum := r.run(false, feb); sum.Err != nil {
		t.Fatal(sum.Err)
	}
	r.expect(12)
}

func TestLostAnswerIsReplayedNotDuplicated(t *testing.T) {
	r := newRig(t, 30)
	r.srv.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"data/batch_create"}})
	sum := r.run(false, feb)
	if sum.Err != nil {
		t.Fatal(sum.Err)
	}
	// Every answer is lost: the batch is replayed under its transaction_id,
	// then resolved by key, and the records are adopted, not re-created.
	r.srv.SetFaults(fakeapi.Faults{})
	r.expect(30)
	if tot := sum.Totals(); tot.Created != 30 || tot.Failed != 0 {
		t.Errorf("totals %+v", tot)
	}
}

func TestTenRejectionsInARowStopTheRun(t *testing.T) {
	r := newRig(t, 40)
	r.srv.FailNext("data/batch_create", 4000, 1000)
	sum := r.run(false, feb)
	if sum.Err == nil || !strings.Contains(sum.Err.Error(), "in a row") {
		t.Fatalf("want a fatal error after ten rejections, got %v", sum.Err)
	}
	if len(r.srv.Records()) != 0 {
		t.Error("records were created")
	}
}

func TestDryRunLooksPendingUpButNeverReplays(t *testing.T) {
	r := newRig(t, 10)
	ids, data, hashes := r.mapped(feb, 10)
	r.sendDirect(tx1, data[:5])
	r.leavePending(tx1, feb, ids[:5], hashes[:5], r.now.Add(-time.Minute))
	var plan []sync.PlanLine
	eng := sync.New(r.wc, sync.DryRunSink{Sink: r.jc}, sync.DryRunCheckpoints{Store: r.st}, r.mapper, sync.Options{
		Selection: wecom.Selection{Departments: []int{1}}, Log: zerolog.Nop(),
		Now:    func() time.Time { return r.now },
		OnPlan: func(l sync.PlanLine) { plan = append(plan, l) },
	})
	ctx := context.Background()
	sum := eng.Run(ctx, ctx, sync.Request{Months: []month.Month{feb}, Today: today, DryRun: true})
	if sum.Err != nil {
		t.Fatal(sum.Err)
	}
	if n := r.srv.Calls("data/batch_create"); n != 1 {
		t.Errorf("dry run sent batch_create (%d calls)", n)
	}
	adopt := 0
	for _, l := range plan {
		if l.Action == "pending: would adopt" {
			adopt++
		}
	}
	if adopt != 5 {
		t.Errorf("plan shows %d pending records to adopt, want 5: %v", adopt, plan)
	}
	if tot := sum.Totals(); tot.PlanCreate != 5 || tot.PlanUpdate != 5 {
		t.Errorf("plan create %d update %d; want 5 and 5", tot.PlanCreate, tot.PlanUpdate)
	}
	if ps, _ := r.st.Pendings(); len(ps) != 1 {
		t.Errorf("dry run changed the pending batches: %v", ps)
	}
}

func writeFile(path string, b []byte) error { return os.WriteFile(path, b, 0o600) }

// jsonShaped gives a report the shape the WeCom client hands over: decoded
// from JSON with numbers as json.Number.
func jsonShaped(t *testing.T, rep map[string]any) map[string]any {
	t.Helper()
	b, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var out map[string]any
	if err := dec.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

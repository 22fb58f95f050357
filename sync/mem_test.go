package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// The in-memory Source, Sink and Checkpoints below let every state of the
// write path be tested without HTTP. The sink is written from the API
// reference and can go either way on each behaviour it leaves open.

// memSource serves a fake company's reports.
type memSource struct {
	company *fakeapi.Company
	users   []string
	rejects map[string]map[string]bool // month -> userid -> rejected as unknown
	upper   bool                       // list and report every userid in upper case
	// listGate, when set, holds the listing after its first group until
	// it is closed.
	listGate chan struct{}
	fetched  map[string]int // month|userid -> times asked for
	mu       stdsync.Mutex
	calls    int
}

func (s *memSource) spell(u string) string {
	if s.upper {
		return strings.ToUpper(u)
	}
	return u
}

// Users lists the users in groups of 37, as departments would, the first
// group again at the end (users in two departments). With listGate set, it
// waits once a first batch of users is known, until the gate opens.
func (s *memSource) Users(ctx context.Context, found func([]string)) error {
	out := make([]string, len(s.users))
	for i, u := range s.users {
		out[i] = s.spell(u)
	}
	for i := 0; i < len(out); i += 37 {
		found(out[i:min(i+37, len(out))])
		if i < fetchBatch && i+37 >= fetchBatch && s.listGate != nil {
			select {
			case <-s.listGate:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
	if len(out) > 0 {
		found(out[:min(37, len(out))])
	}
	return nil
}

func (s *memSource) MonthData(_ context.Context, start, _ month.Date, userids []string) (Fetched, error) {
	s.mu.Lock()
	s.calls++
	s.mu.Unlock()
	m := start.Month()
	s.mu.Lock()
	if s.fetched == nil {
		s.fetched = map[string]int{}
	}
	for _, u := range userids {
		s.fetched[m.String()+"|"+strings.ToLower(u)]++
	}
	s.mu.Unlock()
	var out Fetched
	byLower := map[string]string{}
	for _, u := range s.users {
		byLower[strings.ToLower(u)] = u
	}
	for _, asked := range userids {
		u := byLower[strings.ToLower(asked)]
		if s.rejects[m.String()][u] {
			out.Skipped = append(out.Skipped, SkippedUser{UserID: u, Reason: "unknown userid"})
			continue
		}
		rep := s.company.Report(u, m)
		if rep == nil {
			out.Missing = append(out.Missing, asked)
			continue
		}
		out.Reports = append(out.Reports, Report{UserID: s.spell(u), Report: jsonShaped(rep)})
	}
	return out, nil
}

func (s *memSource) Stats() map[string]retry.EndpointStats { return nil }

func jsonShaped(v map[string]any) map[string]any {
	b, _ := json.Marshal(v)
	d := json.NewDecoder(bytes.NewReader(b))
	d.UseNumber()
	var out map[string]any
	_ = d.Decode(&out)
	return out
}

// Transaction-id behaviours of the sink, as the reference leaves them open.
type txMode int

const (
	txDedupe    txMode = iota // a resend within the window creates nothing
	txIgnore                  // every call creates
	txOverwrite               // a resend replaces the earlier batch's records
	txReject                  // a resend is answered with an error
)

type memRecord struct {
	id      string
	key     string
	row     map[string]any
	creator string
	created time.Time
	hidden  int // lookups that still miss it (list lag)
}

// memSink is an in-memory Jiandaoyun form.
type memSink struct {
	keyField string
	now      func() time.Time

	mu          stdsync.Mutex
	recs        []*memRecord
	next        int
	txs         map[string][]string
	mode        txMode
	resendCode  int
	lag         int                    // each new record is hidden from this many lookups
	lagHalf     bool                   // only every other new record lags
	lose        int                    // creates that commit, then lose their answer
	rejectKey   map[string]bool        // a batch holding one of these keys is rejected (4000)
	partial     int                    // the next create writes only its first half and answers a short count
	failLookup  int                    // lookups that fail with a retryable error
	failAfter   int                    // when > 0, every lookup after this many fails
	failScan    int                    // when > 0, the scan call of this number fails
	badPage     int                    // when > 0, the page of this scan call does not decode
	scanOrder   func(a, b string) bool // the order Scan serves _ids in; nil: ascending strings
	scanStuck   bool                   // Scan ignores its cursor and serves the first page again
	emptyAfter  bool                   // Scan after an _id the form does not hold answers no record
	dropOnGet   int                    // when > 0, the get of this number deletes its record after answering
	extraValue  string                 // new records get this value in an unmapped field
	afterCreate func()                 // runs, under the lock, after each create writes
	calls       map[string]int
	updates     []json.RawMessage // every update's payload
	sent        [][]string        // the keys of every create call, in the order sent
}

func newMemSink(keyField string, now func() time.Time) *memSink {
	return &memSink{keyField: keyField, now: now, txs: map[string][]string{}, rejectKey: map[string]bool{}, calls: map[string]int{}}
}

var errLost = &apierr.Error{Service: "jiandaoyun", Endpoint: "data/batch_create", Class: apierr.Unknown, Msg: "connection reset"}

func recordErr(code int) error {
	return &apierr.Error{Service: "jiandaoyun", Endpoint: "data/batch_create", Code: code, Class: apierr.Record, Msg: "rejected"}
}

func (s *memSink) Lookup(_ context.Context, keys []string) ([]FormRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["lookup"]++
	if s.failLookup > 0 || s.failAfter > 0 && s.calls["lookup"] > s.failAfter {
		if s.failLookup > 0 {
			s.failLookup--
		}
		return nil, &apierr.Error{Service: "jiandaoyun", Endpoint: "data/list", Class: apierr.Retry, Msg: "busy"}
	}
	want := map[string]bool{}
	for _, k := range keys {
		want[k] = true
	}
	var out []FormRecord
	for _, r := range s.recs {
		if !want[r.key] {
			continue
		}
		if r.hidden > 0 {
			r.hidden--
			continue
		}
		out = append(out, FormRecord{DataID: r.id, Key: r.key, Row: r.row, Creator: r.creator, Created: r.created})
	}
	return out, nil
}

// LookupCreated returns every copy, as Lookup does: the form is in
// memory, with no pages to save.
func (s *memSink) LookupCreated(ctx context.Context, keys []string, _ []string) ([]FormRecord, error) {
	return s.Lookup(ctx, keys)
}

func (s *memSink) insert(creator string, data json.RawMessage, hidden int) string {
	s.next++
	id := fmt.Sprintf("%024x", s.next)
	row := flatRow(data)
	row["_id"] = id
	key, _ := row[s.keyField].(string)
	s.recs = append(s.recs, &memRecord{id: id, key: key, row: row, creator: creator, created: s.now(), hidden: hidden})
	return id
}

// flatRow turns a write payload into the flat read shape: values
// unwrapped, and subform rows flat, each with an _id of its own.
func flatRow(data json.RawMessage) map[string]any {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var w map[string]map[string]any
	_ = d.Decode(&w)
	row := map[string]any{}
	for k, v := range w {
		row[k] = flatValue(v["value"])
	}
	return row
}

var rowIDs atomic.Int64

func flatValue(v any) any {
	rows, ok := v.([]any)
	if !ok {
		return v
	}
	out := make([]any, len(rows))
	for i, e := range rows {
		cells, ok := e.(map[string]any)
		if !ok {
			out[i] = e
			continue
		}
		flat := map[string]any{}
		for k, c := range cells {
			if w, ok := c.(map[string]any); ok {
				flat[k] = w["value"]
			}
		}
		flat["_id"] = fmt.Sprintf("row%06d", rowIDs.Add(1))
		out[i] = flat
	}
	return out
}

func (s *memSink) Create(_ context.Context, txID string, records []json.RawMessage) (int, []string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["create"]++
	keys := make([]string, len(records))
	for i, rec := range records {
		keys[i], _ = flatRow(rec)[s.keyField].(string)
	}
	s.sent = append(s.sent, keys)
	if prev, ok := s.txs[txID]; ok {
		switch s.mode {
		case txDedupe:
			return len(prev), prev, nil
		case txReject:
			return 0, nil, recordErr(s.resendCode)
		case txOverwrite:
			s.remove(prev)
		}
	}
	for _, rec := range records {
		if s.rejectKey[flatRow(rec)[s.keyField].(string)] {
			return 0, nil, recordErr(4000)
		}
	}
	n := len(records)
	if s.partial > 0 {
		s.partial--
		n = len(records) / 2
	}
	ids := make([]string, n)
	for i, rec := range records[:n] {
		hidden := s.lag
		if s.lagHalf && i%2 == 1 {
			hidden = 0
		}
		ids[i] = s.insert("api", rec, hidden)
		if s.extraValue != "" {
			s.find(ids[i]).row["note"] = s.extraValue
		}
	}
	if s.afterCreate != nil {
		s.afterCreate()
	}
	if s.mode != txIgnore {
		s.txs[txID] = ids
	}
	if s.lose > 0 {
		s.lose--
		return 0, nil, errLost
	}
	return n, ids, nil
}

func (s *memSink) remove(ids []string) {
	drop := map[string]bool{}
	for _, id := range ids {
		drop[id] = true
	}
	kept := s.recs[:0]
	for _, r := range s.recs {
		if !drop[r.id] {
			kept = append(kept, r)
		}
	}
	s.recs = kept
}

func (s *memSink) find(id string) *memRecord {
	for _, r := range s.recs {
		if r.id == id {
			return r
		}
	}
	return nil
}

var errGone = &apierr.Error{Service: "jiandaoyun", Endpoint: "data/update", Code: 4001, Class: apierr.Missing, Msg: "gone"}

func (s *memSink) Update(_ context.Context, id string, data json.RawMessage) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["update"]++
	r := s.find(id)
	if r == nil {
		return errGone
	}
	s.updates = append(s.updates, append(json.RawMessage(nil), data...))
	for k, v := range flatRow(data) {
		r.row[k] = v // only the fields given change
	}
	r.key, _ = r.row[s.keyField].(string)
	return nil
}

func (s *memSink) Get(_ context.Context, id string) (map[string]any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["get"]++
	r := s.find(id)
	if r == nil {
		return nil, errGone
	}
	if s.calls["get"] == s.dropOnGet {
		defer s.remove([]string{id})
	}
	full := map[string]any{}
	for k, v := range r.row {
		full[k] = v
	}
	return full, nil
}

func (s *memSink) Delete(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["delete"]++
	if s.find(id) == nil {
		return errGone
	}
	s.remove([]string{id})
	return nil
}

// Scan reads one page of the form in _id order.
func (s *memSink) Scan(ctx context.Context, after string, limit int) ([]FormRecord, error) {
	recs, err := s.scanRecords(ctx, after, limit)
	s.mu.Lock()
	n := s.calls["scan"]
	s.mu.Unlock()
	switch {
	case err != nil:
		return nil, err
	case n == s.failScan:
		return nil, errScan
	case n == s.badPage:
		return nil, errDecode
	}
	return recs, nil
}

var (
	errScan   = &apierr.Error{Service: "jiandaoyun", Endpoint: "data/list", Class: apierr.Retry, Msg: "still unreachable"}
	errDecode = errors.New("data[3] has no string _id")
)

func (s *memSink) scanRecords(_ context.Context, after string, limit int) ([]FormRecord, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls["scan"]++
	recs := append([]*memRecord(nil), s.recs...)
	less := func(a, b string) bool { return a < b }
	if s.scanOrder != nil {
		less = s.scanOrder
	}
	sort.Slice(recs, func(i, j int) bool { return less(recs[i].id, recs[j].id) })
	var out []FormRecord
	if after != "" && s.emptyAfter && s.find(after) == nil {
		return out, nil
	}
	for _, r := range recs {
		if after != "" && !less(after, r.id) && !s.scanStuck {
			continue
		}
		if len(out) == limit {
			break
		}
		out = append(out, FormRecord{DataID: r.id, Key: r.key, Row: r.row, Creator: r.creator, Created: r.created})
	}
	return out, nil
}

func (s *memSink) Stats() map[string]retry.EndpointStats { return nil }

// perKey counts records per key.
// batchKeys returns the keys of every create call, in the order sent.
func (s *memSink) batchKeys() [][]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sent)
}

func (s *memSink) perKey() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, r := range s.recs {
		out[r.key]++
	}
	return out
}

func (s *memSink) count(call string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[call]
}

// memCheckpoints is an in-memory store.
type memCheckpoints struct {
	mu      stdsync.Mutex
	recs    map[string]map[string]store.Record
	pending map[string]store.Pending
	months  map[string]store.MonthInfo
	meta    map[string][]byte
	runs    []store.Run
	applies int // store transactions
}

func newMemCheckpoints() *memCheckpoints {
	return &memCheckpoints{recs: map[string]map[string]store.Record{}, pending: map[string]store.Pending{},
		months: map[string]store.MonthInfo{}, meta: map[string][]byte{}}
}

func (c *memCheckpoints) Lookup(m string, userids []string, out []store.Record, found []bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, u := range userids {
		out[i], found[i] = c.recs[m][u]
	}
	return nil
}

func (c *memCheckpoints) Pendings() ([]store.Pending, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []store.Pending
	for _, p := range c.pending {
		out = append(out, p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].TxID < out[j].TxID })
	return out, nil
}

func (c *memCheckpoints) Month(m string) (store.MonthInfo, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mi, ok := c.months[m]
	return mi, ok, nil
}

func (c *memCheckpoints) Apply(w *store.Write) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applies++
	for _, kr := range w.Records {
		if c.recs[kr.Month] == nil {
			c.recs[kr.Month] = map[string]store.Record{}
		}
		c.recs[kr.Month][kr.UserID] = kr.Record
	}
	for _, id := range w.DeletePending {
		delete(c.pending, id)
	}
	for _, p := range w.PutPending {
		c.pending[p.TxID] = p
	}
	for _, mi := range w.Months {
		if old, ok := c.months[mi.Month]; ok && mi.Watermark < old.Watermark {
			mi.Watermark = old.Watermark
		}
		c.months[mi.Month] = mi
	}
	return nil
}

func (c *memCheckpoints) ForEach(m string, fn func(string, store.Record) error) error {
	c.mu.Lock()
	ids := make([]string, 0, len(c.recs[m]))
	for u := range c.recs[m] {
		ids = append(ids, u)
	}
	recs := make([]store.Record, len(ids))
	sort.Strings(ids)
	for i, u := range ids {
		recs[i] = c.recs[m][u]
	}
	c.mu.Unlock()
	for i, u := range ids {
		if err := fn(u, recs[i]); err != nil {
			return err
		}
	}
	return nil
}

func (c *memCheckpoints) Months() ([]store.MonthInfo, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen := map[string]bool{}
	for m := range c.recs {
		seen[m] = true
	}
	for m := range c.months {
		seen[m] = true
	}
	var out []store.MonthInfo
	for m := range seen {
		mi := c.months[m]
		mi.Month = m
		out = append(out, mi)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Month < out[j].Month })
	return out, nil
}

// ForgetMonth drops the month, keeping its pending batches' records
// marked pending, as the store does.
func (c *memCheckpoints) ForgetMonth(m string) (store.Forgotten, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.applies++
	f := store.Forgotten{Records: len(c.recs[m])}
	_, inMonths := c.months[m]
	f.Known = len(c.recs[m]) > 0 || inMonths
	delete(c.recs, m)
	delete(c.months, m)
	for _, p := range c.pending {
		if p.Month != m {
			continue
		}
		f.Known = true
		f.KeptBatches++
		if c.recs[m] == nil {
			c.recs[m] = map[string]store.Record{}
		}
		for i, u := range p.UserIDs {
			if _, ok := c.recs[m][u]; !ok {
				c.recs[m][u] = store.Record{Hash: p.Hashes[i], State: store.StatePending}
				f.KeptRecords++
				f.Records--
			}
		}
	}
	return f, nil
}

func (c *memCheckpoints) PutRun(r store.Run) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.runs = append(c.runs, r)
	return nil
}

func (c *memCheckpoints) GetMeta(k string) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.meta[k], nil
}

func (c *memCheckpoints) PutMeta(k string, v []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.meta[k] = v
	return nil
}

func (c *memCheckpoints) states(m string) (synced, pending, failed int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, r := range c.recs[m] {
		switch r.State {
		case store.StateSynced:
			synced++
		case store.StatePending:
			pending++
		case store.StateFailed:
			failed++
		}
	}
	return
}

// memRig is one company, one form and one store, all in memory.
type memRig struct {
	t       *testing.T
	company *fakeapi.Company
	src     *memSource
	sink    *memSink
	cp      *memCheckpoints
	mapper  *mapping.Mapper
	mu      stdsync.Mutex
	now     time.Time
}

var (
	memMonth = month.MustParse("2026-02")
	memToday = month.Date{Year: 2026, Mon: 3, Day: 15}
)

func newMemRig(t *testing.T, users int) *memRig {
	t.Helper()
	return newRigWith(t, users, testMapper(t))
}

// newRigWith is a rig over a fake company of users users, mapping with
// mapper.
func newRigWith(t *testing.T, users int, mapper *mapping.Mapper) *memRig {
	t.Helper()
	company := fakeapi.NewCompany(3, users)
	var ids []string
	for _, u := range company.Users() {
		ids = append(ids, u.UserID)
	}
	r := &memRig{t: t, company: company, cp: newMemCheckpoints(), mapper: mapper,
		now: time.Date(2026, 3, 15, 2, 0, 0, 0, time.UTC)}
	r.src = &memSource{company: company, users: ids, rejects: map[string]map[string]bool{}}
	r.sink = newMemSink(r.mapper.KeyField(), r.clock)
	return r
}

func (r *memRig) clock() time.Time {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.now
}

func (r *memRig) advance(d time.Duration) {
	r.mu.Lock()
	r.now = r.now.Add(d)
	r.mu.Unlock()
}

func testMapper(t *testing.T) *mapping.Mapper {
	t.Helper()
	// The template's placeholders are refused; a test form has real ids.
	tmpl := strings.NewReplacer("EDIT_ME_APP_ID", "6399c24287cae90008d24e0b", "EDIT_ME_ENTRY_ID", "64093d8613931a00085bb2f4").
		Replace(string(config.Template()))
	return configMapper(t, []byte(tmpl))
}

// configMapper loads the config doc (secrets all "x") and binds its
// mapping to the fake's default form.
func configMapper(t *testing.T, doc []byte) *mapping.Mapper {
	t.Helper()
	path := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(path, doc, 0o600); err != nil {
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

// run syncs memMonth (or the given months). The consistency delay is a
// millisecond of real time; the rig's clock stands still unless a test
// moves it.
func (r *memRig) run(months ...month.Month) *Summary {
	r.t.Helper()
	return r.runWith(Request{Command: "test"}, months...)
}

func (r *memRig) runWith(req Request, months ...month.Month) *Summary {
	r.t.Helper()
	return r.runWithPlan(req, nil, months...)
}

func (r *memRig) runWithPlan(req Request, onPlan func(PlanLine), months ...month.Month) *Summary {
	r.t.Helper()
	if len(months) == 0 {
		months = []month.Month{memMonth}
	}
	req.Months, req.Today = months, memToday
	var sink Sink = r.sink
	var cp Checkpoints = r.cp
	if req.DryRun {
		sink, cp = DryRunSink{Sink: r.sink}, readOnlyMem{r.cp}
	}
	eng := New(r.src, sink, cp, r.mapper, Options{
		Concurrency: 3, FetchInFlight: 3, ConsistencyDelay: time.Millisecond, Log: zerolog.Nop(), Now: r.clock, OnPlan: onPlan,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return eng.Run(ctx, ctx, req)
}

// readOnlyMem drops every write, as DryRunCheckpoints does for a store.
type readOnlyMem struct{ *memCheckpoints }

func (readOnlyMem) Apply(*store.Write) error     { return nil }
func (readOnlyMem) PutRun(store.Run) error       { return nil }
func (readOnlyMem) PutMeta(string, []byte) error { return nil }

// expectForm checks that the form holds exactly one record per user for
// the month, each with the content the mapping gives now.
func (r *memRig) expectForm(m month.Month) {
	r.t.Helper()
	per := r.sink.perKey()
	n := 0
	for _, u := range r.src.users {
		key := r.mapper.Key(u, m)
		if per[key] != 1 {
			r.t.Errorf("key %s has %d records, want 1", key, per[key])
		}
		n++
	}
	total := 0
	for _, c := range per {
		total += c
	}
	if total != n {
		r.t.Errorf("the form holds %d records, want %d", total, n)
	}
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	for _, rec := range r.sink.recs {
		rb, err := r.mapper.ReadBack(rec.row)
		if err != nil {
			r.t.Fatal(err)
		}
		u := ""
		for _, user := range r.src.users {
			if r.mapper.Key(user, m) == rec.key {
				u = user
			}
		}
		if u == "" {
			r.t.Errorf("record %s holds a key no user has: %q", rec.id, rec.key)
			continue
		}
		want, err := r.mapper.Map(mapping.Input{UserID: r.src.spell(u), Month: m, Report: jsonShaped(r.company.Report(u, m))})
		if err != nil {
			r.t.Fatal(err)
		}
		if !rb.Exact || rb.Hash != want.Hash {
			r.t.Errorf("record %s (%s) holds stale content", rec.id, rec.key)
		}
	}
}

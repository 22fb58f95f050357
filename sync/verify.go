package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"strings"
	stdsync "sync"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// Kinds of verify findings.
const (
	KindMissing   = "missing"   // the store holds a data_id the form no longer has
	KindDiffer    = "differ"    // the form's content is not what was last written
	KindDuplicate = "duplicate" // several records hold one key
	KindPending   = "pending"   // a create batch of the key is still unsettled
	KindUnknown   = "unknown"   // the store does not know the key, or it is empty
)

// kindOrder is the order findings are listed in.
var kindOrder = []string{KindMissing, KindDiffer, KindDuplicate, KindPending, KindUnknown}

// Finding is one difference between the store and the form.
type Finding struct {
	Kind    string   `json:"kind"`
	Key     string   `json:"key"`
	DataIDs []string `json:"data_ids"` // oldest first
	Fields  []string `json:"fields"`   // with --deep: the differing fields
	Month   string   `json:"-"`
	UserID  string   `json:"-"` // the store's userid (lower case)
	stored  string   // the data_id the store holds for the key
	row     map[string]any
}

// VerifyReport is what verify found.
type VerifyReport struct {
	Months   []string       `json:"months"` // the months compared
	Findings []Finding      `json:"findings"`
	Counts   map[string]int `json:"counts"`
	Records  int            `json:"-"` // form records read
}

// Drift reports whether a finding needs repair: missing, differ or
// duplicate. Unknown and pending records do not count.
func (v *VerifyReport) Drift() bool {
	return v.Counts[KindMissing]+v.Counts[KindDiffer]+v.Counts[KindDuplicate] > 0
}

// scanPage is the page size of a form scan: the largest data/list allows.
const scanPage = 100

// formIndex is the form as a scan read it. Rows are not kept, only what
// the mapping reads back from them, except where keep asked for the row.
type formIndex struct {
	byID   map[string]scanned
	byKey  map[string][]scanned // normalized key → copies, oldest first
	bad    []scanned            // empty key, or a key without a month; in _id order
	months map[string]bool      // months the keys name
	count  int
}

// scanned is one form record as a scan keeps it.
type scanned struct {
	DataID, Key string
	read        readBackSum
	row         map[string]any // only when the scan's keep asked for it
}

// readBackSum is what a scan keeps of a record's read-back.
type readBackSum struct {
	ok           bool // read back at all
	hash, sub    uint64
	exact, subOK bool
}

// same reports whether the record holds exactly the content of hash.
func (r readBackSum) same(hash uint64) bool { return r.ok && r.exact && r.hash == hash }

// normKey splits a form key into its normalized form ("<lower-case
// userid>|YYYY-MM"), its userid and its month; ok is false for an empty
// key or one whose month cannot be parsed.
func normKey(k string) (key, userid string, m month.Month, ok bool) {
	i := strings.LastIndexByte(k, '|')
	if i <= 0 {
		return "", "", month.Month{}, false
	}
	m, err := month.Parse(k[i+1:])
	if err != nil {
		return "", "", month.Month{}, false
	}
	userid = strings.ToLower(k[:i])
	return userid + "|" + m.String(), userid, m, true
}

// scanWorkers decode pages and read their records back, while the next
// page is on its way: a scan is bound by the list rate only if decoding
// keeps up with it.
const scanWorkers = 2

// scanForm reads every record of the form by pages. With a month set, a
// record of another month is left out; records with an empty or unparsable
// key are kept only without one. keep, if set, says which records keep
// their whole row.
func (e *Engine) scanForm(ctx context.Context, months map[string]bool, keep func(scanned) bool) (*formIndex, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan ScanPage, scanWorkers)
	var fetchErr error
	go func() {
		defer close(pages)
		after := ""
		for {
			page, err := e.sink.Scan(ctx, after, scanPage)
			if err != nil {
				fetchErr = fmt.Errorf("read the form: %w", err)
				return
			}
			select {
			case pages <- page:
			case <-ctx.Done():
				return
			}
			if page.Len < scanPage {
				return
			}
			after = page.Last
		}
	}()

	results := make(chan pageRead, scanWorkers)
	var workers stdsync.WaitGroup
	for range scanWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for page := range pages {
				res := e.readPage(page, months, keep)
				results <- res
				if res.err != nil {
					cancel()
				}
			}
		}()
	}
	go func() {
		workers.Wait()
		close(results)
	}()

	idx := &formIndex{byID: map[string]scanned{}, byKey: map[string][]scanned{}, months: map[string]bool{}}
	var readErr error
	for res := range results {
		if res.err != nil {
			if readErr == nil {
				readErr = res.err
			}
			continue
		}
		idx.count += res.read
		for _, rec := range res.recs {
			idx.byID[rec.DataID] = rec
			key, _, m, ok := normKey(rec.Key)
			if !ok {
				idx.bad = append(idx.bad, rec)
				continue
			}
			idx.byKey[key] = append(idx.byKey[key], rec)
			idx.months[m.String()] = true
		}
	}
	// Every worker has stopped, so the page reader has too.
	switch {
	case readErr != nil:
		return nil, readErr
	case fetchErr != nil:
		return nil, fetchErr
	case ctx.Err() != nil:
		return nil, fmt.Errorf("read the form: %w", ctx.Err())
	}
	for _, group := range idx.byKey {
		sortScanned(group)
	}
	sortScanned(idx.bad)
	return idx, nil
}

// pageRead is one page as a scan worker read it.
type pageRead struct {
	recs []scanned // those the scan indexes
	read int       // records on the page, probe records left out
	err  error
}

// readPage decodes one page and reads back the records the scan indexes.
func (e *Engine) readPage(page ScanPage, months map[string]bool, keep func(scanned) bool) (res pageRead) {
	recs, err := page.Records()
	if err != nil {
		res.err = fmt.Errorf("read the form: %w", err)
		return res
	}
	res.recs = make([]scanned, 0, len(recs))
	for _, rec := range recs {
		if IsProbeKey(rec.Key) {
			continue // a write probe's own record, on a form it should not be on
		}
		res.read++
		_, _, m, ok := normKey(rec.Key)
		if ok && months != nil && !months[m.String()] || !ok && months != nil {
			continue
		}
		sc := scanned{DataID: rec.DataID, Key: rec.Key}
		if rb, err := e.mapper.ReadBack(rec.Row); err == nil {
			sc.read = readBackSum{ok: true, hash: rb.Hash, sub: rb.SubformHash, exact: rb.Exact, subOK: rb.SubformExact}
		}
		if keep != nil && keep(sc) {
			sc.row = rec.Row
		}
		res.recs = append(res.recs, sc)
	}
	return res
}

func sortScanned(recs []scanned) {
	sort.Slice(recs, func(i, j int) bool { return recs[i].DataID < recs[j].DataID })
}

// storeEntry is one checkpoint.
type storeEntry struct {
	month  string
	userid string
	rec    store.Record
}

// Verify compares the checkpoints of months (every month the store knows
// when none is given) with what the form holds. It writes nothing; run
// Settle first so that pending batches are resolved.
func (e *Engine) Verify(ctx context.Context, months []month.Month) (*VerifyReport, error) {
	var sel map[string]bool
	names := []string{}
	if len(months) > 0 {
		sel = map[string]bool{}
		for _, m := range months {
			if !sel[m.String()] {
				sel[m.String()] = true
				names = append(names, m.String())
			}
		}
	} else {
		infos, err := e.cp.Months()
		if err != nil {
			return nil, fmt.Errorf("read the store's months: %w", err)
		}
		for _, mi := range infos {
			names = append(names, mi.Month)
		}
	}
	sort.Strings(names)

	known := map[string]storeEntry{}
	stored := map[string]uint64{} // data_id → hash, of synced checkpoints
	for _, ms := range names {
		m, err := month.Parse(ms)
		if err != nil {
			return nil, err
		}
		err = e.cp.ForEach(ms, func(userid string, rec store.Record) error {
			known[e.mapper.Key(userid, m)] = storeEntry{month: ms, userid: userid, rec: rec}
			if rec.State == store.StateSynced && rec.DataID != "" {
				stored[rec.DataID] = rec.Hash
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("read the checkpoints of %s: %w", ms, err)
		}
	}
	// A record that differs keeps its row, for --deep.
	differs := func(sc scanned) bool {
		hash, ok := stored[sc.DataID]
		return ok && !sc.read.same(hash)
	}
	idx, err := e.scanForm(ctx, sel, differs)
	if err != nil {
		return nil, err
	}

	rep := &VerifyReport{Months: names, Counts: map[string]int{}, Records: idx.count}
	for _, k := range kindOrder {
		rep.Counts[k] = 0
	}
	add := func(f Finding) {
		if f.DataIDs == nil {
			f.DataIDs = []string{}
		}
		if f.Fields == nil {
			f.Fields = []string{}
		}
		rep.Findings = append(rep.Findings, f)
		rep.Counts[f.Kind]++
	}
	for key, se := range known {
		base := Finding{Key: key, Month: se.month, UserID: se.userid}
		switch {
		case se.rec.State == store.StatePending:
			base.Kind = KindPending
			add(base)
		case se.rec.DataID == "" || se.rec.State != store.StateSynced:
			// A failed record: the next sync tries it again.
		default:
			base.DataIDs = []string{se.rec.DataID}
			fr, ok := idx.byID[se.rec.DataID]
			if !ok {
				base.Kind = KindMissing
				add(base)
				continue
			}
			if !fr.read.same(se.rec.Hash) {
				base.Kind = KindDiffer
				base.row = fr.row
				add(base)
			}
		}
	}
	storeMonths := map[string]bool{}
	for _, ms := range names {
		storeMonths[ms] = true
	}
	for key, group := range idx.byKey {
		ids := dataIDs(group)
		_, userid, m, _ := normKey(key)
		if _, ok := known[key]; !ok {
			add(Finding{Kind: KindUnknown, Key: group[0].Key, DataIDs: ids, Month: m.String(), UserID: userid})
			continue
		}
		if len(group) > 1 {
			add(Finding{Kind: KindDuplicate, Key: key, DataIDs: ids, Month: m.String(), UserID: userid, stored: known[key].rec.DataID})
		}
	}
	for _, fr := range idx.bad {
		add(Finding{Kind: KindUnknown, Key: fr.Key, DataIDs: []string{fr.DataID}})
	}
	sort.Slice(rep.Findings, func(i, j int) bool {
		a, b := rep.Findings[i], rep.Findings[j]
		if a.Kind != b.Kind {
			return slices.Index(kindOrder, a.Kind) < slices.Index(kindOrder, b.Kind)
		}
		if a.Key != b.Key {
			return a.Key < b.Key
		}
		return strings.Join(a.DataIDs, ",") < strings.Join(b.DataIDs, ",")
	})
	if rep.Findings == nil {
		rep.Findings = []Finding{}
	}
	return rep, nil
}

func dataIDs(group []scanned) []string {
	ids := make([]string, len(group))
	for i, fr := range group {
		ids[i] = fr.DataID
	}
	return ids
}

// Settle resolves the batches earlier runs left pending, as every sync
// does first, and nothing else. It returns nil without a run when there
// is none.
func (e *Engine) Settle(ctx, stop context.Context, command string, today month.Date) (*Summary, error) {
	ps, err := e.cp.Pendings()
	if err != nil {
		return nil, fmt.Errorf("read pending batches: %w", err)
	}
	if len(ps) == 0 {
		return nil, nil
	}
	return e.Run(ctx, stop, Request{Command: command, Today: today}), nil
}

// Repair is the run that fixes what verify found: missing records are
// looked up by key and created again through the create protocol,
// differing ones are updated from the current report, and the newer
// copies of a duplicate set are deleted, the oldest kept. Unknown and
// pending findings are left alone. A dry run (req.DryRun, with the
// read-only wrappers) plans only.
func (e *Engine) Repair(ctx, stop context.Context, rep *VerifyReport, req Request) *Summary {
	req.Only = map[month.Month][]string{}
	req.Redo = map[string]Redo{}
	req.Delete = nil
	want := func(f Finding, redo Redo) {
		m, err := month.Parse(f.Month)
		if err != nil {
			return
		}
		if _, ok := req.Redo[f.Key]; !ok {
			req.Only[m] = append(req.Only[m], f.UserID)
		}
		if redo > req.Redo[f.Key] {
			// Resolving by key also updates a record that differs.
			req.Redo[f.Key] = redo
		}
	}
	for _, f := range rep.Findings {
		switch f.Kind {
		case KindMissing:
			want(f, RedoResolve)
		case KindDiffer:
			want(f, RedoUpdate)
		case KindDuplicate:
			for _, id := range f.DataIDs[1:] {
				req.Delete = append(req.Delete, Deletion{Month: f.Month, Key: f.Key, DataID: id, Kept: f.DataIDs[0]})
			}
			if f.stored != f.DataIDs[0] {
				// The store holds a newer copy: once it is gone, the key
				// is looked up again and the oldest adopted.
				want(f, RedoResolve)
			}
		}
	}
	for m := range req.Only {
		req.Months = append(req.Months, m)
	}
	sort.Slice(req.Months, func(i, j int) bool { return req.Months[i].Before(req.Months[j]) })
	return e.Run(ctx, stop, req)
}

// deleteCopies deletes the records a repair names, each read whole first
// and logged with its content. A dry run plans them only.
func (r *run) deleteCopies(ctx context.Context) error {
	for _, d := range r.req.Delete {
		if r.stopped() {
			return errStopped
		}
		if r.req.DryRun {
			r.plan(PlanLine{Month: d.Month, Key: d.Key, Action: "delete", DataID: d.DataID, Detail: "newer copy; keeps " + d.Kept})
			continue
		}
		full, err := r.e.sink.Get(ctx, d.DataID)
		if err == nil {
			content, _ := json.Marshal(full)
			err = r.e.sink.Delete(ctx, d.DataID)
			if err == nil {
				r.log.Warn().Str("key", d.Key).Str("deleted", d.DataID).Str("kept", d.Kept).RawJSON("content", content).
					Msg("deleted a newer copy of a key")
				r.plan(PlanLine{Month: d.Month, Key: d.Key, Action: "delete", DataID: d.DataID, Detail: "newer copy; kept " + d.Kept})
				r.mu.Lock()
				r.deleted = append(r.deleted, store.DeletedRecord{Key: d.Key, DataID: d.DataID, Kept: d.Kept, Content: content})
				r.mu.Unlock()
				continue
			}
		}
		if apierr.ClassOf(err) == apierr.Missing {
			continue // already gone
		}
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		if ferr := r.recordFailure(d.Month, d.Key, fmt.Errorf("delete duplicate %s: %w", d.DataID, err), false); ferr != nil {
			return ferr
		}
	}
	return nil
}

// Deep names the differing fields of each differ finding: it fetches
// those users' current reports from the source again (100 a call, under
// the source's rate limit) and compares what Map makes of each with what
// the form holds, field by field. A user the source sends no report for
// is named "(no report from WeCom)".
func (e *Engine) Deep(ctx context.Context, rep *VerifyReport, today month.Date) error {
	byMonth := map[string][]int{}
	for i, f := range rep.Findings {
		if f.Kind == KindDiffer && f.row != nil {
			byMonth[f.Month] = append(byMonth[f.Month], i)
		}
	}
	for ms, idxs := range byMonth {
		m, err := month.Parse(ms)
		if err != nil {
			return err
		}
		start, end, ok := m.Span(today)
		if !ok {
			continue
		}
		for i := 0; i < len(idxs); i += fetchBatch {
			chunk := idxs[i:min(i+fetchBatch, len(idxs))]
			ids := make([]string, len(chunk))
			for j, fi := range chunk {
				ids[j] = rep.Findings[fi].UserID
			}
			res, err := e.src.MonthData(ctx, start, end, ids)
			if err != nil {
				return fmt.Errorf("fetch reports from WeCom for --deep: %w", err)
			}
			reports := map[string]Report{}
			for _, r := range res.Reports {
				reports[e.mapper.Key(r.UserID, m)] = r
			}
			for _, fi := range chunk {
				f := &rep.Findings[fi]
				r, ok := reports[f.Key]
				if !ok {
					f.Fields = []string{"(no report from WeCom)"}
					continue
				}
				f.Fields, err = e.differingFields(m, r, f.row)
				if err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// differingFields compares, field by field, what Map makes of a report
// with what the form's row reads back as.
func (e *Engine) differingFields(m month.Month, r Report, row map[string]any) ([]string, error) {
	out, err := e.mapper.Map(mapping.Input{UserID: r.UserID, Month: m, Report: r.Report})
	if err != nil {
		return nil, fmt.Errorf("map the report of %s: %w", r.UserID, err)
	}
	rb, err := e.mapper.ReadBack(row)
	if err != nil {
		return nil, err
	}
	var want, have map[string]json.RawMessage
	if err := json.Unmarshal(out.Data, &want); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(rb.Data, &have); err != nil {
		return nil, err
	}
	fields := append([]string(nil), rb.Inexact...)
	for k, v := range want {
		if !bytes.Equal(v, have[k]) && !slices.Contains(fields, k) {
			fields = append(fields, k)
		}
	}
	sort.Strings(fields)
	return fields, nil
}

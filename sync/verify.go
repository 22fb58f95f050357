package sync

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"runtime"
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

// storeEntry is one checkpoint.
type storeEntry struct {
	month  string
	userid string
	rec    store.Record
	found  *foundRecord // for a synced record: what the scan found of it
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
		var err error
		if names, err = e.storeMonths(); err != nil {
			return nil, err
		}
	}
	sort.Strings(names)

	byMonth, err := e.readCheckpoints(names)
	if err != nil {
		return nil, err
	}
	// The scan checks each record against the checkpoint that names it
	// as it reads it; the checkpoints by key are only needed once it is
	// done, so they are indexed meanwhile.
	total := 0
	for _, entries := range byMonth {
		total += len(entries)
	}
	checkpoints := make(map[string]*foundRecord, total) // of synced records, by data_id
	ids := make([]string, 0, total)
	for _, entries := range byMonth {
		found := make([]foundRecord, len(entries))
		for j := range entries {
			se := &entries[j]
			if se.rec.State == store.StateSynced && se.rec.DataID != "" {
				se.found = &found[j]
				se.found.hash = se.rec.Hash
				se.found.next = checkpoints[se.rec.DataID]
				checkpoints[se.rec.DataID] = se.found
				ids = append(ids, se.rec.DataID)
			}
		}
	}
	known := make(map[string]storeEntry, total)
	indexed := make(chan error, 1)
	go func() {
		for i, entries := range byMonth {
			m, err := month.Parse(names[i])
			if err != nil {
				indexed <- err
				return
			}
			for _, se := range entries {
				known[e.mapper.Key(se.userid, m)] = se
			}
		}
		indexed <- nil
	}()
	idx, err := e.scanForm(ctx, sel, checkpoints, ids)
	if ierr := <-indexed; ierr != nil {
		return nil, ierr
	}
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
			switch {
			case !se.found.seenIn(idx.scan):
				base.Kind = KindMissing
				add(base)
			case se.found.differs:
				base.Kind = KindDiffer
				base.row = se.found.row
				add(base)
			}
		}
	}
	for key, group := range idx.byKey {
		se, isKnown := known[key]
		if isKnown && len(group) == 1 {
			continue
		}
		_, userid, m, _ := normKey(key)
		if !isKnown {
			add(Finding{Kind: KindUnknown, Key: group[0].Key, DataIDs: dataIDs(group), Month: m.String(), UserID: userid})
			continue
		}
		add(Finding{Kind: KindDuplicate, Key: key, DataIDs: dataIDs(group), Month: m.String(), UserID: userid, stored: se.rec.DataID})
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

// storeMonths names the months the store knows.
func (e *Engine) storeMonths() ([]string, error) {
	infos, err := e.cp.Months()
	if err != nil {
		return nil, fmt.Errorf("read the store's months: %w", err)
	}
	names := make([]string, len(infos))
	for i, mi := range infos {
		names[i] = mi.Month
	}
	return names, nil
}

// readCheckpoints reads the checkpoints of months, several months at
// once.
func (e *Engine) readCheckpoints(months []string) ([][]storeEntry, error) {
	out := make([][]storeEntry, len(months))
	errs := make([]error, len(months))
	slots := make(chan struct{}, runtime.GOMAXPROCS(0))
	var wg stdsync.WaitGroup
	for i, ms := range months {
		wg.Add(1)
		slots <- struct{}{}
		go func() {
			defer func() { <-slots; wg.Done() }()
			if mi, ok, err := e.cp.Month(ms); err == nil && ok {
				out[i] = make([]storeEntry, 0, mi.Synced+mi.Pending+mi.Failed)
			}
			errs[i] = e.cp.ForEach(ms, func(userid string, rec store.Record) error {
				out[i] = append(out[i], storeEntry{month: ms, userid: userid, rec: rec})
				return nil
			})
			if errs[i] != nil {
				errs[i] = fmt.Errorf("read the checkpoints of %s: %w", ms, errs[i])
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	return out, nil
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

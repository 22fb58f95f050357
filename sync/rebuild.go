package sync

import (
	"context"
	"fmt"
	"sort"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// RebuiltMonth is what rebuild did to one month.
type RebuiltMonth struct {
	Month   string `json:"month"`
	Adopted int    `json:"adopted"` // checkpoints written from the form
	// Inexact records did not read back exactly: the next sync updates
	// them.
	Inexact int `json:"inexact"`
	// KeptPending are records of batches still pending, kept as they were
	// for the next sync to resolve first.
	KeptPending int `json:"kept_pending"`
	Dropped     int `json:"dropped"` // checkpoints there were before
}

// RebuildReport is what rebuild did.
type RebuildReport struct {
	Months   []RebuiltMonth `json:"months"`
	Findings []Finding      `json:"findings"` // duplicates and unknown keys, left for verify --fix
	Records  int            `json:"records"`  // form records read
}

// Rebuild replaces the checkpoints of months (every month the form holds
// when none is given) with what the form holds, by key: each key adopts
// its oldest record, with the hash of its read-back content, so that a
// sync of unchanged data writes nothing and a record edited by hand is
// updated. Pending batches are kept. Duplicates and unknown keys are
// reported, never touched.
func (e *Engine) Rebuild(ctx context.Context, months []month.Month) (*RebuildReport, error) {
	var sel map[string]bool
	if len(months) > 0 {
		sel = map[string]bool{}
		for _, m := range months {
			sel[m.String()] = true
		}
	}
	// What the store still knows only splits the scan; it decides nothing.
	known, err := e.knownDataIDs()
	if err != nil {
		return nil, err
	}
	idx, err := e.scanForm(ctx, sel, nil, known)
	if err != nil {
		return nil, err
	}
	names := make([]string, 0, len(idx.months))
	if sel != nil {
		for m := range sel {
			names = append(names, m)
		}
	} else {
		for m := range idx.months {
			names = append(names, m)
		}
	}
	sort.Strings(names)

	byMonth := map[string][]string{}
	for key := range idx.byKey {
		_, _, m, _ := normKey(key)
		byMonth[m.String()] = append(byMonth[m.String()], key)
	}
	now := e.opts.Now()
	rep := &RebuildReport{Records: idx.count, Findings: []Finding{}}
	for _, ms := range names {
		f, err := e.cp.ForgetMonth(ms)
		if err != nil {
			return rep, fmt.Errorf("forget the checkpoints of %s: %w", ms, err)
		}
		pending := map[string]bool{}
		if f.KeptBatches > 0 {
			ps, err := e.cp.Pendings()
			if err != nil {
				return rep, fmt.Errorf("read pending batches: %w", err)
			}
			for _, p := range ps {
				if p.Month == ms {
					for _, u := range p.UserIDs {
						pending[u] = true
					}
				}
			}
		}
		rm := RebuiltMonth{Month: ms, KeptPending: f.KeptRecords, Dropped: f.Records}
		keys := byMonth[ms]
		sort.Strings(keys)
		w := &store.Write{}
		for _, key := range keys {
			group := idx.byKey[key]
			_, userid, _, _ := normKey(key)
			if len(group) > 1 {
				rep.Findings = append(rep.Findings, Finding{Kind: KindDuplicate, Key: key, DataIDs: dataIDs(group), Month: ms, UserID: userid})
			}
			if pending[userid] {
				continue
			}
			kept := group[0]
			rec := store.Record{DataID: kept.DataID, State: store.StateSynced, SyncedAt: now}
			if rb := kept.read; rb.ok {
				rec.Hash = rb.hash
				if rb.subOK {
					rec.SubformHash = rb.sub
				}
			}
			if !kept.read.ok || !kept.read.exact {
				rm.Inexact++
			}
			w.Records = append(w.Records, store.KeyedRecord{Month: ms, UserID: userid, Record: rec})
			rm.Adopted++
		}
		if len(w.Records) > 0 {
			if err := e.cp.Apply(w); err != nil {
				return rep, fmt.Errorf("save checkpoints of %s: %w", ms, err)
			}
		}
		rep.Months = append(rep.Months, rm)
	}
	if sel == nil {
		for _, fr := range idx.bad {
			rep.Findings = append(rep.Findings, Finding{Kind: KindUnknown, Key: fr.Key, DataIDs: []string{fr.DataID}})
		}
	}
	return rep, nil
}

// knownDataIDs lists the data_ids of the store's checkpoints, every month.
func (e *Engine) knownDataIDs() ([]string, error) {
	names, err := e.storeMonths()
	if err != nil {
		return nil, err
	}
	byMonth, err := e.readCheckpoints(names)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, entries := range byMonth {
		for _, se := range entries {
			if se.rec.DataID != "" {
				ids = append(ids, se.rec.DataID)
			}
		}
	}
	return ids, nil
}

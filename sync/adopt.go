package sync

import (
	"context"
	"encoding/json"
	"errors"

	"checkin-sync/internal/apierr"
	"checkin-sync/store"
)

// adoption is the store write that adopts found records, and the records
// whose form content differs from what this run would write.
type adoption struct {
	*store.Write
	updates []item
}

// adopt checkpoints each found item on its oldest record, with the hash of
// what the form holds. This runs after this tool's own creates, so newer
// copies of a key that cannot hold anyone's work are deleted (a second
// writer made them); any other copy is reported as a duplicate.
func (r *run) adopt(ctx context.Context, b *batch, found []item, copies map[string][]FormRecord) adoption {
	ms := b.month.String()
	now := r.e.opts.Now()
	a := adoption{Write: &store.Write{}}
	for _, it := range found {
		recs := copies[it.key]
		kept := recs[0]
		var extra []FormRecord
		for _, c := range recs[1:] {
			if !r.dropCopy(ctx, ms, it, kept, c) {
				extra = append(extra, c)
			}
		}
		r.noteDuplicates(ms, it.key, append([]FormRecord{kept}, extra...))
		form, same := r.compare(it, kept)
		it.dataID, it.formSubHash = kept.DataID, form.sub
		a.Records = append(a.Records, syncedRecord(ms, it, form, now))
		action := "create"
		if !same && it.hasData {
			a.updates = append(a.updates, it)
			action = "update"
		}
		if b.inherited {
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: action, DataID: it.dataID, Detail: "left pending by an earlier run"})
		}
	}
	return a
}

// countCreated counts found records as created, except those about to be
// updated, which count under the update's outcome: each record once.
func (r *run) countCreated(ms string, found, updates []item) {
	r.count(ms, func(s *MonthSummary) { s.Created += len(found) - len(updates) })
}

// updateAdopted brings adopted records whose content differs up to date.
func (r *run) updateAdopted(ctx context.Context, ms string, items []item) error {
	missing, err := r.updateAll(ctx, ms, items)
	if err != nil {
		return err
	}
	for _, it := range missing {
		if err := r.recordFailure(ms, it.key, errGoneAfterCreate, false); err != nil {
			return err
		}
	}
	return nil
}

var errGoneAfterCreate = errors.New("the record was deleted right after it was created; the next run creates it again")

// systemFields are the form's own fields, never mapped and never work.
var systemFields = map[string]bool{
	"_id": true, "appId": true, "entryId": true, "creator": true, "updater": true, "deleter": true,
	"createTime": true, "updateTime": true, "deleteTime": true, "ext": true, "flowState": true,
	"wx_open_id": true, "wx_nickname": true, "wx_gender": true,
}

// dropCopy deletes c, a newer copy of kept's key, only when it cannot hold
// anyone's work: its mapped content is what this run would write, no
// unmapped field holds a value, this tool's API identity created it, and
// it is under an hour old. It reports whether c is gone.
func (r *run) dropCopy(ctx context.Context, ms string, it item, kept, c FormRecord) bool {
	creator := r.creator()
	if creator == "" || c.Creator != creator || c.Created.IsZero() || r.e.opts.Now().Sub(c.Created) >= maxDeleteAge {
		return false
	}
	if _, same := r.compare(it, c); !same {
		return false
	}
	full, err := r.e.sink.Get(ctx, c.DataID)
	if apierr.ClassOf(err) == apierr.Missing {
		return true // another writer deleted it first
	}
	if err != nil {
		r.log.Warn().Err(err).Str("key", it.key).Str("data_id", c.DataID).Msg("could not read a duplicate copy; it is left in place")
		return false
	}
	if r.holdsUnmappedValue(full) {
		return false
	}
	if !r.reserveDelete() {
		return false
	}
	content, _ := json.Marshal(full)
	if err := r.e.sink.Delete(ctx, c.DataID); err != nil {
		r.releaseDelete()
		if apierr.ClassOf(err) == apierr.Missing {
			return true // another writer deleted it first: not ours to record
		}
		r.log.Warn().Err(err).Str("key", it.key).Str("data_id", c.DataID).Msg("could not delete a duplicate copy; it is left in place")
		return false
	}
	r.log.Warn().Str("key", it.key).Str("deleted", c.DataID).Str("kept", kept.DataID).RawJSON("content", content).
		Msg("deleted a newer copy of a key that another writer created at the same time")
	r.mu.Lock()
	r.deleted = append(r.deleted, store.DeletedRecord{Key: it.key, DataID: c.DataID, Kept: kept.DataID, Content: content})
	r.mu.Unlock()
	return true
}

// holdsUnmappedValue reports whether a field the mapping does not write
// holds a value: then someone else's work is in the record.
func (r *run) holdsUnmappedValue(full map[string]any) bool {
	mapped := map[string]bool{}
	for _, f := range r.e.mapper.ReadFields() {
		mapped[f] = true
	}
	for k, v := range full {
		if mapped[k] || systemFields[k] {
			continue
		}
		if !isEmptyValue(v) {
			return true
		}
	}
	return false
}

func isEmptyValue(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	case map[string]any:
		return len(x) == 0
	}
	return false
}

// reserveDelete counts one delete against the run's limit.
func (r *run) reserveDelete() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.deletes >= maxDeletes {
		if !r.warned["delete-limit"] {
			r.warned["delete-limit"] = true
			msg := "more than 100 duplicate copies in one run: deleting stopped; `checkin-sync verify` lists the rest"
			r.sum.Warnings = append(r.sum.Warnings, msg)
			r.log.Warn().Msg(msg)
		}
		return false
	}
	r.deletes++
	return true
}

func (r *run) releaseDelete() {
	r.mu.Lock()
	r.deletes--
	r.mu.Unlock()
}

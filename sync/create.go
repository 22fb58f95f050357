package sync

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"checkin-sync/internal/apierr"
	"checkin-sync/jiandaoyun"
	"checkin-sync/store"
)

// newTxID returns a random UUID (version 4) for a batch's transaction_id.
func newTxID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newPending describes a batch about to be sent. A zero FirstSentAt marks a
// batch that must be resolved by key, never replayed.
func newPending(ms string, items []item, sentAt time.Time) store.Pending {
	p := store.Pending{TxID: newTxID(), Month: ms, FirstSentAt: sentAt,
		UserIDs: make([]string, len(items)), Hashes: make([]uint64, len(items))}
	for i, it := range items {
		p.UserIDs[i] = it.userID
		p.Hashes[i] = it.hash
	}
	return p
}

// pendingRecords marks items as pending in the store.
func pendingRecords(ms string, items []item) []store.KeyedRecord {
	out := make([]store.KeyedRecord, len(items))
	for i, it := range items {
		out[i] = store.KeyedRecord{Month: ms, UserID: it.userID, Record: store.Record{Hash: it.hash, State: store.StatePending}}
	}
	return out
}

// chunks splits creates into batches within the record and size limits.
func chunks(items []item) [][]item {
	var out [][]item
	start, size := 0, 0
	for i, it := range items {
		n := len(it.data) + 1
		if i > start && (i-start == maxBatchRecords || size+n > maxBatchBytes) {
			out = append(out, items[start:i])
			start, size = i, 0
		}
		size += n
	}
	if start < len(items) {
		out = append(out, items[start:])
	}
	return out
}

// createAll creates records that a lookup has just shown to be absent.
func (r *run) createAll(ctx context.Context, ms string, items []item) error {
	for _, batch := range chunks(items) {
		if r.stopped() {
			return errStopped
		}
		p := newPending(ms, batch, r.e.opts.Now())
		// First store transaction: the pending entry, saved before the call.
		w := &store.Write{PutPending: []store.Pending{p}, Records: pendingRecords(ms, batch)}
		if err := r.apply(w); err != nil {
			return err
		}
		if err := r.send(ctx, ms, batch, p, 0); err != nil {
			return err
		}
	}
	return nil
}

// send sends a saved pending batch and settles it. A lost answer is
// replayed with the same transaction_id while that is safe; otherwise the
// batch is resolved by key. depth bounds the re-batching of records that
// a batch did not create.
func (r *run) send(ctx context.Context, ms string, items []item, p store.Pending, depth int) error {
	if depth > 3 {
		for _, it := range items {
			if err := r.recordFailure(ms, it.key, fmt.Errorf("jiandaoyun kept not creating this record"), false); err != nil {
				return err
			}
		}
		return r.apply(&store.Write{DeletePending: []string{p.TxID}, Records: failedRecords(ms, items, "not created after several batches")})
	}
	data := make([]json.RawMessage, len(items))
	for i, it := range items {
		data[i] = it.data
	}
	var res jiandaoyun.BatchResult
	var err error
	for attempt := 1; ; attempt++ {
		res, err = r.e.sink.BatchCreate(ctx, p.TxID, data)
		if apierr.ClassOf(err) != apierr.Unknown || apierr.CodeOf(err) == 17026 {
			break
		}
		if attempt >= maxReplays || r.stopped() || ctx.Err() != nil || !r.replayable(p) {
			break
		}
		wait := r.e.opts.Retry.Backoff(attempt)
		r.log.Warn().Err(err).Str("transaction_id", p.TxID).Dur("wait", wait).
			Msg("batch_create answer lost; replaying it with the same transaction_id")
		if !sleep(ctx, wait) {
			break
		}
	}
	switch c := apierr.ClassOf(err); {
	case err == nil:
		r.recordSuccess()
		return r.confirm(ctx, ms, items, p, res, depth)
	case r.isStop(ctx, err):
		// The batch stays pending; the next run resolves it.
		r.count(ms, func(s *MonthSummary) { s.Pending += len(items) })
		return errStopped
	case c == apierr.Unknown:
		return r.resolvePending(ctx, ms, items, p, depth)
	case c == apierr.Record:
		return r.split(ctx, ms, items, p, err, depth)
	case apierr.IsFatal(err):
		return r.fatal(err)
	default:
		// Refused before anything was written (retries ran out).
		r.leavePending(ms, items, err, "batch_create failed")
		return nil
	}
}

// leavePending gives up on a batch for this run: it stays pending in the
// store, the next run resolves it by key, and its keys are not created
// again in this run.
func (r *run) leavePending(ms string, items []item, err error, what string) {
	r.block(keysOf(items)...)
	r.count(ms, func(s *MonthSummary) { s.Pending += len(items) })
	r.log.Warn().Err(err).Int("records", len(items)).Msg(what + "; the batch stays pending for the next run")
}

// rebatch saves w with a new pending batch for items, which a lookup has
// just shown absent, and sends it.
func (r *run) rebatch(ctx context.Context, ms string, w *store.Write, items []item, depth int) error {
	np := newPending(ms, items, r.e.opts.Now())
	w.PutPending = append(w.PutPending, np)
	w.Records = append(w.Records, pendingRecords(ms, items)...)
	if err := r.apply(w); err != nil {
		return err
	}
	return r.send(ctx, ms, items, np, depth+1)
}

// replayable reports whether a batch may still be resent under its
// transaction_id: it was sent, and recently enough.
func (r *run) replayable(p store.Pending) bool {
	return !p.FirstSentAt.IsZero() && r.e.opts.Now().Sub(p.FirstSentAt) < r.e.opts.ReplayWindow
}

// confirm matches created records to keys by looking them up: the order
// of success_ids is not documented, so it is never relied on.
func (r *run) confirm(ctx context.Context, ms string, items []item, p store.Pending, res jiandaoyun.BatchResult, depth int) error {
	found, err := r.findByKeys(ctx, items)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		r.leavePending(ms, items, err, "could not look up a created batch")
		return nil
	}
	synced, missing := r.adopt(ms, items, found, nil)
	w := &store.Write{Records: synced, DeletePending: []string{p.TxID}}
	r.count(ms, func(s *MonthSummary) { s.Created += len(synced) })
	if len(missing) == 0 {
		return r.apply(w)
	}
	if res.SuccessCount >= len(items) {
		// Jiandaoyun says it created them all, yet a lookup does not show
		// them. Creating them again could duplicate them, so they wait,
		// unreplayable, for the next run's lookup.
		w.PutPending = append(w.PutPending, newPending(ms, missing, time.Time{}))
		r.leavePending(ms, missing, nil, "created records are not visible yet")
		return r.apply(w)
	}
	// Fewer created than sent: the missing ones go into a new batch.
	return r.rebatch(ctx, ms, w, missing, depth)
}

// adopt turns lookup results into synced checkpoints. With sent, the
// checkpoint keeps the hash saved with the pending batch (sent[i] for
// items[i]), since that is what Jiandaoyun holds.
func (r *run) adopt(ms string, items []item, found map[string][]string, sent []uint64) (synced []store.KeyedRecord, missing []item) {
	now := r.e.opts.Now()
	for i, it := range items {
		ids := found[it.key]
		if len(ids) == 0 {
			missing = append(missing, it)
			continue
		}
		r.noteDuplicates(ms, it.key, ids)
		h := it.hash
		if i < len(sent) {
			h = sent[i]
		}
		synced = append(synced, store.KeyedRecord{Month: ms, UserID: it.userID,
			Record: store.Record{Hash: h, DataID: ids[0], State: store.StateSynced, SyncedAt: now}})
	}
	return synced, missing
}

// resolvePending settles a batch whose outcome is unknown by key: records
// found are adopted, and the missing ones are created in a new batch.
func (r *run) resolvePending(ctx context.Context, ms string, items []item, p store.Pending, depth int) error {
	found, err := r.findByKeys(ctx, items)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		r.leavePending(ms, items, err, "could not resolve a pending batch")
		return nil
	}
	synced, missing := r.adopt(ms, items, found, p.Hashes)
	w := &store.Write{Records: synced, DeletePending: []string{p.TxID}}
	// Records found were created by this batch, in this run or an earlier one.
	r.count(ms, func(s *MonthSummary) { s.Created += len(synced) })
	var create, lost []item
	for _, it := range missing {
		if it.hasData {
			create = append(create, it)
		} else {
			lost = append(lost, it)
		}
	}
	for _, it := range lost {
		if err := r.recordFailure(ms, it.key, fmt.Errorf("not in Jiandaoyun and no report from WeCom to create it from"), false); err != nil {
			return err
		}
	}
	w.Records = append(w.Records, failedRecords(ms, lost, "no report to create from")...)
	if len(create) == 0 {
		return r.apply(w)
	}
	return r.rebatch(ctx, ms, w, create, depth)
}

// split isolates the records Jiandaoyun rejects: each half becomes a new
// pending batch with a new transaction_id, down to single records, which
// are marked failed.
func (r *run) split(ctx context.Context, ms string, items []item, p store.Pending, cause error, depth int) error {
	if len(items) == 1 {
		if err := r.recordFailure(ms, items[0].key, cause, true); err != nil {
			return err
		}
		return r.apply(&store.Write{DeletePending: []string{p.TxID}, Records: failedRecords(ms, items, shortErr(cause))})
	}
	half := len(items) / 2
	now := r.e.opts.Now()
	a, b := newPending(ms, items[:half], now), newPending(ms, items[half:], now)
	if err := r.apply(&store.Write{DeletePending: []string{p.TxID}, PutPending: []store.Pending{a, b}}); err != nil {
		return err
	}
	if err := r.send(ctx, ms, items[:half], a, depth); err != nil {
		return err
	}
	return r.send(ctx, ms, items[half:], b, depth)
}

func failedRecords(ms string, items []item, msg string) []store.KeyedRecord {
	out := make([]store.KeyedRecord, len(items))
	for i, it := range items {
		out[i] = store.KeyedRecord{Month: ms, UserID: it.userID, Record: store.Record{State: store.StateFailed, LastError: msg}}
	}
	return out
}

func keysOf(items []item) []string {
	out := make([]string, len(items))
	for i, it := range items {
		out[i] = it.key
	}
	return out
}

// sleep waits d or until ctx ends; it reports whether the wait completed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

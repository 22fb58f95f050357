package sync

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"time"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// batchState is where one create batch stands. The batch moves through
// these states in one loop (runBatch); each transition costs at most one
// store transaction, and a clean batch costs two: saved, then settled.
//
// The one recovery rule: whenever an answer does not settle a batch, the
// form decides, a little later. The batch is looked up no sooner than the
// consistency delay after its last send; keys found are adopted; if none
// is found, the identical batch is resent under its own transaction_id
// while that is safe, a rejected batch is split, and otherwise the keys
// go into a new batch with a new transaction_id.
type batchState int

const (
	stSave    batchState = iota // save the pending entry
	stSend                      // send batch_create under the entry's transaction_id
	stConfirm                   // look the keys up right after a success, to learn the _ids
	stWait                      // deferred: wait out the consistency delay after the last send
	stLookup                    // the form decides: adopt, resend, re-batch or split
	stDone
)

var stateNames = [...]string{"save", "send", "confirm", "wait", "lookup", "done"}

func (s batchState) String() string { return stateNames[s] }

// batch is one create batch's machine.
type batch struct {
	month     month.Month
	items     []item
	p         store.Pending
	state     batchState
	lastSent  time.Time // when the last send's answer (or its loss) came back
	rejected  error     // the first send was rejected: split once a lookup shows none of the keys
	created   []string  // the _ids a success answer named
	rebatches int
	inherited bool // left pending by an earlier run: its records get their plan lines here
}

// NewTxID returns a random UUID (version 4) for a batch's transaction_id.
func NewTxID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// newPending describes a batch about to be sent for the first time.
func newPending(m month.Month, items []item, now time.Time) store.Pending {
	p := store.Pending{TxID: NewTxID(), Month: m.String(), FirstSentAt: now, LastSentAt: now,
		UserIDs: make([]string, len(items)), Hashes: make([]uint64, len(items))}
	for i, it := range items {
		p.UserIDs[i] = it.storeID
		p.Hashes[i] = it.hash
	}
	return p
}

// pendingRecords marks items as pending in the store.
func pendingRecords(ms string, items []item) []store.KeyedRecord {
	out := make([]store.KeyedRecord, len(items))
	for i, it := range items {
		out[i] = store.KeyedRecord{Month: ms, UserID: it.storeID, Record: store.Record{Hash: it.hash, State: store.StatePending}}
	}
	return out
}

func failedRecords(ms string, items []item, msg string) []store.KeyedRecord {
	out := make([]store.KeyedRecord, len(items))
	for i, it := range items {
		out[i] = store.KeyedRecord{Month: ms, UserID: it.storeID, Record: store.Record{State: store.StateFailed, LastError: msg}}
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

// startBatch starts the machine of a new batch of records that a lookup
// has just shown absent. It waits while too many batches are under way,
// which holds the fetcher back.
func (r *run) startBatch(ctx context.Context, m month.Month, items []item) {
	select {
	case r.live <- struct{}{}:
	case <-ctx.Done():
		r.count(m.String(), func(s *MonthSummary) { s.Pending += len(items) })
		return
	}
	r.machines.Add(1)
	go func() {
		defer func() { <-r.live; r.machines.Done() }()
		r.runBatch(ctx, &batch{month: m, items: items, state: stSave})
	}()
}

// spawn starts a machine for a batch that another one split off, or one
// an earlier run left pending. It never waits: a machine that waits for a
// place could hold the places of the ones it waits for.
func (r *run) spawn(ctx context.Context, b *batch) {
	r.machines.Add(1)
	go func() {
		defer r.machines.Done()
		r.runBatch(ctx, b)
	}()
}

// runBatch drives one batch until it is settled or left pending for the
// next run.
func (r *run) runBatch(ctx context.Context, b *batch) {
	for b.state != stDone {
		var err error
		switch b.state {
		case stSave:
			err = r.saveBatch(b)
		case stSend:
			err = r.sendBatch(ctx, b)
		case stConfirm:
			err = r.confirmBatch(ctx, b)
		case stWait:
			err = r.waitBatch(ctx, b)
		case stLookup:
			err = r.decideBatch(ctx, b)
		}
		if err != nil {
			r.leavePending(b, err)
			return
		}
	}
}

// leavePending gives up on a batch for this run: its entry stays in the
// store as last saved, and the next run's lookup settles it.
func (r *run) leavePending(b *batch, err error) {
	ms := b.month.String()
	r.count(ms, func(s *MonthSummary) { s.Pending += len(b.items) })
	if err != errStopped {
		r.log.Warn().Err(err).Str("transaction_id", b.p.TxID).Str("state", b.state.String()).Int("records", len(b.items)).
			Msg("the batch stays pending; the next run looks its keys up")
	}
}

// saveBatch: the first store transaction of a batch, before it is sent.
func (r *run) saveBatch(b *batch) error {
	if r.stopped() {
		return errStopped // nothing saved, nothing sent: the next run plans it afresh
	}
	b.p = newPending(b.month, b.items, r.e.opts.Now())
	if err := r.apply(&store.Write{PutPending: []store.Pending{b.p}, Records: pendingRecords(b.month.String(), b.items)}); err != nil {
		return err
	}
	b.state = stSend
	return nil
}

// sendBatch sends the batch and classifies the answer. Only a complete
// success goes on at once; every other answer defers to the form.
func (r *run) sendBatch(ctx context.Context, b *batch) error {
	if r.stopped() || !r.acquire(ctx) {
		return errStopped
	}
	data := make([]json.RawMessage, len(b.items))
	for i, it := range b.items {
		data[i] = it.data
	}
	created, ids, err := r.e.sink.Create(ctx, b.p.TxID, data)
	r.release()
	b.lastSent = r.e.opts.Now()
	firstSend := b.p.Resends == 0
	switch {
	case err == nil && created >= len(b.items):
		r.recordSuccess()
		b.created = ids
		b.state = stConfirm
	case err == nil:
		r.log.Warn().Str("transaction_id", b.p.TxID).Int("sent", len(b.items)).Int("created", created).
			Msg("batch_create created fewer records than sent; the form decides after the consistency delay")
		b.state = stWait
	case r.isStop(ctx, err):
		return errStopped
	case apierr.IsFatal(err):
		return r.fatal(err)
	case firstSend && apierr.ClassOf(err) == apierr.Record:
		b.rejected = err
		b.state = stWait
	default:
		r.log.Warn().Err(err).Str("transaction_id", b.p.TxID).
			Msg("batch_create outcome unknown; the form decides after the consistency delay")
		b.state = stWait
	}
	return nil
}

// confirmBatch looks the keys up right after a success. Keys not visible
// yet are deferred, never created again at once.
func (r *run) confirmBatch(ctx context.Context, b *batch) error {
	copies, err := r.lookup(ctx, b.items, b.created)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		b.state = stWait
		return nil
	}
	r.learnCreator(b, copies)
	found, missing := splitFound(b.items, copies)
	switch {
	case len(missing) == 0:
		return r.settle(ctx, b, copies, nil)
	case len(found) == 0:
		b.state = stWait
		return nil
	}
	// Some are visible: adopt them, and keep the rest under the same
	// transaction_id for lookup only, since it no longer holds all that
	// was sent under that id.
	rest := b.p
	rest.LookupOnly = true
	rest.UserIDs, rest.Hashes = idsAndHashes(missing)
	w := r.adopt(ctx, b, found, copies)
	w.DeletePending = []string{b.p.TxID}
	w.PutPending = []store.Pending{rest}
	if err := r.apply(w.Write); err != nil {
		return err
	}
	r.countCreated(b.month.String(), found, w.updates)
	b.items, b.p = missing, rest
	b.state = stWait
	return r.updateAdopted(ctx, b.month.String(), w.updates)
}

// waitBatch waits out the consistency delay after the last send.
func (r *run) waitBatch(ctx context.Context, b *batch) error {
	last := b.lastSent
	if last.IsZero() {
		last = b.p.LastSentAt
	}
	wait := last.Add(r.e.opts.ConsistencyDelay).Sub(r.e.opts.Now())
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.stop.Done():
			return errStopped
		case <-ctx.Done():
			return errStopped
		}
	}
	b.state = stLookup
	return nil
}

// decideBatch lets the form decide a deferred batch.
func (r *run) decideBatch(ctx context.Context, b *batch) error {
	if r.stopped() {
		return errStopped
	}
	copies, err := r.lookup(ctx, b.items, nil)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		return fmt.Errorf("look up a deferred batch: %w", err)
	}
	found, missing := splitFound(b.items, copies)
	switch {
	case len(missing) == 0:
		return r.settle(ctx, b, copies, nil)
	case len(found) == 0 && b.rejected != nil:
		return r.splitBatch(ctx, b)
	case len(found) == 0 && r.resendable(b):
		b.p.Resends++
		b.p.LastSentAt = r.e.opts.Now()
		if err := r.apply(&store.Write{PutPending: []store.Pending{b.p}}); err != nil {
			return err
		}
		r.log.Info().Str("transaction_id", b.p.TxID).Int("resend", b.p.Resends).
			Msg("none of the batch's keys is in the form; resending the identical batch under its transaction_id")
		b.state = stSend
		return nil
	}
	return r.settle(ctx, b, copies, missing)
}

// resendable reports whether the batch may be resent under its
// transaction_id: the form does not create again on a resend
// (Options.NeverResendSameTxID), it holds exactly what was sent, its first send is inside
// the replay window, and it has not been resent too often.
func (r *run) resendable(b *batch) bool {
	p := b.p
	if r.e.opts.NeverResendSameTxID || p.LookupOnly || p.Resends >= maxResends || r.e.opts.Now().Sub(p.FirstSentAt) >= r.e.opts.ReplayWindow || len(p.Hashes) != len(b.items) {
		return false
	}
	for i, it := range b.items {
		if !it.hasData || it.hash != p.Hashes[i] {
			return false
		}
	}
	return true
}

// settle adopts the keys found and, for missing ones, starts a new batch
// under a new transaction_id, all in one store transaction. Missing keys
// without a report to create from fail.
func (r *run) settle(ctx context.Context, b *batch, copies map[string][]FormRecord, missing []item) error {
	ms := b.month.String()
	found, _ := splitFound(b.items, copies)
	w := r.adopt(ctx, b, found, copies)
	w.DeletePending = []string{b.p.TxID}
	var create, lost []item
	for _, it := range missing {
		if it.hasData {
			create = append(create, it)
		} else {
			lost = append(lost, it)
		}
	}
	var leftover []item
	if len(create) > 0 && b.rebatches >= maxRebatches {
		// The form keeps not showing these keys: leave them pending for
		// the next run's lookup rather than send them again and again.
		rest := b.p
		rest.LookupOnly = true
		rest.UserIDs, rest.Hashes = idsAndHashes(create)
		w.PutPending = []store.Pending{rest}
		leftover, create = create, nil
	}
	w.Records = append(w.Records, failedRecords(ms, lost, "not in Jiandaoyun and no report from WeCom to create it from")...)
	var np store.Pending
	if len(create) > 0 {
		np = newPending(b.month, create, r.e.opts.Now())
		w.PutPending = append(w.PutPending, np)
		w.Records = append(w.Records, pendingRecords(ms, create)...)
	}
	if err := r.apply(w.Write); err != nil {
		return err
	}
	r.countCreated(ms, found, w.updates)
	if b.inherited {
		for _, it := range create {
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "create", Detail: "left pending by an earlier run"})
		}
	}
	for _, it := range lost {
		if err := r.recordFailure(ms, it.key, fmt.Errorf("not in Jiandaoyun and no report from WeCom to create it from"), false); err != nil {
			return err
		}
	}
	if err := r.updateAdopted(ctx, ms, w.updates); err != nil {
		return err
	}
	switch {
	case len(create) > 0:
		r.log.Info().Str("old_transaction_id", b.p.TxID).Str("transaction_id", np.TxID).Int("records", len(create)).
			Msg("keys not in the form go into a new batch")
		b.items, b.p, b.rejected, b.lastSent = create, np, nil, time.Time{}
		b.rebatches++
		b.state = stSend
	case len(leftover) > 0:
		b.items = leftover
		return fmt.Errorf("the form did not show %d created records after %d batches", len(leftover), b.rebatches)
	default:
		b.state = stDone
	}
	return nil
}

// splitBatch isolates the records Jiandaoyun rejects, now that a lookup
// has shown none of them exists: each half becomes a new batch with a new
// transaction_id, down to single records, which fail.
func (r *run) splitBatch(ctx context.Context, b *batch) error {
	ms := b.month.String()
	if len(b.items) == 1 {
		if err := r.apply(&store.Write{DeletePending: []string{b.p.TxID}, Records: failedRecords(ms, b.items, shortErr(b.rejected))}); err != nil {
			return err
		}
		b.state = stDone
		return r.recordFailure(ms, b.items[0].key, b.rejected, true)
	}
	half := len(b.items) / 2
	now := r.e.opts.Now()
	left := &batch{month: b.month, items: b.items[:half], p: newPending(b.month, b.items[:half], now), state: stSend}
	right := &batch{month: b.month, items: b.items[half:], p: newPending(b.month, b.items[half:], now), state: stSend}
	if err := r.apply(&store.Write{DeletePending: []string{b.p.TxID}, PutPending: []store.Pending{left.p, right.p}}); err != nil {
		return err
	}
	r.spawn(ctx, right)
	*b = *left
	return nil
}

// learnCreator notes who the form records as the creator of the records
// a successful create just made: that is this tool's own identity.
func (r *run) learnCreator(b *batch, copies map[string][]FormRecord) {
	if len(b.created) == 0 {
		return
	}
	ours := make(map[string]bool, len(b.created))
	for _, id := range b.created {
		ours[id] = true
	}
	for _, recs := range copies {
		for _, rec := range recs {
			if ours[rec.DataID] && rec.Creator != "" {
				r.learnAPICreator(rec.Creator)
				return
			}
		}
	}
}

// splitFound divides items into those the lookup found and those it did not.
func splitFound(items []item, copies map[string][]FormRecord) (found, missing []item) {
	for _, it := range items {
		if len(copies[it.key]) > 0 {
			found = append(found, it)
		} else {
			missing = append(missing, it)
		}
	}
	return found, missing
}

func idsAndHashes(items []item) ([]string, []uint64) {
	ids, hashes := make([]string, len(items)), make([]uint64, len(items))
	for i, it := range items {
		ids[i], hashes[i] = it.storeID, it.hash
	}
	return ids, hashes
}

// shortErr keeps stored error text small; the store cuts it at a UTF-8
// boundary.
func shortErr(err error) string { return err.Error() }

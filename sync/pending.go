package sync

import (
	"context"
	"fmt"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// A send can outlive its request timeout by little; this bounds how long
// before a crash the last send of an inherited batch may have reached the
// server, beyond the time saved with it.
const inheritedSendSlack = 2 * time.Minute

// startPendings hands every batch an earlier run left pending to a batch
// machine, before anything else, whatever months this run syncs. Each is
// deferred: the form decides after the consistency delay. A dry run only
// looks the keys up.
func (r *run) startPendings(ctx context.Context) error {
	ps, err := r.e.cp.Pendings()
	if err != nil {
		return r.fatal(fmt.Errorf("read pending batches: %w", err))
	}
	if len(ps) > 0 {
		r.log.Info().Int("batches", len(ps)).Msg("resolving batches left pending by an earlier run")
	}
	for _, p := range ps {
		if r.stopped() {
			return errStopped
		}
		m, err := month.Parse(p.Month)
		if err != nil {
			return r.fatal(fmt.Errorf("pending batch %s: %w", p.TxID, err))
		}
		items := r.pendingItems(m, p)
		if r.req.DryRun {
			if err := r.planPending(ctx, p, items); err != nil {
				return err
			}
			continue
		}
		for _, it := range items {
			r.block(it.key)
		}
		if err := r.fillPending(ctx, m, items); err != nil {
			return err
		}
		r.spawn(ctx, &batch{month: m, items: items, p: p, state: stWait, lastSent: r.inheritedLastSend(p), inherited: true})
	}
	return nil
}

// inheritedLastSend is the latest time the earlier run may have sent the
// batch. The saved time is taken before each send; a run that died just
// now may have sent it a moment ago, so a recent batch waits from now.
func (r *run) inheritedLastSend(p store.Pending) time.Time {
	if r.start.Sub(p.LastSentAt) < r.e.opts.ConsistencyDelay+inheritedSendSlack {
		return r.start
	}
	return p.LastSentAt
}

func (r *run) pendingItems(m month.Month, p store.Pending) []item {
	items := make([]item, len(p.UserIDs))
	for i, u := range p.UserIDs {
		items[i] = r.newItem(u, m)
		items[i].storeID = u // the record the batch marked pending
	}
	return items
}

// fillPending fetches and maps the batch's reports again. A user the
// source no longer returns has no data; such a record can be adopted but
// not created.
func (r *run) fillPending(ctx context.Context, m month.Month, items []item) error {
	start, end, ok := m.Span(r.req.Today)
	if !ok {
		return nil
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.userID
	}
	res, err := r.e.src.MonthData(ctx, start, end, ids)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		r.log.Warn().Err(err).Str("month", m.String()).Msg("could not fetch the reports of a pending batch; resolving it by key only")
		return nil
	}
	if !r.inRun(m) {
		// The month's own pass does not run: count the users here.
		r.count(m.String(), func(s *MonthSummary) {
			s.Users += len(ids)
			s.Fetched += len(res.Reports)
			s.Note = NotePendingOnly
		})
	}
	reports := make(map[string]Report, len(res.Reports))
	for _, rep := range res.Reports {
		reports[r.e.mapper.Key(rep.UserID, m)] = rep
	}
	for i := range items {
		rep, ok := reports[items[i].key]
		if !ok {
			continue
		}
		out, err := r.e.mapper.Map(mapping.Input{UserID: rep.UserID, Month: m, Report: rep.Report})
		if err != nil {
			continue
		}
		// The source's spelling also gives the key's legacy spelling, which
		// a form written before keys were lower-cased may hold.
		it := r.newItem(rep.UserID, m)
		it.storeID = items[i].storeID
		it.data, it.hash, it.subHash, it.hasData = out.Data, out.Hash, out.SubformHash, true
		items[i] = it
	}
	return nil
}

// planPending shows, read-only, what resolving a pending batch would find.
func (r *run) planPending(ctx context.Context, p store.Pending, items []item) error {
	copies, err := r.lookup(ctx, items, nil)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		return fmt.Errorf("look up pending batch %s: %w", p.TxID, err)
	}
	for _, it := range items {
		action, id := "pending: would create", ""
		if recs := copies[it.key]; len(recs) > 0 {
			action, id = "pending: would adopt", recs[0].DataID
		}
		r.plan(PlanLine{Month: p.Month, UserID: it.userID, Key: it.key, Action: action, DataID: id, Detail: "transaction_id " + p.TxID})
	}
	return nil
}

// NotePendingOnly is the note on a month the run did not sync, whose
// records came from a batch an earlier run left pending.
const NotePendingOnly = "settled a batch left pending by an earlier run"

// inRun reports whether the run syncs month m itself.
func (r *run) inRun(m month.Month) bool {
	for _, x := range r.req.Months {
		if x == m {
			return true
		}
	}
	return false
}

package sync

import (
	"context"
	"fmt"

	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// resolvePendings settles every batch a previous run left pending, before
// anything else, whatever months this run syncs. A batch is replayed under
// its transaction_id only while that is safe: it was sent less than the
// replay window ago, and the reports, fetched again and mapped, hash to
// exactly what was sent. Otherwise it is resolved by key. A dry run only
// looks the keys up.
func (r *run) resolvePendings(ctx context.Context) error {
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
		if err := r.fillPending(ctx, m, items); err != nil {
			return err
		}
		replay := r.replayable(p) && len(p.Hashes) == len(items)
		for i := range items {
			replay = replay && items[i].hasData && items[i].hash == p.Hashes[i]
		}
		if replay {
			r.log.Info().Str("transaction_id", p.TxID).Int("records", len(items)).Msg("replaying a pending batch with its transaction_id")
			err = r.send(ctx, p.Month, items, p, 0)
		} else {
			err = r.resolvePending(ctx, p.Month, items, p, 0)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (r *run) pendingItems(m month.Month, p store.Pending) []item {
	items := make([]item, len(p.UserIDs))
	for i, u := range p.UserIDs {
		items[i] = item{userID: u, key: r.e.mapper.Key(u, m)}
	}
	return items
}

// fillPending fetches and maps the batch's reports again. A user WeCom no
// longer returns has no data; such a record can be adopted but not created.
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
	rows := make(map[string]map[string]any, len(res.Rows))
	for _, row := range res.Rows {
		rows[row.UserID] = row.Report
	}
	for i := range items {
		rep, ok := rows[items[i].userID]
		if !ok {
			continue
		}
		out, err := r.e.mapper.Map(mapping.Input{UserID: items[i].userID, Month: m, Report: rep})
		if err != nil {
			continue
		}
		items[i].data, items[i].hash, items[i].hasData = out.Data, out.Hash, true
	}
	return nil
}

// planPending shows, read-only, what resolving a pending batch would find.
func (r *run) planPending(ctx context.Context, p store.Pending, items []item) error {
	found, err := r.findByKeys(ctx, items)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return aerr
		}
		return fmt.Errorf("look up pending batch %s: %w", p.TxID, err)
	}
	for _, it := range items {
		action, id := "pending: would create", ""
		if ids := found[it.key]; len(ids) > 0 {
			action, id = "pending: would adopt", ids[0]
		}
		r.plan(PlanLine{Month: p.Month, UserID: it.userID, Key: it.key, Action: action, DataID: id, Detail: "transaction_id " + p.TxID})
	}
	return nil
}

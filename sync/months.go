package sync

import (
	"context"
	"fmt"
	"strings"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
	"checkin-sync/wecom"
)

// fetched is one message from the fetcher to the writer.
type fetched struct {
	month month.Month
	users []string           // requested userids
	res   *wecom.MonthResult // nil when err is set or on a month-end marker
	err   error              // the fetch of this batch failed (not fatal)
	end   bool               // the month is fully fetched
	note  string             // with end: why the month was left out
	last  month.Date         // last day covered
}

// item is one record on its way through plan, resolve and write.
type item struct {
	userID  string
	key     string
	data    []byte
	hash    uint64
	dataID  string
	hasData bool
}

// syncMonths lists the users once, then fetches every month in batches
// while the batches already fetched are planned and written.
func (r *run) syncMonths(ctx context.Context) error {
	if len(r.req.Months) == 0 {
		return nil
	}
	users, err := r.e.src.Users(ctx, r.e.opts.Selection)
	if err != nil {
		if r.isStop(ctx, err) {
			return errStopped
		}
		return r.fatal(fmt.Errorf("list users: %w", err))
	}
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = u.UserID
	}
	r.mu.Lock()
	r.total = len(ids) * len(r.req.Months)
	r.mu.Unlock()
	r.log.Info().Int("users", len(ids)).Int("months", len(r.req.Months)).Msg("users listed")

	ch := make(chan fetched, 2)
	go r.fetch(ctx, ids, ch)

	incomplete := map[string]bool{}
	var firstErr error
	for msg := range ch {
		m := msg.month.String()
		switch {
		case msg.end:
			if firstErr == nil && !r.stopped() && ctx.Err() == nil {
				r.finishMonth(msg.month, msg.last, msg.note, !incomplete[m])
			}
		case msg.err != nil:
			incomplete[m] = true
			if apierr.IsFatal(msg.err) || r.isStop(ctx, msg.err) {
				if firstErr == nil {
					firstErr = msg.err
				}
				continue
			}
			for _, u := range msg.users {
				if err := r.recordFailure(m, r.e.mapper.Key(u, msg.month), fmt.Errorf("fetch from WeCom: %w", msg.err), false); err != nil && firstErr == nil {
					firstErr = err
				}
			}
		default:
			if firstErr != nil || r.stopped() {
				incomplete[m] = true
				continue
			}
			if err := r.processBatch(ctx, msg.month, msg.users, msg.res); err != nil {
				incomplete[m] = true
				if firstErr == nil {
					firstErr = err
				}
			}
			r.progress(m, len(msg.users))
		}
	}
	// Months touched but not finished still get fresh counts and last run;
	// their watermark stays where it was.
	if !r.req.DryRun {
		for _, ms := range r.sum.Months {
			if incomplete[ms.Month] {
				if m, err := month.Parse(ms.Month); err == nil {
					r.saveMonth(m, month.Date{}, false)
				}
			}
		}
	}
	if firstErr != nil {
		if r.isStop(ctx, firstErr) {
			return errStopped
		}
		if apierr.IsFatal(firstErr) {
			return r.fatal(firstErr)
		}
		return firstErr
	}
	if r.stopped() {
		return errStopped
	}
	return nil
}

// fetch requests each month's reports in batches of 100 users. A user that
// WeCom rejects is dropped for the rest of the run.
func (r *run) fetch(ctx context.Context, users []string, out chan<- fetched) {
	defer close(out)
	bad := map[string]bool{}
	current := r.req.Today.Month()
	for _, m := range r.req.Months {
		start, end, ok := m.Span(r.req.Today)
		if !ok {
			out <- fetched{month: m, end: true, note: "the month has no complete day yet"}
			continue
		}
		ids := make([]string, 0, len(users))
		for _, u := range users {
			if !bad[u] {
				ids = append(ids, u)
			}
		}
		skipped := false
		for i := 0; i < len(ids) && !skipped; i += fetchBatch {
			if r.stopped() || ctx.Err() != nil {
				out <- fetched{month: m, users: ids[i:], err: errStopped}
				return
			}
			chunk := ids[i:min(i+fetchBatch, len(ids))]
			res, err := r.e.src.MonthData(ctx, start, end, chunk)
			switch {
			case err == nil:
				for _, s := range res.Skipped {
					bad[s.UserID] = true
				}
				out <- fetched{month: m, users: chunk, res: res}
			case m == current && start == end && apierr.CodeOf(err) == 301024:
				// The reference does not confirm that WeCom accepts a
				// one-day range; when it refuses, the month waits a day.
				r.warnOnce("301024-"+m.String(), fmt.Sprintf("%s: WeCom refused a one-day range (301024); the month is skipped until tomorrow", m))
				out <- fetched{month: m, end: true, note: "WeCom refused a one-day range (301024)"}
				skipped = true
			default:
				out <- fetched{month: m, users: chunk, err: err}
				if apierr.IsFatal(err) || r.isStop(ctx, err) {
					return
				}
			}
		}
		if !skipped {
			out <- fetched{month: m, end: true, last: end}
		}
	}
}

// processBatch plans, resolves and writes the records of one fetched batch.
func (r *run) processBatch(ctx context.Context, m month.Month, users []string, res *wecom.MonthResult) error {
	ms := m.String()
	r.count(ms, func(s *MonthSummary) {
		s.Users += len(users)
		s.Fetched += len(res.Rows)
		s.Skipped += len(res.Skipped) + len(res.Missing)
	})
	for _, s := range res.Skipped {
		r.skip(s.UserID, ms, s.Reason)
	}
	for _, u := range res.Missing {
		r.skip(u, ms, "no row from WeCom")
	}
	if err := r.failMultiple(m, res.Multiple); err != nil {
		return err
	}

	items := make([]item, 0, len(res.Rows))
	for _, row := range res.Rows {
		key := r.e.mapper.Key(row.UserID, m)
		if r.isBlocked(key) {
			r.count(ms, func(s *MonthSummary) { s.Pending++ })
			continue
		}
		out, err := r.e.mapper.Map(mapping.Input{UserID: row.UserID, Month: m, Report: row.Report})
		if err != nil {
			if ferr := r.recordFailure(ms, key, fmt.Errorf("map report: %w", err), false); ferr != nil {
				return ferr
			}
			continue
		}
		for _, miss := range out.UnknownEnum {
			r.warnOnce("enum|"+miss.Target+"|"+miss.Code, fmt.Sprintf("mapping.fields.%s: code %q is not in the enum table; written as text", miss.Target, miss.Code))
		}
		items = append(items, item{userID: row.UserID, key: key, data: out.Data, hash: out.Hash, hasData: true})
	}
	if len(items) == 0 {
		return nil
	}

	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.userID
	}
	recs := make([]store.Record, len(items))
	found := make([]bool, len(items))
	if err := r.e.cp.Lookup(ms, ids, recs, found); err != nil {
		return r.fatal(fmt.Errorf("read checkpoints for %s: %w", ms, err))
	}

	var updates, resolves []item
	unchanged := 0
	for i, it := range items {
		rec := recs[i]
		switch {
		case found[i] && rec.DataID != "" && rec.State == store.StateSynced && rec.Hash == it.hash && !r.req.Force:
			unchanged++
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "unchanged", DataID: rec.DataID})
		case found[i] && rec.DataID != "":
			it.dataID = rec.DataID
			updates = append(updates, it)
		default:
			resolves = append(resolves, it)
		}
	}
	r.count(ms, func(s *MonthSummary) { s.Unchanged += unchanged })

	creates, adopted, err := r.resolve(ctx, ms, resolves)
	if err != nil {
		return err
	}
	updates = append(updates, adopted...)

	if r.req.DryRun {
		for _, it := range updates {
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "update", DataID: it.dataID})
		}
		for _, it := range creates {
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "create"})
		}
		r.count(ms, func(s *MonthSummary) { s.PlanCreate += len(creates); s.PlanUpdate += len(updates) })
		return nil
	}

	if err := r.createAll(ctx, ms, creates); err != nil {
		return err
	}
	return r.updateAll(ctx, m, updates)
}

// resolve looks keys without a data_id up in Jiandaoyun: a key found there
// is adopted (its oldest record) and becomes an update; only a key not
// found becomes a create. No record is ever created without this lookup.
func (r *run) resolve(ctx context.Context, ms string, items []item) (creates, adopted []item, err error) {
	if len(items) == 0 {
		return nil, nil, nil
	}
	found, err := r.findByKeys(ctx, items)
	if err != nil {
		if aerr := r.abort(ctx, err); aerr != nil {
			return nil, nil, aerr
		}
		// The lookup failed after its retries: these records are neither
		// created nor updated in this run.
		for _, it := range items {
			if ferr := r.recordFailure(ms, it.key, fmt.Errorf("look up by key: %w", err), false); ferr != nil {
				return nil, nil, ferr
			}
		}
		return nil, nil, nil
	}
	for _, it := range items {
		if ids := found[it.key]; len(ids) > 0 {
			it.dataID = ids[0]
			r.noteDuplicates(ms, it.key, ids)
			adopted = append(adopted, it)
		} else {
			creates = append(creates, it)
		}
	}
	return creates, adopted, nil
}

func (r *run) findByKeys(ctx context.Context, items []item) (map[string][]string, error) {
	keys := make([]string, len(items))
	for i, it := range items {
		keys[i] = it.key
	}
	return r.e.sink.FindByKeys(ctx, r.e.mapper.KeyField(), keys)
}

// noteDuplicates counts the extra records of a key; they are warnings, not
// failures, and the extra records are left in place.
func (r *run) noteDuplicates(ms, key string, ids []string) {
	if len(ids) < 2 {
		return
	}
	r.count(ms, func(s *MonthSummary) { s.Duplicates += len(ids) - 1 })
	r.log.Warn().Str("key", key).Str("kept", ids[0]).Strs("duplicates", ids[1:]).
		Msg("several Jiandaoyun records hold this key; the oldest is kept and updated")
}

// abort returns the error that ends the run for err: errStopped after a
// stop signal, the error itself when it is fatal, and nil for an ordinary
// failure that the caller counts and goes on from.
func (r *run) abort(ctx context.Context, err error) error {
	switch {
	case r.isStop(ctx, err):
		return errStopped
	case apierr.IsFatal(err):
		return r.fatal(err)
	default:
		return nil
	}
}

func (r *run) skip(userID, ms, reason string) {
	r.mu.Lock()
	r.sum.Skipped = append(r.sum.Skipped, SkippedUser{UserID: userID, Month: ms, Reason: reason})
	r.mu.Unlock()
}

func (r *run) isBlocked(key string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.blocked[key]
}

func (r *run) block(keys ...string) {
	r.mu.Lock()
	for _, k := range keys {
		r.blocked[k] = true
	}
	r.mu.Unlock()
}

// finishMonth moves the watermark when the month is complete and saves the
// month's counts.
func (r *run) finishMonth(m month.Month, last month.Date, note string, fetchedAll bool) {
	ms := r.month(m.String())
	if note != "" {
		ms.Note = note
		r.log.Info().Str("month", ms.Month).Msg("month left out: " + note)
		return
	}
	ms.Complete = fetchedAll && ms.Failed == 0 && ms.Pending == 0
	if r.req.DryRun {
		return
	}
	r.saveMonth(m, last, ms.Complete)
}

// saveMonth writes a month's counts, last run and, when complete, its
// watermark, which never moves backwards.
func (r *run) saveMonth(m month.Month, last month.Date, complete bool) {
	ms := r.month(m.String())
	info, _, err := r.e.cp.Month(ms.Month)
	if err != nil {
		r.log.Error().Err(err).Str("month", ms.Month).Msg("could not read the month's state")
		return
	}
	// The store keeps the month's record counts itself.
	info.Month = ms.Month
	info.Dirty = ms.Failed > 0 || ms.Pending > 0
	info.LastRunID = r.sum.RunID
	info.LastRunStart = r.sum.Start
	if complete {
		wm := last.String()
		switch {
		case info.Watermark == "" || strings.Compare(wm, info.Watermark) > 0:
			info.Watermark = wm
		case wm < info.Watermark:
			r.log.Info().Str("month", ms.Month).Str("watermark", info.Watermark).Str("this_run", wm).
				Msg("the watermark never moves backwards; it stays")
		}
		info.LastSuccess = r.e.opts.Now()
	}
	ms.Watermark = info.Watermark
	if err := r.e.cp.Apply(&store.Write{Months: []store.MonthInfo{info}}); err != nil {
		r.log.Error().Err(err).Str("month", ms.Month).Msg("could not save the month's state")
	}
}

// failMultiple marks users with several rows from WeCom failed: nothing is
// written for them, so a key never appears twice in a batch. A known
// data_id is kept.
func (r *run) failMultiple(m month.Month, users []string) error {
	if len(users) == 0 {
		return nil
	}
	ms := m.String()
	recs := make([]store.Record, len(users))
	found := make([]bool, len(users))
	if err := r.e.cp.Lookup(ms, users, recs, found); err != nil {
		return r.fatal(fmt.Errorf("read checkpoints for %s: %w", ms, err))
	}
	w := &store.Write{}
	for i, u := range users {
		if err := r.recordFailure(ms, r.e.mapper.Key(u, m), fmt.Errorf("several rows from WeCom for one userid; nothing written"), false); err != nil {
			return err
		}
		w.Records = append(w.Records, store.KeyedRecord{Month: ms, UserID: u,
			Record: store.Record{DataID: recs[i].DataID, State: store.StateFailed, LastError: "several rows from WeCom"}})
	}
	if r.req.DryRun {
		return nil
	}
	return r.apply(w)
}

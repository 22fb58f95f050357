package sync

import (
	"context"
	"fmt"
	stdsync "sync"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// updateAll sends one update per changed record, several at a time, and
// checkpoints the group in one store transaction. A record deleted by hand
// (4001) is looked up by key again and created only if it is really gone.
func (r *run) updateAll(ctx context.Context, m month.Month, items []item) error {
	return r.updateGroup(ctx, m.String(), items, true)
}

func (r *run) updateGroup(ctx context.Context, ms string, items []item, resolveMissing bool) error {
	if len(items) == 0 {
		return nil
	}
	errs := make([]error, len(items))
	sem := make(chan struct{}, r.e.opts.Concurrency)
	var wg stdsync.WaitGroup
	for i := range items {
		if r.stopped() || ctx.Err() != nil {
			errs[i] = errStopped
			continue
		}
		sem <- struct{}{}
		wg.Add(1)
		go func(i int) {
			defer func() { <-sem; wg.Done() }()
			errs[i] = r.e.sink.Update(ctx, items[i].dataID, items[i].data)
		}(i)
	}
	wg.Wait()

	now := r.e.opts.Now()
	w := &store.Write{}
	var missing []item
	var stop error
	updated := 0
	for i, it := range items {
		err := errs[i]
		switch {
		case err == nil:
			updated++
			r.recordSuccess()
			w.Records = append(w.Records, store.KeyedRecord{Month: ms, UserID: it.userID,
				Record: store.Record{Hash: it.hash, DataID: it.dataID, State: store.StateSynced, SyncedAt: now}})
		case r.isStop(ctx, err):
			if stop == nil {
				stop = errStopped
			}
		case apierr.IsFatal(err):
			stop = r.fatal(err)
		case apierr.ClassOf(err) == apierr.Missing && resolveMissing:
			missing = append(missing, it)
		default:
			permanent := apierr.ClassOf(err) == apierr.Record
			if ferr := r.recordFailure(ms, it.key, err, permanent); ferr != nil && stop == nil {
				stop = ferr
			}
			w.Records = append(w.Records, store.KeyedRecord{Month: ms, UserID: it.userID,
				Record: store.Record{DataID: it.dataID, State: store.StateFailed, LastError: shortErr(err)}})
		}
	}
	r.count(ms, func(s *MonthSummary) { s.Updated += updated })
	if len(w.Records) > 0 {
		if err := r.apply(w); err != nil {
			return err
		}
	}
	if stop != nil {
		return stop
	}
	if len(missing) == 0 {
		return nil
	}
	r.log.Warn().Int("records", len(missing)).Msg("records deleted in Jiandaoyun (4001); looking them up by key again")
	gone := map[string]string{}
	for i := range missing {
		gone[missing[i].key] = missing[i].dataID
		missing[i].dataID = ""
	}
	creates, adopted, err := r.resolve(ctx, ms, missing)
	if err != nil {
		return err
	}
	var again []item
	for _, it := range adopted {
		if it.dataID == gone[it.key] {
			if ferr := r.recordFailure(ms, it.key, fmt.Errorf("record %s answers 4001 but is still listed", it.dataID), false); ferr != nil {
				return ferr
			}
			continue
		}
		again = append(again, it)
	}
	if err := r.createAll(ctx, ms, creates); err != nil {
		return err
	}
	return r.updateGroup(ctx, ms, again, false)
}

package sync

import (
	"context"
	stdsync "sync"

	"checkin-sync/internal/apierr"
	"checkin-sync/store"
)

// updateAll sends one update per changed record, several at a time, and
// checkpoints the group in one store transaction. Records that are gone
// from the form (4001) are returned, for the caller to resolve by key.
func (r *run) updateAll(ctx context.Context, ms string, items []item) (missing []item, err error) {
	if len(items) == 0 {
		return nil, nil
	}
	errs := make([]error, len(items))
	var wg stdsync.WaitGroup
	for i := range items {
		if r.stopped() || !r.acquire(ctx) {
			errs[i] = errStopped
			continue
		}
		data, err := r.updatePayload(items[i])
		if err != nil {
			r.release()
			errs[i] = err
			continue
		}
		wg.Add(1)
		go func(i int) {
			defer func() { r.release(); wg.Done() }()
			errs[i] = r.e.sink.Update(ctx, items[i].dataID, data)
		}(i)
	}
	wg.Wait()

	now := r.e.opts.Now()
	w := &store.Write{}
	var stop error
	updated := 0
	for i, it := range items {
		err := errs[i]
		switch {
		case err == nil:
			updated++
			r.recordSuccess()
			w.Records = append(w.Records, syncedRecord(ms, it, hashes{all: it.hash, sub: it.subHash}, now))
		case r.isStop(ctx, err):
			if stop == nil {
				stop = errStopped
			}
		case apierr.IsFatal(err):
			stop = r.fatal(err)
		case apierr.ClassOf(err) == apierr.Missing:
			missing = append(missing, it)
		default:
			permanent := apierr.ClassOf(err) == apierr.Record
			if ferr := r.recordFailure(ms, it.key, err, permanent); ferr != nil && stop == nil {
				stop = ferr
			}
			w.Records = append(w.Records, store.KeyedRecord{Month: ms, UserID: it.storeID,
				Record: store.Record{DataID: it.dataID, State: store.StateFailed, LastError: shortErr(err)}})
		}
	}
	r.count(ms, func(s *MonthSummary) { s.Updated += updated })
	if len(w.Records) > 0 {
		if err := r.apply(w); err != nil {
			return nil, err
		}
	}
	if stop != nil {
		return nil, stop
	}
	return missing, nil
}

// updatePayload is the record's payload, less its subforms when the form
// already holds them: resending subform rows replaces their _ids and logs
// a change that did not happen.
func (r *run) updatePayload(it item) ([]byte, error) {
	if it.subHash == 0 || it.formSubHash != it.subHash {
		return it.data, nil
	}
	return r.e.mapper.WithoutSubforms(it.data)
}

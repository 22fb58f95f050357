package sync

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// item is one record on its way through planning and writing.
type item struct {
	userID  string // as the source spells it
	storeID string // the store's key: the userid in lower case
	key     string // the form's key: "<lower-case userid>|YYYY-MM"
	// legacyKey is the key in the userid's own spelling, which forms
	// written before keys were lower-cased hold; "" when it equals key.
	legacyKey string
	data      []byte
	hash      uint64
	subHash   uint64 // the hash of the subform fields alone; 0 without subforms
	// formSubHash is the subform hash of what the form holds, when known:
	// an update leaves the subforms out when it equals subHash, since
	// resending rows replaces their _ids.
	formSubHash uint64
	dataID      string
	hasData     bool
}

func (r *run) newItem(userID string, m month.Month) item {
	it := item{userID: userID, storeID: strings.ToLower(userID), key: r.e.mapper.Key(userID, m)}
	if it.storeID != userID { // only a userid with capitals has another spelling
		it.legacyKey = userID + "|" + m.String()
	}
	return it
}

// monthEnd is what the fetcher learned of a month once it was done.
type monthEnd struct {
	month      month.Month
	last       month.Date // the last day fetched
	note       string     // why the month was left out, when it was
	fetchedAll bool
}

// fetchedBatch is one message from the fetcher to the planner.
type fetchedBatch struct {
	month  month.Month
	users  []string
	res    Fetched // with Reports emptied: they are in mapped
	mapped []mappedReport
	err    error // the fetch of this batch failed (not fatal)
	end    *monthEnd
}

// mappedReport is one report mapped in the fetcher, right after it was
// decoded: only the payload waits for the lookup, not the decoded report,
// which is many times larger.
type mappedReport struct {
	userID string
	out    mapping.Result
	err    error
}

// mapReports maps the fetched reports and lets them go.
func (r *run) mapReports(m month.Month, res *Fetched) []mappedReport {
	out := make([]mappedReport, len(res.Reports))
	for i, rep := range res.Reports {
		out[i].userID = rep.UserID
		out[i].out, out[i].err = r.e.mapper.Map(mapping.Input{UserID: rep.UserID, Month: m, Report: rep.Report})
	}
	res.Reports = nil
	return out
}

// syncMonths lists the users once and fetches every month in batches of
// 100 users, while the batches already fetched are planned and written.
// Listing, fetching and writing overlap: the first batch is fetched as
// soon as 100 users are known.
func (r *run) syncMonths(ctx context.Context) ([]monthEnd, error) {
	if len(r.req.Months) == 0 {
		return nil, nil
	}
	users := newUserList()
	if r.repair() {
		n := 0
		for _, us := range r.req.Only {
			n += len(us)
		}
		r.addTotal(n)
		users.finish(nil)
	} else {
		go r.listUsers(ctx, users)
	}
	ch := make(chan fetchedBatch, 2)
	go r.fetch(ctx, users, ch)
	return r.planFetched(ctx, ch)
}

// listUsers fills users from the source; the fetcher reports a failure.
func (r *run) listUsers(ctx context.Context, users *userList) {
	err := r.e.src.Users(ctx, func(ids []string) {
		if n := users.add(ids); n > 0 {
			r.addTotal(n * len(r.req.Months))
		}
	})
	if err == nil {
		ids, _, _ := users.wait(ctx, 0)
		r.log.Info().Int("users", len(ids)).Int("months", len(r.req.Months)).Msg("users listed")
		if len(ids) == 0 {
			r.warnOnce("no-users", "no user to sync: the departments hold none the app can see, or wecom.users.exclude removes every one")
		}
	}
	users.finish(err)
}

// planFetched plans and writes the fetched batches as they come, several
// at a time, so that one batch's lookup does not hold up the next.
func (r *run) planFetched(ctx context.Context, ch <-chan fetchedBatch) ([]monthEnd, error) {
	failedFetch := map[string]bool{}
	var ends []monthEnd
	var (
		wg       stdsync.WaitGroup
		firstErr firstError
	)
	setErr := firstErr.set
	failed := func() bool { return firstErr.get() != nil }
	// Half the request slots plan: the other half settle the batches
	// already under way, which keeps the pipeline moving rather than
	// filling it.
	planning := make(chan struct{}, max(1, r.e.opts.Concurrency/2))
	for msg := range ch {
		m := msg.month.String()
		switch {
		case msg.end != nil:
			end := *msg.end
			end.fetchedAll = end.fetchedAll && !failedFetch[m]
			ends = append(ends, end)
		case msg.err != nil:
			failedFetch[m] = true
			if apierr.IsFatal(msg.err) || r.isStop(ctx, msg.err) {
				setErr(msg.err)
				continue
			}
			for _, u := range msg.users {
				if err := r.recordFailure(m, r.e.mapper.Key(u, msg.month), fmt.Errorf("fetch from WeCom: %w", msg.err), false); err != nil {
					setErr(err)
				}
			}
		default:
			if failed() || r.stopped() {
				continue
			}
			select {
			case planning <- struct{}{}:
			case <-ctx.Done():
				continue
			}
			wg.Add(1)
			go func(msg fetchedBatch) {
				defer func() { <-planning; wg.Done() }()
				if err := r.processBatch(ctx, msg.month, msg.users, msg.res, msg.mapped); err != nil {
					setErr(err)
				}
				r.progress(msg.month.String(), len(msg.users))
			}(msg)
		}
	}
	wg.Wait()
	err := firstErr.get()
	switch {
	case err == nil && r.stopped():
		return ends, errStopped
	case err == nil:
		return ends, nil
	case r.isStop(ctx, err):
		return ends, errStopped
	case apierr.IsFatal(err):
		return ends, r.fatal(err)
	}
	return ends, err
}

// fetch requests each month's reports in batches of 100 users, several
// requests in flight so that latency does not leave the rate unused; the
// source's limiter paces them. A month's end is reported after all its
// batches. A user the source rejects in one month is still asked for in
// the others.
func (r *run) fetch(ctx context.Context, users *userList, out chan<- fetchedBatch) {
	var inFlight stdsync.WaitGroup
	defer func() {
		inFlight.Wait()
		close(out)
	}()
	slots := make(chan struct{}, r.e.opts.FetchInFlight)
	var halted atomic.Bool // a fetch failed fatally or met the stop
	// waiting ends the wait for more users once halted: the listing may
	// go on for a while, and nothing more will be fetched.
	waiting, stopWaiting := context.WithCancel(ctx)
	defer stopWaiting()
	for _, m := range r.req.Months {
		start, end, ok := m.Span(r.req.Today)
		if !ok {
			out <- fetchedBatch{month: m, end: &monthEnd{month: m, note: "the month has no complete day yet"}}
			continue
		}
		var monthFetches stdsync.WaitGroup
		var skipped atomic.Bool // the source refused the month's range
		queue := &monthQueue{users: users}
		if r.repair() {
			queue.users = newUserList()
			queue.users.add(r.req.Only[m])
			queue.users.finish(nil)
		}
		for {
			chunk, err := queue.next(waiting, fetchBatch)
			switch {
			case halted.Load():
				return // the failure is reported; the month stays unfinished
			case err != nil && r.isStop(ctx, err):
				out <- fetchedBatch{month: m, users: queue.rest(), err: errStopped}
				return
			case err != nil:
				r.fatal(fmt.Errorf("list users: %w", err))
				return
			}
			if skipped.Load() || len(chunk) == 0 {
				break
			}
			if r.stopped() || ctx.Err() != nil {
				out <- fetchedBatch{month: m, users: append(chunk, queue.rest()...), err: errStopped}
				return
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				out <- fetchedBatch{month: m, users: append(chunk, queue.rest()...), err: errStopped}
				return
			}
			monthFetches.Add(1)
			inFlight.Add(1)
			go func() {
				defer func() { <-slots; monthFetches.Done(); inFlight.Done() }()
				res, err := r.e.src.MonthData(ctx, start, end, chunk)
				switch {
				case err == nil:
					mapped := r.mapReports(m, &res)
					out <- fetchedBatch{month: m, users: chunk, res: res, mapped: mapped}
				case apierr.ClassOf(err) == apierr.NoCompleteDay:
					// The source refused a one-day range: the month waits a day.
					if skipped.CompareAndSwap(false, true) {
						r.warnOnce("no-complete-day-"+m.String(), fmt.Sprintf("%s: WeCom refused a one-day range; the month is skipped until tomorrow", m))
					}
				default:
					out <- fetchedBatch{month: m, users: chunk, err: err}
					if apierr.IsFatal(err) || r.isStop(ctx, err) {
						halted.Store(true)
						stopWaiting()
					}
				}
			}()
		}
		inFlight.Add(1)
		go func() {
			defer inFlight.Done()
			monthFetches.Wait()
			if skipped.Load() {
				out <- fetchedBatch{month: m, end: &monthEnd{month: m, note: "WeCom refused a one-day range"}}
				return
			}
			out <- fetchedBatch{month: m, end: &monthEnd{month: m, last: end, fetchedAll: true}}
		}()
	}
}

// processBatch plans one fetched batch and hands its writes on: creates to
// batch machines, updates to an update group. A dry run stops after the
// plan.
func (r *run) processBatch(ctx context.Context, m month.Month, users []string, res Fetched, reports []mappedReport) error {
	ms := m.String()
	r.count(ms, func(s *MonthSummary) {
		s.Users += len(users)
		s.Fetched += len(reports)
		s.Skipped += len(res.Skipped) + len(res.Missing)
	})
	for _, s := range res.Skipped {
		r.skip(s.UserID, ms, s.Reason)
		r.plan(PlanLine{Month: ms, UserID: s.UserID, Key: r.e.mapper.Key(s.UserID, m), Action: "skip", Detail: s.Reason})
	}
	for _, u := range res.Missing {
		r.skip(u, ms, "no row from WeCom")
		r.plan(PlanLine{Month: ms, UserID: u, Key: r.e.mapper.Key(u, m), Action: "skip", Detail: "no row from WeCom"})
	}
	if err := r.failMultiple(m, res.Multiple); err != nil {
		return err
	}

	items := make([]item, 0, len(reports))
	for _, rep := range reports {
		it := r.newItem(rep.userID, m)
		if r.isBlocked(it.key) {
			continue // an unsettled batch of an earlier run holds it
		}
		out, err := rep.out, rep.err
		if err != nil {
			if ferr := r.recordFailure(ms, it.key, fmt.Errorf("map report: %w", err), false); ferr != nil {
				return ferr
			}
			continue
		}
		for _, miss := range out.UnknownEnum {
			r.warnOnce("enum|"+miss.Target+"|"+miss.Code, fmt.Sprintf("mapping.fields.%s: code %q is not in the enum table; written as text", miss.Target, miss.Code))
		}
		if len(out.UnknownEnum) > 0 {
			r.count(ms, func(s *MonthSummary) { s.UnknownEnum++ })
		}
		it.data, it.hash, it.subHash, it.hasData = out.Data, out.Hash, out.SubformHash, true
		items = append(items, it)
	}
	if len(items) == 0 {
		return nil
	}
	// Users come in listing order; a batch in key order is appended to
	// the store's pages instead of splitting them.
	slices.SortFunc(items, func(a, b item) int { return strings.Compare(a.storeID, b.storeID) })

	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = it.storeID
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
		switch redo := r.req.Redo[it.key]; {
		case redo == RedoResolve:
			resolves = append(resolves, it)
		case redo == RedoUpdate && found[i] && rec.DataID != "":
			it.dataID = rec.DataID // the form's subforms differ too: send them
			updates = append(updates, it)
		case found[i] && rec.DataID != "" && rec.State == store.StateSynced && rec.Hash == it.hash && !r.req.Force:
			unchanged++
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "unchanged", DataID: rec.DataID})
		case found[i] && rec.DataID != "":
			it.dataID, it.formSubHash = rec.DataID, rec.SubformHash
			updates = append(updates, it)
		default:
			resolves = append(resolves, it)
		}
	}
	r.count(ms, func(s *MonthSummary) { s.Unchanged += unchanged })

	// A record whose data_id turns out gone (4001) is resolved by key
	// once more; a second time it fails.
	gone := map[string]string{}
	for round := 0; round < 2 && len(updates)+len(resolves) > 0; round++ {
		creates, adopted, err := r.resolve(ctx, ms, resolves, gone)
		if err != nil {
			return err
		}
		updates = append(updates, adopted...)
		r.planWrites(ms, creates, updates)
		if r.req.DryRun {
			return nil
		}
		for _, batch := range chunks(creates) {
			r.startBatch(ctx, m, batch)
		}
		missing, err := r.updateAll(ctx, ms, updates)
		if err != nil {
			return err
		}
		updates, resolves = nil, nil
		for _, it := range missing {
			gone[it.key] = it.dataID
			it.dataID = ""
			resolves = append(resolves, it)
		}
	}
	for _, it := range resolves {
		if err := r.recordFailure(ms, it.key, fmt.Errorf("record %s is gone from Jiandaoyun and its key still finds a gone record", gone[it.key]), false); err != nil {
			return err
		}
	}
	return nil
}

// planWrites reports the creates and updates a batch plans: every record
// gets its plan line, in a real run as in a dry run.
func (r *run) planWrites(ms string, creates, updates []item) {
	for _, it := range updates {
		r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "update", DataID: it.dataID})
	}
	for _, it := range creates {
		r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "create"})
	}
	r.count(ms, func(s *MonthSummary) { s.PlanCreate += len(creates); s.PlanUpdate += len(updates) })
}

// resolve looks keys without a data_id up in the form. A key found there
// is adopted (its oldest record); it is unchanged when the form already
// holds what would be written, and an update otherwise. Only a key not
// found becomes a create: no record is ever created without this lookup.
// gone names data_ids that answered 4001, which must not be adopted again.
func (r *run) resolve(ctx context.Context, ms string, items []item, gone map[string]string) (creates, updates []item, err error) {
	if len(items) == 0 {
		return nil, nil, nil
	}
	copies, err := r.lookup(ctx, items, nil)
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
	w := &store.Write{}
	unchanged := 0
	for _, it := range items {
		recs := copies[it.key]
		if len(recs) == 0 {
			creates = append(creates, it)
			continue
		}
		kept := recs[0]
		if kept.DataID == gone[it.key] {
			if ferr := r.recordFailure(ms, it.key, fmt.Errorf("record %s answers 4001 but is still listed", kept.DataID), false); ferr != nil {
				return nil, nil, ferr
			}
			continue
		}
		r.noteDuplicates(ms, it.key, recs)
		form, same := r.compare(it, kept)
		it.dataID, it.formSubHash = kept.DataID, form.sub
		switch {
		case same && !r.req.Force:
			unchanged++
			r.plan(PlanLine{Month: ms, UserID: it.userID, Key: it.key, Action: "unchanged", DataID: it.dataID, Detail: "adopted"})
			w.Records = append(w.Records, syncedRecord(ms, it, form, r.e.opts.Now()))
		default:
			updates = append(updates, it)
		}
	}
	r.count(ms, func(s *MonthSummary) { s.Unchanged += unchanged })
	if len(w.Records) > 0 {
		if err := r.apply(w); err != nil {
			return nil, nil, err
		}
	}
	return creates, updates, nil
}

// lookup finds every record of the items' keys, grouped by the item's key
// (a record under a key's legacy spelling counts for that key), each
// group oldest first.
// created names the records a create of the items just made, if any.
func (r *run) lookup(ctx context.Context, items []item, created []string) (map[string][]FormRecord, error) {
	keys := make([]string, 0, len(items))
	byKey := make(map[string]string, len(items))
	for _, it := range items {
		keys = append(keys, it.key)
		byKey[it.key] = it.key
		if it.legacyKey != "" {
			keys = append(keys, it.legacyKey)
			byKey[it.legacyKey] = it.key
		}
	}
	if !r.acquire(ctx) {
		return nil, errStopped
	}
	var recs []FormRecord
	var err error
	if len(created) > 0 {
		recs, err = r.e.sink.LookupCreated(ctx, keys, created)
	} else {
		recs, err = r.e.sink.Lookup(ctx, keys)
	}
	r.release()
	if err != nil {
		return nil, err
	}
	out := make(map[string][]FormRecord, len(items))
	for _, rec := range recs {
		if k, ok := byKey[rec.Key]; ok {
			out[k] = append(out[k], rec)
		}
	}
	// Each group is oldest first: the sink sorts by _id, but the two
	// spellings of a key may interleave.
	for k, group := range out {
		if len(group) > 1 {
			sortByID(group)
			out[k] = group
		}
	}
	return out, nil
}

// hashes are what a checkpoint keeps of a record's content.
type hashes struct {
	all, sub uint64
}

// compare reads a form record back through the mapping. form holds the
// hashes of what the form holds (sub is 0 when its subforms could not be
// read back exactly); same is true only when that is exactly what this
// item would write. A representation that cannot be compared with
// confidence is never taken as the same.
func (r *run) compare(it item, rec FormRecord) (form hashes, same bool) {
	rb, err := r.e.mapper.ReadBack(rec.Row)
	if err != nil {
		return hashes{}, false
	}
	form.all = rb.Hash
	if rb.SubformExact {
		form.sub = rb.SubformHash
	}
	return form, rb.Exact && it.hasData && rb.Hash == it.hash
}

// noteDuplicates counts the extra records of a key; they are warnings, not
// failures, and are left for verify --fix.
func (r *run) noteDuplicates(ms, key string, recs []FormRecord) {
	if len(recs) < 2 {
		return
	}
	r.count(ms, func(s *MonthSummary) { s.Duplicates += len(recs) - 1 })
	ids := make([]string, len(recs)-1)
	for i, rec := range recs[1:] {
		ids[i] = rec.DataID
	}
	r.log.Warn().Str("key", key).Str("kept", recs[0].DataID).Strs("duplicates", ids).
		Msg("several Jiandaoyun records hold this key; the oldest is kept and updated")
}

func syncedRecord(ms string, it item, h hashes, now time.Time) store.KeyedRecord {
	return store.KeyedRecord{Month: ms, UserID: it.storeID, Record: store.Record{
		Hash: h.all, SubformHash: h.sub, DataID: it.dataID, State: store.StateSynced, SyncedAt: now}}
}

func sortByID(recs []FormRecord) {
	sort.Slice(recs, func(i, j int) bool { return recs[i].DataID < recs[j].DataID })
}

// failMultiple marks users with several rows from WeCom failed: nothing is
// written for them, so a key never appears twice in a batch. A known
// data_id is kept.
func (r *run) failMultiple(m month.Month, users []string) error {
	if len(users) == 0 {
		return nil
	}
	ms := m.String()
	ids := make([]string, len(users))
	for i, u := range users {
		ids[i] = strings.ToLower(u)
	}
	recs := make([]store.Record, len(users))
	found := make([]bool, len(users))
	if err := r.e.cp.Lookup(ms, ids, recs, found); err != nil {
		return r.fatal(fmt.Errorf("read checkpoints for %s: %w", ms, err))
	}
	w := &store.Write{}
	for i, u := range users {
		if err := r.recordFailure(ms, r.e.mapper.Key(u, m), fmt.Errorf("several rows from WeCom for one userid; nothing written"), false); err != nil {
			return err
		}
		w.Records = append(w.Records, store.KeyedRecord{Month: ms, UserID: ids[i],
			Record: store.Record{DataID: recs[i].DataID, State: store.StateFailed, LastError: "several rows from WeCom"}})
	}
	return r.apply(w)
}

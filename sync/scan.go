package sync

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	stdsync "sync"
	"sync/atomic"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
)

// scanPage is the page size of a form scan: the largest data/list allows.
const scanPage = 100

// scanWorkers read the records of pages back while the next pages are on
// their way: a scan is bound by the list rate only if that keeps up.
const scanWorkers = 2

// minPartition is the fewest records, by the store's count, a scan
// partition is made for: each costs a data/get to check where it starts
// and a page that runs past its end.
var minPartition = 2000

// sampleEach is how many of the store's data_ids per partition its start
// is chosen among.
const sampleEach = 64

// startTries is how many of the store's data_ids a partition tries as
// its start before it gives up and leaves its records to the previous one.
const startTries = 3

// errNoSplit is why a scan in partitions gives way to one walk: the form
// does not behave as the split relies on, and a single walk does not rely
// on it.
var errNoSplit = errors.New("the form cannot be read in parts")

// errOutOfOrder is a page whose _ids do not ascend as strings.
var errOutOfOrder = fmt.Errorf("%w: its records do not come in ascending _id order", errNoSplit)

// errStartGone is a part that ran past the start of the next one without
// meeting it: the record was deleted since it was checked, and what the
// form answers after an _id it does not hold is not documented.
var errStartGone = fmt.Errorf("%w: the record where a part starts is gone", errNoSplit)

// formIndex is the form as a scan read it. Rows are not kept, only what
// the mapping reads back from them.
type formIndex struct {
	byKey  map[string][]scanned // normalized key → copies, oldest first
	bad    []scanned            // empty key, or a key without a month; in _id order
	months map[string]bool      // months the keys name
	count  int
	scan   int32 // the walk through the form that made the index
}

// scanned is one form record as a scan keeps it.
type scanned struct {
	DataID, Key string
	read        readBackSum
}

// readBackSum is what a scan keeps of a record's read-back.
type readBackSum struct {
	ok           bool // read back at all
	hash, sub    uint64
	exact, subOK bool
}

// same reports whether the record holds exactly the content of hash.
func (r readBackSum) same(hash uint64) bool { return r.ok && r.exact && r.hash == hash }

// foundRecord is a synced checkpoint's record as a scan finds it, under
// whatever key the form now holds it. Only the walk that finds the record
// writes it, and only read once the walk is over.
type foundRecord struct {
	hash    uint64       // the checkpoint's
	seen    atomic.Int32 // the walk that found the record
	differs bool
	row     map[string]any // when it differs, for --deep
	next    *foundRecord   // another checkpoint naming the same record
}

func (f *foundRecord) seenIn(scan int32) bool { return f.seen.Load() == scan }

// normKey splits a form key into its normalized form ("<lower-case
// userid>|YYYY-MM"), its userid and its month; ok is false for an empty
// key or one whose month cannot be parsed.
func normKey(k string) (key, userid string, m month.Month, ok bool) {
	i := strings.LastIndexByte(k, '|')
	if i <= 0 {
		return "", "", month.Month{}, false
	}
	m, err := month.Parse(k[i+1:])
	if err != nil {
		return "", "", month.Month{}, false
	}
	userid = strings.ToLower(k[:i])
	return userid + "|" + m.String(), userid, m, true
}

// scanRange is one partition of a scan: the records whose _id is after
// after and, unless through is "", at most through.
type scanRange struct {
	after, through string
}

func (r scanRange) holds(id string) bool {
	return id > r.after && (r.through == "" || id <= r.through)
}

// scanJob is one page of a partition, for a worker to read back.
type scanJob struct {
	recs  []FormRecord
	rng   scanRange
	after string // the cursor the page was asked with
	scan  int32  // the walk it belongs to
}

// pageRead is one page as a scan worker read it.
type pageRead struct {
	recs []pageRecord // those the scan indexes
	read int          // records of the page's partition, probe records left out
	err  error
}

// pageRecord is a record to index, with its normalized key and month
// ("" for a key without one).
type pageRecord struct {
	scanned
	key, month string
}

// scanForm reads every record of the form. With a month set, a record of
// another month is left out; records with an empty or unparsable key are
// kept only without one. checkpoints, by data_id, are verify's: each
// record a checkpoint names is checked against it as it is read.
//
// data/list pages on with a cursor, so one walk through the form has one
// request in flight, and under latency it cannot reach the list rate. The
// walk is therefore split at data_ids the store knows (known) and the
// partitions read at once, within the sink's limits. A start is only ever
// an _id a data/get has just shown in the form, since the reference only
// documents the cursor as the _id of a record read, and a part reads on
// until it meets the next part's start. The split relies on _ids
// ascending as strings, which every page is checked for. Should a page
// break that order, or a start vanish before the part before it meets
// it, the form is read again in one walk.
func (e *Engine) scanForm(ctx context.Context, months map[string]bool, checkpoints map[string]*foundRecord, known []string) (*formIndex, error) {
	ranges, err := e.scanRanges(ctx, known)
	if err != nil {
		return nil, err
	}
	idx, err := e.scanParts(ctx, 1, months, checkpoints, ranges, len(known))
	if errors.Is(err, errNoSplit) {
		e.opts.Log.Warn().Err(err).Msg("reading the form again in one walk, without splitting it")
		idx, err = e.scanParts(ctx, 2, months, checkpoints, []scanRange{{}}, len(known))
	}
	return idx, err
}

// scanParts is walk number scan through the form: it reads the partitions
// at once and indexes what they hold. sizeHint is how many records the
// form likely holds.
func (e *Engine) scanParts(ctx context.Context, scan int32, months map[string]bool, checkpoints map[string]*foundRecord, ranges []scanRange, sizeHint int) (*formIndex, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan scanJob, scanWorkers)
	var firstErr firstError
	fail := func(err error) {
		firstErr.set(err)
		cancel()
	}
	var readers stdsync.WaitGroup
	for _, rng := range ranges {
		readers.Add(1)
		go func() {
			defer readers.Done()
			after := rng.after
			for {
				recs, err := e.sink.Scan(ctx, after, scanPage)
				if err != nil {
					fail(fmt.Errorf("read the form: %w", err))
					return
				}
				select {
				case jobs <- scanJob{recs: recs, rng: rng, after: after, scan: scan}:
				case <-ctx.Done():
					return
				}
				last := ""
				if len(recs) > 0 {
					last = recs[len(recs)-1].DataID
				}
				switch {
				case rng.through != "" && slices.ContainsFunc(recs, func(r FormRecord) bool { return r.DataID == rng.through }):
					return // the next part reads on from here
				case rng.through != "" && last > rng.through:
					fail(fmt.Errorf("read the form: %w: %q", errStartGone, rng.through))
					return
				case len(recs) < scanPage:
					return
				case last == after:
					// A form that ignores the cursor would be read forever.
					fail(fmt.Errorf("read the form: a full page after %q ends with that record again", after))
					return
				}
				after = last
			}
		}()
	}
	go func() {
		readers.Wait()
		close(jobs)
	}()

	results := make(chan pageRead, scanWorkers)
	var workers stdsync.WaitGroup
	for range scanWorkers {
		workers.Add(1)
		go func() {
			defer workers.Done()
			for job := range jobs {
				res := e.readPage(job, months, checkpoints)
				if res.err != nil {
					fail(res.err)
				}
				results <- res
			}
		}()
	}
	go func() {
		workers.Wait()
		close(results)
	}()

	idx := &formIndex{byKey: make(map[string][]scanned, sizeHint), months: map[string]bool{}, scan: scan}
	for res := range results {
		if res.err != nil {
			continue
		}
		idx.count += res.read
		for _, rec := range res.recs {
			if rec.key == "" {
				idx.bad = append(idx.bad, rec.scanned)
				continue
			}
			idx.byKey[rec.key] = append(idx.byKey[rec.key], rec.scanned)
			idx.months[rec.month] = true
		}
	}
	// Every worker has stopped, so every reader has too.
	switch {
	case firstErr.get() != nil:
		return nil, firstErr.get()
	case ctx.Err() != nil:
		return nil, fmt.Errorf("read the form: %w", ctx.Err())
	}
	for _, group := range idx.byKey {
		sortScanned(group)
	}
	sortScanned(idx.bad)
	return idx, nil
}

// readPage reads back the records of a page the scan indexes: those of
// the page's partition, in the months asked for.
func (e *Engine) readPage(job scanJob, months map[string]bool, checkpoints map[string]*foundRecord) (res pageRead) {
	res.recs = make([]pageRecord, 0, len(job.recs))
	// Only a form read in parts relies on the order.
	split := job.rng != scanRange{}
	prev := job.after
	for _, rec := range job.recs {
		if split && rec.DataID <= prev {
			res.err = fmt.Errorf("read the form: %w: %q came after %q", errOutOfOrder, rec.DataID, prev)
			return res
		}
		prev = rec.DataID
		if !job.rng.holds(rec.DataID) {
			continue // the next partition's
		}
		if IsProbeKey(rec.Key) {
			continue // a write probe's own record, on a form it should not be on
		}
		res.read++
		key, _, m, ok := normKey(rec.Key)
		ms := ""
		if ok {
			ms = m.String()
		}
		if months != nil && (!ok || !months[ms]) {
			continue
		}
		sc := scanned{DataID: rec.DataID, Key: rec.Key}
		if rb, err := e.mapper.ReadBack(rec.Row); err == nil {
			sc.read = readBackSum{ok: true, hash: rb.Hash, sub: rb.SubformHash, exact: rb.Exact, subOK: rb.SubformExact}
		}
		for f := checkpoints[rec.DataID]; f != nil; f = f.next {
			if f.seen.Swap(job.scan) == job.scan {
				break // a record served twice in one walk is checked once
			}
			f.differs = !sc.read.same(f.hash)
			f.row = nil
			if f.differs {
				f.row = rec.Row
			}
		}
		res.recs = append(res.recs, pageRecord{scanned: sc, key: key, month: ms})
	}
	return res
}

// scanRanges splits the form at data_ids of known, the store's, into as
// many partitions as the sink has requests in flight, each of at least
// minPartition records by the store's count. Each start is checked with
// a data/get; one the form no longer has is passed over for the next
// sampled _id, and after startTries misses the partition is merged into
// the one before it.
func (e *Engine) scanRanges(ctx context.Context, known []string) ([]scanRange, error) {
	n := min(e.opts.Concurrency, len(known)/minPartition)
	if n < 2 {
		return []scanRange{{}}, nil
	}
	// Starts at quantiles of a sample split about as evenly as exact ones,
	// without sorting every _id.
	step := max(1, len(known)/(sampleEach*n))
	ids := make([]string, 0, len(known)/step+1)
	for i := 0; i < len(known); i += step {
		ids = append(ids, known[i])
	}
	sort.Strings(ids)
	starts := make([]string, n-1)
	errs := make([]error, n-1)
	var wg stdsync.WaitGroup
	for i := range starts {
		wg.Add(1)
		go func() {
			defer wg.Done()
			at := (i + 1) * len(ids) / n
			for try := 0; try < startTries && at+try < len(ids); try++ {
				id := ids[at+try]
				_, err := e.sink.Get(ctx, id)
				switch {
				case err == nil:
					starts[i] = id
					return
				case apierr.ClassOf(err) != apierr.Missing:
					errs[i] = fmt.Errorf("read the form: check where a part of the scan starts: %w", err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	ranges := []scanRange{{}}
	for _, id := range starts {
		last := &ranges[len(ranges)-1]
		if id == "" || id <= last.after {
			continue // merged into the partition before
		}
		last.through = id
		ranges = append(ranges, scanRange{after: id})
	}
	return ranges, nil
}

func sortScanned(recs []scanned) {
	sort.Slice(recs, func(i, j int) bool { return recs[i].DataID < recs[j].DataID })
}

// firstError keeps the first error that goroutines working together
// report: the one that explains why the others stopped.
type firstError struct {
	mu  stdsync.Mutex
	err error
}

func (f *firstError) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err == nil {
		f.err = err
	}
}

func (f *firstError) get() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

package sync

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	stdsync "sync"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// Limits of one batch_create call and of the write protocol.
const (
	maxBatchRecords = 100
	// The documented request limit is 2 MB; 1.5 MB leaves room for the
	// envelope and for any difference in how the server counts.
	maxBatchBytes = 1500 * 1000
	// WeCom accepts at most 100 userids per month-data call.
	fetchBatch = 100
	// Ten permanent record failures in a row mean something is wrong with
	// every record (the form, the mapping), not with one of them.
	maxConsecutiveFailures = 10
	// An identical batch is resent under its transaction_id at most this
	// often; after that its keys go into a new batch.
	maxResends = 3
	// A batch's keys are re-batched at most this often in one run; then
	// the batch waits, pending, for the next run's lookup.
	maxRebatches = 4
	// Newer copies of a key deleted in one run; beyond this, deleting
	// stops with a warning, since so many copies mean something else is
	// writing to the form.
	maxDeletes = 100
	// A copy older than this may hold someone's work: it is never deleted.
	maxDeleteAge = time.Hour
)

// DefaultReplayWindow is how long after its first send a batch may be
// resent with the same transaction_id. The reference gives one hour for
// the server's window, unverified, so a quarter of it is kept in reserve.
const DefaultReplayWindow = 45 * time.Minute

// DefaultConsistencyDelay is how long after a batch's last send its keys
// are looked up when the answer did not settle it.
const DefaultConsistencyDelay = 10 * time.Second

// Options configure an Engine.
type Options struct {
	Concurrency      int           // Jiandaoyun requests in flight; the Sink enforces its own limit too
	FetchInFlight    int           // month-data requests in flight; 1 when zero. The Source paces them
	ReplayWindow     time.Duration // DefaultReplayWindow when zero
	ConsistencyDelay time.Duration // DefaultConsistencyDelay when zero
	Log              zerolog.Logger
	Now              func() time.Time
	OnProgress       func(Progress)
	OnPlan           func(PlanLine) // every record's plan line; nil to skip

	// NeverResendSameTxID: a batch whose outcome is unknown is never sent
	// again under its transaction_id; after the lookup its missing keys go
	// into a batch with a new one. Set when a write probe found that the
	// form creates again on such a resend (ProbeResult.Adapt).
	NeverResendSameTxID bool
}

// Request is one run.
type Request struct {
	Command string
	Months  []month.Month
	Today   month.Date
	DryRun  bool // plan only: the engine stops before any write
	Force   bool // send an update for every known record, whatever its hash

	// A repair (verify --fix) sets the fields below. Only names, for each
	// month, the userids to fetch instead of listing the users; such a run
	// leaves the months' state and watermarks alone, since it does not go
	// through every user.
	Only map[month.Month][]string
	// Redo names form keys to write whatever their checkpoint says:
	// RedoResolve keys are looked up by key, then adopted or created;
	// RedoUpdate keys are updated from the current report.
	Redo map[string]Redo
	// Delete names records to delete before anything else; each is read
	// whole first, logged with its content and kept in the run's history.
	Delete []Deletion
}

// Redo is how a repair rewrites one key.
type Redo int

const (
	RedoNone    Redo = iota
	RedoResolve      // the stored data_id is gone: look the key up, adopt or create
	RedoUpdate       // the form holds other content: update it from the report
)

// Deletion is one record a repair deletes: a newer copy of Key.
type Deletion struct {
	Month  string
	Key    string
	DataID string
	Kept   string // the copy kept, the oldest
}

// repair reports whether the run is a repair limited to some users.
func (r *run) repair() bool { return r.req.Only != nil }

// Engine syncs months from a Source to a Sink, checkpointing in Checkpoints.
type Engine struct {
	src    Source
	sink   Sink
	cp     Checkpoints
	mapper *mapping.Mapper
	opts   Options
}

// New returns an engine. A dry run should be given the read-only wrappers
// DryRunSink and DryRunCheckpoints, so that nothing can write whatever the
// engine does.
func New(src Source, sink Sink, cp Checkpoints, mapper *mapping.Mapper, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = DefaultReplayWindow
	}
	if opts.ConsistencyDelay <= 0 {
		opts.ConsistencyDelay = DefaultConsistencyDelay
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.FetchInFlight < 1 {
		opts.FetchInFlight = 1
	}
	return &Engine{src: src, sink: sink, cp: cp, mapper: mapper, opts: opts}
}

// errStopped ends work after a stop signal; it is not a failure.
var errStopped = errors.New("stopped by signal")

// run is the state of one Run call. Everything the batches share is
// behind mu and changed only through the methods in this file.
type run struct {
	e     *Engine
	req   Request
	log   zerolog.Logger
	stop  context.Context // soft: no new request after it is done
	sum   *Summary
	start time.Time

	cancel   context.CancelFunc // stops everything on a fatal error
	machines stdsync.WaitGroup  // running create batches
	slots    chan struct{}      // Jiandaoyun requests in flight
	// live bounds the new batches under way, so that fetching cannot run
	// far ahead of writing and hold every record in memory.
	live chan struct{}

	mu         stdsync.Mutex
	months     map[string]*MonthSummary
	fatalErr   error
	consecFail int
	warned     map[string]bool
	blocked    map[string]bool // keys held by an unsettled batch: never planned again in this run
	done       int
	total      int
	apiCreator string // the username Jiandaoyun records as the creator of API writes
	deleted    []store.DeletedRecord
	deletes    int // deletes made or under way, against maxDeletes
}

// Run syncs req.Months. ctx bounds every request; stop is the soft signal
// after which no new request starts (ctx should end some seconds after it).
// The summary is always returned; Summary.Err holds what stopped the run.
func (e *Engine) Run(ctx context.Context, stop context.Context, req Request) *Summary {
	now := e.opts.Now()
	r := &run{
		e: e, req: req, log: e.opts.Log, stop: stop, start: now,
		sum:     &Summary{RunID: store.NewRunID(now), Start: now, DryRun: req.DryRun},
		months:  map[string]*MonthSummary{},
		warned:  map[string]bool{},
		blocked: map[string]bool{},
		slots:   make(chan struct{}, e.opts.Concurrency),
		live:    make(chan struct{}, e.opts.Concurrency),
	}
	ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	for _, m := range req.Months {
		r.month(m.String())
	}
	// A dry run goes through the same steps: its checkpoints drop every
	// write, and it stops after planning.
	if err := e.cp.PutRun(r.runRecord(OutcomeRunning, 0)); err != nil {
		r.sum.Err = fmt.Errorf("record run start: %w", err)
		return r.sum
	}
	var err error
	if !r.repair() {
		err = r.markStarted()
	}
	if err != nil {
		// Nothing was fetched or sent: the run stops here, recorded as
		// failed with the cause.
		r.finish(ctx, err)
		return r.sum
	}
	r.noteMappingChange()
	r.loadAPICreator()

	err = r.startPendings(ctx)
	var ends []monthEnd
	if err == nil {
		err = r.deleteCopies(ctx)
	}
	if err == nil {
		ends, err = r.syncMonths(ctx)
	}
	r.machines.Wait()
	if err == nil {
		err = r.firstFatal()
	}
	if err == nil && !r.repair() {
		for _, end := range ends {
			r.finishMonth(end)
		}
	}
	r.finish(ctx, err)
	return r.sum
}

func (r *run) firstFatal() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.fatalErr
}

// finish settles the outcome and records the run.
func (r *run) finish(ctx context.Context, err error) {
	// A fatal error cancels the run's context, so it must be taken before
	// the context is asked whether the run was merely stopped.
	ferr := r.firstFatal()
	switch {
	case ferr != nil:
		r.sum.Err = ferr
	case err == nil:
	case r.isStop(ctx, err):
		r.sum.Interrupted = true
	default:
		r.sum.Err = err
	}
	if r.stopped() {
		r.sum.Interrupted = true
	}
	r.sum.End = r.e.opts.Now()
	r.sum.Calls = map[string]retry.EndpointStats{}
	for k, v := range r.e.src.Stats() {
		r.sum.Calls["wecom "+k] = v
	}
	for k, v := range r.e.sink.Stats() {
		r.sum.Calls["jiandaoyun "+k] = v
	}
	r.sum.Deleted = r.deleted
	// Months touched but not finished get fresh counts and last run;
	// their watermark stays where it was.
	for _, ms := range r.sum.Months {
		if !ms.finished && ms.touched() && !r.repair() {
			if m, err := month.Parse(ms.Month); err == nil {
				r.saveMonth(m, month.Date{}, false, false)
			}
		}
	}
	outcome, code := Verdict(r.sum)
	if perr := r.e.cp.PutRun(r.runRecord(outcome, code)); perr != nil {
		r.log.Error().Err(perr).Msg("could not record the run in the store")
	}
}

func (r *run) runRecord(outcome string, code int) store.Run {
	t := r.sum.Totals()
	run := store.Run{
		ID: r.sum.RunID, Command: r.req.Command, Start: r.sum.Start, End: r.sum.End,
		Fetched: t.Fetched, Created: t.Created, Updated: t.Updated, Unchanged: t.Unchanged,
		Failed: t.Failed, Skipped: t.Skipped, Duplicates: t.Duplicates,
		Outcome: outcome, ExitCode: code, Deleted: r.sum.Deleted,
	}
	for _, m := range r.sum.Months {
		run.Months = append(run.Months, m.Month)
	}
	if len(r.sum.Calls) > 0 {
		run.Calls, run.Retries = map[string]int{}, map[string]int{}
		for k, v := range r.sum.Calls {
			run.Calls[k] = v.Calls
			run.Retries[k] = v.Retries
		}
	}
	if r.sum.Err != nil {
		run.Error = r.sum.Err.Error()
	}
	return run
}

// mappingMeta is what the store remembers of the mapping, to log changes.
type mappingMeta struct {
	Fingerprint uint64   `json:"fingerprint"`
	Targets     []string `json:"targets"`
}

const (
	metaMapping    = "mapping"
	metaAPICreator = "api_creator"
)

// noteMappingChange logs a changed mapping: every record hashes differently
// now, so the run will update them all.
func (r *run) noteMappingChange() {
	cur := mappingMeta{Fingerprint: r.e.mapper.Fingerprint(), Targets: r.e.mapper.Targets()}
	raw, err := r.e.cp.GetMeta(metaMapping)
	if err != nil {
		r.log.Warn().Err(err).Msg("could not read the stored mapping fingerprint")
		return
	}
	var old mappingMeta
	if len(raw) > 0 && json.Unmarshal(raw, &old) == nil && old.Fingerprint != cur.Fingerprint {
		added, removed := mapping.DiffTargets(old.Targets, cur.Targets)
		r.log.Warn().Strs("added", added).Strs("removed", removed).
			Msg("the mapping changed since the last run: changed records will be updated; removed fields are not cleared in Jiandaoyun")
	}
	if len(raw) == 0 || old.Fingerprint != cur.Fingerprint {
		b, _ := json.Marshal(cur)
		if err := r.e.cp.PutMeta(metaMapping, b); err != nil {
			r.log.Warn().Err(err).Msg("could not save the mapping fingerprint")
		}
	}
}

// loadAPICreator reads who Jiandaoyun records as the creator of this
// tool's writes, learned from an earlier create.
func (r *run) loadAPICreator() {
	raw, err := r.e.cp.GetMeta(metaAPICreator)
	if err != nil {
		r.log.Warn().Err(err).Msg("could not read the stored API creator")
		return
	}
	r.mu.Lock()
	r.apiCreator = string(raw)
	r.mu.Unlock()
}

// learnAPICreator remembers the creator of a record this run created.
func (r *run) learnAPICreator(username string) {
	if username == "" {
		return
	}
	r.mu.Lock()
	changed := r.apiCreator != username
	r.apiCreator = username
	r.mu.Unlock()
	if changed {
		if err := r.e.cp.PutMeta(metaAPICreator, []byte(username)); err != nil {
			r.log.Warn().Err(err).Msg("could not save the API creator")
		}
	}
}

func (r *run) creator() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.apiCreator
}

// stopped reports whether the soft stop signal has arrived.
func (r *run) stopped() bool { return r.stop.Err() != nil }

// fatal records the first fatal error and stops everything.
func (r *run) fatal(err error) error {
	r.mu.Lock()
	if r.fatalErr == nil {
		r.fatalErr = err
	}
	r.mu.Unlock()
	r.cancel()
	return err
}

// month returns a month's summary, creating it for a month outside the
// run's window (a pending batch of an older month), so that everything
// that happens is counted in its own month.
func (r *run) month(m string) *MonthSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.monthLocked(m)
}

func (r *run) monthLocked(m string) *MonthSummary {
	ms := r.months[m]
	if ms == nil {
		ms = &MonthSummary{Month: m}
		r.months[m] = ms
		r.sum.Months = append(r.sum.Months, ms)
	}
	return ms
}

// count applies fn to a month's summary under the lock.
func (r *run) count(m string, fn func(ms *MonthSummary)) {
	r.mu.Lock()
	fn(r.monthLocked(m))
	r.mu.Unlock()
}

// recordFailure notes a record that could not be written, in its own
// month. Permanent failures in a row beyond the limit become fatal.
func (r *run) recordFailure(m, key string, err error, permanent bool) error {
	r.mu.Lock()
	r.sum.Failures = append(r.sum.Failures, Failure{Key: key, Month: m, Error: err.Error()})
	r.monthLocked(m).Failed++
	if permanent {
		r.consecFail++
	}
	n := r.consecFail
	r.mu.Unlock()
	r.log.Warn().Str("key", key).Err(err).Msg("record failed")
	if n >= maxConsecutiveFailures {
		return r.fatal(fmt.Errorf("%d records in a row were rejected by Jiandaoyun, the last with: %w; check the form's field types against the mapping", n, err))
	}
	return nil
}

func (r *run) recordSuccess() {
	r.mu.Lock()
	r.consecFail = 0
	r.mu.Unlock()
}

func (r *run) warnOnce(key, msg string) {
	r.mu.Lock()
	seen := r.warned[key]
	r.warned[key] = true
	if !seen {
		r.sum.Warnings = append(r.sum.Warnings, msg)
	}
	r.mu.Unlock()
	if !seen {
		r.log.Warn().Msg(msg)
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

func (r *run) plan(line PlanLine) {
	if r.e.opts.OnPlan != nil {
		r.e.opts.OnPlan(line)
	}
}

// addTotal grows the records the progress counts toward, as users are
// listed.
func (r *run) addTotal(n int) {
	r.mu.Lock()
	r.total += n
	r.mu.Unlock()
}

func (r *run) progress(m string, n int) {
	r.mu.Lock()
	r.done += n
	p := Progress{Month: m, Done: r.done, Total: r.total}
	r.mu.Unlock()
	if r.e.opts.OnProgress != nil {
		r.e.opts.OnProgress(p)
	}
}

// apply commits one store transaction; a failure stops the run, since no
// later step may rest on a checkpoint that was not saved.
func (r *run) apply(w *store.Write) error {
	if err := r.e.cp.Apply(w); err != nil {
		return r.fatal(fmt.Errorf("save checkpoints: %w", err))
	}
	return nil
}

// isStop reports whether err comes from the run being stopped (signal or
// a fatal error elsewhere) rather than from the request itself.
func (r *run) isStop(ctx context.Context, err error) bool {
	return errors.Is(err, errStopped) || ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || apierr.ClassOf(err) == 0)
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

// acquire takes one of the concurrency slots for a Jiandaoyun request.
func (r *run) acquire(ctx context.Context) bool {
	select {
	case r.slots <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

func (r *run) release() { <-r.slots }

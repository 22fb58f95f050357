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
	"checkin-sync/wecom"
)

// Limits of one batch_create call.
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
	// How often an unknown create outcome is replayed within one run
	// before the batch is resolved by key instead.
	maxReplays = 3
)

// DefaultReplayWindow is how long after its first send a batch may be
// replayed with the same transaction_id. The reference gives one hour for
// the server's window, unverified, so we keep a quarter of it in reserve.
const DefaultReplayWindow = 45 * time.Minute

// Options configure an Engine.
type Options struct {
	Selection    wecom.Selection
	Concurrency  int           // updates in flight; the Sink enforces its own limit too
	ReplayWindow time.Duration // DefaultReplayWindow when zero
	Retry        retry.Policy  // backoff between replays of an unknown outcome
	Log          zerolog.Logger
	Now          func() time.Time
	OnProgress   func(Progress)
	OnPlan       func(PlanLine) // every record's plan line; nil to skip
}

// Request is one run.
type Request struct {
	Command string
	Months  []month.Month
	Today   month.Date
	DryRun  bool
	Force   bool // send an update for every known record, whatever its hash
}

// Engine syncs months from a Source to a Sink, checkpointing in Checkpoints.
type Engine struct {
	src    Source
	sink   Sink
	cp     Checkpoints
	mapper *mapping.Mapper
	opts   Options
}

// New returns an engine. A dry run must be given read-only wrappers (see
// DryRunSink and DryRunCheckpoints); the engine also never calls a write
// on them.
func New(src Source, sink Sink, cp Checkpoints, mapper *mapping.Mapper, opts Options) *Engine {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ReplayWindow <= 0 {
		opts.ReplayWindow = DefaultReplayWindow
	}
	if opts.Concurrency < 1 {
		opts.Concurrency = 1
	}
	if opts.Retry.MaxAttempts == 0 {
		opts.Retry = retry.Default()
	}
	return &Engine{src: src, sink: sink, cp: cp, mapper: mapper, opts: opts}
}

// errStopped ends work after a stop signal; it is not a failure.
var errStopped = errors.New("stopped by signal")

// run is the state of one Run call.
type run struct {
	e    *Engine
	req  Request
	log  zerolog.Logger
	stop context.Context // soft: no new request after it is done
	sum  *Summary

	cancel context.CancelFunc // stops the pipeline on a fatal error

	mu         stdsync.Mutex
	months     map[string]*MonthSummary
	fatalErr   error
	consecFail int
	warned     map[string]bool
	blocked    map[string]bool // keys of pending batches left unresolved: never created again in this run
	done       int
	total      int
}

// Run syncs req.Months. ctx bounds every request; stop is the soft signal
// after which no new request starts (ctx should end some seconds after it).
// The summary is always returned; Summary.Err holds a fatal error.
func (e *Engine) Run(ctx context.Context, stop context.Context, req Request) *Summary {
	now := e.opts.Now()
	r := &run{
		e: e, req: req, log: e.opts.Log, stop: stop,
		sum:     &Summary{RunID: store.NewRunID(now), Start: now, DryRun: req.DryRun},
		months:  map[string]*MonthSummary{},
		warned:  map[string]bool{},
		blocked: map[string]bool{},
	}
	ctx, r.cancel = context.WithCancel(ctx)
	defer r.cancel()
	for _, m := range req.Months {
		ms := &MonthSummary{Month: m.String()}
		r.months[ms.Month] = ms
		r.sum.Months = append(r.sum.Months, ms)
	}
	if !req.DryRun {
		if err := e.cp.PutRun(r.runRecord("running")); err != nil {
			r.sum.Err = fmt.Errorf("record run start: %w", err)
			return r.sum
		}
		r.noteMappingChange()
	}

	err := r.resolvePendings(ctx)
	if err == nil {
		err = r.syncMonths(ctx)
	}
	r.finish(err)
	return r.sum
}

// finish settles the outcome and records the run.
func (r *run) finish(err error) {
	r.mu.Lock()
	if r.fatalErr != nil {
		err = r.fatalErr
	}
	r.mu.Unlock()
	switch {
	case err == nil:
	case errors.Is(err, errStopped) || r.stop.Err() != nil && errors.Is(err, context.Canceled):
		r.sum.Interrupted = true
	default:
		r.sum.Err = err
	}
	if r.stop.Err() != nil {
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
	if r.req.DryRun {
		return
	}
	if perr := r.e.cp.PutRun(r.runRecord(r.sum.Outcome())); perr != nil {
		r.log.Error().Err(perr).Msg("could not record the run in the store")
	}
}

// Outcome names how the run ended, as kept in the history.
func (s *Summary) Outcome() string {
	t := s.Totals()
	switch {
	case s.Interrupted:
		return "interrupted"
	case s.Err != nil:
		return "failed"
	case t.Failed > 0 || t.Pending > 0:
		return "partial"
	default:
		return "success"
	}
}

func (r *run) runRecord(outcome string) store.Run {
	t := r.sum.Totals()
	run := store.Run{
		ID: r.sum.RunID, Command: r.req.Command, Start: r.sum.Start, End: r.sum.End,
		Fetched: t.Fetched, Created: t.Created, Updated: t.Updated, Unchanged: t.Unchanged,
		Failed: t.Failed, Skipped: t.Skipped, Duplicates: t.Duplicates,
		Outcome: outcome,
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
	switch outcome {
	case "partial":
		run.ExitCode = 1
	case "failed":
		run.ExitCode = 4
	case "interrupted":
		run.ExitCode = 130
	}
	return run
}

// mappingMeta is what the store remembers of the mapping, to log changes.
type mappingMeta struct {
	Fingerprint uint64   `json:"fingerprint"`
	Targets     []string `json:"targets"`
}

const metaMapping = "mapping"

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

// stopped reports whether the soft stop signal has arrived.
func (r *run) stopped() bool { return r.stop.Err() != nil }

// fatal records the first fatal error and stops the pipeline.
func (r *run) fatal(err error) error {
	r.mu.Lock()
	if r.fatalErr == nil {
		r.fatalErr = err
	}
	r.mu.Unlock()
	r.cancel()
	return err
}

func (r *run) month(m string) *MonthSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	ms := r.months[m]
	if ms == nil {
		// A pending batch of a month that is not being synced this run.
		ms = &MonthSummary{Month: m}
		r.months[m] = ms
		r.sum.Months = append(r.sum.Months, ms)
	}
	return ms
}

// count applies fn to a month's summary under the lock.
func (r *run) count(m string, fn func(ms *MonthSummary)) {
	ms := r.month(m)
	r.mu.Lock()
	fn(ms)
	r.mu.Unlock()
}

// recordFailure notes a record that could not be written. Permanent
// failures in a row beyond the limit become fatal.
func (r *run) recordFailure(m, key string, err error, permanent bool) error {
	r.mu.Lock()
	r.sum.Failures = append(r.sum.Failures, Failure{Key: key, Error: err.Error()})
	if ms := r.months[m]; ms != nil {
		ms.Failed++
	}
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

func (r *run) plan(line PlanLine) {
	if r.e.opts.OnPlan != nil {
		r.e.opts.OnPlan(line)
	}
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

func (r *run) apply(w *store.Write) error {
	if err := r.e.cp.Apply(w); err != nil {
		return r.fatal(fmt.Errorf("save checkpoints: %w", err))
	}
	return nil
}

// shortErr keeps stored error text small.
func shortErr(err error) string {
	s := err.Error()
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// isStop reports whether err comes from the run being stopped (signal or
// a fatal error elsewhere) rather than from the request itself.
func (r *run) isStop(ctx context.Context, err error) bool {
	return errors.Is(err, errStopped) || ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || apierr.ClassOf(err) == 0)
}

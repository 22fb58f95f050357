package main

import (
	"context"
	"encoding/json"
	"errors"
	"net"
	"net/http"
	gosync "sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
)

func serveCommand() *cli.Command {
	return &cli.Command{
		Name:  "serve",
		Usage: "sync on a schedule and serve /metrics, /healthz and a status page",
		Description: "Runs a sync at once, then every --every. A tick that comes while a run is going,\n" +
			"or while another process holds the store, is skipped and logged. The store is held only\n" +
			"during a run, so status, history and reset work in between. The pages have no\n" +
			"authentication and show only counts; --listen defaults to loopback.\n" +
			"SIGINT or SIGTERM ends the current run with its checkpoints saved, then exits 0.",
		Flags: []cli.Flag{
			&cli.DurationFlag{Name: "every", Value: time.Hour, Usage: "time between the starts of two runs"},
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:9107", Usage: "`ADDR` for /metrics, /healthz and /"},
		},
		Action: runServeCommand,
	}
}

func runServeCommand(c *cli.Context) error {
	every := c.Duration("every")
	if every <= 0 {
		return usageErr("give a positive duration, for example --every 1h", "--every must be positive, not %s", every)
	}
	s, err := startSession(c)
	if err != nil {
		return err
	}
	fixedToday := global(c, flagToday) != ""
	srv := newServer(s.cfg, s.log, every)
	srv.today = func() month.Date {
		if fixedToday {
			return s.today
		}
		return month.TodayCST(time.Now())
	}
	srv.runOnce = func(hard, stop context.Context, done func(*sync.Summary, int)) (int, error) {
		return runSync(hard, stop, syncJob{
			cfg: s.cfg, log: s.log, today: srv.today(), out: c.App.Writer, done: done,
		})
	}

	ln, err := net.Listen("tcp", c.String("listen"))
	if err != nil {
		return usageErr("choose a free address with --listen, for example --listen 127.0.0.1:9107", "--listen: %w", err)
	}
	addr := ln.Addr().(*net.TCPAddr)
	if !addr.IP.IsLoopback() {
		s.log.Warn().Str("listen", addr.String()).
			Msg("listening on a non-loopback address: the pages have no authentication (they show only counts); put them behind a firewall or a proxy")
	}
	s.log.Info().Str("listen", addr.String()).Dur("every", every).Msg("serving /metrics, /healthz and /")
	return srv.serve(c.Context, ln)
}

// runInfo is what serve remembers of the last run it started.
type runInfo struct {
	ID       string    `json:"id,omitempty"`
	Started  time.Time `json:"started"`
	Finished time.Time `json:"finished"`
	Outcome  string    `json:"outcome"`
	ExitCode int       `json:"exit_code"`
}

// server is the serve loop and its HTTP handlers.
type server struct {
	cfg   *config.Config
	log   zerolog.Logger
	every time.Duration
	today func() month.Date
	// runOnce runs one sync; done gets its summary. It returns the exit
	// code, or an error for a run that did not start (store held, bad
	// form...), as runSync does.
	runOnce func(hard, stop context.Context, done func(*sync.Summary, int)) (int, error)
	metrics *serveMetrics

	running atomic.Bool
	wg      gosync.WaitGroup

	mu   gosync.Mutex
	last *runInfo
	next time.Time
	runs []store.Run // the last runs, newest first, read between runs
}

func newServer(cfg *config.Config, log zerolog.Logger, every time.Duration) *server {
	return &server{cfg: cfg, log: log, every: every, metrics: newServeMetrics(),
		today: func() month.Date { return month.TodayCST(time.Now()) }}
}

// serve runs the schedule and the HTTP server until ctx ends, then lets
// the current run finish gracefully and returns nil (exit 0).
func (s *server) serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{Handler: s.handler(), ReadHeaderTimeout: 10 * time.Second}
	httpErr := make(chan error, 1)
	go func() { httpErr <- hs.Serve(ln) }()

	s.refresh()
	s.setNext(time.Now())
	s.tick(ctx)
	t := time.NewTicker(s.every)
	var err error
loop:
	for {
		select {
		case <-ctx.Done():
			break loop
		case err = <-httpErr:
			break loop
		case now := <-t.C:
			s.setNext(now.Add(s.every))
			s.tick(ctx)
		}
	}
	t.Stop()
	if ctx.Err() != nil {
		s.log.Info().Msg("stopping: the current run, if any, ends with its checkpoints saved")
	}
	s.wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = hs.Shutdown(sctx)
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *server) setNext(t time.Time) {
	s.mu.Lock()
	s.next = t
	s.mu.Unlock()
}

// tick starts a run unless one is going.
func (s *server) tick(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	if !s.running.CompareAndSwap(false, true) {
		s.metrics.ticksSkipped.WithLabelValues("running").Inc()
		s.log.Warn().Msg("tick skipped: the previous run is still going")
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.running.Store(false)
		s.runNow(ctx)
	}()
}

// runNow runs one sync and records its outcome.
func (s *server) runNow(ctx context.Context) {
	hard, cancel := drainContext(ctx)
	defer cancel()
	started := time.Now()
	var sum *sync.Summary
	code, err := s.runOnce(hard, ctx, func(sm *sync.Summary, _ int) { sum = sm })
	finished := time.Now()
	var locked *store.LockedError
	if sum == nil && errors.As(err, &locked) {
		s.metrics.ticksSkipped.WithLabelValues("store_held").Inc()
		s.log.Warn().Err(err).Msg("tick skipped: another process holds the store; trying again at the next tick")
		return
	}
	if sum == nil && err != nil {
		// The run did not start (bad form, unreachable API, ...).
		code = exitCode(err)
		s.log.Error().Err(err).Int("exit_code", code).Msg("the run could not start")
	}
	info := &runInfo{Started: started, Finished: finished, ExitCode: code, Outcome: outcomeOf(sum, code)}
	if sum != nil {
		info.ID = sum.RunID
	}
	s.metrics.observeRun(sum, info, finished.Sub(started))
	s.mu.Lock()
	s.last = info
	s.mu.Unlock()
	s.refresh()
	s.log.Info().Str("run", info.ID).Str("outcome", info.Outcome).Int("exit_code", code).Msg("run finished")
}

// outcomeOf names a run's outcome as history does.
func outcomeOf(sum *sync.Summary, code int) string {
	if sum != nil {
		o, _ := sync.Verdict(sum)
		return o
	}
	if code == exitInterrupted {
		return sync.OutcomeInterrupted
	}
	return sync.OutcomeFailed
}

// pageRuns is how many runs the status page lists and charts.
const pageRuns = 20

// refresh reads the status and the last runs from the store, between runs,
// and updates the gauges. It never waits long for the store: when another
// process holds it, the previous values stay.
func (s *server) refresh() {
	st, runs, err := s.readStore()
	if err != nil {
		s.log.Debug().Err(err).Msg("could not read the store for the status page")
		return
	}
	s.metrics.observeStatus(st, s.today())
	if runs != nil {
		s.mu.Lock()
		s.runs = runs
		s.mu.Unlock()
	}
}

// readStore reads the status (from the live file while a run holds the
// store) and, when the store is free, the last runs; runs is nil when they
// could not be read.
func (s *server) readStore() (sync.Status, []store.Run, error) {
	var runs []store.Run
	open := func() (*store.Store, error) {
		st, err := openStoreToRead(s.cfg, 200*time.Millisecond)
		if err != nil || st == nil {
			if err == nil {
				runs = []store.Run{}
			}
			return st, err
		}
		rs, rerr := st.Runs(pageRuns)
		if rerr == nil {
			for i := range rs {
				rs[i].Outcome = sync.ShownOutcome(rs[i].Outcome)
			}
			runs = rs
		}
		return st, nil
	}
	// While a run holds the store, open fails fast and readStatusAt
	// falls back to the run's live-status file; the runs stay as cached.
	clk := statusClock{loc: s.cfg.Location, delay: s.cfg.Jiandaoyun.ConsistencyDelay, now: time.Now()}
	st, err := readStatusAt(s.cfg.Store, windowOf(s.cfg, s.today()), clk, open)
	return st, runs, err
}

// health is the /healthz body.
type health struct {
	Status  string   `json:"status"` // ok or failing
	Running bool     `json:"running"`
	LastRun *runInfo `json:"last_run"`
	NextRun string   `json:"next_run,omitempty"`
}

func (s *server) health() (health, int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	h := health{Status: "ok", Running: s.running.Load(), LastRun: s.last}
	if !s.next.IsZero() {
		h.NextRun = s.next.In(s.cfg.Location).Format(time.RFC3339)
	}
	if s.last != nil && s.last.ExitCode == exitFatal {
		h.Status = "failing"
		return h, http.StatusServiceUnavailable
	}
	return h, http.StatusOK
}

func (s *server) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", s.handleHealth)
	mux.Handle("GET /metrics", s.metrics.handler())
	mux.HandleFunc("GET /{$}", s.handlePage)
	return mux
}

func (s *server) handleHealth(w http.ResponseWriter, _ *http.Request) {
	h, code := s.health()
	writeJSON(w, code, h)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

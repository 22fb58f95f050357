package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
)

func syncCommand() *cli.Command {
	return &cli.Command{
		Name:  "sync",
		Usage: "copy month reports from WeCom to Jiandaoyun",
		Description: "Syncs the default window (the current month, plus the previous month while it settles),\n" +
			"or the months named with --month and --from/--to. Unchanged records are skipped.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "month", Usage: "sync this month (YYYY-MM); repeatable"},
			&cli.StringFlag{Name: "from", Usage: "first month of a range (YYYY-MM)"},
			&cli.StringFlag{Name: "to", Usage: "last month of a range (YYYY-MM); default the current month"},
			&cli.BoolFlag{Name: "dry-run", Usage: "print the plan; write nothing, not even to the store"},
			&cli.BoolFlag{Name: "verbose", Aliases: []string{"v"}, Usage: "print each record's plan line"},
			&cli.BoolFlag{Name: "force", Usage: "send an update for every known record, whatever its hash"},
			&cli.BoolFlag{Name: "yes", Usage: "do not ask before a long range (its estimated duration is still printed)"},
		},
		Action: runSyncCommand,
	}
}

func runSyncCommand(c *cli.Context) error {
	s, err := startSession(c)
	if err != nil {
		return err
	}
	months, err := monthFlags(c, s.cfg, s.today)
	if err != nil {
		return err
	}
	hard, cancel := drainContext(c.Context)
	defer cancel()
	code, err := runSync(hard, c.Context, syncJob{
		cfg: s.cfg, log: s.log, today: s.today, months: months,
		dryRun: c.Bool("dry-run"), verbose: c.Bool("verbose"), force: c.Bool("force"),
		out: c.App.Writer, progress: isTerminal(os.Stderr),
		confirm: confirmer(c, c.Bool("yes")),
	})
	if err != nil {
		return err
	}
	return runError(code)
}

// runFailure is the error main reports for a finished run that did not
// succeed. Its one line says what failed and what to do, whether stderr is
// a terminal or a log file: the summary above it may be gone (cron mails
// the tail, a log keeps the last line).
func runFailure(sum *sync.Summary, code int, storePath string) error {
	if code == exitOK {
		return nil
	}
	if sum.Interrupted {
		return &exitError{code: code, err: errors.New("interrupted; checkpoints up to the interruption are saved; run sync again to finish")}
	}
	if sum.Err != nil {
		return &exitError{code: code, err: errors.New(stoppedLine(sum.Err, storePath))}
	}
	t := sum.Totals()
	var parts []string
	if t.Failed > 0 {
		parts = append(parts, fmt.Sprintf("%d %s failed", t.Failed, countWord(t.Failed, "record", "records")))
	}
	if t.Pending > 0 {
		parts = append(parts, fmt.Sprintf("%d %s still pending", t.Pending, countWord(t.Pending, "record is", "records are")))
	}
	msg := "the run did not complete every record: " + strings.Join(parts, " and ")
	if len(sum.Failures) > 0 {
		f := sum.Failures[0]
		msg += fmt.Sprintf(" (first: %s: %s)", f.Key, oneLine(f.Error))
	}
	fix := "fix what the failures say, then run sync again: only what is not synced is sent"
	if t.Failed == 0 {
		fix = "run sync again later: it looks the pending records up first and never creates them twice"
	}
	return &exitError{code: code, err: errors.New(msg + "; " + fix)}
}

// stoppedLine is the one-line cause and fix of an error that stopped a run.
func stoppedLine(err error, storePath string) string {
	msg := "sync stopped: " + oneLine(err.Error())
	switch {
	case sync.DiskFull(err):
		if storePath != "" && !strings.Contains(msg, storePath) {
			msg += " (store " + storePath + ")"
		}
		return msg + "; " + diskFullFix
	case sync.Unreachable(err):
		return msg + "; " + unreachableFix(err)
	case sync.ErrorExitCode(err) == exitFatal:
		// The API error carries its hint: what to fix.
		return msg + "; fix that, then run sync again (`checkin-sync check` tests the setup)"
	}
	if t := tryOf(err); t != "" {
		return msg + "; " + t
	}
	return msg + "; fix the cause, then run sync again: it resumes from the saved checkpoints"
}

// unreachableFix is what to do when an API stayed unreachable after the
// client's retries.
func unreachableFix(err error) string {
	what := "the API"
	if e, ok := apierr.As(err); ok && e.Service != "" {
		what = map[string]string{"wecom": "WeCom", "jiandaoyun": "Jiandaoyun"}[e.Service]
		if what == "" {
			what = e.Service
		}
	}
	return fmt.Sprintf("%s stayed unreachable after the retries: check the network, proxy and base_url from this host (a later run may succeed), then run again", what)
}

// oneLine folds a multi-line message into one line.
func oneLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := range lines {
		lines[i] = strings.TrimSpace(lines[i])
	}
	return strings.Join(lines, "; ")
}

// runError is the error for a finished run's exit code when no summary is
// at hand; runSync gives the detailed runFailure instead.
func runError(code int) error {
	switch code {
	case exitOK:
		return nil
	case exitPartial:
		return &exitError{code: code, err: fmt.Errorf("some records failed or are still pending; see the summary above"),
			try: "fix what the failures say, then run sync again: only what is not synced is sent"}
	case exitInterrupted:
		return &exitError{code: code, err: fmt.Errorf("interrupted; checkpoints up to the interruption are saved"),
			try: "run sync again to finish"}
	default:
		return &exitError{code: code, err: fmt.Errorf("the run stopped; see the summary above")}
	}
}

// monthFlags turns --month and --from/--to into the months to sync.
func monthFlags(c *cli.Context, cfg *config.Config, today month.Date) ([]month.Month, error) {
	var named []month.Month
	for _, s := range c.StringSlice("month") {
		m, err := parseMonthFlag("month", s)
		if err != nil {
			return nil, err
		}
		named = append(named, m)
	}
	var from, to month.Month
	for _, f := range []struct {
		name string
		dst  *month.Month
	}{{"from", &from}, {"to", &to}} {
		if s := c.String(f.name); s != "" {
			m, err := parseMonthFlag(f.name, s)
			if err != nil {
				return nil, err
			}
			*f.dst = m
		}
	}
	if len(named) == 0 && from.IsZero() && to.IsZero() {
		return nil, nil // the default window, chosen from the store's months
	}
	months, err := sync.SelectMonths(today, named, from, to, cfg.Sync.Months, cfg.Sync.SettleDays, nil)
	if err != nil {
		return nil, usageErr("", "%w", err)
	}
	return months, nil
}

// firstMonth is the earliest month a sync accepts: months before 2000 are
// input errors (exit 2), never requests that WeCom refuses as a bug.
var firstMonth = month.Month{Year: 2000, Mon: time.January}

// parseMonthFlag parses one --month, --from or --to value.
func parseMonthFlag(flag, s string) (month.Month, error) {
	m, err := month.Parse(s)
	if err != nil {
		return month.Month{}, usageErr("write the month as YYYY-MM, for example --"+flag+" 2026-03", "--%s: %w", flag, err)
	}
	if m.Before(firstMonth) {
		return month.Month{}, usageErr("name a month from "+firstMonth.String()+" on, for example --"+flag+" 2026-03",
			"--%s %s: months before %s are not accepted", flag, s, firstMonth)
	}
	return m, nil
}

// syncJob is one sync, from the CLI or the demo.
type syncJob struct {
	cfg      *config.Config
	log      zerolog.Logger
	today    month.Date
	months   []month.Month
	dryRun   bool
	verbose  bool
	force    bool
	out      io.Writer
	progress bool // draw a progress bar on stderr
	// confirm asks whether to go on with a long run; nil goes on. See
	// estimateRun.
	confirm func(estimate string) (bool, error)
	// done, when set, is told each finished run's summary and exit code
	// (serve turns them into metrics).
	done func(sum *sync.Summary, code int)
}

// runSync runs one sync and prints its summary. It returns the exit code
// the run earned, or an error for failures before the run started.
func runSync(ctx, stop context.Context, job syncJob) (int, error) {
	cfg, log := job.cfg, job.log
	wc, jc, err := clients(cfg, log)
	if err != nil {
		return 0, err
	}
	listing, stopListing := context.WithCancel(ctx)
	defer stopListing()
	src := sync.Prefetch(listing, newSource(wc, cfg))
	if len(job.months) > longRangeMonths {
		if err := estimateRun(ctx, job, src); err != nil {
			return 0, err
		}
	}

	var cp sync.Checkpoints
	var st *store.Store
	if job.dryRun {
		st, err = openStoreReadOnly(cfg, time.Second)
		if err != nil {
			return 0, err
		}
		cp = sync.DryRunCheckpoints{Store: st}
	} else {
		// Bound to the corp and form only once the form's widgets were
		// read (below): a run that cannot reach the form binds nothing.
		st, err = openStoreUnbound(cfg, "sync", log)
		if err != nil {
			return 0, err
		}
		cp = st
	}
	if st != nil {
		defer st.Close()
	}

	if job.months == nil {
		var infos []store.MonthInfo
		if st != nil {
			if infos, err = st.Months(); err != nil {
				return 0, storeError(err)
			}
		}
		job.months = sync.DefaultWindow(job.today, cfg.Sync.Months, cfg.Sync.SettleDays, infos)
	}

	mapper, err := bindMapping(ctx, cfg, jc)
	if err != nil {
		return 0, err
	}
	if st != nil {
		if err := bindStore(st, cfg); err != nil {
			return 0, err
		}
	}

	sink := newSink(jc, mapper, job.dryRun)
	started := time.Now()
	rep := newReporter(job, st, started)
	defer rep.close()
	opts := adaptToProbe(st, mapper, log, sync.Options{
		Concurrency:      cfg.Jiandaoyun.Concurrency,
		FetchInFlight:    fetchInFlight(cfg),
		ConsistencyDelay: cfg.Jiandaoyun.ConsistencyDelay,
		Log:              log,
		OnProgress:       rep.progress,
		OnPlan:           rep.plan,
	})
	eng := sync.New(src, sink, cp, mapper, opts)
	sum := eng.Run(ctx, stop, sync.Request{Command: "sync", Months: job.months, Today: job.today, DryRun: job.dryRun, Force: job.force})
	rep.close()
	printSummary(job.out, sum)
	code := summaryExitCode(sum)
	if job.done != nil {
		job.done(sum, code)
	}
	if !job.dryRun && st != nil {
		sendAlert(ctx, cfg, st, log, sum, code)
	}
	if sum.Err != nil {
		log.Error().Err(sum.Err).Msg("sync stopped")
	}
	return code, runFailure(sum, code, cfg.Store)
}

// A long range is one of more than longRangeMonths months. Its estimated
// duration is printed before anything is fetched; on a terminal, an
// estimate of askAbove or more is confirmed first unless --yes is given.
const (
	longRangeMonths = 12
	askAbove        = 10 * time.Minute
	usersPerCall    = 100 // getcheckin_monthdata takes up to 100 userids a call
)

// estimate is how long fetching users × months takes at the month-data
// rate: one call per 100 users per month.
func estimate(users, months int, perMinute float64) time.Duration {
	if perMinute <= 0 {
		return 0
	}
	calls := (users + usersPerCall - 1) / usersPerCall * months
	return time.Duration(float64(calls) / perMinute * float64(time.Minute)).Round(time.Second)
}

// estimateRun lists the users, prints the estimated duration of the run and,
// when job.confirm says so, asks whether to go on.
func estimateRun(ctx context.Context, job syncJob, src *sync.Prefetched) error {
	n, err := src.Count(ctx)
	if err != nil {
		// The run meets the same failure, and records and reports it as
		// every run does.
		job.log.Debug().Err(err).Msg("could not list the users for the estimate")
		return nil
	}
	rate := job.cfg.WeCom.RatePerMinute
	d := estimate(n, len(job.months), rate)
	line := fmt.Sprintf("%s to %s is %d months × %d users = %d user-months; at %s month-data calls a minute (%d users a call) fetching takes about %s",
		job.months[0], job.months[len(job.months)-1], len(job.months), n, n*len(job.months),
		strconvG(rate), usersPerCall, d)
	job.log.Warn().Int("months", len(job.months)).Int("users", n).Str("estimate", d.String()).Msg(line)
	if job.confirm == nil || d < askAbove {
		return nil
	}
	ok, err := job.confirm(line)
	if err != nil {
		return err
	}
	if !ok {
		return usageErr("pass --yes to run it without asking, or name a shorter range with --from/--to",
			"not started: the %s run was not confirmed", d)
	}
	return nil
}

func strconvG(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) }

// confirmer asks on the terminal whether to go on with a long run. Without
// a terminal (cron, systemd, a pipe), or with --yes, it never asks.
func confirmer(c *cli.Context, yes bool) func(string) (bool, error) {
	if yes || !isTerminal(os.Stdin) || !isTerminal(os.Stderr) {
		return nil
	}
	return func(line string) (bool, error) {
		return askYes(os.Stdin, c.App.ErrWriter, line)
	}
}

// askYes asks "Go on? [y/N]" and reads one answer: y or yes goes on.
func askYes(in io.Reader, out io.Writer, line string) (bool, error) {
	fmt.Fprintf(out, "%s.\nGo on? [y/N] ", line)
	var b strings.Builder
	buf := make([]byte, 1)
	for {
		n, err := in.Read(buf)
		if n == 1 {
			if buf[0] == '\n' {
				break
			}
			b.WriteByte(buf[0])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				break
			}
			return false, err
		}
	}
	switch strings.ToLower(strings.TrimSpace(b.String())) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

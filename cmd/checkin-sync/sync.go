package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
	"checkin-sync/wecom"
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
	})
	if err != nil {
		return err
	}
	return runError(code)
}

// runError is the error main reports for a finished run's exit code; the
// details are in the summary already printed.
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
		m, err := month.Parse(s)
		if err != nil {
			return nil, usageErr("", "--month: %w", err)
		}
		named = append(named, m)
	}
	var from, to month.Month
	for _, f := range []struct {
		name string
		dst  *month.Month
	}{{"from", &from}, {"to", &to}} {
		if s := c.String(f.name); s != "" {
			m, err := month.Parse(s)
			if err != nil {
				return nil, usageErr("", "--%s: %w", f.name, err)
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
}

// runSync runs one sync and prints its summary. It returns the exit code
// the run earned, or an error for failures before the run started.
func runSync(ctx, stop context.Context, job syncJob) (int, error) {
	cfg, log := job.cfg, job.log
	wc, jc, err := clients(cfg, log)
	if err != nil {
		return 0, err
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
		st, err = openStore(cfg, "sync", log)
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

	var sink sync.Sink = sync.JiandaoyunSink{Client: jc, KeyField: mapper.KeyField(), Fields: mapper.ReadFields()}
	if job.dryRun {
		sink = sync.DryRunSink{Sink: sink}
	}
	src := sync.WeComSource{Client: wc, Selection: wecom.Selection{
		Departments: cfg.WeCom.Users.Departments,
		UserIDs:     cfg.WeCom.Users.UserIDs,
		Exclude:     cfg.WeCom.Users.Exclude,
	}}
	started := time.Now()
	rep := newReporter(job, st, started)
	defer rep.close()
	eng := sync.New(src, sink, cp, mapper, sync.Options{
		Concurrency:      cfg.Jiandaoyun.Concurrency,
		ConsistencyDelay: cfg.Jiandaoyun.ConsistencyDelay,
		Log:              log,
		OnProgress:       rep.progress,
		OnPlan:           rep.plan,
	})
	sum := eng.Run(ctx, stop, sync.Request{Command: "sync", Months: job.months, Today: job.today, DryRun: job.dryRun, Force: job.force})
	rep.close()
	printSummary(job.out, sum)
	code := summaryExitCode(sum)
	if !job.dryRun && st != nil {
		sendAlert(ctx, cfg, st, log, sum, code)
	}
	if sum.Err != nil {
		log.Error().Err(sum.Err).Msg("sync stopped")
	}
	return code, nil
}

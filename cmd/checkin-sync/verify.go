package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	stdsync "sync"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
)

func verifyCommand() *cli.Command {
	return &cli.Command{
		Name:  "verify",
		Usage: "compare the store with what Jiandaoyun holds; report records missing, changed by hand or duplicated; --fix repairs them",
		Description: "Reads the whole form by pages (after resolving pending batches, as sync does) and lists each\n" +
			"finding with a marker and its key: - missing, * differ, + duplicate, ~ pending, ? unknown.\n" +
			"Exit 0 without drift, 1 when missing, differ or duplicate findings are left unfixed.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "month", Usage: "verify this month (YYYY-MM); repeatable; default every month in the store"},
			&cli.BoolFlag{Name: "fix", Usage: "re-create missing records, rewrite changed ones from WeCom, delete the newer copies of duplicates"},
			&cli.BoolFlag{Name: "dry-run", Usage: "with --fix: print what it would do; write nothing"},
			&cli.BoolFlag{Name: "deep", Usage: "name the differing fields: fetch those users' current reports from WeCom again and compare field by field"},
			&cli.BoolFlag{Name: "json", Usage: "print the findings as JSON"},
		},
		Action: runVerifyCommand,
	}
}

func runVerifyCommand(c *cli.Context) error {
	s, err := startSession(c)
	if err != nil {
		return err
	}
	months, err := namedMonths(c)
	if err != nil {
		return err
	}
	if c.Bool("dry-run") && !c.Bool("fix") {
		return usageErr("verify writes nothing without --fix: use `verify --fix --dry-run` to see what --fix would do", "--dry-run goes with --fix")
	}
	hard, cancel := drainContext(c.Context)
	defer cancel()
	_, err = runVerify(hard, c.Context, verifyJob{
		cfg: s.cfg, log: s.log, today: s.today, months: months,
		fix: c.Bool("fix"), dryRun: c.Bool("dry-run"), json: c.Bool("json"), deep: c.Bool("deep"),
		out: c.App.Writer, errOut: c.App.ErrWriter,
	})
	return err
}

// namedMonths parses the repeatable --month flag; nil when none is given.
func namedMonths(c *cli.Context) ([]month.Month, error) {
	var months []month.Month
	for _, s := range c.StringSlice("month") {
		m, err := parseMonthFlag("month", s)
		if err != nil {
			return nil, err
		}
		months = append(months, m)
	}
	return months, nil
}

// verifyJob is one verify, from the CLI or the demo.
type verifyJob struct {
	cfg    *config.Config
	log    zerolog.Logger
	today  month.Date
	months []month.Month
	fix    bool
	dryRun bool
	json   bool
	deep   bool
	out    io.Writer
	errOut io.Writer
}

// verifyJSON is verify's --json output.
type verifyJSON struct {
	*sync.VerifyReport
	// After holds the counts of a verify after the repair (--fix).
	After map[string]int `json:"after,omitempty"`
}

// runVerify resolves pending batches, compares the store with the form,
// prints the findings and, with fix, repairs them. It returns the report
// (after the repair, when there was one) and the error main reports: nil
// without drift.
func runVerify(ctx, stop context.Context, job verifyJob) (*sync.VerifyReport, error) {
	cfg, log := job.cfg, job.log
	wc, jc, err := clients(cfg, log)
	if err != nil {
		return nil, err
	}
	src := newSource(wc, cfg)
	var cp sync.Checkpoints
	var st *store.Store
	if job.dryRun {
		if st, err = openStoreReadOnly(cfg, time.Second); err != nil {
			return nil, err
		}
		cp = sync.DryRunCheckpoints{Store: st}
	} else {
		if st, err = openStoreUnbound(cfg, "verify", log); err != nil {
			return nil, err
		}
		cp = st
	}
	if st != nil {
		defer st.Close()
	}
	mapper, err := bindMapping(ctx, cfg, jc)
	if err != nil {
		return nil, err
	}
	if !job.dryRun {
		if err := bindStore(st, cfg); err != nil {
			return nil, err
		}
	}
	sink := newSink(jc, mapper, job.dryRun)
	// Repair plan lines go with the text output; under --json, to stderr.
	planOut := job.out
	if job.json {
		planOut = job.errOut
	}
	var mu stdsync.Mutex
	var repairing atomic.Bool // plan lines are printed for the repair only
	eng := sync.New(src, sink, cp, mapper, sync.Options{
		Concurrency:      cfg.Jiandaoyun.Concurrency,
		FetchInFlight:    fetchInFlight(cfg),
		ConsistencyDelay: cfg.Jiandaoyun.ConsistencyDelay,
		Log:              log,
		OnPlan: func(l sync.PlanLine) {
			if !repairing.Load() || l.Action == "unchanged" || l.Action == "skip" {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			printRepairLine(planOut, l, job.dryRun)
		},
	})

	code := exitOK
	if !job.dryRun {
		// Pending batches first, as sync does: a key still pending is
		// reported as pending, never as missing.
		sum, err := eng.Settle(ctx, stop, "verify", job.today)
		if err != nil {
			return nil, storeError(err)
		}
		if sum != nil {
			c := summaryExitCode(sum)
			if sum.Err != nil || sum.Interrupted {
				return nil, runFailure(sum, c, cfg.Store)
			}
			code = worst(code, c)
		}
	}
	rep, err := eng.Verify(ctx, job.months)
	if err != nil {
		return nil, verifyStopped(err)
	}
	if job.deep && rep.Counts[sync.KindDiffer] > 0 {
		if err := eng.Deep(ctx, rep, job.today); err != nil {
			return nil, verifyStopped(err)
		}
	}
	if !job.json {
		printFindings(job.out, rep)
	}
	if !job.fix || !rep.Drift() {
		if job.json {
			printJSON(job.out, verifyJSON{VerifyReport: rep})
		}
		if rep.Drift() {
			code = worst(code, exitPartial)
		}
		return rep, verifyError(code, rep, false)
	}

	if !job.json {
		if job.dryRun {
			fmt.Fprintln(job.out, "\nverify --fix --dry-run: what --fix would do (nothing is written):")
		} else {
			fmt.Fprintln(job.out, "\nRepairing:")
		}
	}
	repairing.Store(true)
	sum := eng.Repair(ctx, stop, rep, sync.Request{Command: "verify", Today: job.today, DryRun: job.dryRun})
	if sum.Err != nil || sum.Interrupted {
		return nil, runFailure(sum, summaryExitCode(sum), cfg.Store)
	}
	if job.dryRun {
		if job.json {
			printJSON(job.out, verifyJSON{VerifyReport: rep})
		}
		return rep, verifyError(worst(code, exitPartial), rep, true)
	}
	after, err := eng.Verify(ctx, job.months)
	if err != nil {
		return nil, verifyStopped(err)
	}
	if job.json {
		printJSON(job.out, verifyJSON{VerifyReport: rep, After: after.Counts})
	} else {
		t := sum.Totals()
		fmt.Fprintf(job.out, "\nRepaired: %d created, %d updated, %d deleted (full content of each deleted record in `history --json`), %d failed.\n",
			t.Created, t.Updated, len(sum.Deleted), t.Failed)
		printList(job.out, "Not repaired: no report from WeCom to write from (%d):\n", sum.Skipped, func(u sync.SkippedUser) string {
			return fmt.Sprintf("%s  %-24s %s", u.Month, u.UserID, u.Reason)
		})
		printList(job.out, "Failed (%d):\n", sum.Failures, func(f sync.Failure) string {
			return fmt.Sprintf("%s: %s", f.Key, f.Error)
		})
		fmt.Fprintln(job.out, "\nAfter the repair:")
		printFindings(job.out, after)
	}
	code = worst(code, summaryExitCode(sum))
	if after.Drift() {
		code = worst(code, exitPartial)
	}
	return after, verifyError(code, after, false)
}

// printRepairLine prints one line of what a repair does or would do.
func printRepairLine(w io.Writer, l sync.PlanLine, dryRun bool) {
	verb := map[string]string{"create": "re-create", "update": "rewrite", "delete": "delete"}[l.Action]
	if verb == "" {
		verb = l.Action
	}
	if dryRun {
		verb = "would " + verb
	}
	line := fmt.Sprintf("  %-16s %s", verb, l.Key)
	if l.DataID != "" {
		line += "  data_id=" + l.DataID
	}
	if l.Detail != "" {
		line += "  (" + l.Detail + ")"
	}
	fmt.Fprintln(w, line)
}

// findingMarks are the markers of the text output, as rclone check uses
// them: one character, then the key.
var findingMarks = map[string]string{
	sync.KindMissing: "-", sync.KindDiffer: "*", sync.KindDuplicate: "+", sync.KindPending: "~", sync.KindUnknown: "?",
}

var findingKinds = []string{sync.KindMissing, sync.KindDiffer, sync.KindDuplicate, sync.KindPending, sync.KindUnknown}

// printFindings prints one line per finding, then the count of each kind.
func printFindings(w io.Writer, rep *sync.VerifyReport) {
	for _, f := range rep.Findings {
		key := f.Key
		if key == "" {
			key = `""`
		}
		line := fmt.Sprintf("%s %-9s %s", findingMarks[f.Kind], f.Kind, key)
		if len(f.DataIDs) > 0 {
			line += "  data_id=" + strings.Join(f.DataIDs, ",")
		}
		if len(f.Fields) > 0 {
			line += "  fields=" + strings.Join(f.Fields, ",")
		}
		fmt.Fprintln(w, line)
	}
	months := strings.Join(rep.Months, ", ")
	if months == "" {
		months = "none in the store"
	}
	fmt.Fprintf(w, "%d records in the form checked against the store (months: %s)\n", rep.Records, months)
	parts := make([]string, len(findingKinds))
	for i, k := range findingKinds {
		parts[i] = fmt.Sprintf("%d %s", rep.Counts[k], k)
	}
	fmt.Fprintln(w, strings.Join(parts, ", "))
	if !rep.Drift() {
		fmt.Fprintln(w, "No drift: the form holds what the store says was written.")
	}
}

func printJSON(w io.Writer, v any) {
	b, _ := json.MarshalIndent(v, "", "  ")
	fmt.Fprintln(w, string(b))
}

// verifyError is the error for verify's exit code; nil for 0.
func verifyError(code int, rep *sync.VerifyReport, dryRun bool) error {
	if code == exitOK {
		return nil
	}
	if rep != nil && rep.Drift() {
		msg := fmt.Sprintf("verify found drift: %d missing, %d differ, %d duplicate", rep.Counts[sync.KindMissing], rep.Counts[sync.KindDiffer], rep.Counts[sync.KindDuplicate])
		try := "run `checkin-sync verify --fix` to repair them (`--fix --dry-run` shows what it would do)"
		if dryRun {
			msg += " (dry run: nothing was repaired)"
			try = "run `checkin-sync verify --fix` without --dry-run to repair them"
		}
		return &exitError{code: code, err: errors.New(msg), try: try}
	}
	return &exitError{code: code, err: errors.New("verify did not complete: some records are still pending or could not be repaired; see the lines above"),
		try: "run `checkin-sync verify` again later: it resolves pending batches first"}
}

// verifyStopped is the error of a verify that could not read the form or
// the store.
func verifyStopped(err error) error {
	code := sync.ErrorExitCode(err)
	if code == exitPartial {
		return &exitError{code: code, err: fmt.Errorf("verify stopped: %w", err), try: "check the network and the form, then run verify again"}
	}
	return &exitError{code: code, err: fmt.Errorf("verify stopped: %w", err)}
}

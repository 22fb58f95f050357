package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/sync"
)

func rebuildCommand() *cli.Command {
	return &cli.Command{
		Name:  "rebuild",
		Usage: "replace the months' checkpoints with what Jiandaoyun holds, by key; keeps pending batches",
		Description: "Reads the form by pages and adopts, for each key, its oldest record, with the hash of what the\n" +
			"form holds: a following sync of unchanged data writes nothing, and a record edited by hand is\n" +
			"updated. Without --month it rebuilds every month the form holds. Duplicates are reported and left\n" +
			"for `verify --fix`.",
		Flags: []cli.Flag{
			&cli.StringSliceFlag{Name: "month", Usage: "rebuild this month (YYYY-MM); repeatable; default every month the form holds"},
		},
		Action: func(c *cli.Context) error {
			s, err := startSession(c)
			if err != nil {
				return err
			}
			months, err := namedMonths(c)
			if err != nil {
				return err
			}
			return runRebuild(c.Context, s.cfg, s.log, months, c.App.Writer)
		},
	}
}

// runRebuild rebuilds the months' checkpoints from the form and prints
// what it did.
func runRebuild(ctx context.Context, cfg *config.Config, log zerolog.Logger, months []month.Month, w io.Writer) error {
	wc, jc, err := clients(cfg, log)
	if err != nil {
		return err
	}
	st, err := openStoreUnbound(cfg, "rebuild", log)
	if err != nil {
		return err
	}
	defer st.Close()
	mapper, err := bindMapping(ctx, cfg, jc)
	if err != nil {
		return err
	}
	if err := bindStore(st, cfg); err != nil {
		return err
	}
	// The source is not called: rebuild reads only the form.
	eng := sync.New(newSource(wc, cfg), newSink(jc, mapper, false), st, mapper, sync.Options{Log: log})
	rep, err := eng.Rebuild(ctx, months)
	if rep != nil {
		printRebuild(w, rep)
	}
	if err != nil {
		if code := sync.ErrorExitCode(err); code != exitPartial {
			return &exitError{code: code, err: fmt.Errorf("rebuild stopped: %w", err)}
		}
		return &exitError{code: exitPartial, err: fmt.Errorf("rebuild stopped: %w", err),
			try: "fix the cause and run rebuild again: it replaces the months' checkpoints as a whole"}
	}
	return nil
}

func printRebuild(w io.Writer, rep *sync.RebuildReport) {
	if len(rep.Months) == 0 {
		fmt.Fprintf(w, "Nothing to rebuild: the form holds no record with a key (%d records read)\n", rep.Records)
	}
	for _, m := range rep.Months {
		line := fmt.Sprintf("%s: %d %s rebuilt from the form", m.Month, m.Adopted, countWord(m.Adopted, "checkpoint", "checkpoints"))
		if m.Dropped > 0 {
			line += fmt.Sprintf(" (%d before)", m.Dropped)
		}
		if m.Inexact > 0 {
			line += fmt.Sprintf("; %d could not be read back exactly: the next sync rewrites them", m.Inexact)
		}
		if m.KeptPending > 0 {
			line += fmt.Sprintf("; %d pending %s kept: the next sync resolves them first", m.KeptPending, countWord(m.KeptPending, "record", "records"))
		}
		fmt.Fprintln(w, line)
	}
	for _, f := range rep.Findings {
		key := f.Key
		if key == "" {
			key = `""`
		}
		fmt.Fprintf(w, "%s %-9s %s  data_id=%s\n", findingMarks[f.Kind], f.Kind, key, joinIDs(f.DataIDs))
	}
	dups := 0
	for _, f := range rep.Findings {
		if f.Kind == sync.KindDuplicate {
			dups++
		}
	}
	if dups > 0 {
		fmt.Fprintf(w, "%d %s held by several records: the oldest was adopted; `checkin-sync verify --fix` deletes the newer copies\n", dups, countWord(dups, "key", "keys"))
	}
	if len(rep.Months) > 0 {
		fmt.Fprintln(w, "Next: `checkin-sync sync` writes only what differs from the form.")
	}
}

func joinIDs(ids []string) string { return strings.Join(ids, ",") }

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/store"
)

func resetCommand() *cli.Command {
	return &cli.Command{
		Name:  "reset",
		Usage: "forget a month's checkpoints and watermark; calls no API, keeps pending batches; the next sync re-checks the month by key",
		Flags: []cli.Flag{&cli.StringSliceFlag{Name: "month", Usage: "the month to forget (YYYY-MM); repeatable"}},
		Action: func(c *cli.Context) error {
			// Only the store is touched: the configuration is loaded
			// without its secrets, and no API is called.
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			if len(c.StringSlice("month")) == 0 {
				return usageErr("name the month: checkin-sync reset --month 2026-03", "reset needs --month")
			}
			var months []month.Month
			for _, s := range c.StringSlice("month") {
				m, err := month.Parse(s)
				if err != nil {
					return usageErr("", "--month: %w", err)
				}
				months = append(months, m)
			}
			log, err := newLogger(c)
			if err != nil {
				return err
			}
			return resetMonths(c.App.Writer, cfg, log, months)
		},
	}
}

// resetMonths forgets each month and says what was forgotten and kept. A
// store that does not exist is not created: there is nothing to forget.
func resetMonths(w io.Writer, cfg *config.Config, log zerolog.Logger, months []month.Month) error {
	if _, err := os.Stat(cfg.Store); errors.Is(err, os.ErrNotExist) {
		for _, m := range months {
			fmt.Fprintf(w, "%s: nothing to forget: the store %s does not exist yet\n", m, cfg.Store)
		}
		return nil
	}
	st, err := store.Open(cfg.Store, store.Options{Timeout: time.Second, Command: "reset"})
	if err != nil {
		return storeError(err)
	}
	defer st.Close()
	if stale := st.StaleLockInfo(); stale != nil {
		log.Warn().Int("pid", stale.PID).Time("started", stale.Started).
			Msg("a lock-info file was left by a process that is gone; it was replaced")
	}
	// Compared, never bound: a store is bound by a sync once it has read
	// the form.
	if err := st.CheckIdentity(identity(cfg)); err != nil {
		return storeError(err)
	}
	for _, m := range months {
		f, err := st.ForgetMonth(m.String())
		if err != nil {
			return storeError(err)
		}
		fmt.Fprintln(w, resetLine(m, f))
	}
	return nil
}

// resetLine is what reset says of one month.
func resetLine(m month.Month, f store.Forgotten) string {
	if !f.Known {
		return fmt.Sprintf("%s: nothing to forget: the store holds no checkpoint of this month", m)
	}
	cps := "checkpoints"
	if f.Records == 1 {
		cps = "checkpoint"
	}
	line := fmt.Sprintf("%s: %d %s and the watermark forgotten; the next sync looks its records up by key, so it creates no duplicates", m, f.Records, cps)
	if f.KeptBatches > 0 {
		them := "them"
		if f.KeptBatches == 1 {
			them = "it"
		}
		line += fmt.Sprintf("; %d pending %s (%d records) kept: the next sync resolves %s first", f.KeptBatches, batches(f.KeptBatches), f.KeptRecords, them)
	}
	return line
}

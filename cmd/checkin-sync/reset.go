package main

import (
	"fmt"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/month"
)

func resetCommand() *cli.Command {
	return &cli.Command{
		Name:  "reset",
		Usage: "forget a month's checkpoints; the next sync re-checks it by key",
		Flags: []cli.Flag{&cli.StringSliceFlag{Name: "month", Usage: "the month to forget (YYYY-MM); repeatable"}},
		Action: func(c *cli.Context) error {
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
			st, err := openStore(cfg, "reset", log)
			if err != nil {
				return err
			}
			defer st.Close()
			for _, m := range months {
				if err := st.ResetMonth(m.String()); err != nil {
					return storeError(err)
				}
				fmt.Fprintf(c.App.Writer, "%s: checkpoints forgotten; the next sync looks its records up by key, so it creates no duplicates\n", m)
			}
			return nil
		},
	}
}

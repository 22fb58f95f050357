package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/textutil"
	"checkin-sync/store"
	"checkin-sync/sync"
)

func historyCommand() *cli.Command {
	return &cli.Command{
		Name:  "history",
		Usage: "list past runs, newest first",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "limit", Value: 20, Usage: "how many runs to show"},
			&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
		},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			if c.Int("limit") < 1 {
				return usageErr("", "--limit must be at least 1")
			}
			// Opening the store takes its lock, so no sync runs while
			// the runs are read: a run still recorded as running is
			// from a process that is gone, and is shown as killed.
			s, err := openStoreToRead(cfg, time.Second)
			if err != nil {
				return err
			}
			runs := []store.Run{}
			if s != nil {
				defer s.Close()
				if runs, err = s.Runs(c.Int("limit")); err != nil {
					return storeError(err)
				}
			}
			for i := range runs {
				runs[i].Outcome = sync.ShownOutcome(runs[i].Outcome)
			}
			w := c.App.Writer
			if c.Bool("json") {
				b, err := json.MarshalIndent(struct {
					Runs []store.Run `json:"runs"`
				}{runs}, "", "  ")
				if err != nil {
					return err
				}
				fmt.Fprintln(w, string(b))
				return nil
			}
			tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tSTARTED\tDURATION\tOUTCOME\tMONTHS\tCREATED\tUPDATED\tUNCHANGED\tFAILED\tSKIPPED\tERROR")
			for _, r := range runs {
				dur := "-"
				if !r.End.IsZero() {
					dur = r.End.Sub(r.Start).Round(10 * time.Millisecond).String()
				}
				// Cut at a character boundary: run errors are often Chinese.
				errText := r.Error
				if cut := textutil.Truncate(errText, 60); cut != errText {
					errText = cut + "…"
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%s\n", r.ID, r.Start.In(cfg.Location).Format(time.RFC3339), dur,
					r.Outcome, strings.Join(r.Months, ","), r.Created, r.Updated, r.Unchanged, r.Failed, r.Skipped, errText)
			}
			return tw.Flush()
		},
	}
}

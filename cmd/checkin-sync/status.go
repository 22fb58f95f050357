package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
)

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "show one row per month: state, watermark and record counts",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}},
		Action: func(c *cli.Context) error {
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			today, err := today(c)
			if err != nil {
				return err
			}
			st, err := readStatus(cfg.Store, windowOf(cfg, today), cfg.Location, func() (*store.Store, error) {
				return openStoreReadOnly(cfg, 200*time.Millisecond)
			})
			if err != nil {
				return err
			}
			return printStatus(c.App.Writer, st, c.Bool("json"))
		},
	}
}

// readStatus builds the status from the store, or, while a sync holds the
// store, from the live-status file that sync keeps. It never waits on the
// lock for long.
func readStatus(storePath string, window func([]store.MonthInfo) []month.Month, loc *time.Location, open func() (*store.Store, error)) (sync.Status, error) {
	s, err := open()
	if err == nil {
		var infos []store.MonthInfo
		if s != nil {
			defer s.Close()
			if infos, err = s.Months(); err != nil {
				return sync.Status{}, storeError(err)
			}
		}
		return sync.BuildStatus(infos, window(infos), loc), nil
	}
	var locked *store.LockedError
	if !errors.As(err, &locked) {
		return sync.Status{}, err
	}
	var live liveStatus
	if lerr := store.ReadLive(storePath, &live); lerr == nil {
		st := live.Status
		st.Running = &sync.Running{PID: live.PID, Started: live.Started.In(loc).Format(time.RFC3339), Done: live.Done, Total: live.Total}
		return st, nil
	}
	if locked.Info != nil {
		st := sync.BuildStatus(nil, window(nil), loc)
		st.Running = &sync.Running{PID: locked.Info.PID, Started: locked.Info.Started.In(loc).Format(time.RFC3339)}
		return st, nil
	}
	return sync.Status{}, err
}

func printStatus(w io.Writer, st sync.Status, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(st, "", "  ")
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(w, string(b))
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "MONTH\tSTATE\tWATERMARK\tRECORDS\tSYNCED\tPENDING\tFAILED\tLAST RUN")
	for _, m := range st.Months {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%d\t%d\t%d\t%d\t%s\n", m.Month, m.State, orDash(m.Watermark), m.Records, m.Synced, m.Pending, m.Failed, orDash(m.LastRun))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	if r := st.Running; r != nil {
		if r.Total > 0 {
			fmt.Fprintf(w, "\nA sync is running: pid %d, started %s, %d of %d user-months done.\n", r.PID, r.Started, r.Done, r.Total)
		} else {
			fmt.Fprintf(w, "\nA sync is running: pid %d, started %s.\n", r.PID, r.Started)
		}
	}
	return nil
}

func orDash(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}

// windowOf gives the default window for the store's months.
func windowOf(cfg *config.Config, today month.Date) func([]store.MonthInfo) []month.Month {
	return func(infos []store.MonthInfo) []month.Month {
		return sync.DefaultWindow(today, cfg.Sync.Months, cfg.Sync.SettleDays, infos)
	}
}

package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
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
		Usage: "show one row per month: state, watermark, record counts, pending batches and what the next sync covers",
		Flags: []cli.Flag{&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"}},
		Action: func(c *cli.Context) error {
			// status, history and reset read only the store: the
			// configuration is loaded without its secrets (loadConfig
			// knows these commands), and only store, timezone, sync and
			// jiandaoyun.consistency_delay are used, plus the identity
			// when it is known.
			cfg, err := loadConfig(c)
			if err != nil {
				return err
			}
			today, err := today(c)
			if err != nil {
				return err
			}
			st, err := readStatusAt(cfg.Store, windowOf(cfg, today), statusClock{loc: cfg.Location, delay: cfg.Jiandaoyun.ConsistencyDelay, now: time.Now()},
				func() (*store.Store, error) { return openStoreToRead(cfg, 200*time.Millisecond) })
			if err != nil {
				return err
			}
			return printStatus(c.App.Writer, st, c.Bool("json"))
		},
	}
}

// statusClock is what the times in a status depend on.
type statusClock struct {
	loc   *time.Location
	delay time.Duration // jiandaoyun.consistency_delay; the default when zero
	now   time.Time
}

// readStatus is readStatusAt with the default consistency delay and now.
func readStatus(storePath string, window func([]store.MonthInfo) []month.Month, loc *time.Location, open func() (*store.Store, error)) (sync.Status, error) {
	return readStatusAt(storePath, window, statusClock{loc: loc, now: time.Now()}, open)
}

// readStatusAt builds the status from the store, or, while a sync holds
// the store, from the live-status file that sync keeps. It never waits on
// the lock for long.
func readStatusAt(storePath string, window func([]store.MonthInfo) []month.Month, clk statusClock, open func() (*store.Store, error)) (sync.Status, error) {
	s, err := open()
	if err == nil {
		var infos []store.MonthInfo
		var pendings []store.Pending
		if s != nil {
			defer s.Close()
			if infos, err = s.Months(); err != nil {
				return sync.Status{}, storeError(err)
			}
			if pendings, err = s.Pendings(); err != nil {
				return sync.Status{}, storeError(err)
			}
		}
		return sync.StatusOf(sync.StatusInput{Infos: infos, Window: window(infos), Pendings: pendings,
			ConsistencyDelay: clk.delay, Now: clk.now, Loc: clk.loc}), nil
	}
	var locked *store.LockedError
	if !errors.As(err, &locked) {
		return sync.Status{}, err
	}
	var live liveStatus
	if lerr := store.ReadLive(storePath, &live); lerr == nil {
		st := live.Status
		st.Running = &sync.Running{PID: live.PID, Started: live.Started.In(clk.loc).Format(time.RFC3339), Done: live.Done, Total: live.Total}
		return st, nil
	}
	if locked.Info != nil {
		st := sync.BuildStatus(nil, window(nil), clk.loc)
		st.Running = &sync.Running{PID: locked.Info.PID, Started: locked.Info.Started.In(clk.loc).Format(time.RFC3339)}
		return st, nil
	}
	return sync.Status{}, err
}

// openStoreToRead opens the store read-only for status and history. A
// missing store gives (nil, nil): an empty store. The store's corp, app
// and form are compared with the configuration's when it names them all;
// nothing is bound.
func openStoreToRead(cfg *config.Config, timeout time.Duration) (*store.Store, error) {
	s, err := store.Open(cfg.Store, store.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	if err := s.CheckIdentity(identity(cfg)); err != nil {
		s.Close()
		return nil, storeError(err)
	}
	return s, nil
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
	fmt.Fprintln(w)
	if len(st.NextSync) > 0 {
		fmt.Fprintf(w, "The next plain `sync` covers %s.\n", strings.Join(st.NextSync, ", "))
	}
	for _, m := range st.Months {
		if line := pendingLine(m); line != "" {
			fmt.Fprintln(w, line)
		}
	}
	if r := st.Running; r != nil {
		if r.Total > 0 {
			fmt.Fprintf(w, "A sync is running: pid %d, started %s, %d of %d user-months done.\n", r.PID, r.Started, r.Done, r.Total)
		} else {
			fmt.Fprintf(w, "A sync is running: pid %d, started %s.\n", r.PID, r.Started)
		}
	}
	return nil
}

// pendingLine tells what waits in a month's pending batches and when the
// next sync looks them up; "" when there are none.
func pendingLine(m sync.StatusRow) string {
	if m.PendingBatches == 0 {
		return ""
	}
	n := fmt.Sprintf("%d pending %s", m.PendingBatches, batches(m.PendingBatches))
	them := "them"
	if m.PendingBatches == 1 {
		them = "it"
	}
	switch {
	case m.Deferred == 0:
		return fmt.Sprintf("%s: %s; the next sync looks %s up by key as soon as it starts.", m.Month, n, them)
	case m.NextLookup != nil:
		return fmt.Sprintf("%s: %s, %d deferred: the form decides once the consistency delay after the last send has passed; a sync started now looks %s up at %s.",
			m.Month, n, m.Deferred, them, *m.NextLookup)
	}
	return fmt.Sprintf("%s: %s, %d deferred.", m.Month, n, m.Deferred)
}

// batches is "batch" or "batches" for n.
func batches(n int) string {
	if n == 1 {
		return "batch"
	}
	return "batches"
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

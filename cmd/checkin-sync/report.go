package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	stdsync "sync"
	"text/tabwriter"
	"time"

	"github.com/schollz/progressbar/v3"

	"checkin-sync/store"
	"checkin-sync/sync"
)

// liveStatus is the file a running sync keeps beside the store, so that
// `status` can answer without waiting for the lock.
type liveStatus struct {
	PID     int         `json:"pid"`
	Started time.Time   `json:"started"`
	Command string      `json:"command"`
	Done    int         `json:"done"`
	Total   int         `json:"total"`
	Status  sync.Status `json:"status"`
	Updated time.Time   `json:"updated"`
}

// reporter shows progress (a bar on a terminal, log lines elsewhere), keeps
// the live-status file and prints plan lines.
type reporter struct {
	job     syncJob
	st      *store.Store // nil in a dry run without a store
	started time.Time

	mu       stdsync.Mutex
	term     io.Writer // where the bar is drawn: stderr, a terminal
	bar      *progressbar.ProgressBar
	lastLog  time.Time
	lastLive time.Time
	closed   bool
	outGone  bool // a write to out failed (a closed pipe): stop printing, keep syncing
}

func newReporter(job syncJob, st *store.Store, started time.Time) *reporter {
	r := &reporter{job: job, st: st, started: started, term: os.Stderr}
	if !job.dryRun && st != nil {
		r.writeLive(0, 0)
	}
	return r
}

func (r *reporter) progress(p sync.Progress) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	now := time.Now()
	if r.job.progress {
		if r.bar == nil {
			r.bar = progressbar.NewOptions(p.Total,
				progressbar.OptionSetWriter(r.term),
				progressbar.OptionSetDescription("syncing"),
				progressbar.OptionShowCount(),
				progressbar.OptionSetPredictTime(true),
				progressbar.OptionClearOnFinish())
		}
		_ = r.bar.Set(p.Done)
	} else if now.Sub(r.lastLog) >= 5*time.Second || p.Done == p.Total {
		r.lastLog = now
		r.job.log.Info().Str("month", p.Month).Int("done", p.Done).Int("total", p.Total).Msg("progress")
	}
	if !r.job.dryRun && r.st != nil && (now.Sub(r.lastLive) >= time.Second || p.Done == p.Total) {
		r.lastLive = now
		r.writeLive(p.Done, p.Total)
	}
}

func (r *reporter) writeLive(done, total int) {
	infos, err := r.st.Months()
	if err != nil {
		return
	}
	pendings, err := r.st.Pendings()
	if err != nil {
		return
	}
	cfg := r.job.cfg
	live := liveStatus{
		PID: os.Getpid(), Started: r.started, Command: "sync", Done: done, Total: total,
		Status: sync.StatusOf(sync.StatusInput{
			Infos: infos, Window: sync.DefaultWindow(r.job.today, cfg.Sync.Months, cfg.Sync.SettleDays, infos),
			Pendings: pendings, ConsistencyDelay: cfg.Jiandaoyun.ConsistencyDelay, Now: time.Now(), Loc: cfg.Location,
		}),
		Updated: time.Now(),
	}
	if err := store.WriteLive(r.st.Path(), live); err != nil {
		r.job.log.Debug().Err(err).Msg("could not write the live-status file")
	}
}

// plan prints one record's plan line: every line under -v, in a real run
// as in a dry run, and a dry run's pending lines always. On a terminal the
// line goes above the progress bar: the bar is cleared, the line printed
// and the bar drawn again below it. Once out is gone (`sync -v | head -1`),
// lines are dropped and the run goes on.
func (r *reporter) plan(l sync.PlanLine) {
	if !r.job.verbose && !(r.job.dryRun && strings.HasPrefix(l.Action, "pending")) {
		return
	}
	line := fmt.Sprintf("%-22s %-8s %s", l.Action, l.Month, l.UserID)
	if l.DataID != "" {
		line += " data_id=" + l.DataID
	}
	if l.Detail != "" {
		line += " (" + l.Detail + ")"
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.outGone {
		return
	}
	if r.bar != nil && !r.closed {
		_ = r.bar.Clear()
	}
	_, err := fmt.Fprintln(r.job.out, line)
	if r.bar != nil && !r.closed {
		_ = r.bar.RenderBlank()
	}
	if err != nil {
		r.outGone = true
		r.job.log.Warn().Err(err).Msg("standard output is closed; the sync goes on without printing plan lines")
	}
}

func (r *reporter) close() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return
	}
	r.closed = true
	if r.bar != nil {
		_ = r.bar.Finish()
	}
	if !r.job.dryRun && r.st != nil {
		_ = store.RemoveLive(r.st.Path())
	}
}

// printSummary writes the end-of-run summary.
func printSummary(w io.Writer, s *sync.Summary) {
	dur := s.End.Sub(s.Start).Round(10 * time.Millisecond)
	switch {
	case s.DryRun:
		fmt.Fprintf(w, "Dry run: nothing was written (took %s)\n", dur)
	default:
		outcome, _ := sync.Verdict(s)
		fmt.Fprintf(w, "Run %s: %s in %s\n", s.RunID, outcome, dur)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if s.DryRun {
		fmt.Fprintln(tw, "MONTH\tUSERS\tFETCHED\tCREATE\tUPDATE\tUNCHANGED\tFAILED\tSKIPPED\tDUPLICATES\tNOTE")
		for _, m := range s.Months {
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", m.Month, m.Users, m.Fetched, m.PlanCreate, m.PlanUpdate, m.Unchanged, m.Failed, m.Skipped, m.Duplicates, m.Note)
		}
		t := s.Totals()
		fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Users, t.Fetched, t.PlanCreate, t.PlanUpdate, t.Unchanged, t.Failed, t.Skipped, t.Duplicates)
	} else {
		fmt.Fprintln(tw, "MONTH\tUSERS\tFETCHED\tCREATED\tUPDATED\tUNCHANGED\tFAILED\tPENDING\tSKIPPED\tDUPLICATES\tWATERMARK\tNOTE")
		for _, m := range s.Months {
			wm := m.Watermark
			if wm == "" {
				wm = "-"
			}
			fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%s\n", m.Month, m.Users, m.Fetched, m.Created, m.Updated, m.Unchanged, m.Failed, m.Pending, m.Skipped, m.Duplicates, wm, m.Note)
		}
		t := s.Totals()
		fmt.Fprintf(tw, "TOTAL\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\t\n", t.Users, t.Fetched, t.Created, t.Updated, t.Unchanged, t.Failed, t.Pending, t.Skipped, t.Duplicates)
	}
	tw.Flush()

	printList(w, "\nSkipped users (%d):\n", s.Skipped, func(u sync.SkippedUser) string {
		return fmt.Sprintf("%s  %-24s %s", u.Month, u.UserID, u.Reason)
	})
	printList(w, "\nFailed records (%d):\n", s.Failures, func(f sync.Failure) string {
		return fmt.Sprintf("%s: %s", f.Key, f.Error)
	})
	printList(w, "\nDeleted newer copies made by a second writer (%d; full content in `history --json`):\n", s.Deleted, func(d store.DeletedRecord) string {
		return fmt.Sprintf("%s: deleted %s, kept %s", d.Key, d.DataID, d.Kept)
	})
	if t := s.Totals(); t.UnknownEnum > 0 {
		var per []string
		for _, m := range s.Months {
			if m.UnknownEnum > 0 {
				per = append(per, fmt.Sprintf("%s: %d", m.Month, m.UnknownEnum))
			}
		}
		fmt.Fprintf(w, "\nRecords with an enum code not in the mapping's table, written as the code (%d; %s): add the codes to the enum table, see the warnings below.\n",
			t.UnknownEnum, strings.Join(per, ", "))
	}
	for _, warn := range s.Warnings {
		fmt.Fprintf(w, "Warning: %s\n", warn)
	}
	if len(s.Calls) > 0 {
		fmt.Fprintln(w, "\nAPI calls:")
		tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "  ENDPOINT\tCALLS\tRETRIES")
		for _, ep := range s.Endpoints() {
			fmt.Fprintf(tw, "  %s\t%d\t%d\n", ep, s.Calls[ep].Calls, s.Calls[ep].Retries)
		}
		tw.Flush()
	}
	if s.Interrupted {
		fmt.Fprintln(w, "\nInterrupted: checkpoints up to the interruption are saved; run sync again to finish.")
	}
	if s.Err != nil {
		fmt.Fprintf(w, "\nStopped by: %v\n", s.Err)
	}
}

// printList prints heading (a format taking the number of items) and the
// first 20 items, one line each, then how many more there are; nothing
// when items is empty.
func printList[T any](w io.Writer, heading string, items []T, line func(T) string) {
	if len(items) == 0 {
		return
	}
	fmt.Fprintf(w, heading, len(items))
	for i, it := range items {
		if i == 20 {
			fmt.Fprintf(w, "  … and %d more\n", len(items)-i)
			break
		}
		fmt.Fprintf(w, "  %s\n", line(it))
	}
}

// summaryExitCode is the exit code a run earned: 130 interrupted, 4 fatal
// API error, 2 a local error (store), 1 records failed or left pending.
func summaryExitCode(s *sync.Summary) int {
	_, code := sync.Verdict(s)
	return code
}

package main

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/sync"
)

// screen is a one-column-per-rune terminal: \r returns to the start of
// the line, \n starts the next one, anything else overwrites in place.
type screen struct {
	lines [][]rune
	row   int
	col   int
}

func (s *screen) Write(p []byte) (int, error) {
	for _, b := range string(p) {
		for len(s.lines) <= s.row {
			s.lines = append(s.lines, nil)
		}
		switch b {
		case '\r':
			s.col = 0
		case '\n':
			s.row++
			s.col = 0
		default:
			line := s.lines[s.row]
			for len(line) <= s.col {
				line = append(line, ' ')
			}
			line[s.col] = b
			s.lines[s.row] = line
			s.col++
		}
	}
	return len(p), nil
}

func (s *screen) text() []string {
	var out []string
	for _, l := range s.lines {
		out = append(out, strings.TrimRight(string(l), " "))
	}
	return out
}

// TestPlanLinesAboveProgressBar: on a terminal, stdout and stderr are one
// screen. Each -v line is printed whole above the bar, and the bar is
// drawn again below it.
func TestPlanLinesAboveProgressBar(t *testing.T) {
	scr := &screen{}
	r := &reporter{job: syncJob{verbose: true, progress: true, dryRun: true, out: scr, log: zerolog.Nop()}, term: scr, started: time.Now()}
	r.plan(sync.PlanLine{Action: "create", Month: "2026-02", UserID: "before0001"})
	r.progress(sync.Progress{Month: "2026-02", Done: 1, Total: 4})
	r.plan(sync.PlanLine{Action: "update", Month: "2026-02", UserID: "zhangsan0001", DataID: "d1"})
	r.progress(sync.Progress{Month: "2026-02", Done: 2, Total: 4})
	r.plan(sync.PlanLine{Action: "unchanged", Month: "2026-02", UserID: "lisi0002", DataID: "d2"})

	got := scr.text()
	want := []string{
		"create                 2026-02  before0001",
		"update                 2026-02  zhangsan0001 data_id=d1",
		"unchanged              2026-02  lisi0002 data_id=d2",
	}
	if len(got) != len(want)+1 {
		t.Fatalf("screen:\n%s\nwant the %d plan lines and the bar below them", strings.Join(got, "\n"), len(want))
	}
	for i, w := range want {
		if got[i] != w {
			t.Errorf("screen line %d = %q, want %q", i, got[i], w)
		}
	}
	if bar := got[len(want)]; !strings.HasPrefix(bar, "syncing") || !strings.Contains(bar, "(2/4") {
		t.Errorf("last screen line = %q, want the bar at 2/4", bar)
	}
	r.close()
	if last := scr.text()[len(want)]; last != "" {
		t.Errorf("after close the bar line = %q, want it cleared", last)
	}
}

// brokenPipe fails every write, as stdout does once `head -1` exits.
type brokenPipe struct{ writes int }

func (b *brokenPipe) Write([]byte) (int, error) {
	b.writes++
	return 0, errors.New("write |1: broken pipe")
}

// TestPlanStopsPrintingWhenOutIsGone: the first failed write stops the
// plan lines; the run (the caller) is not told to stop.
func TestPlanStopsPrintingWhenOutIsGone(t *testing.T) {
	out := &brokenPipe{}
	var logb strings.Builder
	r := &reporter{job: syncJob{verbose: true, dryRun: true, out: out, log: zerolog.New(&logb)}, started: time.Now()}
	for i := 0; i < 5; i++ {
		r.plan(sync.PlanLine{Action: "create", Month: "2026-02", UserID: "u"})
	}
	if out.writes != 1 {
		t.Errorf("%d writes to the closed stdout, want 1", out.writes)
	}
	if n := strings.Count(logb.String(), "standard output is closed"); n != 1 {
		t.Errorf("%d log lines about the closed stdout, want 1:\n%s", n, logb.String())
	}
}

// TestSummaryCountsUnknownEnumCodes: records written with an enum code
// the table lacks are counted in the summary, per month; none, no line.
func TestSummaryCountsUnknownEnumCodes(t *testing.T) {
	start := time.Date(2026, 3, 15, 1, 0, 0, 0, time.UTC)
	sum := &sync.Summary{RunID: "r1", Start: start, End: start.Add(time.Second), Months: []*sync.MonthSummary{
		{Month: "2026-01", Users: 5, Fetched: 5, Created: 5, UnknownEnum: 2},
		{Month: "2026-02", Users: 5, Fetched: 5, Created: 5},
		{Month: "2026-03", Users: 5, Fetched: 5, Created: 5, UnknownEnum: 1},
	}}
	var b strings.Builder
	printSummary(&b, sum)
	want := "\nRecords with an enum code not in the mapping's table, written as the code (3; 2026-01: 2, 2026-03: 1): add the codes to the enum table, see the warnings below.\n"
	if !strings.Contains(b.String(), want) {
		t.Errorf("summary without %q:\n%s", want, b.String())
	}
	for _, m := range sum.Months {
		m.UnknownEnum = 0
	}
	b.Reset()
	printSummary(&b, sum)
	if strings.Contains(b.String(), "enum code") {
		t.Errorf("summary mentions enum codes with none unknown:\n%s", b.String())
	}
}

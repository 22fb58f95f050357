package sync

import (
	"sort"
	"time"

	"checkin-sync/internal/retry"
	"checkin-sync/store"
)

// Summary is what one run did. It is printed at the end of `sync` and kept,
// in part, in the run history.
type Summary struct {
	RunID       string
	Start, End  time.Time
	DryRun      bool
	Months      []*MonthSummary
	Skipped     []SkippedUser
	Failures    []Failure
	Warnings    []string
	Calls       map[string]retry.EndpointStats // "wecom getcheckin_monthdata" -> counts
	Deleted     []store.DeletedRecord          // newer copies of keys deleted, with their content
	Interrupted bool
	Err         error // the error that stopped the run, if any
}

// MonthSummary counts one month's outcomes in this run.
type MonthSummary struct {
	Month      string
	Users      int // users requested from WeCom
	Fetched    int // rows received
	Created    int
	Updated    int
	Unchanged  int
	Failed     int
	Pending    int // left in a pending batch whose outcome is still open
	Skipped    int
	Duplicates int
	// UnknownEnum counts records with an enum code the mapping's table
	// does not list; the code was written as text.
	UnknownEnum int
	Watermark   string // after the run; "" when none
	Complete    bool   // every user ended synced or skipped
	Note        string // why the month was left out, when it was

	// dry-run plan
	PlanCreate, PlanUpdate int

	finished bool // the month's watermark and state were decided
}

// touched reports whether the run did anything in the month.
func (m *MonthSummary) touched() bool {
	return m.Users+m.Created+m.Updated+m.Unchanged+m.Failed+m.Pending > 0
}

// Failure is one record that could not be written.
type Failure struct {
	Key, Month, Error string
}

// Totals adds the months up.
func (s *Summary) Totals() MonthSummary {
	var t MonthSummary
	for _, m := range s.Months {
		t.Users += m.Users
		t.Fetched += m.Fetched
		t.Created += m.Created
		t.Updated += m.Updated
		t.Unchanged += m.Unchanged
		t.Failed += m.Failed
		t.Pending += m.Pending
		t.Skipped += m.Skipped
		t.Duplicates += m.Duplicates
		t.UnknownEnum += m.UnknownEnum
		t.PlanCreate += m.PlanCreate
		t.PlanUpdate += m.PlanUpdate
	}
	return t
}

// Endpoints lists the endpoints in Calls, sorted.
func (s *Summary) Endpoints() []string {
	out := make([]string, 0, len(s.Calls))
	for k := range s.Calls {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// PlanLine is one record's plan, shown under -v and in a dry run.
type PlanLine struct {
	Month, UserID, Key, Action, DataID, Detail string
}

// Progress is reported after each fetched batch is written.
type Progress struct {
	Month       string
	Done, Total int
}

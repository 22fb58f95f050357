package sync

import (
	"sort"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// Month states as shown by `status`. They are derived when shown, never
// stored.
const (
	StateNever   = "never"
	StatePartial = "partial"
	StateOpen    = "open"
	StateSettled = "settled"
)

// StatusRow is one month of `status`. The JSON names of the first eight
// fields are the contract; the others were added after it.
type StatusRow struct {
	Month     string  `json:"month"`
	State     string  `json:"state"`
	Watermark *string `json:"watermark"`
	Records   int     `json:"records"`
	Synced    int     `json:"synced"`
	Pending   int     `json:"pending"`
	Failed    int     `json:"failed"`
	LastRun   *string `json:"last_run"`

	// PendingBatches counts the month's create batches whose outcome is
	// still open; the next sync resolves them by key before anything else.
	PendingBatches int `json:"pending_batches"`
	// Deferred counts those the form has not had the consistency delay to
	// settle since their last send: the next sync waits before looking
	// them up. The others are looked up as soon as it starts.
	Deferred int `json:"deferred"`
	// NextLookup is when a sync started now would first look up one of
	// the month's pending batches (RFC 3339); null without any.
	NextLookup *string `json:"next_lookup"`
}

// Running describes a sync that holds the store.
type Running struct {
	PID     int    `json:"pid"`
	Started string `json:"started"`
	Done    int    `json:"done"`
	Total   int    `json:"total"`
}

// Status is what `status` prints, as a table or as JSON.
type Status struct {
	Months []StatusRow `json:"months"`
	// NextSync is the months the next plain `sync` (no --month) covers:
	// the default window.
	NextSync []string `json:"next_sync"`
	Running  *Running `json:"running,omitempty"`
}

// StatusInput is what a status is built from.
type StatusInput struct {
	Infos  []store.MonthInfo
	Window []month.Month // the default window, DefaultWindow of Infos
	// Pendings are the store's pending batches; ConsistencyDelay
	// (DefaultConsistencyDelay when zero) and Now tell when the next sync
	// looks them up.
	Pendings         []store.Pending
	ConsistencyDelay time.Duration
	Now              time.Time
	Loc              *time.Location // times are shown in it
}

// BuildStatus lists every month in the store plus the months of the default
// window, with their derived state. It knows nothing of pending batches;
// StatusOf does.
func BuildStatus(infos []store.MonthInfo, window []month.Month, loc *time.Location) Status {
	return StatusOf(StatusInput{Infos: infos, Window: window, Loc: loc})
}

// StatusOf lists every month in the store (its months entries and the
// months of its pending batches) plus the months of the default window,
// with their derived state and pending batches.
//
// STATE: never when no run has processed the month; partial when a run
// started it and did not go through it (InProgress: interrupted, killed,
// stopped) or the last run that processed it left failed or pending
// records (Dirty); otherwise open inside the default window and settled
// outside it.
func StatusOf(in StatusInput) Status {
	loc := in.Loc
	if loc == nil {
		loc = time.UTC
	}
	delay := in.ConsistencyDelay
	if delay <= 0 {
		delay = DefaultConsistencyDelay
	}
	byMonth := map[string]store.MonthInfo{}
	for _, mi := range in.Infos {
		byMonth[mi.Month] = mi
	}
	add := func(m string) {
		if _, ok := byMonth[m]; !ok {
			byMonth[m] = store.MonthInfo{Month: m}
		}
	}
	inWindow := map[string]bool{}
	next := make([]string, 0, len(in.Window))
	for _, m := range in.Window {
		inWindow[m.String()] = true
		next = append(next, m.String())
		add(m.String())
	}
	type lookups struct {
		batches, deferred int
		first             time.Time
	}
	pend := map[string]*lookups{}
	for _, p := range in.Pendings {
		add(p.Month)
		l := pend[p.Month]
		if l == nil {
			l = &lookups{}
			pend[p.Month] = l
		}
		l.batches++
		at := LookupAt(p, in.Now, delay)
		if at.After(in.Now) {
			l.deferred++
		} else {
			at = in.Now // due: looked up as soon as the next sync starts
		}
		if l.first.IsZero() || at.Before(l.first) {
			l.first = at
		}
	}
	keys := make([]string, 0, len(byMonth))
	for k := range byMonth {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	st := Status{Months: make([]StatusRow, 0, len(keys)), NextSync: next}
	for _, k := range keys {
		mi := byMonth[k]
		row := StatusRow{
			Month:   k,
			Records: mi.Synced + mi.Pending + mi.Failed,
			Synced:  mi.Synced,
			Pending: mi.Pending,
			Failed:  mi.Failed,
		}
		switch {
		case mi.LastRunID == "" && !mi.InProgress:
			row.State = StateNever
		case mi.InProgress || mi.Dirty:
			row.State = StatePartial
		case inWindow[k]:
			row.State = StateOpen
		default:
			row.State = StateSettled
		}
		if mi.Watermark != "" {
			w := mi.Watermark
			row.Watermark = &w
		}
		if !mi.LastRunStart.IsZero() {
			s := mi.LastRunStart.In(loc).Format(time.RFC3339)
			row.LastRun = &s
		}
		if l := pend[k]; l != nil {
			row.PendingBatches, row.Deferred = l.batches, l.deferred
			s := l.first.In(loc).Format(time.RFC3339)
			row.NextLookup = &s
		}
		st.Months = append(st.Months, row)
	}
	return st
}

// LookupAt is when a run that starts at start looks up a batch an earlier
// run left pending: the consistency delay after the batch's last send, or,
// for a batch sent so recently that a send may still have been under way
// when that run died, the consistency delay after start. It is the rule of
// run.inheritedLastSend, which a test keeps in step with it.
func LookupAt(p store.Pending, start time.Time, delay time.Duration) time.Time {
	last := p.LastSentAt
	if start.Sub(last) < delay+inheritedSendSlack {
		last = start
	}
	return last.Add(delay)
}

// ShownOutcome is the outcome `history` shows for a run's stored one,
// read while the reader holds the store's lock, so that no sync can be
// running. A run records itself as running when it starts and rewrites
// the record when it ends; a running entry read then belongs to a process
// that is gone (kill -9, a second signal, a power loss) and is shown as
// killed. Pids are never checked: they are reused.
func ShownOutcome(stored string) string {
	if stored == OutcomeRunning {
		return OutcomeKilled
	}
	return stored
}

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

// StatusRow is one month of `status`; the JSON names are the contract.
type StatusRow struct {
	Month     string  `json:"month"`
	State     string  `json:"state"`
	Watermark *string `json:"watermark"`
	Records   int     `json:"records"`
	Synced    int     `json:"synced"`
	Pending   int     `json:"pending"`
	Failed    int     `json:"failed"`
	LastRun   *string `json:"last_run"`
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
	Months  []StatusRow `json:"months"`
	Running *Running    `json:"running,omitempty"`
}

// BuildStatus lists every month in the store plus the months of the default
// window, with their derived state.
func BuildStatus(infos []store.MonthInfo, window []month.Month, loc *time.Location) Status {
	byMonth := map[string]store.MonthInfo{}
	for _, mi := range infos {
		byMonth[mi.Month] = mi
	}
	inWindow := map[string]bool{}
	for _, m := range window {
		inWindow[m.String()] = true
		if _, ok := byMonth[m.String()]; !ok {
			byMonth[m.String()] = store.MonthInfo{Month: m.String()}
		}
	}
	keys := make([]string, 0, len(byMonth))
	for k := range byMonth {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	st := Status{Months: make([]StatusRow, 0, len(keys))}
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
		case mi.LastRunID == "":
			row.State = StateNever
		case mi.Dirty:
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
		st.Months = append(st.Months, row)
	}
	return st
}

package sync

import (
	"fmt"
	"sort"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// DefaultWindow is the months a plain `sync` covers:
//   - the current month;
//   - each of the previous months-1 months while today is no later than
//     that month's last day plus settleDays, or while a run has processed
//     it (in infos) and its watermark is before its last day: so every
//     synced month is fetched at least once after it has ended, whatever
//     settleDays is and even if a run was missed;
//   - every month, whatever its age, that a run started and did not go
//     through (interrupted, killed, a fetch that failed after its retries,
//     a store write that failed) or that holds pending records, until a
//     run completes it. A month partial only because Jiandaoyun rejected
//     some of its records is not pulled in.
//
// A month no run has touched is not pulled in.
func DefaultWindow(today month.Date, months, settleDays int, infos []store.MonthInfo) []month.Month {
	cur := today.Month()
	set := map[month.Month]bool{cur: true}
	watermark := make(map[string]string, len(infos))
	for _, mi := range infos {
		if mi.LastRunID != "" {
			watermark[mi.Month] = mi.Watermark
		}
		if unfinished(mi) {
			if m, err := month.Parse(mi.Month); err == nil && !cur.Before(m) {
				set[m] = true
			}
		}
	}
	m := cur
	for i := 1; i < months; i++ {
		m = m.Prev()
		last := month.Date{Year: m.Year, Mon: m.Mon, Day: m.Days()}
		settling := !last.AddDays(settleDays).Before(today)
		wm, synced := watermark[m.String()]
		if settling || synced && wm < last.String() {
			set[m] = true
		}
	}
	out := make([]month.Month, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}

// unfinished reports whether a month stays in the default window until a
// run completes it: a run started it and did not go through it, or a run
// left records of it pending. Failed records alone do not count.
func unfinished(mi store.MonthInfo) bool {
	return mi.InProgress || mi.LastRunID != "" && mi.Pending > 0
}

// SelectMonths turns --month and --from/--to into the months to sync: their
// union, sorted. With neither, it is the default window. to defaults to the
// current month. A future month or from later than to is an error.
func SelectMonths(today month.Date, named []month.Month, from, to month.Month, months, settleDays int, infos []store.MonthInfo) ([]month.Month, error) {
	cur := today.Month()
	if len(named) == 0 && from.IsZero() && to.IsZero() {
		return DefaultWindow(today, months, settleDays, infos), nil
	}
	set := map[month.Month]bool{}
	for _, m := range named {
		if cur.Before(m) {
			return nil, fmt.Errorf("--month %s is in the future (today is %s)", m, today)
		}
		set[m] = true
	}
	if !to.IsZero() && from.IsZero() {
		return nil, fmt.Errorf("--to %s needs --from", to)
	}
	if !from.IsZero() {
		if to.IsZero() {
			to = cur
		}
		if cur.Before(to) {
			return nil, fmt.Errorf("--to %s is in the future (today is %s)", to, today)
		}
		if to.Before(from) {
			return nil, fmt.Errorf("--from %s is later than --to %s", from, to)
		}
		for _, m := range month.Range(from, to) {
			set[m] = true
		}
	}
	out := make([]month.Month, 0, len(set))
	for m := range set {
		out = append(out, m)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out, nil
}

package sync

import (
	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// finishMonth moves the watermark when the month is complete and saves the
// month's counts. It runs after every batch of the run has settled.
func (r *run) finishMonth(end monthEnd) {
	ms := r.month(end.month.String())
	r.mu.Lock()
	ms.finished = true
	if end.note != "" {
		ms.Note = end.note
		r.mu.Unlock()
		r.log.Info().Str("month", ms.Month).Msg("month left out: " + end.note)
		return
	}
	ms.Complete = end.fetchedAll && ms.Failed == 0 && ms.Pending == 0
	complete := ms.Complete
	r.mu.Unlock()
	r.saveMonth(end.month, end.last, complete)
}

// saveMonth writes a month's last run and, when complete, its watermark,
// which never moves backwards. The store keeps the record counts itself.
func (r *run) saveMonth(m month.Month, last month.Date, complete bool) {
	ms := r.month(m.String())
	info, _, err := r.e.cp.Month(ms.Month)
	if err != nil {
		r.log.Error().Err(err).Str("month", ms.Month).Msg("could not read the month's state")
		return
	}
	r.mu.Lock()
	info.Month = ms.Month
	info.Dirty = ms.Failed > 0 || ms.Pending > 0 || !complete
	r.mu.Unlock()
	info.LastRunID = r.sum.RunID
	info.LastRunStart = r.sum.Start
	if complete {
		wm := last.String()
		switch {
		case info.Watermark == "" || wm > info.Watermark:
			info.Watermark = wm
		case wm < info.Watermark:
			r.log.Info().Str("month", ms.Month).Str("watermark", info.Watermark).Str("this_run", wm).
				Msg("the watermark never moves backwards; it stays")
		}
		info.LastSuccess = r.e.opts.Now()
	}
	r.mu.Lock()
	ms.Watermark = info.Watermark
	r.mu.Unlock()
	if err := r.e.cp.Apply(&store.Write{Months: []store.MonthInfo{info}}); err != nil {
		r.log.Error().Err(err).Str("month", ms.Month).Msg("could not save the month's state")
	}
}

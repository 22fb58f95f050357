package sync

import (
	"fmt"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// markStarted marks the run's months in progress, with this run as their
// last run, in one store transaction before anything is fetched. Only a
// run that goes through a month clears the mark (finishMonth), so a month
// an interrupted or killed run started stays partial, and in the default
// window, until a later run finishes it. A month with no complete day yet
// is left alone: the run skips it.
func (r *run) markStarted() error {
	var infos []store.MonthInfo
	for _, m := range r.req.Months {
		if _, _, ok := m.Span(r.req.Today); !ok {
			continue
		}
		info, _, err := r.e.cp.Month(m.String())
		if err != nil {
			return fmt.Errorf("read the state of %s: %w", m, err)
		}
		info.Month = m.String()
		info.InProgress = true
		info.LastRunID = r.sum.RunID
		info.LastRunStart = r.sum.Start
		infos = append(infos, info)
	}
	if len(infos) == 0 {
		return nil
	}
	if err := r.e.cp.Apply(&store.Write{Months: infos}); err != nil {
		return fmt.Errorf("save checkpoints: mark the months in progress: %w", err)
	}
	return nil
}

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
		r.unmark(end.month)
		return
	}
	ms.Complete = end.fetchedAll && ms.Failed == 0 && ms.Pending == 0
	complete := ms.Complete
	// Gone through: every user fetched and every batch settled. Only
	// records Jiandaoyun rejected may be left, and they do not keep the
	// month in progress.
	through := end.fetchedAll && ms.Pending == 0
	r.mu.Unlock()
	r.saveMonth(end.month, end.last, complete, through)
}

// unmark clears the in-progress mark of a month the run left out (WeCom
// refused its one-day range), since markStarted set it.
func (r *run) unmark(m month.Month) {
	info, found, err := r.e.cp.Month(m.String())
	if err != nil || !found || !info.InProgress || info.LastRunID != r.sum.RunID {
		return
	}
	info.InProgress = false
	if err := r.e.cp.Apply(&store.Write{Months: []store.MonthInfo{info}}); err != nil {
		r.log.Error().Err(err).Str("month", m.String()).Msg("could not save the month's state")
	}
}

// saveMonth writes a month's last run and, when complete, its watermark,
// which never moves backwards. through clears the in-progress mark; a
// month the run did not go through keeps it as it was. The store keeps
// the record counts itself.
func (r *run) saveMonth(m month.Month, last month.Date, complete, through bool) {
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
	if through {
		info.InProgress = false
	}
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

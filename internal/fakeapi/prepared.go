package fakeapi

import (
	"encoding/json"
	"sync"

	"checkin-sync/internal/month"
)

// preparedKey names one user's row for one window.
type preparedKey struct {
	user     int
	from, to month.Date
}

// preparedRow is a row encoded ahead of time, with what it was built from.
type preparedRow struct {
	version  int
	reported string // the spelling of base_info.acctid it carries
	json     []byte
}

type preparedRows struct {
	mu   sync.RWMutex
	rows map[preparedKey]preparedRow
}

// PrepareReports encodes every user's full-month row of the months ahead
// of time, so that answering getcheckin_monthdata for them costs a copy.
// A benchmark calls it: a real WeCom builds its answers on its own
// machines, not on the cores the client being measured runs on. A row
// whose report was bumped, or whose spelling changed, since is built
// again on each request, as without preparing.
func (s *Server) PrepareReports(months []month.Month) error {
	c := s.opts.Company
	rows := make(map[preparedKey]preparedRow, len(c.users)*len(months))
	for _, m := range months {
		first, last := wholeMonth(m)
		for i := range c.users {
			pr, err := s.encodeRow(i, m, first, last)
			if err != nil {
				return err
			}
			rows[preparedKey{i, first, last}] = pr
		}
	}
	s.prepared.mu.Lock()
	if s.prepared.rows == nil {
		s.prepared.rows = rows
	} else {
		for k, v := range rows {
			s.prepared.rows[k] = v
		}
	}
	s.prepared.mu.Unlock()
	return nil
}

// monthRow is user i's row for the window, encoded: prepared when it
// still matches the report and the spelling, built otherwise.
func (s *Server) monthRow(i int, m month.Month, from, to month.Date) ([]byte, error) {
	s.prepared.mu.RLock()
	pr, ok := s.prepared.rows[preparedKey{i, from, to}]
	s.prepared.mu.RUnlock()
	if ok {
		u := s.opts.Company.users[i].UserID
		if pr.version == s.opts.Company.version(u, m) && pr.reported == s.spelling(u).Reported {
			return pr.json, nil
		}
	}
	pr, err := s.encodeRow(i, m, from, to)
	return pr.json, err
}

func (s *Server) encodeRow(i int, m month.Month, from, to month.Date) (preparedRow, error) {
	c := s.opts.Company
	u := c.users[i].UserID
	pr := preparedRow{version: c.version(u, m), reported: s.spelling(u).Reported}
	row := c.report(i, m, from, to)
	if pr.reported != "" {
		row["base_info"].(map[string]any)["acctid"] = pr.reported
	}
	b, err := json.Marshal(row)
	pr.json = b
	return pr, err
}

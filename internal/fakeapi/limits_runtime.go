package fakeapi

// Limits are the server-side rate limits, as in Options: zero takes the
// documented default, negative means unlimited.
type Limits struct {
	MonthDataPerMinute float64  // getcheckin_monthdata
	ListPerMinute      float64  // department/simplelist, user/simplelist
	JDY                JDYRates // Jiandaoyun, per second
}

// SetLimits replaces the server-side rate limits while the server runs, so
// a benchmark can lift them for a setup load and restore them for the run
// it measures without restarting the fakes (and losing their form). Every
// bucket starts full at its new rate; Options.Burst is kept. Forms added
// by AddForm share the limits and follow. Safe for concurrent use.
func (s *Server) SetLimits(l Limits) {
	o := s.opts
	o.MonthDataPerMinute, o.ListPerMinute, o.JDY = l.MonthDataPerMinute, l.ListPerMinute, l.JDY
	s.limits.cur.Store(newBuckets(withDefaults(o)))
}

// Limits returns the limits in force, defaults filled in.
func (s *Server) Limits() Limits { return s.limits.cur.Load().limits }

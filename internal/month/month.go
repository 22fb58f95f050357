// Package month is the calendar-month type shared by every layer. WeCom
// defines its day boundary as 00:00 China Standard Time, so all timestamps
// derived here use UTC+8, whatever the local or configured time zone is.
package month

import (
	"fmt"
	"time"
)

// CST is WeCom's clock: UTC+8 with no daylight saving. A fixed zone needs no
// tzdata, so month boundaries cannot depend on the machine's zone files.
var CST = time.FixedZone("CST", 8*3600)

// Month is one calendar month. The zero value is not a valid month.
type Month struct {
	Year int
	Mon  time.Month
}

// Parse accepts exactly YYYY-MM.
func Parse(s string) (Month, error) {
	if len(s) != 7 || s[4] != '-' {
		return Month{}, fmt.Errorf("month %q: want YYYY-MM, for example 2026-03", s)
	}
	t, err := time.Parse("2006-01", s)
	if err != nil {
		return Month{}, fmt.Errorf("month %q: want YYYY-MM, for example 2026-03", s)
	}
	return Month{Year: t.Year(), Mon: t.Month()}, nil
}

// MustParse is Parse for constants in tests and examples.
func MustParse(s string) Month {
	m, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return m
}

// Of returns the month that holds the given calendar date; only the date's
// year and month are used, in the date's own location.
func Of(t time.Time) Month { return Month{Year: t.Year(), Mon: t.Month()} }

func (m Month) String() string {
	if m.Year < 0 || m.Year > 9999 || m.Mon < 1 || m.Mon > 12 {
		return fmt.Sprintf("%04d-%02d", m.Year, int(m.Mon))
	}
	// Without fmt: keys and month names are formatted for every record.
	y, mo := m.Year, int(m.Mon)
	return string([]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-', byte('0' + mo/10), byte('0' + mo%10)})
}

// IsZero reports whether m is the zero value.
func (m Month) IsZero() bool { return m.Year == 0 && m.Mon == 0 }

// Start is the 1st at 00:00 CST.
func (m Month) Start() time.Time { return time.Date(m.Year, m.Mon, 1, 0, 0, 0, 0, CST) }

// Day returns day d of the month at 00:00 CST.
func (m Month) Day(d int) time.Time { return time.Date(m.Year, m.Mon, d, 0, 0, 0, 0, CST) }

// Days is the number of days in the month.
func (m Month) Days() int { return m.Next().Start().AddDate(0, 0, -1).Day() }

// LastDay is the last day of the month at 00:00 CST.
func (m Month) LastDay() time.Time { return m.Day(m.Days()) }

// Next and Prev step one month.
func (m Month) Next() Month { return Of(m.Start().AddDate(0, 1, 0).In(CST)) }

// Prev is the month before m.
func (m Month) Prev() Month { return Of(m.Start().AddDate(0, -1, 0).In(CST)) }

// Before reports whether m is earlier than o.
func (m Month) Before(o Month) bool {
	return m.Year < o.Year || (m.Year == o.Year && m.Mon < o.Mon)
}

// Date is a calendar day without a zone, as given by --today or taken from
// the CST calendar by TodayCST.
type Date struct {
	Year int
	Mon  time.Month
	Day  int
}

// ParseDate accepts exactly YYYY-MM-DD.
func ParseDate(s string) (Date, error) {
	t, err := time.Parse("2006-01-02", s)
	if err != nil || len(s) != 10 {
		return Date{}, fmt.Errorf("date %q: want YYYY-MM-DD, for example 2026-03-05", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// DateIn returns the calendar day of t in loc.
func DateIn(t time.Time, loc *time.Location) Date {
	t = t.In(loc)
	return Date{t.Year(), t.Month(), t.Day()}
}

// TodayCST is the date of now on WeCom's calendar (UTC+8). "Today" decides
// which months are current and which days are complete, so it must follow
// the calendar WeCom's days and months follow, not the configured display
// zone or the host's zone.
func TodayCST(now time.Time) Date { return DateIn(now, CST) }

func (d Date) String() string { return fmt.Sprintf("%04d-%02d-%02d", d.Year, int(d.Mon), d.Day) }

// Month is the month that holds d.
func (d Date) Month() Month { return Month{Year: d.Year, Mon: d.Mon} }

// CST is the day at 00:00 CST.
func (d Date) CST() time.Time { return time.Date(d.Year, d.Mon, d.Day, 0, 0, 0, 0, CST) }

// AddDays moves d by n days.
func (d Date) AddDays(n int) Date { return DateIn(d.CST().AddDate(0, 0, n), CST) }

// Before reports whether d is earlier than o.
func (d Date) Before(o Date) bool { return d.CST().Before(o.CST()) }

// Span is the request window for one month as of today: the 1st, and the
// last complete day (the last day of a past month, yesterday for the current
// one). ok is false when the month has no complete day yet (today is the
// 1st of it, or it lies in the future).
func (m Month) Span(today Date) (start, end Date, ok bool) {
	start = Date{m.Year, m.Mon, 1}
	cur := today.Month()
	switch {
	case cur.Before(m) || cur == m && today.Day == 1:
		return start, Date{}, false
	case cur == m:
		return start, today.AddDays(-1), true
	default:
		return start, Date{m.Year, m.Mon, m.Days()}, true
	}
}

// Range lists the months from a to b inclusive.
func Range(a, b Month) []Month {
	var out []Month
	for m := a; !b.Before(m); m = m.Next() {
		out = append(out, m)
	}
	return out
}

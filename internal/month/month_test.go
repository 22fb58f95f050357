package month

import (
	"fmt"
	"testing"
	"time"

	// Pacific/Auckland and America/Los_Angeles on hosts without zoneinfo.
	_ "time/tzdata"
)

func TestParse(t *testing.T) {
	for _, bad := range []string{"", "2026-3", "2026-13", "2026/03", "26-03", "2026-03-01", " 2026-03"} {
		if _, err := Parse(bad); err == nil {
			t.Errorf("Parse(%q) accepted", bad)
		}
	}
	m, err := Parse("2026-03")
	if err != nil || m != (Month{2026, time.March}) || m.String() != "2026-03" {
		t.Fatalf("Parse(2026-03) = %v, %v", m, err)
	}
}

// WeCom's month starts at 00:00 UTC+8 whatever zone the machine is in.
func TestBoundariesIgnoreTheLocalZone(t *testing.T) {
	for _, zone := range []string{"UTC", "America/Los_Angeles", "Pacific/Kiritimati"} {
		loc, err := time.LoadLocation(zone)
		if err != nil {
			t.Fatal(err)
		}
		saved := time.Local
		time.Local = loc
		m := MustParse("2026-03")
		if got := m.Start().Unix(); got != 1772294400 { // 2026-02-28T16:00:00Z
			t.Errorf("%s: start %d", zone, got)
		}
		if got := m.LastDay().Unix(); got != 1774886400 { // 2026-03-30T16:00:00Z
			t.Errorf("%s: last day %d", zone, got)
		}
		time.Local = saved
	}
}

func TestDaysAndSteps(t *testing.T) {
	for s, days := range map[string]int{"2026-02": 28, "2028-02": 29, "2026-04": 30, "2026-12": 31} {
		if got := MustParse(s).Days(); got != days {
			t.Errorf("%s has %d days, want %d", s, got, days)
		}
	}
	if MustParse("2026-12").Next() != MustParse("2027-01") || MustParse("2026-01").Prev() != MustParse("2025-12") {
		t.Error("Next/Prev across a year")
	}
	if got := Range(MustParse("2025-11"), MustParse("2026-02")); len(got) != 4 || got[3] != MustParse("2026-02") {
		t.Errorf("Range = %v", got)
	}
}

func TestSpan(t *testing.T) {
	mar := MustParse("2026-03")
	day := func(s string) Date {
		d, err := ParseDate(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for _, tc := range []struct {
		today      string
		start, end string
		ok         bool
	}{
		{"2026-03-01", "", "", false},                    // no complete day yet
		{"2026-03-02", "2026-03-01", "2026-03-01", true}, // start equals end
		{"2026-03-15", "2026-03-01", "2026-03-14", true}, // up to yesterday
		{"2026-04-01", "2026-03-01", "2026-03-31", true}, // a past month: all of it
		{"2026-02-20", "", "", false},                    // the future
	} {
		start, end, ok := mar.Span(day(tc.today))
		if ok != tc.ok || ok && (start.String() != tc.start || end.String() != tc.end) {
			t.Errorf("today %s: %s..%s %v", tc.today, start, end, ok)
		}
	}
}

// "Today" is the CST date whatever zone the instant is expressed in: the
// cases are instants where UTC, or a zone east of UTC+8, is on another day.
func TestTodayCST(t *testing.T) {
	auckland, err := time.LoadLocation("Pacific/Auckland")
	if err != nil {
		t.Fatal(err)
	}
	la, err := time.LoadLocation("America/Los_Angeles")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		instant string
		want    Date
		other   *time.Location // a zone where the date differs from want
	}{
		// UTC is still on the 31st; Shanghai is on April 1st.
		{"2026-03-31T17:30:00Z", Date{2026, time.April, 1}, time.UTC},
		// Auckland (UTC+13 in March) is already on April 1st; Shanghai is not.
		{"2026-03-31T13:00:00Z", Date{2026, time.March, 31}, auckland},
		// The last second of a CST day, and the first of the next.
		{"2026-03-31T15:59:59Z", Date{2026, time.March, 31}, auckland},
		{"2026-03-31T16:00:00Z", Date{2026, time.April, 1}, la},
		// New Year in Shanghai, still the old year in UTC.
		{"2025-12-31T16:00:00Z", Date{2026, time.January, 1}, time.UTC},
	} {
		now, err := time.Parse(time.RFC3339, tc.instant)
		if err != nil {
			t.Fatal(err)
		}
		if DateIn(now, tc.other) == tc.want {
			t.Fatalf("bad case %s: %v agrees with CST", tc.instant, tc.other)
		}
		for _, loc := range []*time.Location{time.UTC, auckland, la, CST, time.Local} {
			if got := TodayCST(now.In(loc)); got != tc.want {
				t.Errorf("TodayCST(%s in %v) = %v, want %v", tc.instant, loc, got, tc.want)
			}
		}
	}
}

func TestMonthStringFormatsLikeFmt(t *testing.T) {
	for _, m := range []Month{{2026, time.January}, {2025, time.December}, {1, time.March}, {999, time.October}, {0, 0}, {10000, time.May}, {2026, 13}, {-1, time.June}} {
		if got, want := m.String(), fmt.Sprintf("%04d-%02d", m.Year, int(m.Mon)); got != want {
			t.Errorf("%+v: %q, want %q", m, got, want)
		}
	}
}

package sync

import (
	"fmt"
	"testing"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

func date(t *testing.T, s string) month.Date {
	t.Helper()
	d, err := month.ParseDate(s)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func TestDefaultWindow(t *testing.T) {
	for _, tc := range []struct {
		today          string
		months, settle int
		want           string
	}{
		{"2026-03-03", 2, 5, "[2026-02 2026-03]"},
		{"2026-03-05", 2, 5, "[2026-02 2026-03]"}, // the last settling day
		{"2026-03-06", 2, 5, "[2026-03]"},
		{"2026-03-10", 2, 5, "[2026-03]"},
		{"2026-03-01", 1, 5, "[2026-03]"},
		{"2026-01-02", 3, 40, "[2025-11 2025-12 2026-01]"}, // across a year
		{"2026-03-02", 2, 0, "[2026-03]"},
	} {
		if got := fmt.Sprint(DefaultWindow(date(t, tc.today), tc.months, tc.settle, nil)); got != tc.want {
			t.Errorf("%s months=%d settle=%d: %s, want %s", tc.today, tc.months, tc.settle, got, tc.want)
		}
	}
}

// With settle_days 0 a month's last day is still synced: a month whose
// watermark is before its last day stays in the window, on the 1st and
// after a missed run, until a run has covered the last day.
func TestDefaultWindowKeepsAMonthUntilItsLastDayIsSynced(t *testing.T) {
	synced := func(m, wm string) store.MonthInfo {
		return store.MonthInfo{Month: m, Watermark: wm, LastRunID: "r1"}
	}
	for _, tc := range []struct {
		today          string
		months, settle int
		infos          []store.MonthInfo
		want           string
	}{
		{"2026-04-01", 2, 0, []store.MonthInfo{synced("2026-03", "2026-03-30")}, "[2026-03 2026-04]"},
		{"2026-04-09", 2, 0, []store.MonthInfo{synced("2026-03", "2026-03-30")}, "[2026-03 2026-04]"}, // the run on the 1st was missed
		{"2026-04-02", 2, 0, []store.MonthInfo{synced("2026-03", "2026-03-31")}, "[2026-04]"},
		{"2026-04-02", 2, 0, []store.MonthInfo{synced("2026-03", "")}, "[2026-03 2026-04]"},   // every run failed
		{"2026-04-02", 2, 0, []store.MonthInfo{{Month: "2026-03"}}, "[2026-04]"},              // never processed
		{"2026-05-02", 2, 0, []store.MonthInfo{synced("2026-03", "2026-03-30")}, "[2026-05]"}, // outside the last 2 months
		{"2026-05-02", 3, 0, []store.MonthInfo{synced("2026-03", "2026-03-30"), synced("2026-04", "2026-04-30")}, "[2026-03 2026-05]"},
	} {
		if got := fmt.Sprint(DefaultWindow(date(t, tc.today), tc.months, tc.settle, tc.infos)); got != tc.want {
			t.Errorf("%s months=%d settle=%d: %s, want %s", tc.today, tc.months, tc.settle, got, tc.want)
		}
	}
}

func TestSelectMonths(t *testing.T) {
	today := date(t, "2026-03-15")
	m := month.MustParse
	got, err := SelectMonths(today, []month.Month{m("2025-06"), m("2026-01")}, m("2025-12"), month.Month{}, 2, 5, nil)
	if err != nil || fmt.Sprint(got) != "[2025-06 2025-12 2026-01 2026-02 2026-03]" {
		t.Fatalf("union of --month and --from: %v %v", got, err)
	}
	for _, bad := range []struct {
		named    []month.Month
		from, to month.Month
	}{
		{named: []month.Month{m("2026-04")}},
		{from: m("2026-03"), to: m("2026-01")},
		{from: m("2026-01"), to: m("2026-05")},
		{to: m("2026-01")},
	} {
		if _, err := SelectMonths(today, bad.named, bad.from, bad.to, 2, 5, nil); err == nil {
			t.Errorf("accepted %+v", bad)
		}
	}
}

func TestBuildStatusDerivesTheState(t *testing.T) {
	cst := month.CST
	run := time.Date(2026, 3, 3, 18, 0, 4, 0, time.UTC)
	infos := []store.MonthInfo{
		{Month: "2025-12", Watermark: "2025-12-31", Synced: 10, LastRunID: "r", LastRunStart: run},
		{Month: "2026-01", Watermark: "2026-01-31", Synced: 9, Failed: 1, Dirty: true, LastRunID: "r", LastRunStart: run},
		{Month: "2026-02", Synced: 3, Pending: 2},
	}
	st := BuildStatus(infos, []month.Month{month.MustParse("2026-02"), month.MustParse("2026-03")}, cst)
	want := map[string]string{"2025-12": StateSettled, "2026-01": StatePartial, "2026-02": StateNever, "2026-03": StateNever}
	if len(st.Months) != 4 {
		t.Fatalf("rows: %+v", st.Months)
	}
	for _, r := range st.Months {
		if r.State != want[r.Month] {
			t.Errorf("%s: state %s, want %s", r.Month, r.State, want[r.Month])
		}
		if r.Records != r.Synced+r.Pending+r.Failed {
			t.Errorf("%s: records %d", r.Month, r.Records)
		}
	}
	if lr := st.Months[0].LastRun; lr == nil || *lr != "2026-03-04T02:00:04+08:00" {
		t.Errorf("last run shown in the configured zone: %v", lr)
	}
	if st.Months[3].Watermark != nil || st.Months[3].LastRun != nil {
		t.Error("a never month must have null watermark and last run")
	}
	infos[1].Dirty = false
	infos = append(infos, store.MonthInfo{Month: "2026-03", LastRunID: "r", LastRunStart: run})
	st = BuildStatus(infos, []month.Month{month.MustParse("2026-03")}, cst)
	if st.Months[3].State != StateOpen {
		t.Errorf("a month in the window: %s", st.Months[3].State)
	}
}

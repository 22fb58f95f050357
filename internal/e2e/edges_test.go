package e2e

import (
	"maps"
	"sort"
	"strings"
	"testing"
)

func monthRows(t *testing.T, st map[string]any) map[string]map[string]any {
	t.Helper()
	rows := map[string]map[string]any{}
	for _, m := range st["months"].([]any) {
		row := m.(map[string]any)
		rows[row["month"].(string)] = row
	}
	return rows
}

func TestTimeZonesGiveTheSameMonths(t *testing.T) {
	var forms [][]string
	for _, tz := range []string{"UTC", "America/Los_Angeles"} {
		e := newEnv(t, envOptions{users: 30})
		r := e.runEnv([]string{"TZ=" + tz}, "--today", "2026-03-02", "sync")
		if r.code != 0 {
			t.Fatalf("TZ=%s: %s", tz, r)
		}
		var months []string
		for _, rec := range e.srv.Records() {
			months = append(months, rec.Data["sync_key"].(string)+"="+rec.Data["month"].(string))
		}
		// Batches of the two months run at once: compare the sets, not the
		// order the records were created in.
		sort.Strings(months)
		forms = append(forms, months)
		st := e.statusJSON("2026-03-02")
		rows := monthRows(t, st)
		if rows["2026-03"]["watermark"] != "2026-03-01" || rows["2026-02"]["watermark"] != "2026-02-28" {
			t.Errorf("TZ=%s: watermarks %v", tz, rows)
		}
	}
	if strings.Join(forms[0], ",") != strings.Join(forms[1], ",") {
		t.Fatalf("month values differ between time zones:\n%v\n%v", forms[0], forms[1])
	}
	if len(forms[0]) == 0 || !strings.Contains(strings.Join(forms[0], ","), "2026-02-28T16:00:00.000Z") {
		t.Fatalf("month_start of 2026-03 should be 2026-02-28T16:00:00.000Z: %v", forms[0])
	}
}

func TestMonthEdges(t *testing.T) {
	e := newEnv(t, envOptions{users: 20, settle: 5})

	// On the 1st the current month has no complete day: it is skipped.
	e.mustRun(0, "--today", "2026-03-01", "sync")
	rows := monthRows(t, e.statusJSON("2026-03-01"))
	if rows["2026-03"]["state"] != "never" || rows["2026-02"]["watermark"] != "2026-02-28" {
		t.Fatalf("on the 1st: %v", rows)
	}

	// On the 2nd the request covers one day: start equals end.
	e.mustRun(0, "--today", "2026-03-02", "sync")
	rows = monthRows(t, e.statusJSON("2026-03-02"))
	if rows["2026-03"]["watermark"] != "2026-03-01" || rows["2026-03"]["state"] != "open" {
		t.Fatalf("on the 2nd: %v", rows["2026-03"])
	}

	// With settle_days 5 the previous month is still open on the 3rd and
	// settled (left out of the default window) on the 10th.
	if rows := monthRows(t, e.statusJSON("2026-03-03")); rows["2026-02"]["state"] != "open" {
		t.Fatalf("on the 3rd, 2026-02: %v", rows["2026-02"])
	}
	if rows := monthRows(t, e.statusJSON("2026-03-10")); rows["2026-02"]["state"] != "settled" {
		t.Fatalf("on the 10th, 2026-02: %v", rows["2026-02"])
	}
	before := e.srv.Calls("getcheckin_monthdata")
	r := e.mustRun(0, "--today", "2026-03-10", "sync")
	if strings.Contains(r.stdout, "2026-02") {
		t.Errorf("a settled month was synced on the 10th:\n%s", r)
	}
	if e.srv.Calls("getcheckin_monthdata") == before {
		t.Errorf("the current month was not fetched on the 10th")
	}

	// An earlier --today never moves a watermark backwards.
	e.mustRun(0, "--today", "2026-03-05", "sync", "--month", "2026-03")
	rows = monthRows(t, e.statusJSON("2026-03-10"))
	if rows["2026-03"]["watermark"] != "2026-03-09" {
		t.Fatalf("watermark moved backwards: %v", rows["2026-03"])
	}
}

func TestExitCodes(t *testing.T) {
	e := newEnv(t, envOptions{users: 10})
	if r := e.runEnv([]string{"E2E_SECRET=wrong"}, "--today", "2026-03-15", "sync"); r.code != 4 || !strings.Contains(r.stderr, "40001") {
		t.Errorf("wrong secret: %s", r)
	}
	if r := e.run("--today", "2026-03-15", "sync", "--month", "2026-13"); r.code != 2 {
		t.Errorf("malformed month: %s", r)
	}
	if r := e.run("--today", "2026-03-15", "sync", "--month", "2026-04"); r.code != 2 {
		t.Errorf("future month: %s", r)
	}
	if r := e.run("--today", "2026-03-15", "sync", "--from", "2026-03", "--to", "2026-01"); r.code != 2 {
		t.Errorf("--from after --to: %s", r)
	}
	if r := e.run("--today", "2026-03-15", "sync", "stray"); r.code != 2 {
		t.Errorf("stray argument: %s", r)
	}
	// An api_key that expands to nothing is a required value left empty: a
	// configuration error (exit 2) naming the key, found before any call.
	before := e.srv.CallCounts()
	if r := e.runEnv([]string{"E2E_KEY="}, "--today", "2026-03-15", "sync"); r.code != 2 || !strings.Contains(r.stderr, "api_key") {
		t.Errorf("empty API key: %s", r)
	}
	if after := e.srv.CallCounts(); !maps.Equal(after, before) {
		t.Errorf("a config error still called the APIs: %v, then %v", before, after)
	}
}

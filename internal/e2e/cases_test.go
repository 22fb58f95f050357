package e2e

// Regression cases: each test proves a defect reproduced on the previous
// release is fixed, through the real binary against the fakes.

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/store"
)

// caseOptions extends envOptions for these cases.
type caseOptions struct {
	envOptions
	settleZero   bool             // sync.settle_days: 0 (envOptions takes 0 as "default 5")
	extraWidgets []fakeapi.Widget // fields added to the fake form
	extraMapping string           // lines appended under mapping.fields
}

// caseEnv is an env whose fake server also has a getcheckin_monthdata tap
// and, optionally, a custom form.
type caseEnv struct {
	*env
	tap     *fakeapi.MonthDataTap
	widgets []fakeapi.Widget
}

// newCaseEnv builds the harness env, then swaps its fake server for one
// over the same company with the tap installed and the form's extra
// widgets, and points the written config at it. The consistency delay is
// 200ms (through the harness) so deferred batches settle quickly.
func newCaseEnv(t *testing.T, o caseOptions) *caseEnv {
	t.Helper()
	if o.users == 0 {
		o.users = 10
	}
	if o.seed == 0 {
		o.seed = 7
	}
	o.consistencyDelay = 200 * time.Millisecond
	e := newEnv(t, o.envOptions)
	widgets := append(fakeapi.DefaultWidgets(), o.extraWidgets...)
	srv := fakeapi.New(fakeapi.Options{
		Company:            e.company,
		Widgets:            widgets,
		MonthDataPerMinute: -1,
		JDY:                fakeapi.JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1},
		Seed:               o.seed,
	})
	tap := srv.TapMonthData()
	base, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e.srv.Close()
	old := e.base
	e.srv, e.base = srv, base
	for i, v := range e.vars {
		e.vars[i] = strings.ReplaceAll(v, old, base)
	}
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(raw), old, base)
	edit := func(from, to string) {
		t.Helper()
		if strings.Count(cfg, from) != 1 {
			t.Fatalf("config edit: %q found %d times", from, strings.Count(cfg, from))
		}
		cfg = strings.Replace(cfg, from, to, 1)
	}
	if !strings.Contains(cfg, "\n  consistency_delay: 200ms\n") {
		t.Fatal("the harness did not set jiandaoyun.consistency_delay")
	}
	if o.settleZero {
		edit("  settle_days: 5\n", "  settle_days: 0\n")
	}
	if o.extraMapping != "" {
		i := strings.Index(cfg, "\n  fields:")
		if i < 0 {
			t.Fatal("config has no mapping.fields")
		}
		j := i + 1 + strings.Index(cfg[i+1:], "\n") + 1
		cfg = cfg[:j] + o.extraMapping + cfg[j:]
	}
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return &caseEnv{env: e, tap: tap, widgets: widgets}
}

// caseMapper compiles the env's mapping against its form.
func (e *caseEnv) caseMapper() *mapping.Mapper {
	e.t.Helper()
	return e.mapperFor(e.widgets)
}

// caseRecord is one expected record.
type caseRecord struct {
	userID string
	m      month.Month
}

// caseCheckRecords asserts the form holds exactly the expected records of the
// months named in want, one per key, each holding what the mapping makes of
// report(userid, month); report nil means the company's current report.
func (e *caseEnv) caseCheckRecords(want []caseRecord, report func(string, month.Month) map[string]any) {
	e.t.Helper()
	if report == nil {
		report = e.company.Report
	}
	mp := e.caseMapper()
	months := map[string]bool{}
	for _, w := range want {
		months[w.m.String()] = true
	}
	byKey := map[string][]fakeapi.Record{}
	var recs []fakeapi.Record
	for _, r := range e.srv.Records() {
		k, _ := r.Data["sync_key"].(string)
		if _, m, _ := strings.Cut(k, "|"); months[m] {
			byKey[k] = append(byKey[k], r)
			recs = append(recs, r)
		}
	}
	for _, w := range want {
		key := mp.Key(w.userID, w.m)
		got := byKey[key]
		if len(got) != 1 {
			e.t.Errorf("%s: %d records, want exactly 1", key, len(got))
			continue
		}
		e.checkRecord(mp, key, got[0], mapping.Input{UserID: w.userID, Month: w.m, Report: report(w.userID, w.m)})
	}
	if len(recs) != len(want) {
		e.t.Errorf("form holds %d records of the months checked, want %d", len(recs), len(want))
	}
}

// caseAllUsers lists every (user, month) of the company for months.
func (e *caseEnv) caseAllUsers(months ...month.Month) []caseRecord {
	var out []caseRecord
	for _, m := range months {
		for _, u := range e.company.Users() {
			out = append(out, caseRecord{u.UserID, m})
		}
	}
	return out
}

// caseRecordByKey returns the only record holding key, failing otherwise.
func (e *caseEnv) caseRecordByKey(key string) fakeapi.Record {
	e.t.Helper()
	var found []fakeapi.Record
	for _, r := range e.srv.Records() {
		if r.Data["sync_key"] == key {
			found = append(found, r)
		}
	}
	if len(found) != 1 {
		e.t.Fatalf("%s: %d records, want exactly 1", key, len(found))
	}
	return found[0]
}

// casesFieldJSON is a record field as compact JSON.
func casesFieldJSON(r fakeapi.Record, name string) string {
	b, _ := json.Marshal(r.Data[name])
	return string(b)
}

// casesSummaryRows parses the sync summary table: month (or TOTAL) -> column ->
// value.
func casesSummaryRows(t *testing.T, stdout string) map[string]map[string]string {
	t.Helper()
	var header []string
	rows := map[string]map[string]string{}
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "MONTH" {
			header = f
			continue
		}
		if header == nil {
			continue
		}
		if f[0] != "TOTAL" {
			if _, err := month.Parse(f[0]); err != nil {
				header = nil // the table ended
				continue
			}
		}
		row := map[string]string{}
		for i, h := range header {
			if i < len(f) {
				row[h] = f[i]
			}
		}
		rows[f[0]] = row
		if f[0] == "TOTAL" {
			header = nil
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no summary table in\n%s", stdout)
	}
	return rows
}

// casesStatusMonth finds one month in `status --json`.
func casesStatusMonth(t *testing.T, st map[string]any, m string) map[string]any {
	t.Helper()
	ms, _ := st["months"].([]any)
	for _, x := range ms {
		if row, _ := x.(map[string]any); row["month"] == m {
			return row
		}
	}
	t.Fatalf("status has no month %s: %v", m, st)
	return nil
}

// caseLastRun is the newest entry of `history --json`.
func (e *caseEnv) caseLastRun() store.Run {
	e.t.Helper()
	h := e.mustRun(0, "history", "--json")
	var hist struct{ Runs []store.Run }
	if err := json.Unmarshal([]byte(h.stdout), &hist); err != nil || len(hist.Runs) == 0 {
		e.t.Fatalf("history --json: %v\n%s", err, h)
	}
	return hist.Runs[0]
}

// casesLateCount is the report's exception=1 count, and whether the element is
// there at all.
func casesLateCount(rep map[string]any) (int, bool) {
	list, _ := rep["exception_infos"].([]any)
	for _, x := range list {
		el, _ := x.(map[string]any)
		if fmt.Sprint(el["exception"]) == "1" {
			n, _ := el["count"].(int)
			return n, true
		}
	}
	return 0, false
}

// TestVanishedSourceIsCleared: a filtered source that disappears from the
// report (a 补卡 correction removes the late exception) clears the field
// with its widget type's empty value instead of leaving the old count.
func TestVanishedSourceIsCleared(t *testing.T) {
	const seed, users = 7, 40
	e := newCaseEnv(t, caseOptions{
		envOptions: envOptions{users: users, seed: seed},
		extraWidgets: []fakeapi.Widget{
			{Name: "late_flag", WidgetName: "_widget_1758077118990", Label: "迟到标记", Type: "combo"},
			{Name: "late_count", WidgetName: "_widget_1758077118991", Label: "迟到次数", Type: "number"},
		},
		extraMapping: "    late_flag: {source: \"exception_infos[exception=1].count\"}\n" +
			"    late_count: {source: \"exception_infos[exception=1].count\"}\n",
	})
	feb := month.MustParse("2026-02")

	// A user late in February whose corrected report (the next version)
	// has no exception=1 element; a scratch company of the same seed shows
	// the next version without touching the served one.
	scratch := fakeapi.NewCompany(seed, users)
	var userID string
	var late int
	for _, u := range e.company.Users() {
		n, ok := casesLateCount(e.company.Report(u.UserID, feb))
		if !ok || n == 0 {
			continue
		}
		scratch.Bump(u.UserID, feb)
		if _, still := casesLateCount(scratch.Report(u.UserID, feb)); !still {
			userID, late = u.UserID, n
			break
		}
	}
	if userID == "" {
		t.Fatal("no user in the sample company is late in 2026-02 and not late after a correction")
	}
	key := strings.ToLower(userID) + "|2026-02"
	args := []string{"--today", "2026-03-10", "sync", "--month", "2026-02"}

	e.mustRun(0, args...)
	rec := e.caseRecordByKey(key)
	if got, want := casesFieldJSON(rec, "late_flag"), fmt.Sprintf("%q", fmt.Sprint(late)); got != want {
		t.Fatalf("before the correction late_flag = %s, want %s", got, want)
	}
	if got, want := casesFieldJSON(rec, "late_count"), fmt.Sprint(late); got != want {
		t.Fatalf("before the correction late_count = %s, want %s", got, want)
	}
	e.caseCheckRecords(e.caseAllUsers(feb), nil)

	// The 补卡 correction lands: the report no longer holds exception=1.
	e.company.Bump(userID, feb)
	if _, ok := casesLateCount(e.company.Report(userID, feb)); ok {
		t.Fatal("the corrected report still holds exception=1")
	}
	c0, u0 := e.writes()
	r := e.mustRun(0, args...)
	c1, u1 := e.writes()
	if c1 != c0 || u1-u0 != 1 {
		t.Fatalf("after the correction: %d create calls and %d updates, want 0 and 1\n%s", c1-c0, u1-u0, r)
	}
	rec = e.caseRecordByKey(key)
	if got := casesFieldJSON(rec, "late_flag"); got != `""` {
		t.Errorf("late_flag (combo) = %s after its source vanished, want \"\"", got)
	}
	if got := casesFieldJSON(rec, "late_count"); got != "0" {
		t.Errorf("late_count (number) = %s after its source vanished, want 0", got)
	}
	e.caseCheckRecords(e.caseAllUsers(feb), nil)
	st := casesStatusMonth(t, e.statusJSON("2026-03-10"), "2026-02")
	if st["records"] != float64(users) || st["synced"] != float64(users) || st["pending"] != 0.0 || st["failed"] != 0.0 {
		t.Errorf("status of 2026-02 after the correction: %v, want %d records, all synced", st, users)
	}

	// A third run has nothing to write: the cleared value is what the
	// store remembers.
	e.mustRun(0, args...)
	if c2, u2 := e.writes(); c2 != c1 || u2 != u1 {
		t.Errorf("third run wrote: %d create calls, %d updates", c2-c1, u2-u1)
	}
}

// casesWantMarchEnd checks that the tap saw, among reqs, a request for all of March:
// starttime 2026-03-01 and endtime 2026-03-31, both 00:00 Asia/Shanghai.
func casesWantMarchEnd(t *testing.T, reqs []fakeapi.MonthDataRequest) {
	t.Helper()
	start := time.Date(2026, 3, 1, 0, 0, 0, 0, month.CST).Unix()
	end := time.Date(2026, 3, 31, 0, 0, 0, 0, month.CST).Unix()
	var march []string
	for _, r := range reqs {
		if r.StartTime == start {
			march = append(march, r.End().Format(time.RFC3339))
		}
	}
	if len(march) == 0 {
		t.Fatalf("no getcheckin_monthdata request for 2026-03 in this run (%d requests)", len(reqs))
	}
	for _, got := range march {
		if got != time.Unix(end, 0).In(month.CST).Format(time.RFC3339) {
			t.Errorf("2026-03 requested with endtime %s, want 2026-03-31T00:00:00+08:00", got)
		}
	}
}

// TestSettleZeroSyncsTheLastDay: with settle_days 0, the month's last day
// is still fetched once the month has ended, on the 1st or after a missed
// run.
func TestSettleZeroSyncsTheLastDay(t *testing.T) {
	mar := month.MustParse("2026-03")
	for _, next := range []string{"2026-04-01", "2026-04-09"} {
		t.Run(next, func(t *testing.T) {
			e := newCaseEnv(t, caseOptions{envOptions: envOptions{users: 10}, settleZero: true})
			e.mustRun(0, "--today", "2026-03-31", "sync")
			reqs := e.tap.Requests()
			if len(reqs) == 0 || reqs[0].End().Format("2006-01-02") != "2026-03-30" {
				t.Fatalf("on 2026-03-31 the current month should be fetched up to 2026-03-30: %+v", reqs)
			}
			if wm := casesStatusMonth(t, e.statusJSON("2026-03-31"), "2026-03")["watermark"]; wm != "2026-03-30" {
				t.Fatalf("watermark on 2026-03-31 = %v, want 2026-03-30", wm)
			}
			n := len(reqs)
			e.mustRun(0, "--today", next, "sync")
			casesWantMarchEnd(t, e.tap.Requests()[n:])
			if wm := casesStatusMonth(t, e.statusJSON(next), "2026-03")["watermark"]; wm != "2026-03-31" {
				t.Errorf("watermark after the run on %s = %v, want 2026-03-31", next, wm)
			}
			// The form holds March's full-month reports.
			e.caseCheckRecords(e.caseAllUsers(mar), nil)
		})
	}
}

// TestFailureInAnOlderMonthIsCounted: a pending batch of a month outside
// the run's window, whose record Jiandaoyun rejects, makes the run partial
// and is counted in the summary, the history and the alert.
func TestFailureInAnOlderMonthIsCounted(t *testing.T) {
	e := newCaseEnv(t, caseOptions{envOptions: envOptions{users: 5, alert: true}})
	jan := month.MustParse("2026-01")
	// Run 1 syncs the window (2026-03 only: February is settled and was
	// never synced), so run 2 has nothing of its own to create.
	e.mustRun(0, "--today", "2026-03-10", "sync")
	if msgs := e.srv.WebhookMessages(); len(msgs) != 0 {
		t.Fatalf("a clean first run sent alerts: %q", msgs)
	}

	// A January batch an earlier run sent a minute ago and never settled:
	// its transaction_id never reached Jiandaoyun, its hash is what the
	// report maps to now.
	u := e.company.Users()[2].UserID
	res, err := e.caseMapper().Map(mapping.Input{UserID: u, Month: jan, Report: e.company.Report(u, jan)})
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(filepath.Join(e.dir, "state.db"), store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sent := time.Now().Add(-time.Minute)
	id := strings.ToLower(u)
	err = st.Apply(&store.Write{
		PutPending: []store.Pending{{TxID: "3f6d2c1e-0b7a-4c55-9e21-7d8a1b2c3d4e", Month: "2026-01",
			UserIDs: []string{id}, Hashes: []uint64{res.Hash}, FirstSentAt: sent, LastSentAt: sent}},
		Records: []store.KeyedRecord{{Month: "2026-01", UserID: id, Record: store.Record{Hash: res.Hash, State: store.StatePending}}},
	})
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	// Jiandaoyun rejects the record's data from now on.
	e.srv.FailNext("data/batch_create", 4000, 50)
	c0, u0 := e.writes()
	l0 := e.srv.Calls("data/list")
	r := e.run("--today", "2026-03-10", "sync")
	if r.code != 1 {
		t.Fatalf("want exit 1\n%s", r)
	}
	// The engine's rule (sync/batch.go): the inherited batch is deferred;
	// lookup 1 finds nothing and the batch is resendable (same hash, first
	// send a minute old), so it is resent identically; an answer to a
	// resend is unknown, so lookup, resend, up to 3 resends; lookup 4 then
	// puts the key into a new batch whose first send is rejected; lookup 5
	// finds nothing, and the single rejected record fails.
	c1, u1 := e.writes()
	if c1-c0 != 4 || u1 != u0 {
		t.Errorf("batch_create calls %d, updates %d; want 4 (3 identical resends + 1 new batch) and 0\n%s", c1-c0, u1-u0, r)
	}
	if l := e.srv.Calls("data/list") - l0; l != 5 {
		t.Errorf("data/list calls %d, want 5 (one lookup after each of the 4 sends, plus the first)", l)
	}
	for _, rec := range e.srv.Records() {
		if k, _ := rec.Data["sync_key"].(string); strings.HasSuffix(k, "|2026-01") {
			t.Errorf("a rejected record is in the form: %v", rec.Data)
		}
	}
	rows := casesSummaryRows(t, r.stdout)
	if row := rows["2026-01"]; row == nil || row["FAILED"] != "1" || row["PENDING"] != "0" || row["CREATED"] != "0" {
		t.Errorf("summary row for 2026-01 = %v, want FAILED 1, PENDING 0, CREATED 0\n%s", row, r.stdout)
	}
	if row := rows["2026-03"]; row == nil || row["FAILED"] != "0" || row["UNCHANGED"] != "5" {
		t.Errorf("summary row for 2026-03 = %v, want 5 unchanged, 0 failed\n%s", row, r.stdout)
	}
	if row := rows["TOTAL"]; row == nil || row["FAILED"] != "1" {
		t.Errorf("summary TOTAL = %v, want FAILED 1\n%s", row, r.stdout)
	}
	if !strings.Contains(r.stdout, "Failed records (1):\n  "+id+"|2026-01: ") {
		t.Errorf("summary does not list the failed record %s|2026-01\n%s", id, r.stdout)
	}
	run := e.caseLastRun()
	if run.Outcome != "partial" || run.Failed != 1 || run.ExitCode != 1 {
		t.Errorf("history: outcome %q, failed %d, exit %d; want partial, 1, 1", run.Outcome, run.Failed, run.ExitCode)
	}
	jst := casesStatusMonth(t, e.statusJSON("2026-03-10"), "2026-01")
	if jst["records"] != 1.0 || jst["failed"] != 1.0 || jst["pending"] != 0.0 {
		t.Errorf("status of 2026-01: %v, want 1 record, failed", jst)
	}
	msgs := e.srv.WebhookMessages()
	if len(msgs) != 1 || !strings.Contains(msgs[0], "failed") || !strings.Contains(msgs[0], id+"|2026-01") {
		t.Errorf("want exactly one failure alert naming %s|2026-01; got %q", id, msgs)
	}
}

// TestUserIDCaseIsIgnored: the userid user/simplelist lists and the acctid
// the report carries differ in case; the record is still one per user,
// keyed in lower case, whatever spelling the next listing uses.
func TestUserIDCaseIsIgnored(t *testing.T) {
	e := newCaseEnv(t, caseOptions{envOptions: envOptions{users: 40}})
	feb := month.MustParse("2026-02")
	var lower, mixed string
	for _, u := range e.company.Users() {
		if u.UserID == strings.ToLower(u.UserID) {
			if lower == "" {
				lower = u.UserID
			}
		} else if mixed == "" {
			mixed = u.UserID
		}
	}
	if lower == "" || mixed == "" {
		t.Fatalf("the sample company lacks a lower-case (%q) or mixed-case (%q) userid", lower, mixed)
	}
	spelt := []string{lower, mixed}
	// reported is how the fake spells each spelt user's acctid right now.
	reported := strings.ToLower
	spell := func(listed func(string) string) {
		for _, u := range spelt {
			e.srv.SpellUserID(u, fakeapi.UserIDSpelling{Listed: listed(u), Reported: reported(u)})
		}
	}
	// What the form should hold: the report as served, acctid included.
	report := func(u string, m month.Month) map[string]any {
		rep := e.company.Report(u, m)
		for _, s := range spelt {
			if s == u {
				rep["base_info"].(map[string]any)["acctid"] = reported(u)
			}
		}
		return rep
	}

	// Run 1: listed in upper case, reported in lower case.
	spell(strings.ToUpper)
	args := []string{"--today", "2026-03-10", "sync", "--month", "2026-02"}
	r := e.mustRun(0, args...)
	if strings.Contains(r.stdout, "Skipped users") || strings.Contains(r.stdout, "Failed records") {
		t.Errorf("first run skipped or failed users\n%s", r.stdout)
	}
	e.caseCheckRecords(e.caseAllUsers(feb), report)

	// Run 2: the listed spelling flips to lower case, and the reported one
	// to upper case. Only acctid, which maps the reported spelling,
	// changes: one update per spelt user, no create.
	reported = strings.ToUpper
	spell(strings.ToLower)
	c0, u0 := e.writes()
	r = e.mustRun(0, args...)
	if c1, u1 := e.writes(); c1 != c0 || u1-u0 != len(spelt) {
		t.Errorf("second run with the spellings flipped: %d create calls, %d updates, want 0 and %d\n%s", c1-c0, u1-u0, len(spelt), r)
	}
	if strings.Contains(r.stdout, "Skipped users") || strings.Contains(r.stdout, "Failed records") {
		t.Errorf("second run skipped or failed users\n%s", r.stdout)
	}
	e.caseCheckRecords(e.caseAllUsers(feb), report)
	for _, u := range spelt {
		rec := e.caseRecordByKey(strings.ToLower(u) + "|2026-02")
		if k := rec.Data["sync_key"]; k != strings.ToLower(u)+"|2026-02" {
			t.Errorf("key field %v, want lower case", k)
		}
	}
	// The store holds one checkpoint per user, however it was listed.
	st := casesStatusMonth(t, e.statusJSON("2026-03-10"), "2026-02")
	if st["records"] != 40.0 || st["synced"] != 40.0 {
		t.Errorf("status of 2026-02: %v, want 40 records, 40 synced", st)
	}
	var keys []string
	for _, rec := range e.srv.Records() {
		k, _ := rec.Data["sync_key"].(string)
		if k != strings.ToLower(k) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > 0 {
		t.Errorf("keys not in lower case: %v", keys)
	}
}

// TestUserRejectedInOneMonthIsTriedInOthers: a user outside the visible
// range for January only is skipped in January and still synced in
// February, within one run.
func TestUserRejectedInOneMonthIsTriedInOthers(t *testing.T) {
	e := newCaseEnv(t, caseOptions{envOptions: envOptions{users: 10}})
	jan, feb := month.MustParse("2026-01"), month.MustParse("2026-02")
	hidden := e.company.Users()[3].UserID
	// Months are fetched oldest first, so January is where the engine
	// meets the bad id first.
	e.tap.HideUserInMonth(hidden, jan)
	r := e.mustRun(0, "--today", "2026-03-10", "sync", "--month", "2026-01", "--month", "2026-02")

	var want []caseRecord
	for _, um := range e.caseAllUsers(jan, feb) {
		if !(um.userID == hidden && um.m == jan) {
			want = append(want, um)
		}
	}
	e.caseCheckRecords(want, nil)

	rows := casesSummaryRows(t, r.stdout)
	if row := rows["2026-01"]; row == nil || row["SKIPPED"] != "1" || row["CREATED"] != "9" || row["FAILED"] != "0" {
		t.Errorf("summary row 2026-01 = %v, want 9 created, 1 skipped, 0 failed\n%s", row, r.stdout)
	}
	if row := rows["2026-02"]; row == nil || row["SKIPPED"] != "0" || row["CREATED"] != "10" || row["FAILED"] != "0" {
		t.Errorf("summary row 2026-02 = %v, want 10 created, 0 skipped, 0 failed\n%s", row, r.stdout)
	}
	i := strings.Index(r.stdout, "Skipped users (1):\n")
	if i < 0 {
		t.Fatalf("summary does not list exactly one skipped user\n%s", r.stdout)
	}
	line, _, _ := strings.Cut(r.stdout[i+len("Skipped users (1):\n"):], "\n")
	if f := strings.Fields(line); len(f) < 2 || f[0] != "2026-01" || !strings.EqualFold(f[1], hidden) || !strings.Contains(line, "visible range") {
		t.Errorf("skipped line %q, want 2026-01 %s outside the app's visible range", line, hidden)
	}
	// February's request held the user.
	febStart := feb.Start().Unix()
	tried := false
	for _, q := range e.tap.Requests() {
		if q.StartTime != febStart {
			continue
		}
		for _, id := range q.UserIDs {
			if strings.EqualFold(id, hidden) {
				tried = true
			}
		}
	}
	if !tried {
		t.Error("the user hidden in 2026-01 was never requested for 2026-02")
	}
	// Skipped users do not hold the watermark back.
	st := e.statusJSON("2026-03-10")
	if wm := casesStatusMonth(t, st, "2026-01")["watermark"]; wm != "2026-01-31" {
		t.Errorf("2026-01 watermark %v, want 2026-01-31", wm)
	}
	if wm := casesStatusMonth(t, st, "2026-02")["watermark"]; wm != "2026-02-28" {
		t.Errorf("2026-02 watermark %v, want 2026-02-28", wm)
	}
}

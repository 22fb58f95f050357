package e2e

// Values a real form needs (issue 11): as: member writes the WeCom userid
// as a Jiandaoyun member username and reads the member object back, and
// as: leave writes an sp_items duration in its entry's own unit.

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
)

// memberFields map a member field from the userid and the annual leave in
// its own unit (days or hours, by the entry's time_type).
const memberFields = `    member: {source: userid, as: member}
    annual_leave: {source: "sp_items[name=年假].duration", as: leave, default: 0}
`

// newMemberEnv is an env whose form is fakeapi.MemberWidgets and whose
// mapping adds memberFields.
func newMemberEnv(t *testing.T, users int) *env {
	t.Helper()
	e := newEnv(t, envOptions{users: users})
	srv := fakeapi.New(fakeapi.Options{
		Company:            e.company,
		Widgets:            fakeapi.MemberWidgets(),
		MonthDataPerMinute: -1,
		JDY:                fakeapi.JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1},
		Seed:               7,
	})
	if srv.Credentials() != e.srv.Credentials() {
		t.Fatal("the fakes' credentials differ; adapt newMemberEnv")
	}
	base, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.ReplaceAll(string(raw), "base_url: "+e.base+"\n", "base_url: "+base+"\n")
	anchor := "    restdays_over_sec: {source: overwork_info.restdays_over_sec}\n"
	if strings.Count(cfg, anchor) != 1 {
		t.Fatalf("the template's mapping changed; adapt newMemberEnv:\n%s", cfg)
	}
	cfg = strings.Replace(cfg, anchor, anchor+memberFields, 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	e.srv, e.base = srv, base
	return e
}

// checkMembers asserts one record per user for m, each holding the member
// object of its userid and the annual leave as the mapping writes it.
func checkMembers(t *testing.T, e *env, m month.Month, skip string) {
	t.Helper()
	mp := e.mapperFor(fakeapi.MemberWidgets())
	byKey := map[string]fakeapi.Record{}
	for _, r := range e.srv.Records() {
		k, _ := r.Data["sync_key"].(string)
		if _, dup := byKey[k]; dup {
			t.Errorf("%s: two records", k)
		}
		byKey[k] = r
	}
	for _, u := range e.company.Users() {
		key := mp.Key(u.UserID, m)
		rec, ok := byKey[key]
		if u.UserID == skip {
			if ok {
				t.Errorf("%s: written, want no record", key)
			}
			continue
		}
		if !ok {
			t.Errorf("%s: no record", key)
			continue
		}
		obj, _ := rec.Data["member"].(map[string]any)
		if obj["username"] != u.UserID {
			t.Errorf("%s: member %v, want the member object of %s", key, rec.Data["member"], u.UserID)
		}
		res, err := mp.Map(mapping.Input{UserID: u.UserID, Month: m, Report: e.company.Report(u.UserID, m)})
		if err != nil {
			t.Fatal(err)
		}
		rb, err := mp.ReadBack(rec.Data)
		if err != nil {
			t.Fatal(err)
		}
		if !rb.Exact || rb.Hash != res.Hash {
			t.Errorf("%s: reads back %s (inexact %v), want %s", key, rb.Data, rb.Inexact, res.Data)
		}
	}
}

// A member field is written by userid and read back as a member object
// whose username is that userid: a rerun, and a rerun without the store,
// make no write.
func TestMemberFieldRerunAndLostStoreWriteNothing(t *testing.T) {
	e := newMemberEnv(t, 6)
	feb := month.MustParse("2026-02")
	e.mustRun(0, febArgs...)
	checkMembers(t, e, feb, "")
	c0, u0 := e.writes()

	e.mustRun(0, febArgs...)
	if c, u := e.writes(); c != c0 || u != u0 {
		t.Fatalf("rerun wrote: %d creates, %d updates", c-c0, u-u0)
	}
	if err := os.Remove(filepath.Join(e.dir, "state.db")); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(0, febArgs...)
	if c, u := e.writes(); c != c0 || u != u0 {
		t.Fatalf("rerun without the store wrote: %d creates, %d updates\n%s", c-c0, u-u0, r)
	}
	checkMembers(t, e, feb, "")
}

// Jiandaoyun answers 1010 for a member that does not exist: the batch is
// split until that record fails alone, with a message naming its userid
// and the fix; every other record is written.
func TestUnknownMemberFailsAlone(t *testing.T) {
	e := newMemberEnv(t, 6)
	users := e.company.Users()
	bad := users[3].UserID
	known := map[string]string{}
	for _, u := range users {
		if u.UserID != bad {
			known[u.UserID] = u.Name
		}
	}
	e.srv.SetMembers(known)
	r := e.mustRun(1, febArgs...)
	checkMembers(t, e, month.MustParse("2026-02"), bad)
	out := r.stdout + r.stderr
	for _, want := range []string{bad, "1010", "integrate the contacts", "drop the member field"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, r)
		}
	}
}

// check warns when a duration is written in days while its sampled entry
// counts in hours (事假 has time_type 1), naming the field and as: leave.
func TestCheckWarnsLeaveUnits(t *testing.T) {
	e := newMemberEnv(t, 3)
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	// check samples the first selected user's report for February: pick
	// one that has 事假, which the fake always counts in hours.
	sampled := ""
	for _, u := range e.company.Users() {
		items, _ := e.company.Report(u.UserID, month.MustParse("2026-02"))["sp_items"].([]any)
		for _, it := range items {
			if it.(map[string]any)["name"] == "事假" {
				sampled = u.UserID
			}
		}
	}
	if sampled == "" {
		t.Fatal("no fake report has 事假")
	}
	cfg := strings.Replace(string(raw), `{source: "sp_items[name=年假].duration", as: leave,`, `{source: "sp_items[name=事假].duration", as: days,`, 1)
	i := strings.Index(cfg, "\n  rate_per_minute:")
	if i < 0 {
		t.Fatalf("no wecom.rate_per_minute in the harness config:\n%s", cfg)
	}
	cfg = cfg[:i] + "\n  users:\n    userids: [" + sampled + "]" + cfg[i:]
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(0, "--today", "2026-03-15", "check")
	for _, want := range []string{"! leave units:", `mapping.fields.annual_leave: sp_items entry "事假" counts in hours (time_type 1)`, "as: leave"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("check output lacks %q:\n%s", want, r)
		}
	}
	// With as: leave there is nothing to warn about.
	newe := newMemberEnv(t, 3)
	if r := newe.mustRun(0, "--today", "2026-03-15", "check"); strings.Contains(r.stdout, "leave units") {
		t.Errorf("as: leave warned:\n%s", r)
	}
}

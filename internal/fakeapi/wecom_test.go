package fakeapi

import (
	"encoding/json"
	"net/http"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/month"
)

func TestGetToken(t *testing.T) {
	f := start(t, unlimited(Options{}))
	cases := []struct {
		name string
		q    url.Values
		code int
	}{
		{"wrong corpid", url.Values{"corpid": {"wwother"}, "corpsecret": {f.cred.Secret}}, 40013},
		{"wrong secret", url.Values{"corpid": {f.cred.CorpID}, "corpsecret": {"nope"}}, 40001},
		{"missing secret", url.Values{"corpid": {f.cred.CorpID}}, 41004},
		{"missing corpid", url.Values{"corpsecret": {f.cred.Secret}}, 41002},
	}
	for _, c := range cases {
		m := f.wecomGet("/cgi-bin/gettoken", c.q)
		if errcode(m) != c.code {
			t.Errorf("%s: errcode %v, want %d", c.name, m["errcode"], c.code)
		}
		if msg, _ := m["errmsg"].(string); strings.Contains(msg, f.cred.Secret) || msg == "" {
			t.Errorf("%s: errmsg %q", c.name, msg)
		}
	}
	m := f.wecomGet("/cgi-bin/gettoken", url.Values{"corpid": {f.cred.CorpID}, "corpsecret": {f.cred.Secret}})
	if errcode(m) != 0 || m["expires_in"].(float64) != 7200 || len(m["access_token"].(string)) < 100 {
		t.Fatalf("gettoken: %v", m)
	}
	if f.token() == m["access_token"] {
		t.Fatal("two gettoken calls returned the same token")
	}
}

func TestTokenErrors(t *testing.T) {
	f := start(t, unlimited(Options{}))
	path := "/cgi-bin/department/simplelist"
	if c := errcode(f.wecomGet(path, nil)); c != 41001 {
		t.Fatalf("missing token: %d", c)
	}
	if c := errcode(f.wecomGet(path, url.Values{"access_token": {"forged"}})); c != 40014 {
		t.Fatalf("unknown token: %d", c)
	}
	a, b := f.token(), f.token()
	for _, tok := range []string{a, b} {
		if c := errcode(f.wecomGet(path, url.Values{"access_token": {tok}})); c != 0 {
			t.Fatalf("fresh token: %d", c)
		}
	}
	f.s.ExpireTokens()
	codes := []int{
		errcode(f.wecomGet(path, url.Values{"access_token": {a}})),
		errcode(f.wecomGet(path, url.Values{"access_token": {b}})),
	}
	sort.Ints(codes)
	if !reflect.DeepEqual(codes, []int{40014, 42001}) {
		t.Fatalf("expired tokens answered %v, want one 40014 and one 42001", codes)
	}
	// The same token keeps its code.
	if again := errcode(f.wecomGet(path, url.Values{"access_token": {a}})); again != errcode(f.wecomGet(path, url.Values{"access_token": {a}})) {
		t.Fatal("expired token changed its code")
	}
	fresh := f.token()
	if c := errcode(f.wecomGet(path, url.Values{"access_token": {fresh}})); c != 0 {
		t.Fatalf("token after expiry: %d", c)
	}
	f.s.AdvanceClock(2*time.Hour + time.Second)
	if c := errcode(f.wecomGet(path, url.Values{"access_token": {fresh}})); c != 42001 {
		t.Fatalf("token past expires_in: %d", c)
	}
}

func TestDepartmentAndUserLists(t *testing.T) {
	co := NewCompany(4, 200)
	f := start(t, unlimited(Options{Company: co}))
	tok := f.token()
	m := f.wecomGet("/cgi-bin/department/simplelist", url.Values{"access_token": {tok}})
	all := m["department_id"].([]any)
	if len(all) != len(co.Departments()) {
		t.Fatalf("whole tree: %d departments, want %d", len(all), len(co.Departments()))
	}
	for _, d := range all {
		dm := d.(map[string]any)
		for _, k := range []string{"id", "parentid", "order"} {
			if _, ok := dm[k].(float64); !ok {
				t.Fatalf("department %v lacks %s", dm, k)
			}
		}
	}
	// A subtree holds its root and only its descendants.
	var top Department
	for _, d := range co.Departments() {
		if d.ParentID == 1 {
			top = d
			break
		}
	}
	sub := f.wecomGet("/cgi-bin/department/simplelist", url.Values{"access_token": {tok}, "id": {itoa(top.ID)}})["department_id"].([]any)
	want := co.subtree(top.ID)
	if len(sub) != len(want) || int(sub[0].(map[string]any)["id"].(float64)) != top.ID {
		t.Fatalf("subtree of %d: %v, want %v", top.ID, sub, want)
	}
	if c := errcode(f.wecomGet("/cgi-bin/department/simplelist", url.Values{"access_token": {tok}, "id": {"9999"}})); c != 60003 {
		t.Fatalf("unknown department: %d", c)
	}

	hidden := co.Users()[0].UserID
	f.s.HideUser(hidden)
	got := map[string]bool{}
	for _, d := range co.Departments() {
		m := f.wecomGet("/cgi-bin/user/simplelist", url.Values{"access_token": {tok}, "department_id": {itoa(d.ID)}})
		if errcode(m) != 0 {
			t.Fatalf("user/simplelist %d: %v", d.ID, m)
		}
		for _, u := range m["userlist"].([]any) {
			um := u.(map[string]any)
			id := um["userid"].(string)
			inDept := false
			for _, x := range um["department"].([]any) {
				if int(x.(float64)) == d.ID {
					inDept = true
				}
			}
			if !inDept || um["name"] == "" || um["open_userid"] == "" {
				t.Fatalf("user %v listed under %d", um, d.ID)
			}
			got[id] = true
		}
	}
	if got[hidden] {
		t.Fatal("hidden user listed")
	}
	if len(got) != len(co.Users())-1 {
		t.Fatalf("listed %d users, want %d", len(got), len(co.Users())-1)
	}
	if c := errcode(f.wecomGet("/cgi-bin/user/simplelist", url.Values{"access_token": {tok}})); c != 40058 {
		t.Fatalf("missing department_id: %d", c)
	}
	if c := errcode(f.wecomGet("/cgi-bin/user/simplelist", url.Values{"access_token": {tok}, "department_id": {"9999"}})); c != 60003 {
		t.Fatalf("unknown department_id: %d", c)
	}
}

func itoa(n int) string { b, _ := json.Marshal(n); return string(b) }

func cst(y int, m time.Month, d int) int64 {
	return month.Date{Year: y, Mon: m, Day: d}.CST().Unix()
}

func TestValidSpan(t *testing.T) {
	cases := []struct {
		name       string
		start, end int64
		ok         bool
	}{
		{"whole June", cst(2025, 6, 1), cst(2025, 6, 30), true},
		{"start equals end (on the 2nd)", cst(2025, 6, 1), cst(2025, 6, 1), true},
		{"31-day month, last day", cst(2025, 1, 1), cst(2025, 1, 31), true},
		{"one full month is too long", cst(2025, 1, 1), cst(2025, 2, 1), false},
		{"mid-month window under a month", cst(2025, 1, 15), cst(2025, 2, 14), true},
		{"mid-month window of a month", cst(2025, 1, 15), cst(2025, 2, 15), false},
		{"Jan 31 to Feb 28", cst(2025, 1, 31), cst(2025, 2, 28), true},
		{"Jan 31 to Mar 1", cst(2025, 1, 31), cst(2025, 3, 1), false},
		{"end before start", cst(2025, 6, 2), cst(2025, 6, 1), false},
		{"UTC midnight start", time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Unix(), cst(2025, 6, 30), false},
		{"UTC midnight end", cst(2025, 6, 1), time.Date(2025, 6, 30, 0, 0, 0, 0, time.UTC).Unix(), false},
		{"zero start", 0, cst(2025, 6, 30), false},
	}
	for _, c := range cases {
		if got := validSpan(c.start, c.end); got != c.ok {
			t.Errorf("%s: validSpan = %v, want %v", c.name, got, c.ok)
		}
	}
}

func TestMonthData(t *testing.T) {
	co := NewCompany(9, 150)
	f := start(t, unlimited(Options{Company: co}))
	tok := f.token()
	q := url.Values{"access_token": {tok}}
	users := co.Users()
	ids := []string{users[3].UserID, users[1].UserID, users[2].UserID}

	m := f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": ids})
	if errcode(m) != 0 {
		t.Fatalf("monthdata: %v", m)
	}
	rows := m["datas"].([]any)
	if len(rows) != 3 {
		t.Fatalf("%d rows", len(rows))
	}
	for i, r := range rows {
		// The row is exactly the company's report, as JSON.
		want, _ := json.Marshal(co.Report(ids[i], jun2025))
		got, _ := json.Marshal(r)
		if string(want) != string(got) {
			t.Fatalf("row %d:\n got %s\nwant %s", i, got, want)
		}
		if r.(map[string]any)["base_info"].(map[string]any)["acctid"] != ids[i] {
			t.Fatalf("row %d acctid", i)
		}
	}

	// A shorter window is still deterministic, and smaller.
	part := func() map[string]any {
		m := f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 1), "useridlist": ids[:1]})
		if errcode(m) != 0 {
			t.Fatalf("start == end: %v", m)
		}
		return m["datas"].([]any)[0].(map[string]any)
	}
	p1, p2 := part(), part()
	if !reflect.DeepEqual(p1, p2) {
		t.Fatal("partial window not deterministic")
	}

	errCases := []struct {
		name string
		body any
		code int
	}{
		{"no userids", map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{}}, 301023},
		{"101 userids", map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": make101(users)}, 301023},
		{"UTC midnight", map[string]any{"starttime": time.Date(2025, 6, 1, 0, 0, 0, 0, time.UTC).Unix(), "endtime": cst(2025, 6, 30), "useridlist": ids}, 301024},
		{"a whole month", map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 7, 1), "useridlist": ids}, 301024},
		{"missing endtime", map[string]any{"starttime": cst(2025, 6, 1), "useridlist": ids}, 301024},
		{"unknown userid", map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": append([]string{"ghost0001"}, ids...)}, 301021},
		{"time as string", `{"starttime":"1748707200","endtime":1751212800,"useridlist":["a"]}`, 47001},
		{"misspelt field", `{"starttime":1748707200,"endtime":1751212800,"userid_list":["a"]}`, 47001},
		{"not JSON", `starttime=1`, 47001},
	}
	for _, c := range errCases {
		if got := errcode(f.wecomPost(pathMonthData, q, c.body)); got != c.code {
			t.Errorf("%s: errcode %d, want %d", c.name, got, c.code)
		}
	}

	f.s.HideUser(ids[1])
	m = f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": ids})
	if errcode(m) != 60011 {
		t.Fatalf("hidden user in batch: %v", m)
	}
	m = f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{ids[0]}})
	if errcode(m) != 0 {
		t.Fatalf("batch without the hidden user: %v", m)
	}

	// Token checks come first; GET is refused.
	if c := errcode(f.wecomPost(pathMonthData, nil, map[string]any{})); c != 41001 {
		t.Fatalf("monthdata without token: %d", c)
	}
	if c := errcode(f.wecomGet(pathMonthData, q)); c != 43002 {
		t.Fatalf("monthdata by GET: %d", c)
	}
}

func make101(users []User) []string {
	out := make([]string, 101)
	for i := range out {
		out[i] = users[i].UserID
	}
	return out
}

func TestBumpShowsInMonthData(t *testing.T) {
	co := NewCompany(2, 20)
	f := start(t, unlimited(Options{Company: co}))
	q := url.Values{"access_token": {f.token()}}
	id := co.Users()[0].UserID
	body := map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{id}}
	before := f.wecomPost(pathMonthData, q, body)["datas"]
	co.Bump(id, jun2025)
	after := f.wecomPost(pathMonthData, q, body)["datas"]
	if reflect.DeepEqual(before, after) {
		t.Fatal("bump did not change the served report")
	}
}

func TestWebhook(t *testing.T) {
	f := start(t, unlimited(Options{WebhookKey: "robot-1"}))
	path := "/cgi-bin/webhook/send"
	ok := f.wecomPost(path, url.Values{"key": {"robot-1"}}, map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": "**同步失败** 2025-06"}})
	if errcode(ok) != 0 {
		t.Fatalf("markdown: %v", ok)
	}
	ok = f.wecomPost(path, url.Values{"key": {"robot-1"}}, map[string]any{"msgtype": "text", "text": map[string]any{"content": "plain", "mentioned_list": []string{"@all"}}})
	if errcode(ok) != 0 {
		t.Fatalf("text: %v", ok)
	}
	cases := []struct {
		name string
		key  string
		body any
		code int
	}{
		{"unknown key", "robot-2", map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": "x"}}, 93000},
		{"markdown over 4096 bytes", "robot-1", map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": strings.Repeat("考", 1366)}}, 40058},
		{"text over 2048 bytes", "robot-1", map[string]any{"msgtype": "text", "text": map[string]any{"content": strings.Repeat("a", 2049)}}, 40058},
		{"unknown msgtype", "robot-1", map[string]any{"msgtype": "video"}, 40008},
		{"empty content", "robot-1", map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": ""}}, 44004},
	}
	for _, c := range cases {
		if got := errcode(f.wecomPost(path, url.Values{"key": {c.key}}, c.body)); got != c.code {
			t.Errorf("%s: errcode %d, want %d", c.name, got, c.code)
		}
	}
	// Exactly 4096 bytes is still accepted.
	if got := errcode(f.wecomPost(path, url.Values{"key": {"robot-1"}}, map[string]any{"msgtype": "markdown", "markdown": map[string]any{"content": strings.Repeat("a", 4096)}})); got != 0 {
		t.Fatalf("4096-byte markdown: %d", got)
	}
	msgs := f.s.WebhookMessages()
	if len(msgs) != 3 || msgs[0] != "**同步失败** 2025-06" || msgs[1] != "plain" {
		t.Fatalf("messages %q", msgs)
	}
}

func TestWeComRateLimit(t *testing.T) {
	// A rate this small never refills during the test: exactly the burst passes.
	f := start(t, Options{MonthDataPerMinute: 1e-9, ListPerMinute: 1e-9, Burst: 3})
	tok := f.token()
	q := url.Values{"access_token": {tok}}
	body := map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{f.s.Company().Users()[0].UserID}}
	var codes []int
	for i := 0; i < 5; i++ {
		codes = append(codes, errcode(f.wecomPost(pathMonthData, q, body)))
	}
	if !reflect.DeepEqual(codes, []int{0, 0, 0, 45009, 45009}) {
		t.Fatalf("monthdata codes %v", codes)
	}
	if f.s.Throttled() != 2 {
		t.Fatalf("Throttled = %d, want 2", f.s.Throttled())
	}
	codes = nil
	for i := 0; i < 4; i++ {
		codes = append(codes, errcode(f.wecomGet("/cgi-bin/department/simplelist", q)))
	}
	if !reflect.DeepEqual(codes, []int{0, 0, 0, 45009}) {
		t.Fatalf("department codes %v", codes)
	}
	if f.s.Throttled() != 3 {
		t.Fatalf("Throttled = %d, want 3", f.s.Throttled())
	}
	if f.s.Calls(EndpointMonthData) != 5 || f.s.Calls(EndpointDeptList) != 4 {
		t.Fatalf("calls %v", f.s.CallCounts())
	}
}

func TestWeComMethodChecks(t *testing.T) {
	f := start(t, unlimited(Options{}))
	st, b, err := f.wecomPostRaw(t.Context(), "/cgi-bin/gettoken", url.Values{"corpid": {f.cred.CorpID}, "corpsecret": {f.cred.Secret}}, "")
	if err != nil || st != http.StatusOK || errcode(decodeMap(t, b)) != 43001 {
		t.Fatalf("gettoken by POST: %d %s %v", st, b, err)
	}
}

package fakeapi

import (
	"net/url"
	"reflect"
	"strings"
	"testing"
)

func TestUserIDCase(t *testing.T) {
	co := NewCompany(3, 40)
	f := start(t, unlimited(Options{Company: co}))
	q := url.Values{"access_token": {f.token()}}
	users := co.Users()
	u, v := users[0], users[1]
	if strings.ToUpper(u.UserID) == u.UserID {
		t.Fatalf("userid %q has no lower-case letters", u.UserID)
	}
	upper := strings.ToUpper(u.UserID)

	listed := func(userid string, dept int) []string {
		t.Helper()
		m := f.wecomGet("/cgi-bin/user/simplelist", url.Values{"access_token": q["access_token"], "department_id": {itoa(dept)}})
		if errcode(m) != 0 {
			t.Fatalf("user/simplelist: %v", m)
		}
		var out []string
		for _, x := range m["userlist"].([]any) {
			if id := x.(map[string]any)["userid"].(string); strings.EqualFold(id, userid) {
				out = append(out, id)
			}
		}
		return out
	}
	acctids := func(ids ...string) []string {
		t.Helper()
		m := f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": ids})
		if errcode(m) != 0 {
			t.Fatalf("monthdata %v: %v", ids, m)
		}
		var out []string
		for _, r := range m["datas"].([]any) {
			out = append(out, r.(map[string]any)["base_info"].(map[string]any)["acctid"].(string))
		}
		return out
	}

	// Any case is accepted; the report keeps the company's spelling.
	if got := acctids(upper, strings.ToLower(v.UserID)); !reflect.DeepEqual(got, []string{u.UserID, v.UserID}) {
		t.Fatalf("acctids %v", got)
	}
	// Two spellings of one user are one user.
	if got := acctids(u.UserID, upper); !reflect.DeepEqual(got, []string{u.UserID}) {
		t.Fatalf("two spellings: %v", got)
	}

	// Listed in upper case; the report still answers in the company's case.
	f.s.SpellUserID(u.UserID, UserIDSpelling{Listed: upper})
	if got := listed(u.UserID, u.Departments[0]); !reflect.DeepEqual(got, []string{upper}) {
		t.Fatalf("listed %v, want [%s]", got, upper)
	}
	if got := listed(v.UserID, v.Departments[0]); !reflect.DeepEqual(got, []string{v.UserID}) {
		t.Fatalf("other user listed as %v", got)
	}
	if got := acctids(upper); !reflect.DeepEqual(got, []string{u.UserID}) {
		t.Fatalf("acctid for %s: %v", upper, got)
	}

	// The report answers in another case than requested.
	f.s.SpellUserID(u.UserID, UserIDSpelling{Reported: upper})
	if got := listed(u.UserID, u.Departments[0]); !reflect.DeepEqual(got, []string{u.UserID}) {
		t.Fatalf("listed %v after resetting Listed", got)
	}
	if got := acctids(u.UserID, v.UserID); !reflect.DeepEqual(got, []string{upper, v.UserID}) {
		t.Fatalf("acctids %v", got)
	}
	// The report's other content is the company's.
	m := f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{u.UserID}})
	got := m["datas"].([]any)[0].(map[string]any)
	want := co.Report(u.UserID, jun2025)
	want["base_info"].(map[string]any)["acctid"] = upper
	if !reflect.DeepEqual(normalize(want), got) {
		t.Fatalf("report\n got %v\nwant %v", got, want)
	}

	f.s.SpellUserID(upper, UserIDSpelling{}) // any case names the user
	if got := acctids(upper); !reflect.DeepEqual(got, []string{u.UserID}) {
		t.Fatalf("after reset: %v", got)
	}

	// Hiding works whatever case is requested.
	f.s.HideUser(u.UserID)
	if c := errcode(f.wecomPost(pathMonthData, q, map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{upper}})); c != 60011 {
		t.Fatalf("hidden user in upper case: %d", c)
	}

	defer func() {
		if recover() == nil {
			t.Fatal("a spelling of another userid did not panic")
		}
	}()
	f.s.SpellUserID(u.UserID, UserIDSpelling{Listed: v.UserID})
}

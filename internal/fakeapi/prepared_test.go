package fakeapi

import (
	"bytes"
	"context"
	"net/url"
	"strings"
	"testing"

	"checkin-sync/internal/month"
)

// Preparing changes what an answer costs, never what it says: the same
// bytes, and a bump or a new spelling after preparing still shows.
func TestPreparedReportsAnswerTheSame(t *testing.T) {
	co := NewCompany(4, 30)
	plain := start(t, unlimited(Options{Company: co}))
	prepared := start(t, unlimited(Options{Company: co}))
	if err := prepared.s.PrepareReports([]month.Month{jun2025}); err != nil {
		t.Fatal(err)
	}
	users := co.Users()
	ids := []string{users[5].UserID, users[0].UserID, users[17].UserID}
	answer := func(f *fixture, from, to int) []byte {
		t.Helper()
		q := url.Values{"access_token": {f.token()}}
		body := map[string]any{"starttime": cst(2025, 6, from), "endtime": cst(2025, 6, to), "useridlist": ids}
		status, b, err := f.wecomPostRaw(context.Background(), pathMonthData, q, body)
		if err != nil || status != 200 {
			t.Fatalf("month data: %d %v", status, err)
		}
		return b
	}
	same := func(what string, from, to int) []byte {
		t.Helper()
		want, got := answer(plain, from, to), answer(prepared, from, to)
		if !bytes.Equal(got, want) {
			t.Fatalf("%s: prepared answer\n%s\nwant\n%s", what, got, want)
		}
		return got
	}
	first := same("whole month", 1, 30)
	if !bytes.HasPrefix(first, []byte(`{"errcode":0,"errmsg":"ok","datas":[{`)) {
		t.Fatalf("the envelope does not come first, as WeCom sends it: %.60s", first)
	}
	same("part of the month", 1, 10)

	co.Bump(ids[1], jun2025)
	if bumped := same("after a bump", 1, 30); bytes.Equal(bumped, first) {
		t.Fatal("the bump does not show")
	}
	upper := UserIDSpelling{Reported: strings.ToUpper(ids[2])}
	plain.s.SpellUserID(ids[2], upper)
	prepared.s.SpellUserID(ids[2], upper)
	if got := same("after a new spelling", 1, 30); !bytes.Contains(got, []byte(`"acctid":"`+upper.Reported+`"`)) {
		t.Fatalf("the spelling does not show: %s", got)
	}
}

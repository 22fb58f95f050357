package wecom

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
)

var june = month.MustParse("2025-06")

func juneSpan() (month.Date, month.Date) {
	return month.Date{Year: 2025, Mon: 6, Day: 1}, month.Date{Year: 2025, Mon: 6, Day: 30}
}

// testCtx bounds every test, as a guard against hangs.
func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// startFake starts a fake with no server-side limits unless opts sets them.
func startFake(t *testing.T, opts fakeapi.Options) (*fakeapi.Server, string) {
	t.Helper()
	if opts.Company == nil {
		opts.Company = fakeapi.NewCompany(7, 60)
	}
	if opts.MonthDataPerMinute == 0 {
		opts.MonthDataPerMinute = -1
	}
	if opts.ListPerMinute == 0 {
		opts.ListPerMinute = -1
	}
	s := fakeapi.New(opts)
	base, err := s.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s, base
}

// startClient starts a fake with the defaults of startFake and returns it
// with a newTestClient for it.
func startClient(t *testing.T, mut ...func(*Config)) (*fakeapi.Server, *Client) {
	t.Helper()
	s, base := startFake(t, fakeapi.Options{})
	return s, newTestClient(t, s, base, mut...)
}

// newTestClient is a client for the fake with millisecond retries and
// fast limiters; mut adjusts the config.
func newTestClient(t *testing.T, s *fakeapi.Server, base string, mut ...func(*Config)) *Client {
	t.Helper()
	cr := s.Credentials()
	cfg := Config{BaseURL: base, CorpID: cr.CorpID, Secret: cr.Secret, RatePerMinute: 600000, ListPerMinute: 600000, Retry: fastRetry()}
	for _, m := range mut {
		m(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func userIDs(users []fakeapi.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.UserID
	}
	return out
}

func TestUsersWalksDepartments(t *testing.T) {
	s, c := startClient(t)
	ctx := testCtx(t)
	company := s.Company()

	got, err := c.Users(ctx, Selection{Departments: []int{1}})
	if err != nil {
		t.Fatal(err)
	}
	want := company.Users()
	if !slices.Equal(userIDsOf(got), userIDs(want)) {
		t.Fatalf("users:\n got %v\nwant %v", userIDsOf(got), userIDs(want))
	}
	twoDepts := 0
	for i, u := range got {
		wd := slices.Sorted(slices.Values(want[i].Departments))
		if !slices.Equal(u.Departments, wd) || u.Name != want[i].Name {
			t.Errorf("%s: got %v %q, want %v %q", u.UserID, u.Departments, u.Name, wd, want[i].Name)
		}
		if len(u.Departments) > 1 {
			twoDepts++
		}
	}
	if twoDepts == 0 {
		t.Error("sample company has no user in two departments; dedupe untested")
	}
	if n := s.Calls("department/simplelist"); n != 1 {
		t.Errorf("department/simplelist calls %d, want 1", n)
	}
	if n, want := s.Calls("user/simplelist"), len(company.Departments()); n != want {
		t.Errorf("user/simplelist calls %d, want one per department (%d)", n, want)
	}

	// Exclude matches ignoring case.
	ex := want[3].UserID
	got, err = c.Users(ctx, Selection{Exclude: []string{strings.ToUpper(ex)}})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want)-1 || slices.Contains(userIDsOf(got), ex) {
		t.Errorf("exclude %s: %d users", ex, len(got))
	}

	// A sub-department lists only its subtree.
	var sub fakeapi.Department
	for _, d := range company.Departments() {
		if d.ParentID == 1 {
			sub = d
			break
		}
	}
	inSub := map[int]bool{sub.ID: true}
	for _, d := range company.Departments() { // parents precede children
		if inSub[d.ParentID] {
			inSub[d.ID] = true
		}
	}
	var wantSub []string
	for _, u := range want {
		for _, d := range u.Departments {
			if inSub[d] {
				wantSub = append(wantSub, u.UserID)
				break
			}
		}
	}
	got, err = c.Users(ctx, Selection{Departments: []int{sub.ID, sub.ID}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(userIDsOf(got), wantSub) {
		t.Errorf("department %d:\n got %v\nwant %v", sub.ID, userIDsOf(got), wantSub)
	}

	// Explicit userids: no listing at all, deduplicated, sorted.
	before := s.Calls("user/simplelist") + s.Calls("department/simplelist")
	got, err = c.Users(ctx, Selection{Departments: []int{1}, UserIDs: []string{"b", "a", "B", "c"}, Exclude: []string{"c"}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := userIDsOf(got); !slices.Equal(ids, []string{"a", "b"}) {
		t.Errorf("explicit ids: %v", ids)
	}
	if after := s.Calls("user/simplelist") + s.Calls("department/simplelist"); after != before {
		t.Errorf("explicit ids made %d listing calls", after-before)
	}
}

func userIDsOf(us []User) []string {
	out := make([]string, len(us))
	for i, u := range us {
		out[i] = u.UserID
	}
	return out
}

func TestUsersHiddenUserNotListed(t *testing.T) {
	s, c := startClient(t)
	hidden := s.Company().Users()[0].UserID
	s.HideUser(hidden)
	got, err := c.Users(testCtx(t), Selection{})
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(userIDsOf(got), hidden) {
		t.Errorf("hidden user %s listed", hidden)
	}
}

func TestListingOutsideVisibleRangeIsFatal(t *testing.T) {
	s, c := startClient(t)
	s.FailNext("user/simplelist", 60011, 1)
	_, err := c.Users(testCtx(t), Selection{})
	e, ok := apierr.As(err)
	if !ok || e.Class != apierr.Fatal || e.Code != 60011 || !strings.Contains(e.Hint, "visible range") {
		t.Fatalf("got %v", err)
	}
	if !strings.Contains(err.Error(), "department ") {
		t.Errorf("error does not name the department: %v", err)
	}
	// FailNext fails one call only, so a retry would have succeeded: the
	// error above shows there was none. Departments are listed a few at a
	// time, so the others in flight may have been asked, each once.
	if n, most := s.Calls("user/simplelist"), len(s.Company().Departments()); n > most {
		t.Errorf("user/simplelist calls %d, want at most one per department (%d)", n, most)
	}
}

func TestDepartmentsUnknownRoot(t *testing.T) {
	s, c := startClient(t)
	_, err := c.Departments(testCtx(t), 9999)
	if e, ok := apierr.As(err); !ok || e.Code != 60003 || e.Class != apierr.Fatal {
		t.Fatalf("got %v", err)
	}
	all, err := c.Departments(testCtx(t), 0)
	if err != nil || len(all) != len(s.Company().Departments()) {
		t.Fatalf("whole tree: %d departments, %v", len(all), err)
	}
}

// canonical re-encodes a JSON-shaped value so that rows decoded with
// json.Number compare equal to the fake's ints.
func canonical(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestMonthDataRows(t *testing.T) {
	s, c := startClient(t)
	company := s.Company()
	ids := userIDs(company.Users())
	start, end := juneSpan()
	res, err := c.MonthData(testCtx(t), start, end, ids)
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Rows) != len(ids) || len(res.Missing)+len(res.Multiple)+len(res.Skipped) != 0 {
		t.Fatalf("rows %d of %d; missing %v multiple %v skipped %v", len(res.Rows), len(ids), res.Missing, res.Multiple, res.Skipped)
	}
	sawString, sawNumber := false, false
	for i, row := range res.Rows {
		if row.UserID != ids[i] || row.Requested != ids[i] {
			t.Fatalf("row %d is %s (requested %s), want %s (request order)", i, row.UserID, row.Requested, ids[i])
		}
		if got, want := canonical(t, row.Report), canonical(t, company.Report(row.UserID, june)); got != want {
			t.Errorf("%s:\n got %s\nwant %s", row.UserID, got, want)
		}
		sum := row.Report["summary_info"].(map[string]any)
		if _, ok := sum["work_days"].(json.Number); !ok {
			t.Errorf("%s: work_days is %T, want json.Number", row.UserID, sum["work_days"])
		}
		for _, it := range row.Report["sp_items"].([]any) {
			switch it.(map[string]any)["count"].(type) {
			case string:
				sawString = true // numbers sent as strings stay strings for the mapping layer
			case json.Number:
				sawNumber = true
			default:
				t.Errorf("%s: sp_items count is %T", row.UserID, it.(map[string]any)["count"])
			}
		}
	}
	if !sawString || !sawNumber {
		t.Errorf("sample lacks string (%v) or numeric (%v) sp_items values", sawString, sawNumber)
	}
	if st := c.Stats(); st["getcheckin_monthdata"].Calls != 1 || st["gettoken"].Calls != 1 {
		t.Errorf("stats %+v", st)
	}
}

func TestMonthDataBisectsBadUsers(t *testing.T) {
	s, c := startClient(t)
	known := userIDs(s.Company().Users())[:20]
	hidden := known[7]
	s.HideUser(hidden)
	ids := slices.Clone(known)
	ids = slices.Insert(ids, 3, "ghost-one")
	ids = append(ids, "ghost-two")
	start, end := juneSpan()
	res, err := c.MonthData(testCtx(t), start, end, ids)
	if err != nil {
		t.Fatal(err)
	}
	skipped := map[string]Skip{}
	for _, sk := range res.Skipped {
		skipped[sk.UserID] = sk
	}
	want := map[string]Skip{
		"ghost-one": {"ghost-one", ReasonUnknownUser, 301021},
		"ghost-two": {"ghost-two", ReasonUnknownUser, 301021},
		hidden:      {hidden, ReasonNotVisible, 60011},
	}
	if len(skipped) != len(want) {
		t.Errorf("skipped %v", res.Skipped)
	}
	for id, w := range want {
		if skipped[id] != w {
			t.Errorf("%s: skipped as %+v, want %+v", id, skipped[id], w)
		}
	}
	var rows []string
	for _, r := range res.Rows {
		rows = append(rows, r.UserID)
	}
	wantRows := slices.DeleteFunc(slices.Clone(known), func(id string) bool { return id == hidden })
	if !slices.Equal(rows, wantRows) {
		t.Errorf("rows\n got %v\nwant %v", rows, wantRows)
	}
	if n := s.Calls("getcheckin_monthdata"); n < 4 || n > 2*len(ids) {
		t.Errorf("%d month-data calls for 3 bad ids in %d", n, len(ids))
	}

	// A batch of only bad ids yields no rows and no error.
	res, err = c.MonthData(testCtx(t), start, end, []string{"nobody", "noone"})
	if err != nil || len(res.Rows) != 0 || len(res.Skipped) != 2 {
		t.Errorf("all bad: %+v, %v", res, err)
	}
}

// TestMonthDataMatching uses a small handler, since the fake always echoes
// the exact requested ids, once each: this checks case-insensitive acctid
// matching, missing and duplicated rows, unrequested and broken rows.
func TestMonthDataMatching(t *testing.T) {
	var datas string
	c, _ := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"errcode":0,"errmsg":"ok","datas":%s}`, datas)
	})
	datas = `[
		{"base_info":{"acctid":"zhangsan","name":"张三"},"summary_info":{"work_days":20}},
		{"base_info":{"acctid":"LISI"},"summary_info":{"work_days":"21"}},
		{"base_info":{"acctid":"WangWu"}},
		{"base_info":{"acctid":"wangwu"}},
		{"base_info":{"acctid":"stranger"}},
		{"base_info":{"name":"no acctid"}},
		{"summary_info":{}},
		null
	]`
	start, end := juneSpan()
	res, err := c.MonthData(testCtx(t), start, end, []string{"ZhangSan", "LiSi", "WangWu", "ZhaoLiu"})
	if err != nil {
		t.Fatal(err)
	}
	// Rows carry WeCom's spelling (acctid) and the requested one.
	if len(res.Rows) != 2 || res.Rows[0].UserID != "zhangsan" || res.Rows[0].Requested != "ZhangSan" ||
		res.Rows[1].UserID != "LISI" || res.Rows[1].Requested != "LiSi" {
		t.Fatalf("rows %+v", res.Rows)
	}
	if wd := res.Rows[0].Report["summary_info"].(map[string]any)["work_days"]; wd != json.Number("20") {
		t.Errorf("work_days %#v", wd)
	}
	if wd := res.Rows[1].Report["summary_info"].(map[string]any)["work_days"]; wd != "21" {
		t.Errorf("string work_days %#v", wd)
	}
	if !slices.Equal(res.Multiple, []string{"WangWu"}) || !slices.Equal(res.Missing, []string{"ZhaoLiu"}) || len(res.Skipped) != 0 {
		t.Errorf("multiple %v missing %v skipped %v", res.Multiple, res.Missing, res.Skipped)
	}

	datas = `[]`
	res, err = c.MonthData(testCtx(t), start, end, []string{"a", "b"})
	if err != nil || !slices.Equal(res.Missing, []string{"a", "b"}) {
		t.Errorf("empty datas: %+v %v", res, err)
	}

	datas = `{"acctid":"a"}`
	_, err = c.MonthData(testCtx(t), start, end, []string{"a"})
	if e, ok := apierr.As(err); !ok || e.Class != apierr.Fatal || !strings.Contains(e.Hint, "malformed") {
		t.Errorf("datas not an array: %v", err)
	}
}

func TestMalformedBodyIsRetried(t *testing.T) {
	var mu sync.Mutex
	n := 0
	c, _ := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n++
		k := n
		mu.Unlock()
		if k <= 2 {
			fmt.Fprint(w, `<html>oops`)
			return
		}
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","datas":[{"base_info":{"acctid":"a"}}]}`)
	})
	start, end := juneSpan()
	res, err := c.MonthData(testCtx(t), start, end, []string{"a"})
	if err != nil || len(res.Rows) != 1 {
		t.Fatalf("%+v %v", res, err)
	}
	if st := c.Stats()["getcheckin_monthdata"]; st.Calls != 3 || st.Retries != 2 {
		t.Errorf("stats %+v", st)
	}
}

// handlerClient serves month data from h, with a fixed gettoken answer.
func handlerClient(t *testing.T, h http.HandlerFunc) (*Client, *lockedBuffer) {
	t.Helper()
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/gettoken", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"handler-token","expires_in":7200}`)
	})
	mux.HandleFunc("/cgi-bin/checkin/getcheckin_monthdata", h)
	srv := newLoopbackServer(t, mux)
	logs := &lockedBuffer{}
	c, err := New(Config{BaseURL: srv, CorpID: "c", Secret: "s", RatePerMinute: 600000, Retry: fastRetry(), Log: debugLogger(logs)})
	if err != nil {
		t.Fatal(err)
	}
	return c, logs
}

func TestTokenExpiryMidRun(t *testing.T) {
	s, c := startClient(t)
	ctx := testCtx(t)
	ids := userIDs(s.Company().Users())[:5]
	start, end := juneSpan()
	for round := 0; round < 3; round++ {
		if round > 0 {
			s.ExpireTokens() // answers 42001 or 40014, alternating by token
		}
		res, err := c.MonthData(ctx, start, end, ids)
		if err != nil || len(res.Rows) != len(ids) {
			t.Fatalf("round %d: %v", round, err)
		}
	}
	if n := s.Calls("gettoken"); n != 3 {
		t.Errorf("gettoken calls %d, want 3 (one per expiry)", n)
	}
	st := c.Stats()["getcheckin_monthdata"]
	if st.Calls != 5 || st.Retries != 2 {
		t.Errorf("month data stats %+v, want 5 calls, 2 retries", st)
	}
}

func TestTokenRejectedTwiceIsFatal(t *testing.T) {
	s, c := startClient(t)
	s.FailNext("getcheckin_monthdata", 40014, 2)
	start, end := juneSpan()
	_, err := c.MonthData(testCtx(t), start, end, []string{userIDs(s.Company().Users())[0]})
	if e, ok := apierr.As(err); !ok || e.Class != apierr.Fatal || e.Code != 40014 {
		t.Fatalf("got %v", err)
	}
	if n := s.Calls("gettoken"); n != 2 {
		t.Errorf("gettoken calls %d, want 2", n)
	}
}

func TestTokenSingleFlight(t *testing.T) {
	s, c := startClient(t)
	// Slow gettoken down so that every caller arrives while it is in flight.
	s.SetFaults(fakeapi.Faults{Latency: 50 * time.Millisecond, Endpoints: []string{"gettoken"}})
	ctx := testCtx(t)
	ids := userIDs(s.Company().Users())
	start, end := juneSpan()
	run := func() {
		var wg sync.WaitGroup
		errs := make(chan error, 20)
		for i := 0; i < 20; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				_, err := c.MonthData(ctx, start, end, ids[i:i+2])
				errs <- err
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			if err != nil {
				t.Error(err)
			}
		}
	}
	run()
	if n := s.Calls("gettoken"); n != 1 {
		t.Errorf("gettoken calls %d, want 1", n)
	}
	s.ExpireTokens()
	run()
	if n := s.Calls("gettoken"); n != 2 {
		t.Errorf("after expiry: gettoken calls %d, want 2", n)
	}
}

func TestTokenRenewedBeforeExpiry(t *testing.T) {
	s, c := startClient(t)
	var mu sync.Mutex
	offset := time.Duration(0)
	c.tok.now = func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return time.Now().Add(offset)
	}
	ctx := testCtx(t)
	if err := c.CheckToken(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Departments(ctx, 1); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	offset = 7200*time.Second - 6*time.Minute // 6 min left: still cached
	mu.Unlock()
	if _, err := c.Departments(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("gettoken"); n != 1 {
		t.Fatalf("gettoken calls %d, want 1", n)
	}
	mu.Lock()
	offset = 7200*time.Second - 4*time.Minute // under 5 min left: renew first
	mu.Unlock()
	if _, err := c.Departments(ctx, 1); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("gettoken"); n != 2 {
		t.Errorf("gettoken calls %d, want 2", n)
	}
	if st := c.Stats()["department/simplelist"]; st.Retries != 0 {
		t.Errorf("renewal should not need a rejected call: %+v", st)
	}
	// CheckToken always fetches.
	if err := c.CheckToken(ctx); err != nil || s.Calls("gettoken") != 3 {
		t.Errorf("CheckToken: %v, %d gettoken calls", err, s.Calls("gettoken"))
	}
}

func TestRateLimitFaultsAbsorbed(t *testing.T) {
	s, base := startFake(t, fakeapi.Options{Seed: 3})
	c := newTestClient(t, s, base, func(cfg *Config) { cfg.Retry.MaxAttempts = 10 })
	s.SetFaults(fakeapi.Faults{RateLimit: 0.3, Busy: 0.1, Endpoints: []string{"getcheckin_monthdata"}})
	ids := userIDs(s.Company().Users())
	start, end := juneSpan()
	for i := 0; i < 20; i++ {
		res, err := c.MonthData(testCtx(t), start, end, ids[i:i+3])
		if err != nil || len(res.Rows) != 3 {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	st := c.Stats()["getcheckin_monthdata"]
	if st.Retries == 0 {
		t.Error("no retries counted; faults not injected?")
	}
	if st.Calls != s.Calls("getcheckin_monthdata") || st.Calls != 20+st.Retries {
		t.Errorf("stats %+v, fake saw %d calls", st, s.Calls("getcheckin_monthdata"))
	}
}

func TestBlockWaitAfter45009(t *testing.T) {
	logs := &lockedBuffer{}
	s, c := startClient(t, func(cfg *Config) {
		cfg.Retry.BlockWait = 40 * time.Millisecond
		cfg.Log = debugLogger(logs)
	})
	s.FailNext("getcheckin_monthdata", 45009, 1)
	start, end := juneSpan()
	res, err := c.MonthData(testCtx(t), start, end, userIDs(s.Company().Users())[:2])
	if err != nil || len(res.Rows) != 2 {
		t.Fatalf("%v", err)
	}
	var waits []float64
	for _, line := range strings.Split(logs.String(), "\n") {
		var ev struct {
			Message string  `json:"message"`
			Wait    float64 `json:"wait"`
		}
		if json.Unmarshal([]byte(line), &ev) == nil && ev.Message == "wecom retry" {
			waits = append(waits, ev.Wait)
		}
	}
	// zerolog writes durations in milliseconds.
	if len(waits) != 1 || waits[0] < 40 {
		t.Errorf("retry waits %v ms, want one of at least 40", waits)
	}
}

func TestHTTPErrorsRetried(t *testing.T) {
	s, c := startClient(t)
	s.FailNext("getcheckin_monthdata", 502, 2)
	s.FailNext("department/simplelist", -1, 1)
	start, end := juneSpan()
	if _, err := c.MonthData(testCtx(t), start, end, userIDs(s.Company().Users())[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Departments(testCtx(t), 1); err != nil {
		t.Fatal(err)
	}
	if n := s.Calls("getcheckin_monthdata"); n != 3 {
		t.Errorf("month data calls %d, want 3", n)
	}
	// Attempts run out: the last error is returned, still classed Retry.
	s.FailNext("getcheckin_monthdata", 502, 10)
	_, err := c.MonthData(testCtx(t), start, end, userIDs(s.Company().Users())[:1])
	if e, ok := apierr.As(err); !ok || e.Class != apierr.Retry || e.HTTPStatus != 502 {
		t.Errorf("got %v", err)
	}
}

func TestFatalErrorsStopAtOnce(t *testing.T) {
	ctx := testCtx(t)
	start, end := juneSpan()

	t.Run("wrong secret", func(t *testing.T) {
		s, c := startClient(t, func(cfg *Config) { cfg.Secret = "not-the-secret" })
		err := c.CheckToken(ctx)
		e, ok := apierr.As(err)
		if !ok || e.Code != 40001 || e.Class != apierr.Fatal || !strings.Contains(e.Hint, "WECOM_SECRET") {
			t.Fatalf("got %v", err)
		}
		if strings.Contains(err.Error(), "not-the-secret") {
			t.Errorf("error shows the secret: %v", err)
		}
		if n := s.Calls("gettoken"); n != 1 {
			t.Errorf("gettoken calls %d, want 1", n)
		}
	})
	t.Run("wrong corp", func(t *testing.T) {
		_, c := startClient(t, func(cfg *Config) { cfg.CorpID = "wwnope" })
		_, err := c.Users(ctx, Selection{})
		if e, ok := apierr.As(err); !ok || e.Code != 40013 || e.Class != apierr.Fatal || !strings.Contains(e.Hint, "corp id") {
			t.Fatalf("got %v", err)
		}
	})
	for _, tc := range []struct {
		code int
		hint string
	}{{60020, "企业可信IP"}, {48002, "可调用接口的应用"}, {40001, "WECOM_SECRET"}} {
		t.Run(fmt.Sprint(tc.code), func(t *testing.T) {
			s, c := startClient(t)
			s.FailNext("getcheckin_monthdata", tc.code, 5)
			_, err := c.MonthData(ctx, start, end, userIDs(s.Company().Users())[:4])
			e, ok := apierr.As(err)
			if !ok || e.Code != tc.code || e.Class != apierr.Fatal || !strings.Contains(e.Hint, tc.hint) || !apierr.IsFatal(err) {
				t.Fatalf("got %v", err)
			}
			if !strings.Contains(err.Error(), tc.hint) {
				t.Errorf("message lacks the hint: %v", err)
			}
			if n := s.Calls("getcheckin_monthdata"); n != 1 {
				t.Errorf("month data calls %d, want exactly 1", n)
			}
		})
	}
	t.Run("60020 on gettoken", func(t *testing.T) {
		s, c := startClient(t)
		s.FailNext("gettoken", 60020, 5)
		_, err := c.Departments(ctx, 1)
		if e, ok := apierr.As(err); !ok || e.Code != 60020 || e.Endpoint != "gettoken" {
			t.Fatalf("got %v", err)
		}
		if n := s.Calls("gettoken"); n != 1 {
			t.Errorf("gettoken calls %d, want 1", n)
		}
	})
}

func TestProgrammingErrors(t *testing.T) {
	s, c := startClient(t)
	start, end := juneSpan()
	for _, code := range []int{301024, 301023, 41001} {
		before := s.Calls("getcheckin_monthdata")
		s.FailNext("getcheckin_monthdata", code, 1)
		_, err := c.MonthData(testCtx(t), start, end, userIDs(s.Company().Users())[:2])
		if e, ok := apierr.As(err); !ok || e.Code != code || e.Class != apierr.Programming {
			t.Errorf("%d: got %v", code, err)
		}
		if n := s.Calls("getcheckin_monthdata") - before; n != 1 {
			t.Errorf("%d: %d calls, want 1", code, n)
		}
	}
	// A span the fake itself refuses (over one month) is 301024 too.
	_, err := c.MonthData(testCtx(t), start, end.AddDays(5), userIDs(s.Company().Users())[:1])
	if apierr.CodeOf(err) != 301024 || apierr.ClassOf(err) != apierr.Programming {
		t.Errorf("long span: %v", err)
	}
}

func TestClientLimiterStaysUnderServerLimit(t *testing.T) {
	s, base := startFake(t, fakeapi.Options{MonthDataPerMinute: 600, ListPerMinute: 600, Burst: 3})
	c := newTestClient(t, s, base, func(cfg *Config) {
		cfg.RatePerMinute = 600
		cfg.ListPerMinute = 600
		cfg.Retry.MaxAttempts = 1 // a throttled call would fail the test
	})
	ctx := testCtx(t)
	ids := userIDs(s.Company().Users())
	start, end := juneSpan()
	// Sequential calls, as the engine makes them. (Concurrent callers share
	// the limiter too, but on a loaded test machine their sends can be
	// delayed unevenly after the limiter lets them go, which would make the
	// server see bursts that no client could prevent.)
	for i := 0; i < 30; i++ {
		if _, err := c.MonthData(ctx, start, end, ids[i:i+1]); err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
	}
	for i := 0; i < 8; i++ {
		if _, err := c.Departments(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if n := s.Throttled(); n != 0 {
		t.Errorf("server throttled %d requests", n)
	}
	if n := s.Calls("getcheckin_monthdata"); n != 30 {
		t.Errorf("month data calls %d, want 30", n)
	}
}

func TestLimiterWaitHonoursContext(t *testing.T) {
	s, c := startClient(t, func(cfg *Config) { cfg.RatePerMinute = 1 })
	ids := userIDs(s.Company().Users())
	start, end := juneSpan()
	if _, err := c.MonthData(testCtx(t), start, end, ids[:1]); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(testCtx(t))
	cancel()
	_, err := c.MonthData(ctx, start, end, ids[1:2])
	if err == nil || !strings.Contains(err.Error(), "context canceled") {
		t.Fatalf("got %v", err)
	}
	if n := s.Calls("getcheckin_monthdata"); n != 1 {
		t.Errorf("a cancelled call reached the server")
	}
}

func TestLogsHoldNoSecrets(t *testing.T) {
	s, base := startFake(t, fakeapi.Options{})
	logs := &lockedBuffer{}
	c := newTestClient(t, s, base, func(cfg *Config) { cfg.Log = debugLogger(logs) })
	ctx := testCtx(t)
	cr := s.Credentials()
	ids := userIDs(s.Company().Users())
	start, end := juneSpan()

	var errs []error
	collect := func(err error) {
		if err != nil {
			errs = append(errs, err)
		}
	}
	_, err := c.Users(ctx, Selection{})
	collect(err)
	_, err = c.MonthData(ctx, start, end, append(slices.Clone(ids[:5]), "ghost"))
	collect(err)
	tokens := []string{c.tok.token}
	s.ExpireTokens()
	_, err = c.MonthData(ctx, start, end, ids[:3])
	collect(err)
	tokens = append(tokens, c.tok.token)
	s.FailNext("getcheckin_monthdata", 60020, 1)
	_, err = c.MonthData(ctx, start, end, ids[:3])
	collect(err)
	// Dropped connections: net/http quotes the full URL in the error.
	s.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"getcheckin_monthdata", "gettoken"}})
	_, err = c.MonthData(ctx, start, end, ids[:3])
	collect(err)
	collect(c.CheckToken(ctx))
	s.SetFaults(fakeapi.Faults{})

	// A wrong secret must not be echoed either.
	bad := newTestClient(t, s, base, func(cfg *Config) { cfg.Secret = "wrong-secret-value"; cfg.Log = debugLogger(logs) })
	collect(bad.CheckToken(ctx))

	// The robot's key.
	hook := base + "/cgi-bin/webhook/send?key=" + cr.WebhookKey
	r := NewRobot(hook, nil, debugLogger(logs)).WithRetry(fastRetry())
	r.lim = rate.NewLimiter(rate.Inf, 1)
	collect(r.SendMarkdown(ctx, "ok"))
	s.FailNext("webhook/send", 93000, 1)
	collect(r.SendMarkdown(ctx, "fails"))
	collect(NewRobot(base+"/cgi-bin/webhook/send?key=wrong-robot-key", nil, debugLogger(logs)).WithRetry(fastRetry()).SendMarkdown(ctx, "x"))
	collect(NewRobot("http://10.1.2.3/cgi-bin/webhook/send?key=remote-robot-key", nil, debugLogger(logs)).SendMarkdown(ctx, "x"))
	s.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"webhook/send"}})
	collect(r.SendMarkdown(ctx, "dropped"))
	s.SetFaults(fakeapi.Faults{})

	out := logs.String()
	if !strings.Contains(out, `"level":"debug"`) || !strings.Contains(out, "wecom request") {
		t.Fatalf("debug log not captured (%d bytes)", len(out))
	}
	if !strings.Contains(out, "access_token=REDACTED") || !strings.Contains(out, "key=REDACTED") {
		t.Error("log shows no redacted URL")
	}
	if len(errs) < 6 {
		t.Fatalf("only %d errors collected: %v", len(errs), errs)
	}
	secrets := append([]string{cr.Secret, "wrong-secret-value", cr.WebhookKey, "wrong-robot-key", "remote-robot-key"}, tokens...)
	for _, sec := range secrets {
		if sec == "" {
			t.Fatal("empty secret in the list")
		}
		if strings.Contains(out, sec) {
			t.Errorf("log holds secret %q", sec)
		}
		for _, err := range errs {
			if strings.Contains(err.Error(), sec) || strings.Contains(fmt.Sprintf("%+v", err), sec) {
				t.Errorf("error holds secret %q: %v", sec, err)
			}
		}
	}
}

func TestRobot(t *testing.T) {
	s, base := startFake(t, fakeapi.Options{})
	ctx := testCtx(t)
	hook := base + "/cgi-bin/webhook/send?key=" + s.Credentials().WebhookKey
	newRobot := func() *Robot {
		r := NewRobot(hook, nil, debugLogger(&lockedBuffer{})).WithRetry(fastRetry())
		r.lim = rate.NewLimiter(rate.Inf, 1)
		return r
	}

	if err := newRobot().SendMarkdown(ctx, "**考勤同步** 2025-06 <font color=\"info\">ok</font>"); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("考勤同步失败 ", 400) // well over 4096 bytes
	if err := newRobot().SendMarkdown(ctx, long); err != nil {
		t.Fatal(err)
	}
	msgs := s.WebhookMessages()
	if len(msgs) != 2 || msgs[0] != "**考勤同步** 2025-06 <font color=\"info\">ok</font>" {
		t.Fatalf("messages %q", msgs)
	}
	if got := msgs[1]; len(got) > 4096 || !strings.HasSuffix(got, "…") || !strings.HasPrefix(long, strings.TrimSuffix(got, "…")) {
		t.Errorf("truncated message: %d bytes, suffix %q", len(got), got[len(got)-6:])
	}

	s.FailNext("webhook/send", 45009, 2)
	if err := newRobot().SendMarkdown(ctx, "after a block"); err != nil {
		t.Fatalf("45009 not retried: %v", err)
	}
	if n := len(s.WebhookMessages()); n != 3 {
		t.Errorf("%d messages", n)
	}

	for code, class := range map[int]apierr.Class{93000: apierr.Fatal, 40058: apierr.Programming, 93004: apierr.Fatal} {
		before := s.Calls("webhook/send")
		s.FailNext("webhook/send", code, 1)
		err := newRobot().SendMarkdown(ctx, "x")
		if e, ok := apierr.As(err); !ok || e.Code != code || e.Class != class || e.Endpoint != "webhook/send" {
			t.Errorf("%d: got %v", code, err)
		}
		if n := s.Calls("webhook/send") - before; n != 1 {
			t.Errorf("%d: %d calls, want 1", code, n)
		}
	}

	// The default limiter spaces messages 3 s apart (20 a minute): a second
	// message cannot go out before a short deadline.
	r := NewRobot(hook, nil, debugLogger(&lockedBuffer{})).WithRetry(fastRetry())
	if err := r.SendMarkdown(ctx, "first"); err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	defer cancel()
	if err := r.SendMarkdown(short, "second"); err == nil {
		t.Error("second message within 3 s was not held back")
	}
}

// A caller waiting on another caller's token fetch must not inherit that
// caller's cancellation. Gates order the three steps: the leader's
// gettoken is held at the server, so its fetch is in flight; the waiter
// then provably waits on that flight (its first look at its context is the
// wait); only then is the leader cancelled.
func TestTokenWaiterOutlivesCancelledLeader(t *testing.T) {
	var calls atomic.Int32
	leaderIn := make(chan struct{})
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/gettoken", func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			// The leader's fetch: held until the leader gives up.
			close(leaderIn)
			<-r.Context().Done()
			return
		}
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"tok","expires_in":7200}`)
	})
	mux.HandleFunc("/cgi-bin/department/simplelist", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","department_id":[{"id":1,"parentid":0}]}`)
	})
	base := newLoopbackServer(t, mux)
	c, err := New(Config{BaseURL: base, CorpID: "c", Secret: "s", ListPerMinute: 600000, Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}

	leaderCtx, cancel := context.WithCancel(testCtx(t))
	defer cancel()
	leaderErr := make(chan error, 1)
	go func() {
		_, err := c.Departments(leaderCtx, 1)
		leaderErr <- err
	}()
	select {
	case <-leaderIn:
	case err := <-leaderErr:
		t.Fatalf("leader ended before its token fetch reached the server: %v", err)
	}

	waiterCtx := newDoneGate(testCtx(t))
	waiterErr := make(chan error, 1)
	go func() {
		_, err := c.Departments(waiterCtx, 1)
		waiterErr <- err
	}()
	select {
	case <-waiterCtx.waiting:
	case err := <-waiterErr:
		t.Fatalf("waiter ended before it waited on the leader's fetch: %v", err)
	}
	cancel()
	if err := <-leaderErr; err == nil {
		t.Error("cancelled leader succeeded")
	}
	if err := <-waiterErr; err != nil {
		t.Errorf("waiter failed with the leader's cancellation: %v", err)
	}
	if n := calls.Load(); n != 2 {
		t.Errorf("gettoken requests %d, want 2 (the leader's, then the waiter's own)", n)
	}
}

// doneGate is a context that reports the first time its Done channel is
// asked for. In Client.token, a caller that finds a fetch in flight looks
// at its context only in the select that waits for that fetch, so the gate
// opens exactly when the caller starts to wait.
type doneGate struct {
	context.Context
	once    sync.Once
	waiting chan struct{}
}

func newDoneGate(parent context.Context) *doneGate {
	return &doneGate{Context: parent, waiting: make(chan struct{})}
}

func (g *doneGate) Done() <-chan struct{} {
	g.once.Do(func() { close(g.waiting) })
	return g.Context.Done()
}

// WeCom's 301024 on a one-day range (the 2nd of the current month) is "no
// complete day yet", a class the engine asks about without the code; on
// any other range it stays a programming error.
func TestOneDayRangeRefused(t *testing.T) {
	var mu sync.Mutex
	var bodies []string
	c, _ := handlerClient(t, func(w http.ResponseWriter, r *http.Request) {
		var b monthRequest
		_ = json.NewDecoder(r.Body).Decode(&b)
		mu.Lock()
		bodies = append(bodies, fmt.Sprintf("%d-%d", b.StartTime, b.EndTime))
		mu.Unlock()
		fmt.Fprint(w, `{"errcode":301024,"errmsg":"checkin time span over limit"}`)
	})
	day := month.Date{Year: 2025, Mon: 7, Day: 1}
	_, err := c.MonthData(testCtx(t), day, day, []string{"a", "b"})
	e, ok := apierr.As(err)
	if !ok || e.Class != apierr.NoCompleteDay || !apierr.IsNoCompleteDay(err) || apierr.IsFatal(err) {
		t.Fatalf("one-day range: %v (class %v)", err, apierr.ClassOf(err))
	}
	if !strings.Contains(e.Hint, "2025-07-01") || !strings.Contains(e.Hint, "skipped") {
		t.Errorf("hint %q", e.Hint)
	}
	_, err = c.MonthData(testCtx(t), day, day.AddDays(1), []string{"a"})
	if apierr.ClassOf(err) != apierr.Programming || apierr.IsNoCompleteDay(err) {
		t.Errorf("two-day range: %v (class %v)", err, apierr.ClassOf(err))
	}
	mu.Lock()
	defer mu.Unlock()
	cst := day.CST().Unix()
	want := []string{fmt.Sprintf("%d-%d", cst, cst), fmt.Sprintf("%d-%d", cst, cst+86400)}
	if !slices.Equal(bodies, want) {
		t.Errorf("requests %v, want one each, %v", bodies, want)
	}
}

// Listing deduplicates userids ignoring case, keeping the first spelling
// seen, and exclusions match ignoring case.
func TestUsersCaseInsensitive(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("/cgi-bin/gettoken", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"tok","expires_in":7200}`)
	})
	mux.HandleFunc("/cgi-bin/department/simplelist", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","department_id":[{"id":1,"parentid":0},{"id":2,"parentid":1}]}`)
	})
	mux.HandleFunc("/cgi-bin/user/simplelist", func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Query().Get("department_id") {
		case "1":
			fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","userlist":[{"userid":"ZhangSan","name":"张三","department":[1]},{"userid":"lisi","name":"李四","department":[1]}]}`)
		default:
			fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","userlist":[{"userid":"zhangsan","name":"张三","department":[2]},{"userid":"WangWu","name":"王五","department":[2]},{"userid":"LISI","name":"李四","department":[2]}]}`)
		}
	})
	base := newLoopbackServer(t, mux)
	c, err := New(Config{BaseURL: base, CorpID: "c", Secret: "s", ListPerMinute: 600000, Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Users(testCtx(t), Selection{Exclude: []string{"wangwu"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []User{
		{UserID: "ZhangSan", Name: "张三", Departments: []int{1, 2}},
		{UserID: "lisi", Name: "李四", Departments: []int{1, 2}},
	}
	slices.SortFunc(want, func(a, b User) int { return strings.Compare(a.UserID, b.UserID) })
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("users %+v\nwant %+v", got, want)
	}

	got, err = c.Users(testCtx(t), Selection{UserIDs: []string{"Bob", " bob ", "ALICE", "alice", "Carol"}, Exclude: []string{"CAROL"}})
	if err != nil {
		t.Fatal(err)
	}
	if ids := userIDsOf(got); !slices.Equal(ids, []string{"ALICE", "Bob"}) {
		t.Errorf("explicit ids %v, want [ALICE Bob]", ids)
	}
}

func TestListUsersGivesEachUserOnce(t *testing.T) {
	s, c := startClient(t)
	ctx := testCtx(t)
	want, err := c.Users(ctx, Selection{})
	if err != nil {
		t.Fatal(err)
	}
	ex := want[5].UserID
	var got []string
	calls := 0
	err = c.ListUsers(ctx, Selection{Exclude: []string{strings.ToUpper(ex)}}, func(us []User) {
		calls++
		for _, u := range us {
			got = append(got, u.UserID)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	var wantIDs []string
	for _, u := range want {
		if u.UserID != ex {
			wantIDs = append(wantIDs, u.UserID)
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, wantIDs) {
		t.Fatalf("listed:\n got %v\nwant %v", got, wantIDs)
	}
	if n := len(s.Company().Departments()); calls < 2 || calls > n {
		t.Errorf("found was called %d times; want once per department with new users (2..%d)", calls, n)
	}
}

// One error can be shared (the token's failure, by every request that
// waited for it): naming a department must not change it.
func TestWithDeptLeavesTheErrorAlone(t *testing.T) {
	shared := &apierr.Error{Service: "wecom", Code: 60011, Class: apierr.Fatal, Msg: "no right"}
	got := withDept(shared, 5)
	if shared.Msg != "no right" {
		t.Errorf("the shared error became %q", shared.Msg)
	}
	if e, ok := apierr.As(got); !ok || e.Code != 60011 || e.Class != apierr.Fatal || !strings.Contains(got.Error(), "(department 5)") {
		t.Errorf("named error %v (%+v)", got, e)
	}
	wrapped := fmt.Errorf("token: %w", shared)
	got = withDept(wrapped, 7)
	if shared.Msg != "no right" || !strings.Contains(got.Error(), "(department 7)") || apierr.ClassOf(got) != apierr.Fatal {
		t.Errorf("wrapped: %v, shared %q", got, shared.Msg)
	}
}

// WeCom sends errcode and errmsg first, and the client reads them from
// the first tokens; members in any other order must read the same.
func TestEnvelopeInAnyOrder(t *testing.T) {
	bodies := []string{
		`{"errcode":0,"errmsg":"ok","datas":[{"base_info":{"acctid":"a"}}]}`,
		`{"datas":[{"base_info":{"acctid":"a"}}],"errcode":0,"errmsg":"ok"}`,
		`{"errmsg":"ok","datas":[{"base_info":{"acctid":"a"}}],"errcode":0}`,
		`{"errcode":0,"datas":[{"base_info":{"acctid":"a"}}],"errmsg":"ok"}`,
	}
	for _, body := range bodies {
		c, _ := handlerClient(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
		start, end := juneSpan()
		res, err := c.MonthData(testCtx(t), start, end, []string{"a"})
		if err != nil || len(res.Rows) != 1 || res.Rows[0].UserID != "a" {
			t.Errorf("%s: %+v %v", body, res, err)
		}
	}
	for _, body := range []string{
		`{"datas":[],"errmsg":"api forbidden","errcode":48002}`,
		`{"errmsg":"api forbidden","errcode":48002}`,
	} {
		c, _ := handlerClient(t, func(w http.ResponseWriter, r *http.Request) { fmt.Fprint(w, body) })
		start, end := juneSpan()
		_, err := c.MonthData(testCtx(t), start, end, []string{"a"})
		if e, ok := apierr.As(err); !ok || e.Code != 48002 {
			t.Errorf("%s: %v, want errcode 48002", body, err)
		}
	}
}

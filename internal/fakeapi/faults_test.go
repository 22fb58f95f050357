package fakeapi

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestLostAckCommitsThenDrops(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetFaults(Faults{LostAck: 1, Endpoints: []string{EndpointCreate, EndpointBatchCreate}})

	_, _, err := f.jdyRaw(t.Context(), pathCreate, f.cred.APIKey, map[string]any{
		"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "data": row("sync_key", "lost|2025-06"),
	})
	if err == nil {
		t.Fatal("lost acknowledgement: the client got an answer")
	}
	_, _, err = f.jdyRaw(t.Context(), pathBatchCreate, f.cred.APIKey, map[string]any{
		"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "transaction_id": "t1",
		"data_list": []any{row("sync_key", "b1"), row("sync_key", "b2")},
	})
	if err == nil {
		t.Fatal("lost batch acknowledgement: the client got an answer")
	}
	recs := f.s.Records()
	if len(recs) != 3 || recs[0].Data["sync_key"] != "lost|2025-06" {
		t.Fatalf("records after lost acks: %+v", recs)
	}

	// Other endpoints are unaffected; with faults off the replay is answered
	// and creates nothing.
	st, m := f.jdy(pathList, nil)
	wantOK(t, st, m)
	f.s.SetFaults(Faults{})
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "t1", "data_list": []any{row("sync_key", "b1"), row("sync_key", "b2")}})
	wantOK(t, st, m)
	if len(f.s.Records()) != 3 || !reflect.DeepEqual(m["success_ids"], []any{recs[1].ID, recs[2].ID}) {
		t.Fatalf("replay after lost ack: %v", m)
	}
}

func TestLostAckOnWeComRead(t *testing.T) {
	f := start(t, unlimited(Options{}))
	q := url.Values{"access_token": {f.token()}}
	f.s.SetFaults(Faults{LostAck: 1, Endpoints: []string{EndpointMonthData}})
	body := map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{f.s.Company().Users()[0].UserID}}
	if _, _, err := f.wecomPostRaw(t.Context(), pathMonthData, q, body); err == nil {
		t.Fatal("monthdata answered despite LostAck")
	}
	f.s.SetFaults(Faults{})
	if c := errcode(f.wecomPost(pathMonthData, q, body)); c != 0 {
		t.Fatalf("after faults off: %d", c)
	}
}

func TestFailNext(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.FailNext(EndpointList, 8303, 2)
	f.s.FailNext(EndpointList, 4012, 1)
	var codes []any
	for i := 0; i < 4; i++ {
		_, m := f.jdy(pathList, nil)
		codes = append(codes, m["code"])
	}
	if !reflect.DeepEqual(codes, []any{8303.0, 8303.0, 4012.0, nil}) {
		t.Fatalf("codes %v", codes)
	}

	f.s.FailNext(EndpointCreate, 502, 1)
	st, raw, err := f.jdyRaw(t.Context(), pathCreate, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "data": row("sync_key", "x")})
	if err != nil || st != http.StatusBadGateway || !strings.Contains(string(raw), "<html>") {
		t.Fatalf("forced 502: %d %s %v", st, raw, err)
	}
	if len(f.s.Records()) != 0 {
		t.Fatal("a forced failure committed the write")
	}

	f.s.FailNext(EndpointGetToken, 429, 1)
	req, _ := http.NewRequest(http.MethodGet, f.base+"/cgi-bin/gettoken", nil)
	if st, _, err := f.do(req); err != nil || st != http.StatusTooManyRequests {
		t.Fatalf("forced 429: %d %v", st, err)
	}
	f.s.FailNext(EndpointGetToken, 40001, 1)
	if c := errcode(f.wecomGet("/cgi-bin/gettoken", url.Values{"corpid": {f.cred.CorpID}, "corpsecret": {f.cred.Secret}})); c != 40001 {
		t.Fatalf("forced 40001: %d", c)
	}
	f.token()
}

func TestRandomFaults(t *testing.T) {
	f := start(t, unlimited(Options{}))
	tok := f.token()
	q := url.Values{"access_token": {tok}}

	f.s.SetFaults(Faults{RateLimit: 1})
	if c := errcode(f.wecomGet("/cgi-bin/department/simplelist", q)); c != 45009 {
		t.Fatalf("WeCom rate-limit fault: %d", c)
	}
	st, m := f.jdy(pathList, nil)
	wantJDY(t, st, m, 8303)

	f.s.SetFaults(Faults{Busy: 1})
	if c := errcode(f.wecomGet("/cgi-bin/department/simplelist", q)); c != -1 {
		t.Fatalf("WeCom busy fault: %d", c)
	}
	seen := map[int]bool{}
	for i := 0; i < 40 && len(seen) < 2; i++ {
		st, raw, err := f.jdyRaw(t.Context(), pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID})
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case st == http.StatusTooManyRequests:
			seen[429] = true
		case st == http.StatusBadRequest && decodeMap(t, raw)["code"].(float64) == 9007:
			seen[9007] = true
		default:
			t.Fatalf("JDY busy fault: %d %s", st, raw)
		}
	}
	if !seen[429] || !seen[9007] {
		t.Fatalf("busy faults seen: %v", seen)
	}

	f.s.SetFaults(Faults{ServerError: 1, Endpoints: []string{EndpointDeptList}})
	req, _ := http.NewRequest(http.MethodGet, f.base+"/cgi-bin/department/simplelist?"+q.Encode(), nil)
	st, raw, err := f.do(req)
	if err != nil || st != http.StatusBadGateway || !strings.Contains(string(raw), "502 Bad Gateway") {
		t.Fatalf("server error fault: %d %s %v", st, raw, err)
	}
	// Endpoints filter: others are unaffected.
	if c := errcode(f.wecomGet("/cgi-bin/user/simplelist", url.Values{"access_token": {tok}, "department_id": {"1"}})); c != 0 {
		t.Fatalf("unfiltered endpoint: %d", c)
	}
}

// TestFaultsReplayFromSeed: the same seed and the same call sequence give
// the same outcomes.
func TestFaultsReplayFromSeed(t *testing.T) {
	run := func(seed int64) []int {
		f := start(t, unlimited(Options{Seed: seed}))
		f.s.SetFaults(Faults{RateLimit: 0.3, Busy: 0.2, Endpoints: []string{EndpointList}})
		var out []int
		for i := 0; i < 30; i++ {
			st, raw, err := f.jdyRaw(t.Context(), pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID})
			if err != nil {
				t.Fatal(err)
			}
			code := st
			if st == http.StatusBadRequest {
				code = int(decodeMap(t, raw)["code"].(float64))
			}
			out = append(out, code)
		}
		return out
	}
	a, b := run(42), run(42)
	if !reflect.DeepEqual(a, b) {
		t.Fatalf("same seed, different outcomes:\n%v\n%v", a, b)
	}
	mixed := map[int]bool{}
	for _, c := range a {
		mixed[c] = true
	}
	if !mixed[200] || !mixed[8303] {
		t.Fatalf("outcomes %v lack successes or rate limits", a)
	}
}

func TestLatencyHonoursContext(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetFaults(Faults{Latency: time.Hour, Endpoints: []string{EndpointList}})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := f.jdyRaw(ctx, pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID})
		done <- err
	}()
	// Wait until the request is in the server, then give up on it.
	for f.s.Calls(EndpointList) == 0 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("delayed call: %v", err)
		}
	case <-time.After(time.Minute): // hang guard only
		t.Fatal("latency did not honour the request context")
	}
	// Unaffected endpoints answer at once.
	st, m := f.jdy(pathWidgets, nil)
	wantOK(t, st, m)
	// Close must not wait for the sleeping handler either.
	f.s.Close()
}

func TestCallCountsIncludeRejected(t *testing.T) {
	f := start(t, unlimited(Options{}))
	tok := f.token()
	q := url.Values{"access_token": {tok}}
	f.wecomGet("/cgi-bin/gettoken", nil) // rejected: no corpid
	f.wecomGet("/cgi-bin/department/simplelist", q)
	f.wecomGet("/cgi-bin/user/simplelist", url.Values{"access_token": {tok}, "department_id": {"1"}})
	f.wecomPost(pathMonthData, q, map[string]any{})
	f.wecomPost("/cgi-bin/webhook/send", url.Values{"key": {"bad"}}, map[string]any{})
	for _, p := range []string{pathWidgets, pathList, pathGet, pathCreate, pathBatchCreate, pathUpdate, pathDelete, pathBatchDelete} {
		_, _, _ = f.jdyRaw(t.Context(), p, "wrong", map[string]any{})
	}
	_, _, _ = f.jdyRaw(t.Context(), "/api/v2/app/a/entry/b/data_create", "", map[string]any{})
	counts := f.s.CallCounts()
	for _, ep := range endpointNames() {
		want := 1
		if ep == EndpointGetToken {
			want = 2
		}
		if counts[ep] != want || f.s.Calls(ep) != want {
			t.Errorf("%s counted %d, want %d", ep, counts[ep], want)
		}
	}
	if len(counts) != len(endpointNames()) {
		t.Errorf("unexpected endpoints counted: %v", counts)
	}
}

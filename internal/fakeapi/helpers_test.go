package fakeapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"testing"
	"time"
)

// TestMain runs everything with the process zone set to UTC, so any use of
// the local zone where UTC+8 is meant would show up as a failure.
func TestMain(m *testing.M) {
	os.Setenv("TZ", "UTC")
	time.Local = time.UTC
	os.Exit(m.Run())
}

// unlimited switches every server-side bucket off, for tests that are not
// about rate limits.
func unlimited(o Options) Options {
	o.MonthDataPerMinute = -1
	o.ListPerMinute = -1
	o.JDY = JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: -1}
	return o
}

type fixture struct {
	t    *testing.T
	s    *Server
	base string
	hc   *http.Client
	cred Credentials
}

func start(t *testing.T, o Options) *fixture {
	t.Helper()
	s := New(o)
	base, err := s.Start()
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(s.Close)
	return &fixture{t: t, s: s, base: base, hc: &http.Client{Timeout: time.Minute}, cred: s.Credentials()}
}

func (f *fixture) do(req *http.Request) (int, []byte, error) {
	resp, err := f.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, b, err
}

func decodeMap(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("decode %q: %v", b, err)
	}
	return m
}

// wecomGet calls a WeCom GET endpoint; the answer must be HTTP 200.
func (f *fixture) wecomGet(path string, q url.Values) map[string]any {
	f.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, f.base+path+"?"+q.Encode(), nil)
	st, b, err := f.do(req)
	if err != nil {
		f.t.Fatalf("GET %s: %v", path, err)
	}
	if st != http.StatusOK {
		f.t.Fatalf("GET %s: HTTP %d %s", path, st, b)
	}
	return decodeMap(f.t, b)
}

func (f *fixture) wecomPost(path string, q url.Values, body any) map[string]any {
	f.t.Helper()
	st, b, err := f.wecomPostRaw(context.Background(), path, q, body)
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	if st != http.StatusOK {
		f.t.Fatalf("POST %s: HTTP %d %s", path, st, b)
	}
	return decodeMap(f.t, b)
}

func (f *fixture) wecomPostRaw(ctx context.Context, path string, q url.Values, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.base+path+"?"+q.Encode(), rd)
	req.Header.Set("Content-Type", "application/json")
	return f.do(req)
}

func (f *fixture) token() string {
	f.t.Helper()
	m := f.wecomGet("/cgi-bin/gettoken", url.Values{"corpid": {f.cred.CorpID}, "corpsecret": {f.cred.Secret}})
	tok, _ := m["access_token"].(string)
	if tok == "" {
		f.t.Fatalf("gettoken: %v", m)
	}
	return tok
}

func errcode(m map[string]any) int {
	n, _ := m["errcode"].(float64)
	return int(n)
}

// jdy posts to a v5 path with the right key and the form's ids merged into
// body (unless body already sets them).
func (f *fixture) jdy(path string, body map[string]any) (int, map[string]any) {
	f.t.Helper()
	b := map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID}
	for k, v := range body {
		b[k] = v
	}
	st, raw, err := f.jdyRaw(context.Background(), path, f.cred.APIKey, b)
	if err != nil {
		f.t.Fatalf("POST %s: %v", path, err)
	}
	return st, decodeMap(f.t, raw)
}

func (f *fixture) jdyRaw(ctx context.Context, path, key string, body any) (int, []byte, error) {
	var rd io.Reader
	switch b := body.(type) {
	case string:
		rd = bytes.NewReader([]byte(b))
	default:
		j, err := json.Marshal(b)
		if err != nil {
			f.t.Fatalf("marshal: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, f.base+path, rd)
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	return f.do(req)
}

// wantJDY asserts an HTTP 400 answer with code.
func wantJDY(t *testing.T, st int, m map[string]any, code int) {
	t.Helper()
	if st != http.StatusBadRequest || int(m["code"].(float64)) != code {
		t.Fatalf("want HTTP 400 code %d, got HTTP %d %v", code, st, m)
	}
	if _, ok := m["msg"].(string); !ok {
		t.Fatalf("error without msg: %v", m)
	}
}

func wantOK(t *testing.T, st int, m map[string]any) {
	t.Helper()
	if st != http.StatusOK {
		t.Fatalf("want HTTP 200, got %d %v", st, m)
	}
}

// row builds a write-shape record.
func row(kv ...any) map[string]any {
	m := map[string]any{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i].(string)] = map[string]any{"value": kv[i+1]}
	}
	return m
}

const (
	pathWidgets     = "/api/v5/app/entry/widget/list"
	pathList        = "/api/v5/app/entry/data/list"
	pathGet         = "/api/v5/app/entry/data/get"
	pathCreate      = "/api/v5/app/entry/data/create"
	pathBatchCreate = "/api/v5/app/entry/data/batch_create"
	pathUpdate      = "/api/v5/app/entry/data/update"
	pathDelete      = "/api/v5/app/entry/data/delete"
	pathBatchDelete = "/api/v5/app/entry/data/batch_delete"
	pathMonthData   = "/cgi-bin/checkin/getcheckin_monthdata"
)

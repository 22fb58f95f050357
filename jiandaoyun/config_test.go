package jiandaoyun

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/retry"
)

func TestNewChecksConfig(t *testing.T) {
	good := Config{BaseURL: "https://api.jiandaoyun.com", APIKey: "k", AppID: "a", EntryID: "e"}
	cases := []struct {
		name string
		edit func(*Config)
		want string // "" = accepted
	}{
		{"https", func(*Config) {}, ""},
		{"https with path", func(c *Config) { c.BaseURL = "https://proxy.example.com/jdy/" }, ""},
		{"http loopback v4", func(c *Config) { c.BaseURL = "http://127.0.0.1:8080" }, ""},
		{"http loopback v6", func(c *Config) { c.BaseURL = "http://[::1]:8080" }, ""},
		{"http localhost", func(c *Config) { c.BaseURL = "http://localhost:1" }, ""},
		{"http remote", func(c *Config) { c.BaseURL = "http://api.jiandaoyun.com" }, "must use https"},
		{"ftp", func(c *Config) { c.BaseURL = "ftp://api.jiandaoyun.com" }, "must use https"},
		{"no host", func(c *Config) { c.BaseURL = "https://" }, "no host"},
		{"empty", func(c *Config) { c.BaseURL = "" }, "base_url is empty"},
		{"user info", func(c *Config) { c.BaseURL = "https://u:p@api.jiandaoyun.com" }, "without user info"},
		{"no key", func(c *Config) { c.APIKey = "" }, "API key is empty"},
		{"no app", func(c *Config) { c.AppID = "" }, "app_id is empty"},
		{"no entry", func(c *Config) { c.EntryID = "" }, "entry_id is empty"},
		{"negative concurrency", func(c *Config) { c.Concurrency = -1 }, "negative"},
		{"negative rate", func(c *Config) { c.Rates.List = -1 }, "rate list is negative"},
		{"insecure TLS", func(c *Config) {
			c.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
		}, "verification must stay on"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg := good
			tc.edit(&cfg)
			_, err := New(cfg)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("New: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("New error = %v, want it to contain %q", err, tc.want)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{BaseURL: "https://api.jiandaoyun.com/", APIKey: "k", AppID: "a", EntryID: "e"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.batchCreate.url, "https://api.jiandaoyun.com/api/v5/app/entry/data/batch_create"; got != want {
		t.Errorf("url = %q, want %q", got, want)
	}
	if c.hc.Timeout != DefaultTimeout {
		t.Errorf("timeout = %v, want %v", c.hc.Timeout, DefaultTimeout)
	}
	if cap(c.sem) != DefaultConcurrency {
		t.Errorf("concurrency = %d", cap(c.sem))
	}
	if c.policy != retry.Default() {
		t.Errorf("policy = %+v", c.policy)
	}
	d := DefaultRates()
	for name, got := range map[string]float64{
		"create": float64(c.del.lim.Limit()), "batch": float64(c.batchCreate.lim.Limit()),
		"update": float64(c.update.lim.Limit()), "list": float64(c.dataList.lim.Limit()), "global": float64(c.global.Limit()),
	} {
		want := map[string]float64{"create": d.Create, "batch": d.BatchCreate, "update": d.Update, "list": d.List, "global": d.Global}[name]
		if got != want {
			t.Errorf("rate %s = %g, want %g", name, got, want)
		}
	}
	for _, l := range []interface{ Burst() int }{c.global, c.del.lim, c.batchCreate.lim, c.update.lim, c.dataList.lim} {
		if l.Burst() != 1 {
			t.Errorf("burst = %d, want 1", l.Burst())
		}
	}
	if c.dataGet.lim != c.dataList.lim || c.widgetList.lim != c.dataList.lim || c.batchDelete.lim != c.batchCreate.lim {
		t.Error("endpoints of one class must share a limiter")
	}
}

func TestClassifyCode(t *testing.T) {
	want := map[apierr.Class][]int{
		apierr.Retry:       {8303, 8304, 9004, 9007, 4012},
		apierr.Fatal:       {8301, 8302, 17018, 17052, 17053, 17054, 2004, 3000, 8017, 7212, 7221, 7103, 7206},
		apierr.Programming: {1, 4815, 17017, 17024, 17025},
		apierr.Record:      {4000, 3005, 17032, 1010, 4402, 123456},
		apierr.Missing:     {4001},
	}
	for class, codes := range want {
		for _, code := range codes {
			got, hint := classifyCode(code)
			if got != class {
				t.Errorf("code %d: class %v, want %v", code, got, class)
			}
			if hint == "" {
				t.Errorf("code %d: no hint", code)
			}
		}
	}
	if _, h := classifyCode(8301); !strings.Contains(h, "JDY_API_KEY") {
		t.Errorf("8301 hint %q does not name the key", h)
	}
	for _, code := range []int{7212, 7221, 7103, 7206} {
		if _, h := classifyCode(code); !strings.Contains(h, "plan limit") {
			t.Errorf("%d hint %q", code, h)
		}
	}
}

// testPolicy retries quickly.
func testPolicy() retry.Policy {
	return retry.Policy{Base: time.Millisecond, MaxAttempts: 4, Cap: 5 * time.Millisecond}
}

func fastRates() Rates {
	return Rates{Create: 1000, BatchCreate: 1000, Update: 1000, List: 1000, Global: 1000}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func newTestClient(t *testing.T, baseURL string, edit func(*Config)) *Client {
	t.Helper()
	cfg := Config{BaseURL: baseURL, APIKey: "test-key-123", AppID: "app", EntryID: "entry",
		Rates: fastRates(), Retry: testPolicy()}
	if edit != nil {
		edit(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// serveClient serves h for the test's lifetime and returns a newTestClient
// for it.
func serveClient(t *testing.T, h http.HandlerFunc) *Client {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return newTestClient(t, srv.URL, nil)
}

// A batch_create that could not even connect was never sent, so the client
// may retry it; the error is not Unknown.
func TestBatchCreateDialErrorIsRetried(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	c := newTestClient(t, "http://"+addr, nil)
	_, err = c.BatchCreate(testCtx(t), "tx", []json.RawMessage{json.RawMessage(`{}`)})
	if apierr.ClassOf(err) != apierr.Retry {
		t.Fatalf("class = %v (%v), want retry", apierr.ClassOf(err), err)
	}
	if s := c.Stats()["data/batch_create"]; s.Calls != 4 || s.Retries != 3 {
		t.Fatalf("stats = %+v, want 4 calls and 3 retries", s)
	}
}

func TestPreSendChecks(t *testing.T) {
	var hits atomic.Int32
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) { hits.Add(1) })
	ctx := testCtx(t)
	many := make([]json.RawMessage, 101)
	for i := range many {
		many[i] = json.RawMessage(`{}`)
	}
	ids := make([]string, 101)
	big := json.RawMessage(`{"f":{"value":"` + strings.Repeat("x", maxBody) + `"}}`)
	checks := []struct {
		name  string
		err   error
		class apierr.Class
	}{
		{"batch over 100", second(c.BatchCreate(ctx, "tx", many)), apierr.Programming},
		{"empty batch", second(c.BatchCreate(ctx, "tx", nil)), apierr.Programming},
		{"no transaction id", second(c.BatchCreate(ctx, "", many[:1])), apierr.Programming},
		{"invalid JSON record", second(c.BatchCreate(ctx, "tx", []json.RawMessage{json.RawMessage(`{`)})), apierr.Programming},
		{"body over 2 MB", second(c.BatchCreate(ctx, "tx", []json.RawMessage{big})), apierr.Record},
		{"batch delete over 100", second(c.BatchDelete(ctx, ids)), apierr.Programming},
		{"list limit", second(c.List(ctx, ListQuery{Limit: 101})), apierr.Programming},
		{"update without id", c.Update(ctx, "", json.RawMessage(`{}`)), apierr.Programming},
		{"update without data", c.Update(ctx, "x", nil), apierr.Programming},
		{"get without id", second(c.Get(ctx, "")), apierr.Programming},
		{"delete without id", c.Delete(ctx, ""), apierr.Programming},
		{"find without field", second(c.FindByKeys(ctx, "", []string{"a"}, nil)), apierr.Programming},
	}
	for _, ch := range checks {
		if got := apierr.ClassOf(ch.err); got != ch.class {
			t.Errorf("%s: class %v (%v), want %v", ch.name, got, ch.err, ch.class)
		}
	}
	if n, err := c.BatchDelete(ctx, nil); n != 0 || err != nil {
		t.Errorf("empty batch delete = %d, %v", n, err)
	}
	if hits.Load() != 0 {
		t.Fatalf("%d requests reached the server", hits.Load())
	}
}

func second[T any](_ T, err error) error { return err }

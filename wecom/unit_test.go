package wecom

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
	_ "time/tzdata" // the time-zone subprocess test needs America/Los_Angeles
	"unicode/utf8"

	"github.com/rs/zerolog"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
)

func TestRedactURL(t *testing.T) {
	cases := map[string]string{
		"https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=s3cr3t":        "https://qyapi.weixin.qq.com/cgi-bin/gettoken?corpid=ww1&corpsecret=REDACTED",
		"http://127.0.0.1:1/cgi-bin/checkin/getcheckin_monthdata?access_token=abc.def-123": "http://127.0.0.1:1/cgi-bin/checkin/getcheckin_monthdata?access_token=REDACTED",
		"https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=693a91f6-7xxx&debug=1":       "https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=REDACTED&debug=1",
		`Post "http://h/x?department_id=2&access_token=tok": dial tcp: connection refused`: `Post "http://h/x?department_id=2&access_token=REDACTED": dial tcp: connection refused`,
		"https://h/x?monkey=1&ACCESS_TOKEN=t":                                              "https://h/x?monkey=1&ACCESS_TOKEN=REDACTED",
		"nothing to hide":                                                                  "nothing to hide",
	}
	for in, want := range cases {
		if got := RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRedactErrRewritesURLError(t *testing.T) {
	inner := errors.New("connection refused")
	err := redactErr(&url.Error{Op: "Get", URL: "http://127.0.0.1:9/cgi-bin/user/simplelist?access_token=TOPSECRET", Err: inner})
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Fatalf("token survived: %v", err)
	}
	if !errors.Is(err, inner) {
		t.Errorf("cause lost: %v", err)
	}
}

func TestCheckURL(t *testing.T) {
	ok := []string{"https://qyapi.weixin.qq.com", "http://127.0.0.1:8080", "http://[::1]:1", "http://localhost:3000/x"}
	bad := []string{"http://qyapi.weixin.qq.com", "ftp://127.0.0.1", "https://", "::nope", "http://10.0.0.1/cgi-bin/webhook/send?key=SECRETKEY"}
	for _, s := range ok {
		if _, err := checkURL(s, "u"); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range bad {
		_, err := checkURL(s, "u")
		if err == nil {
			t.Errorf("%s: accepted", s)
		} else if strings.Contains(err.Error(), "SECRETKEY") {
			t.Errorf("error shows the key: %v", err)
		}
	}
}

func TestNewValidates(t *testing.T) {
	base := Config{BaseURL: "https://qyapi.weixin.qq.com", CorpID: "ww1", Secret: "s"}
	if _, err := New(base); err != nil {
		t.Fatal(err)
	}
	for name, mut := range map[string]func(*Config){
		"http remote": func(c *Config) { c.BaseURL = "http://qyapi.weixin.qq.com" },
		"no corp":     func(c *Config) { c.CorpID = "" },
		"no secret":   func(c *Config) { c.Secret = "" },
		"query":       func(c *Config) { c.BaseURL = "https://h/?x=1" },
		"neg rate":    func(c *Config) { c.RatePerMinute = -1 },
	} {
		cfg := base
		mut(&cfg)
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	c, _ := New(base)
	if c.hc.Timeout != DefaultTimeout {
		t.Errorf("timeout %v", c.hc.Timeout)
	}
	tr, ok := c.hc.Transport.(*http.Transport)
	if !ok || tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("default client: transport %T must verify TLS (1.2 or later)", c.hc.Transport)
	}
	if c.hc.CheckRedirect == nil {
		t.Error("default client follows redirects")
	}

	insecure := base
	insecure.HTTPClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, err := New(insecure); err == nil || !strings.Contains(err.Error(), "verification must stay on") {
		t.Errorf("insecure TLS: %v", err)
	}
	r := NewRobot("https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=k", insecure.HTTPClient, zerolog.Nop())
	if err := r.SendMarkdown(context.Background(), "x"); !apierr.IsFatal(err) || !strings.Contains(err.Error(), "verification must stay on") {
		t.Errorf("robot with insecure TLS: %v", err)
	}
}

func TestClassify(t *testing.T) {
	cases := []struct {
		ep    string
		code  int
		class apierr.Class
		hint  string
	}{
		{epMonthData, -1, apierr.Retry, ""},
		{epMonthData, 45033, apierr.Retry, ""},
		{epMonthData, 301022, apierr.Retry, ""},
		{epMonthData, 301070, apierr.Retry, ""},
		{epMonthData, 45009, apierr.Retry, "rate limit"},
		{epMonthData, 40014, apierr.TokenExpired, ""},
		{epMonthData, 42001, apierr.TokenExpired, ""},
		{epToken, 40001, apierr.Fatal, "WECOM_SECRET"},
		{epToken, 40013, apierr.Fatal, "corp id"},
		{epToken, 41004, apierr.Fatal, "secret"},
		{epMonthData, 48002, apierr.Fatal, "可调用接口的应用"},
		{epToken, 60020, apierr.Fatal, "企业可信IP"},
		{epUserList, 60011, apierr.Fatal, "visible range"},
		{epDeptList, 60011, apierr.Fatal, "visible range"},
		{epMonthData, 60011, apierr.BadUser, ""},
		{epMonthData, 301021, apierr.BadUser, ""},
		{epMonthData, 60111, apierr.BadUser, ""},
		{epMonthData, 41001, apierr.Programming, "bug"},
		{epMonthData, 301023, apierr.Programming, "bug"},
		{epMonthData, 301024, apierr.Programming, "bug"}, // see TestOneDayRangeRefused for start == end
		{epMonthData, 12345, apierr.Fatal, "unexpected WeCom error"},
	}
	for _, tc := range cases {
		e := classify(tc.ep, tc.code, "m", 7*time.Second)
		if e.Class != tc.class || !strings.Contains(e.Hint, tc.hint) || e.Service != "wecom" || e.Endpoint != tc.ep {
			t.Errorf("%s %d: got class %v hint %q", tc.ep, tc.code, e.Class, e.Hint)
		}
		if tc.code == 45009 && e.Wait != 7*time.Second {
			t.Errorf("45009 wait %v", e.Wait)
		}
	}
	for code, class := range map[int]apierr.Class{45009: apierr.Retry, 40058: apierr.Programming, 93000: apierr.Fatal, 93004: apierr.Fatal, 1: apierr.Fatal} {
		if got := classifyRobot(code, "", time.Second).Class; got != class {
			t.Errorf("robot %d: %v, want %v", code, got, class)
		}
	}
}

func TestTruncateUTF8(t *testing.T) {
	if got := TruncateUTF8("short", 4096); got != "short" {
		t.Errorf("short text changed: %q", got)
	}
	exact := strings.Repeat("a", 4096)
	if got := TruncateUTF8(exact, 4096); got != exact {
		t.Errorf("text at the limit was cut")
	}
	for _, unit := range []string{"a", "考", "😀", "é"} {
		s := strings.Repeat(unit, 5000)
		got := TruncateUTF8(s, 4096)
		if len(got) > 4096 || !utf8.ValidString(got) || !strings.HasSuffix(got, "…") {
			t.Errorf("%q×5000: len %d, valid %v, suffix %v", unit, len(got), utf8.ValidString(got), strings.HasSuffix(got, "…"))
		}
		if len(got) < 4096-len(unit)-len("…")+1 {
			t.Errorf("%q×5000: cut too much (%d bytes)", unit, len(got))
		}
	}
	bad := strings.Repeat("\xff", 3000) // each invalid byte becomes a 3-byte U+FFFD
	if got := TruncateUTF8(bad, 4096); len(got) > 4096 || !utf8.ValidString(got) {
		t.Errorf("invalid UTF-8: len %d valid %v", len(got), utf8.ValidString(got))
	}
	if got := TruncateUTF8("考勤同步", 2); got != "" {
		t.Errorf("tiny limit: %q", got)
	}
}

func TestMonthDataRejectsBadBatches(t *testing.T) {
	c, err := New(Config{BaseURL: "http://127.0.0.1:1", CorpID: "c", Secret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	d := month.Date{Year: 2025, Mon: 6, Day: 1}
	many := make([]string, 101)
	for i := range many {
		many[i] = fmt.Sprintf("u%03d", i)
	}
	for name, ids := range map[string][]string{
		"none": nil, "101": many, "empty id": {"a", ""}, "case duplicate": {"ZhangSan", "zhangsan"},
	} {
		_, err := c.MonthData(context.Background(), d, d.AddDays(29), ids)
		if apierr.ClassOf(err) != apierr.Programming {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := c.MonthData(context.Background(), d.AddDays(1), d, []string{"a"}); apierr.ClassOf(err) != apierr.Programming {
		t.Errorf("end before start: %v", err)
	}
	if n := c.Stats()[epMonthData].Calls; n != 0 {
		t.Errorf("%d requests sent for refused batches", n)
	}
}

// TestTimestampsIgnoreLocalZone runs the request builder in child
// processes with different TZ settings and checks that the body is the
// same, with 00:00 UTC+8 timestamps.
func TestTimestampsIgnoreLocalZone(t *testing.T) {
	if os.Getenv("WECOM_TS_CHILD") == "1" {
		t.Skip("child mode")
	}
	// June 2025: 1st and 30th at 00:00 CST, as in the API reference.
	want := `{"starttime":1748707200,"endtime":1751212800,"useridlist":["ZhangSan"]}`
	for _, tz := range []string{"UTC", "America/Los_Angeles", "Asia/Shanghai"} {
		cmd := exec.Command(os.Args[0], "-test.run=^TestTimestampChild$", "-test.v")
		cmd.Env = append(os.Environ(), "WECOM_TS_CHILD=1", "TZ="+tz)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("TZ=%s: %v\n%s", tz, err, out)
		}
		var body, zone string
		for _, line := range strings.Split(string(out), "\n") {
			if b, ok := strings.CutPrefix(line, "BODY "); ok {
				body = b
			}
			if z, ok := strings.CutPrefix(line, "ZONE "); ok {
				zone = z
			}
		}
		if body != want {
			t.Errorf("TZ=%s: body %s, want %s", tz, body, want)
		}
		if tz == "America/Los_Angeles" && zone == "0" {
			t.Errorf("child did not run in Los Angeles time (offset %s)", zone)
		}
	}
}

// TestTimestampChild is the child half of TestTimestampsIgnoreLocalZone.
// A tiny handler captures the request body, which the fake does not expose.
func TestTimestampChild(t *testing.T) {
	if os.Getenv("WECOM_TS_CHILD") != "1" {
		t.Skip("only run as a child of TestTimestampsIgnoreLocalZone")
	}
	bodies := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/gettoken") {
			fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","access_token":"t","expires_in":7200}`)
			return
		}
		b, _ := io.ReadAll(r.Body)
		bodies <- string(b)
		fmt.Fprint(w, `{"errcode":0,"errmsg":"ok","datas":[]}`)
	}))
	defer srv.Close()
	c, err := New(Config{BaseURL: srv.URL, CorpID: "c", Secret: "s", RatePerMinute: 6000, Retry: fastRetry()})
	if err != nil {
		t.Fatal(err)
	}
	start, end, ok := month.MustParse("2025-06").Span(month.Date{Year: 2025, Mon: 7, Day: 3})
	if !ok {
		t.Fatal("June 2025 has no complete day?")
	}
	res, err := c.MonthData(context.Background(), start, end, []string{"ZhangSan"})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Missing) != 1 {
		t.Errorf("missing %v", res.Missing)
	}
	_, off := time.Date(2025, 6, 1, 0, 0, 0, 0, time.Local).Zone()
	fmt.Printf("ZONE %d\n", off)
	fmt.Printf("BODY %s\n", strings.TrimSpace(<-bodies))
}

func fastRetry() retry.Policy {
	return retry.Policy{Base: time.Millisecond, MaxAttempts: 6, BlockWait: 5 * time.Millisecond, Cap: 5 * time.Millisecond}
}

// lockedBuffer is a log sink safe for the client's concurrent writers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func debugLogger(w io.Writer) zerolog.Logger { return zerolog.New(w).Level(zerolog.DebugLevel) }

// newLoopbackServer serves h on 127.0.0.1 for the test's lifetime.
func newLoopbackServer(t *testing.T, h http.Handler) string {
	t.Helper()
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

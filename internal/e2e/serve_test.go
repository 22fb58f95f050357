package e2e

import (
	"encoding/json"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// freeAddr returns a loopback address with a port that was free a moment
// ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

type healthBody struct {
	Status  string `json:"status"`
	Running bool   `json:"running"`
	LastRun *struct {
		ID       string `json:"id"`
		Outcome  string `json:"outcome"`
		ExitCode int    `json:"exit_code"`
	} `json:"last_run"`
	NextRun string `json:"next_run"`
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServe runs serve every second against the fakes: its pages, a fatal
// error with one failure alert and one recovery alert, and a clean stop on
// SIGTERM.
func TestServe(t *testing.T) {
	e := newEnv(t, envOptions{users: 10, alert: true})
	addr := freeAddr(t)
	base := "http://" + addr
	p := e.start("--today", "2026-03-15", "serve", "--every", "1s", "--listen", addr)

	// until polls /healthz until ok says so; the deadline is a hang guard.
	until := func(what string, ok func(code int, h healthBody) bool) healthBody {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			code, body := httpGet(t, base+"/healthz")
			var h healthBody
			if code != 0 {
				if err := json.Unmarshal([]byte(body), &h); err != nil {
					t.Fatalf("/healthz: %v: %s", err, body)
				}
				if ok(code, h) {
					return h
				}
			}
			select {
			case <-p.done:
				t.Fatalf("serve ended while waiting for %s\n%s", what, p.res)
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("no %s by the deadline; last /healthz: %d %s", what, code, body)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	first := until("first run", func(code int, h healthBody) bool { return code == 200 && h.LastRun != nil })
	if first.LastRun.Outcome != "success" || first.NextRun == "" || first.Status != "ok" {
		t.Fatalf("first run: %+v", first)
	}
	e.checkRecords(10)

	// status works between runs (and during one, from the live file).
	if r := e.run("status"); r.code != 0 {
		t.Errorf("status while serve runs: %s", r)
	}

	code, body := httpGet(t, base+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics: %d %s", code, body)
	}
	p2 := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p2.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	for _, name := range []string{"checkin_sync_runs_total", "checkin_sync_records_total", "checkin_sync_api_calls_total",
		"checkin_sync_api_retries_total", "checkin_sync_last_success_timestamp_seconds", "checkin_sync_run_duration_seconds",
		"checkin_sync_watermark_lag_days", "checkin_sync_pending_batches", "checkin_sync_deferred_batches"} {
		if _, ok := fams[name]; !ok {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if !strings.Contains(body, `checkin_sync_records_total{outcome="created"} 10`) {
		t.Errorf("/metrics does not count the 10 created records:\n%s", grepLines(body, "records_total"))
	}
	if !strings.Contains(body, `checkin_sync_api_calls_total{endpoint="getcheckin_monthdata",service="wecom"}`) {
		t.Errorf("/metrics lacks the month-data calls:\n%s", grepLines(body, "api_calls"))
	}

	code, page := httpGet(t, base+"/")
	if code != 200 || !strings.Contains(page, "<svg") || !strings.Contains(page, "2026-03") || !strings.Contains(page, "success") {
		t.Fatalf("/: %d\n%s", code, page)
	}
	for _, u := range e.company.Users() {
		if strings.Contains(page, u.UserID) || strings.Contains(body, u.UserID) {
			t.Fatalf("a page shows the userid %s", u.UserID)
		}
	}

	// A fatal error in the next two runs: 503 and one failure alert, then
	// recovery and one recovery alert.
	if msgs := e.srv.WebhookMessages(); len(msgs) != 0 {
		t.Fatalf("alerts before any failure: %q", msgs)
	}
	e.srv.FailNext("gettoken", 40001, 2)
	failed := until("a fatal run", func(code int, h healthBody) bool { return code == 503 })
	if failed.Status != "failing" || failed.LastRun == nil || failed.LastRun.ExitCode != 4 {
		t.Errorf("failing /healthz: %+v", failed)
	}
	recovered := until("recovery", func(code int, h healthBody) bool {
		return code == 200 && h.LastRun != nil && h.LastRun.Outcome == "success"
	})
	until("one more run", func(code int, h healthBody) bool {
		return h.LastRun != nil && h.LastRun.ID != recovered.LastRun.ID
	})
	msgs := e.srv.WebhookMessages()
	if len(msgs) != 2 || !strings.Contains(msgs[0], "failed") || !strings.Contains(msgs[0], "40001") || !strings.Contains(msgs[1], "recovered") {
		t.Errorf("want one failure alert, then one recovery alert; got %q", msgs)
	}
	_, body = httpGet(t, base+"/metrics")
	if !strings.Contains(body, `checkin_sync_run_errors_total{code="40001"}`) || strings.Contains(body, `checkin_sync_runs_total{outcome="failed"} 0`) {
		t.Errorf("/metrics does not count the failed runs:\n%s", grepLines(body, "runs_total", "run_errors"))
	}

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	if r := p.wait(); r.code != 0 {
		t.Fatalf("serve after SIGTERM: %s", r)
	}
	e.checkRecords(10)
}

// checkRecords checks that the form holds n records and no duplicate key.
func (e *env) checkRecords(n int) {
	e.t.Helper()
	if got := len(e.srv.Records()); got != n {
		e.t.Errorf("the form holds %d records, want %d", got, n)
	}
	if d := e.srv.Duplicates("sync_key"); len(d) != 0 {
		e.t.Errorf("duplicate keys: %v", d)
	}
}

func grepLines(s string, subs ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, sub := range subs {
			if strings.Contains(l, sub) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}

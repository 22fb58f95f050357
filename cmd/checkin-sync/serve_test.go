package main

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/rs/zerolog"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/store"
	"checkin-sync/sync"
)

// testServer is a server whose runs are scripted: each run returns the
// next of results.
func testServer(t *testing.T) (*server, *config.Config) {
	t.Helper()
	cfg := &config.Config{Store: filepath.Join(t.TempDir(), "state.db"), Location: time.UTC}
	cfg.Sync.Months, cfg.Sync.SettleDays = 2, 5
	s := newServer(cfg, zerolog.Nop(), time.Hour)
	s.today = func() month.Date { return month.Date{Year: 2026, Mon: time.March, Day: 15} }
	return s, cfg
}

type scripted struct {
	sum  *sync.Summary
	code int
	err  error
}

func (s *server) script(results ...scripted) {
	s.runOnce = func(_, _ context.Context, done func(*sync.Summary, int)) (int, error) {
		r := results[0]
		if len(results) > 1 {
			results = results[1:]
		}
		if r.sum != nil {
			done(r.sum, r.code)
		}
		return r.code, r.err
	}
}

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	b, _ := io.ReadAll(rec.Result().Body)
	return rec.Code, string(b)
}

func okSummary(id string, created, unchanged int) *sync.Summary {
	return &sync.Summary{RunID: id, Months: []*sync.MonthSummary{{Month: "2026-03", Created: created, Unchanged: unchanged, Watermark: "2026-03-14", Complete: true}},
		Calls: map[string]retry.EndpointStats{"wecom getcheckin_monthdata": {Calls: 3, Retries: 1}, "jiandaoyun data/batch_create": {Calls: 2}}}
}

func TestServeHealthz(t *testing.T) {
	s, _ := testServer(t)
	fatal := &sync.Summary{RunID: "r2", Err: &apierr.Error{Service: "jiandaoyun", Code: 8301, Class: apierr.Fatal}}
	s.script(scripted{sum: okSummary("r1", 5, 0)}, scripted{sum: fatal, code: exitFatal}, scripted{sum: okSummary("r3", 0, 5)})
	h := s.handler()

	code, body := get(t, h, "/healthz")
	if code != http.StatusOK || !strings.Contains(body, `"last_run":null`) {
		t.Fatalf("before any run: %d %s", code, body)
	}
	s.setNext(time.Date(2026, 3, 15, 3, 0, 0, 0, time.UTC))
	want := []struct {
		code    int
		outcome string
	}{{200, "success"}, {503, "failed"}, {200, "success"}}
	for i, w := range want {
		s.runNow(context.Background())
		code, body = get(t, h, "/healthz")
		var hb health
		if err := json.Unmarshal([]byte(body), &hb); err != nil {
			t.Fatalf("run %d: %v: %s", i, err, body)
		}
		if code != w.code || hb.LastRun == nil || hb.LastRun.Outcome != w.outcome || hb.NextRun != "2026-03-15T03:00:00Z" {
			t.Errorf("after run %d: want %d %s, got %d %s", i+1, w.code, w.outcome, code, body)
		}
	}
}

func TestServeMetricsParse(t *testing.T) {
	s, _ := testServer(t)
	partial := okSummary("r2", 1, 2)
	partial.Months[0].Failed = 1
	partial.Failures = []sync.Failure{{Key: "alice|2026-03", Month: "2026-03", Error: "bad value"}}
	s.script(scripted{sum: okSummary("r1", 5, 0)}, scripted{sum: partial, code: exitPartial},
		scripted{err: storeError(&store.LockedError{Path: "state.db", Info: &store.LockInfo{PID: 1}}), code: 0})
	for range 3 {
		s.runNow(context.Background())
	}
	code, body := get(t, s.handler(), "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics: %d", code)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, body)
	}
	value := func(name string, labels ...string) float64 {
		t.Helper()
		f, ok := fams[name]
		if !ok {
			t.Fatalf("no %s in\n%s", name, body)
		}
	metrics:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, l := range m.GetLabel() {
				got[l.GetName()] = l.GetValue()
			}
			for i := 0; i+1 < len(labels); i += 2 {
				if got[labels[i]] != labels[i+1] {
					continue metrics
				}
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue()
			case m.Gauge != nil:
				return m.Gauge.GetValue()
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount())
			}
		}
		t.Fatalf("no %s%v in\n%s", name, labels, body)
		return 0
	}
	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"checkin_sync_runs_total", []string{"outcome", "success"}, 1},
		{"checkin_sync_runs_total", []string{"outcome", "partial"}, 1},
		{"checkin_sync_runs_total", []string{"outcome", "failed"}, 0},
		{"checkin_sync_ticks_skipped_total", []string{"reason", "store_held"}, 1},
		{"checkin_sync_records_total", []string{"outcome", "created"}, 6},
		{"checkin_sync_records_total", []string{"outcome", "unchanged"}, 2},
		{"checkin_sync_records_total", []string{"outcome", "failed"}, 1},
		{"checkin_sync_records_total", []string{"outcome", "updated"}, 0},
		{"checkin_sync_records_total", []string{"outcome", "skipped"}, 0},
		{"checkin_sync_api_calls_total", []string{"service", "wecom", "endpoint", "getcheckin_monthdata"}, 6},
		{"checkin_sync_api_retries_total", []string{"service", "wecom", "endpoint", "getcheckin_monthdata"}, 2},
		{"checkin_sync_api_calls_total", []string{"service", "jiandaoyun", "endpoint", "data/batch_create"}, 4},
		{"checkin_sync_run_duration_seconds", nil, 2},
		{"checkin_sync_last_run_exit_code", nil, 1},
		// The store is empty: the window's month (February is settled
		// by March 15) lags by all its complete days.
		{"checkin_sync_watermark_lag_days", []string{"month", "2026-03"}, 14},
		{"checkin_sync_pending_batches", []string{"month", "2026-03"}, 0},
		{"checkin_sync_deferred_batches", []string{"month", "2026-03"}, 0},
	}
	for _, c := range checks {
		if got := value(c.name, c.labels...); got != c.want {
			t.Errorf("%s%v = %g, want %g", c.name, c.labels, got, c.want)
		}
	}
	if value("checkin_sync_last_success_timestamp_seconds") < float64(time.Now().Add(-time.Minute).Unix()) {
		t.Error("last success time not set")
	}
	if strings.Contains(body, "alice") {
		t.Error("/metrics names a user")
	}
}

func TestServePage(t *testing.T) {
	s, cfg := testServer(t)
	st, err := store.Open(cfg.Store, store.Options{Command: "sync"})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 3, 15, 1, 0, 0, 0, time.UTC)
	for i, r := range []store.Run{
		{Created: 120, Unchanged: 0},
		{Created: 0, Updated: 7, Unchanged: 113},
		{Created: 0, Failed: 2, Unchanged: 118, ExitCode: 1, Outcome: "partial", Error: "alice|2026-03: bad value"},
	} {
		r.ID = "run-" + string(rune('a'+i))
		r.Command = "sync"
		r.Start, r.End = t0.Add(time.Duration(i)*time.Hour), t0.Add(time.Duration(i)*time.Hour+3*time.Second)
		r.Months = []string{"2026-02", "2026-03"}
		if r.Outcome == "" {
			r.Outcome = "success"
		}
		if err := st.PutRun(r); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	code, body := get(t, s.handler(), "/")
	if code != http.StatusOK {
		t.Fatalf("/: %d\n%s", code, body)
	}
	for _, want := range []string{`name="viewport"`, "<svg", `class="created"`, `class="updated"`, `class="unchanged"`,
		"2026-03", "2026-02", "partial", "Last runs", "Records per run"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page lacks %q", want)
		}
	}
	if n := strings.Count(body, "<g><title>"); n != 3 {
		t.Errorf("want 3 bars in the chart, got %d", n)
	}
	if strings.Contains(body, "alice") {
		t.Error("the page names a user")
	}
	if strings.Contains(body, "<script") {
		t.Error("the page has a script")
	}
	if code, _ := get(t, s.handler(), "/nothing"); code != http.StatusNotFound {
		t.Errorf("/nothing: %d", code)
	}
}

func TestServeSkipsTickWhileRunning(t *testing.T) {
	s, _ := testServer(t)
	entered, release := make(chan struct{}), make(chan struct{})
	calls := 0
	s.runOnce = func(_, _ context.Context, done func(*sync.Summary, int)) (int, error) {
		calls++
		close(entered)
		<-release
		done(okSummary("r1", 1, 0), 0)
		return 0, nil
	}
	ctx := context.Background()
	s.tick(ctx)
	<-entered
	s.tick(ctx) // during the run: skipped
	if h, _ := s.health(); !h.Running {
		t.Error("healthz does not say a run is going")
	}
	close(release)
	s.wg.Wait()
	if calls != 1 {
		t.Errorf("runs: %d", calls)
	}
	_, body := get(t, s.handler(), "/metrics")
	if !strings.Contains(body, `checkin_sync_ticks_skipped_total{reason="running"} 1`) {
		t.Errorf("skipped tick not counted:\n%s", body)
	}
}

func TestServeStopsAfterTheRun(t *testing.T) {
	s, _ := testServer(t)
	s.every = 10 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	var stopSeen bool
	s.runOnce = func(_, stop context.Context, done func(*sync.Summary, int)) (int, error) {
		cancel() // a signal arrives during the run
		<-stop.Done()
		stopSeen = true
		sum := okSummary("r1", 0, 0)
		sum.Interrupted = true
		done(sum, exitInterrupted)
		return exitInterrupted, errors.New("interrupted")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.serve(ctx, ln); err != nil {
		t.Fatalf("serve: %v", err)
	}
	if !stopSeen {
		t.Error("the run did not see the stop")
	}
	if h, code := s.health(); code != http.StatusOK || h.LastRun == nil || h.LastRun.Outcome != sync.OutcomeInterrupted {
		t.Errorf("after the stop: %d %+v", code, h.LastRun)
	}
}

func TestLagDays(t *testing.T) {
	today := month.Date{Year: 2026, Mon: time.March, Day: 15}
	w := func(s string) *string { return &s }
	for _, c := range []struct {
		m    string
		wm   *string
		want int
	}{
		{"2026-03", w("2026-03-14"), 0},
		{"2026-03", w("2026-03-10"), 4},
		{"2026-03", nil, 14},
		{"2026-02", w("2026-02-28"), 0},
		{"2026-02", w("2026-02-20"), 8},
		{"2026-04", nil, 0},
	} {
		if got := lagDays(month.MustParse(c.m), c.wm, today); got != c.want {
			t.Errorf("lagDays(%s, %v) = %d, want %d", c.m, orDash(c.wm), got, c.want)
		}
	}
}

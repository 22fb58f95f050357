package main

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/sync"
)

// serveMetrics are serve's Prometheus series, on a registry of their own
// (not the global default one).
type serveMetrics struct {
	reg *prometheus.Registry

	runs         *prometheus.CounterVec // outcome
	ticksSkipped *prometheus.CounterVec // reason: running, store_held
	records      *prometheus.CounterVec // outcome
	apiCalls     *prometheus.CounterVec // service, endpoint
	apiRetries   *prometheus.CounterVec // service, endpoint
	runErrors    *prometheus.CounterVec // code of the error that stopped a run
	lastSuccess  prometheus.Gauge       // unix seconds
	lastExit     prometheus.Gauge       // exit code of the last run
	duration     prometheus.Histogram   // seconds
	lag          *prometheus.GaugeVec   // month
	pending      *prometheus.GaugeVec   // month
	deferred     *prometheus.GaugeVec   // month
	recordKinds  []string               // the record outcomes, in order
}

const metricPrefix = "checkin_sync_"

func newServeMetrics() *serveMetrics {
	m := &serveMetrics{reg: prometheus.NewRegistry()}
	m.runs = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "runs_total",
		Help: "Sync runs finished, by outcome (success, partial, failed, interrupted)."}, []string{"outcome"})
	m.ticksSkipped = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "ticks_skipped_total",
		Help: "Ticks that started no run: running (the previous run was still going) or store_held (another process held the store)."}, []string{"reason"})
	m.records = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "records_total",
		Help: "Records processed by the runs, by outcome (created, updated, unchanged, failed, skipped)."}, []string{"outcome"})
	m.apiCalls = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "api_calls_total",
		Help: "API requests sent, by service and endpoint."}, []string{"service", "endpoint"})
	m.apiRetries = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "api_retries_total",
		Help: "API requests retried, by service and endpoint."}, []string{"service", "endpoint"})
	m.runErrors = prometheus.NewCounterVec(prometheus.CounterOpts{Name: metricPrefix + "run_errors_total",
		Help: "Runs stopped by an error, by the API error code (0 when the error was not an API error)."}, []string{"code"})
	m.lastSuccess = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "last_success_timestamp_seconds",
		Help: "Unix time at which the last successful run finished; 0 before the first one."})
	m.lastExit = prometheus.NewGauge(prometheus.GaugeOpts{Name: metricPrefix + "last_run_exit_code",
		Help: "Exit code of the last run (0 success, 1 partial, 4 fatal, 130 interrupted)."})
	m.duration = prometheus.NewHistogram(prometheus.HistogramOpts{Name: metricPrefix + "run_duration_seconds",
		Help:    "Wall time of the runs.",
		Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600}})
	m.lag = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "watermark_lag_days",
		Help: "Days between a window month's watermark and its last complete day (0: synced up to yesterday, or to the month's end)."}, []string{"month"})
	m.pending = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "pending_batches",
		Help: "Create batches whose outcome is still open, by month; the next run looks them up by key."}, []string{"month"})
	m.deferred = prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: metricPrefix + "deferred_batches",
		Help: "Pending batches still inside the consistency delay, by month."}, []string{"month"})
	m.recordKinds = []string{"created", "updated", "unchanged", "failed", "skipped"}
	for _, k := range m.recordKinds {
		m.records.WithLabelValues(k) // present at 0 from the start
	}
	for _, o := range []string{sync.OutcomeSuccess, sync.OutcomePartial, sync.OutcomeFailed, sync.OutcomeInterrupted} {
		m.runs.WithLabelValues(o)
	}
	for _, r := range []string{"running", "store_held"} {
		m.ticksSkipped.WithLabelValues(r)
	}
	m.reg.MustRegister(m.runs, m.ticksSkipped, m.records, m.apiCalls, m.apiRetries, m.runErrors,
		m.lastSuccess, m.lastExit, m.duration, m.lag, m.pending, m.deferred,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *serveMetrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// observeRun counts one finished run. sum is nil for a run that did not
// start.
func (m *serveMetrics) observeRun(sum *sync.Summary, info *runInfo, d time.Duration) {
	m.runs.WithLabelValues(info.Outcome).Inc()
	m.duration.Observe(d.Seconds())
	m.lastExit.Set(float64(info.ExitCode))
	if info.ExitCode == exitOK {
		m.lastSuccess.Set(float64(info.Finished.Unix()))
	}
	if sum == nil {
		return
	}
	t := sum.Totals()
	for k, n := range map[string]int{"created": t.Created, "updated": t.Updated, "unchanged": t.Unchanged, "failed": t.Failed, "skipped": t.Skipped} {
		m.records.WithLabelValues(k).Add(float64(n))
	}
	for key, st := range sum.Calls {
		service, endpoint := splitEndpoint(key)
		m.apiCalls.WithLabelValues(service, endpoint).Add(float64(st.Calls))
		m.apiRetries.WithLabelValues(service, endpoint).Add(float64(st.Retries))
	}
	if sum.Err != nil {
		m.runErrors.WithLabelValues(strconv.Itoa(apierr.CodeOf(sum.Err))).Inc()
	}
}

// splitEndpoint splits "wecom getcheckin_monthdata" into its service and
// endpoint.
func splitEndpoint(key string) (service, endpoint string) {
	if s, e, ok := strings.Cut(key, " "); ok {
		return s, e
	}
	return "", key
}

// observeStatus sets the per-month gauges from a status.
func (m *serveMetrics) observeStatus(st sync.Status, today month.Date) {
	m.lag.Reset()
	m.pending.Reset()
	m.deferred.Reset()
	rows := map[string]sync.StatusRow{}
	for _, r := range st.Months {
		rows[r.Month] = r
		if r.PendingBatches > 0 {
			m.pending.WithLabelValues(r.Month).Set(float64(r.PendingBatches))
			m.deferred.WithLabelValues(r.Month).Set(float64(r.Deferred))
		}
	}
	for _, ms := range st.NextSync {
		mo, err := month.Parse(ms)
		if err != nil {
			continue
		}
		r := rows[ms]
		m.lag.WithLabelValues(ms).Set(float64(lagDays(mo, r.Watermark, today)))
		if r.PendingBatches == 0 {
			m.pending.WithLabelValues(ms).Set(0)
			m.deferred.WithLabelValues(ms).Set(0)
		}
	}
}

// lagDays is how many complete days of m lie after its watermark: 0 when
// synced up to the last complete day, the whole span without a watermark.
func lagDays(m month.Month, watermark *string, today month.Date) int {
	_, end, ok := m.Span(today)
	if !ok {
		return 0
	}
	from := month.Date{Year: m.Year, Mon: m.Mon, Day: 1}.AddDays(-1)
	if watermark != nil {
		if w, err := month.ParseDate(*watermark); err == nil {
			from = w
		}
	}
	days := int(end.CST().Sub(from.CST()).Hours()/24 + 0.5)
	if days < 0 {
		return 0
	}
	return days
}

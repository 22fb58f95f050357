package main

import (
	"bufio"
	"context"
	"debug/buildinfo"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"text/tabwriter"
	"time"

	"go.etcd.io/bbolt"

	"checkin-sync/internal/config"
	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
)

// bench is one benchmark run: its settings, its work directory and the
// figures measured so far.
type bench struct {
	tool  string
	scale float64
	seed  int64
	burst int // the fakes' token-bucket burst
	// toolLogLevel is the tool's --log-level; debug logs every request
	// with its duration, in the run's log in the work directory.
	toolLogLevel string
	sizes        sizes
	profileDir   string
	dir          string
	progressW    io.Writer
	start        time.Time

	today    month.Date
	spec     mapping.Spec // the template's mapping
	keyField string

	rows     []row
	infos    []string
	setupErr error

	// fetchBound is the fetch-bound load, "ours" for the published approach.
	fetchBound struct {
		wall  time.Duration
		users int
	}
}

func newBench(tool string, scale float64, seed int64, s sizes, profileDir string, progress io.Writer) (*bench, error) {
	toolAbs, err := absPath(tool)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(toolAbs); err != nil || fi.IsDir() {
		return nil, fmt.Errorf("no tool binary at %s; build it with `make build`", tool)
	}
	profileAbs, err := absPath(profileDir)
	if err != nil {
		return nil, err
	}
	if profileAbs != "" {
		if err := os.MkdirAll(profileAbs, 0o755); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp("", "checkin-sync-bench-")
	if err != nil {
		return nil, err
	}
	b := &bench{tool: toolAbs, scale: scale, seed: seed, sizes: s, profileDir: profileAbs, dir: dir,
		progressW: progress, start: time.Now(), today: month.TodayCST(time.Now())}
	// The mapping of every run is the template's; read it once, as the tool will.
	cfg, _, _, err := b.writeConfig("template", "http://127.0.0.1:1", fakeapi.New(fakeapi.Options{}).Credentials(),
		b.scaled(), 1, filepath.Join(dir, "template.db"))
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, err
	}
	b.spec, b.keyField = cfg.Mapping, cfg.Mapping.Key
	return b, nil
}

// scaled is every documented limit times the scale.
func (b *bench) scaled() rates { return documentedRates().times(b.scale) }

// concurrency is the tool's jiandaoyun.concurrency under scaled limits.
// Requests in flight = rate × latency (Little's law), so the concurrency
// the documented limits need (the template's 4) grows with the rates.
func (b *bench) concurrency() int { return max(1, int(math.Round(templateConcurrency*b.scale))) }

// templateConcurrency is the jiandaoyun.concurrency of the configuration
// template, for the documented limits.
const templateConcurrency = 4

// setupConcurrency is the tool's concurrency for unmeasured setup loads.
const setupConcurrency = 16

// lastMonths are the n complete months before the current one (in CST,
// as WeCom counts), oldest first: their reports no longer change.
func (b *bench) lastMonths(n int) []month.Month {
	out := make([]month.Month, n)
	m := b.today.Month()
	for i := n - 1; i >= 0; i-- {
		m = m.Prev()
		out[i] = m
	}
	return out
}

func (b *bench) progress(format string, args ...any) {
	fmt.Fprintf(b.progressW, "[%6.1fs] %s\n", time.Since(b.start).Seconds(), fmt.Sprintf(format, args...))
}

// writeConfig writes the tool's configuration for one run and checks that
// it loads.
func (b *bench) writeConfig(label, base string, creds fakeapi.Credentials, r rates, concurrency int, storePath string) (*config.Config, string, map[string]string, error) {
	text, err := toolYAML(config.Template(), toolSettings{BaseURL: base, Creds: creds, Store: storePath, Rates: r, Concurrency: concurrency})
	if err != nil {
		return nil, "", nil, err
	}
	path := filepath.Join(b.dir, label+".yaml")
	if err := os.WriteFile(path, text, 0o600); err != nil {
		return nil, "", nil, err
	}
	env := toolEnv(creds)
	cfg, err := loadToolConfig(path, env)
	if err != nil {
		return nil, "", nil, fmt.Errorf("the generated configuration does not load: %w", err)
	}
	return cfg, path, env, nil
}

// runFailure is a measured run that failed: the tool exited non-zero, or
// left the form other than it should be. It fails the scenario, not the
// benchmark.
type runFailure struct{ msg string }

func (e *runFailure) Error() string { return e.msg }

func failuref(format string, args ...any) error {
	return &runFailure{msg: fmt.Sprintf(format, args...)}
}

// row is one line of the report.
type row struct {
	Figure, Value, Target, Result, Detail string
}

// target is a bound a figure must keep.
type target struct {
	op    string // "<=", ">=", "<", "="
	limit float64
}

func (t target) ok(v float64) bool {
	switch t.op {
	case "<=":
		return v <= t.limit
	case ">=":
		return v >= t.limit
	case "<":
		return v < t.limit
	case "=":
		return v == t.limit
	}
	return false
}

func (t target) format(unit string) string {
	sym := map[string]string{"<=": "≤", ">=": "≥", "<": "<", "=": "="}[t.op]
	return sym + " " + num(t.limit) + unit
}

// check adds a figure with its target.
func (b *bench) check(figure string, value float64, unit string, prec int, t target, detail string) {
	res := "PASS"
	if !t.ok(value) {
		res = "FAIL"
	}
	b.rows = append(b.rows, row{Figure: figure, Value: fmt.Sprintf("%.*f%s", prec, value, unit), Target: t.format(unit), Result: res, Detail: detail})
}

// info adds a figure without a target.
func (b *bench) info(figure, value, detail string) {
	b.rows = append(b.rows, row{Figure: figure, Value: value, Target: "-", Result: "info", Detail: detail})
}

func (b *bench) failed(figure, detail string) {
	b.rows = append(b.rows, row{Figure: figure, Value: "-", Target: "-", Result: "FAIL", Detail: detail})
}

func (b *bench) note(format string, args ...any) {
	b.infos = append(b.infos, fmt.Sprintf(format, args...))
}

// run runs the scenarios in order. A failed run fails its scenario and
// the others still run; a setup error stops everything.
func (b *bench) run(ctx context.Context, names []string) int {
	code := exitPass
	for _, name := range names {
		sc := scenarioByName(name)
		b.progress("%s: %s", name, sc.about)
		err := sc.run(b, ctx)
		var rf *runFailure
		switch {
		case err == nil:
		case errors.As(err, &rf):
			b.failed(name, "run failed: "+rf.msg)
			b.progress("%s: FAILED: %s", name, rf.msg)
		default:
			b.setupErr = fmt.Errorf("%s: %w", name, err)
			b.progress("%s: setup error: %v", name, err)
			return exitSetup
		}
	}
	for _, r := range b.rows {
		if r.Result == "FAIL" {
			code = exitFail
		}
	}
	return code
}

func (b *bench) printReport(w io.Writer) {
	fmt.Fprintf(w, "checkin-sync benchmark: %s\n", b.tool)
	fmt.Fprintf(w, "machine: %s\n", machine(b.tool))
	fmt.Fprintf(w, "scale: %s (every documented limit × %s: %s)\n", num(b.scale), num(b.scale), b.scaled())
	fmt.Fprintf(w, "tool: configured with the same limits; jiandaoyun.concurrency %d = 4 × scale, since requests in flight = rate × latency, so the concurrency grows with the rates\n", b.concurrency())
	fmt.Fprintf(w, "fakes: a separate process; token-bucket burst %d (their default of %d × scale, so that a bucket forgives the same jitter in time as unscaled); latency only where stated; the month reports a scenario times encoded before it starts, since a real WeCom builds them on its own machines\n", b.burst, fakesBurst)
	fmt.Fprintf(w, "months: the last complete ones before %s (CST); 1 month = %s, 2 months = %s\n\n",
		b.today.Month(), b.lastMonths(1)[0], b.lastMonths(2))
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "FIGURE\tVALUE\tTARGET\tRESULT\tDETAIL")
	for _, r := range b.rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Figure, r.Value, r.Target, r.Result, r.Detail)
	}
	_ = tw.Flush()
	if len(b.infos) > 0 {
		fmt.Fprintln(w, "\nCalls per run (as the fakes counted them):")
		for _, s := range b.infos {
			fmt.Fprintln(w, "  "+s)
		}
	}
}

// machine describes the CPU, the cores and the Go versions.
func machine(tool string) string {
	model, procs := "unknown CPU", 0
	if f, err := os.Open("/proc/cpuinfo"); err == nil {
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), ":")
			switch k = strings.TrimSpace(k); {
			case !ok:
			case k == "processor":
				procs++
			case k == "model name" && procs <= 1:
				model = strings.TrimSpace(v)
			}
		}
		f.Close()
	}
	toolGo := "unknown"
	if bi, err := buildinfo.ReadFile(tool); err == nil {
		toolGo = bi.GoVersion
	}
	return fmt.Sprintf("%s, %d processors in /proc/cpuinfo, runtime.NumCPU %d, %s/%s; bench built with %s, tool with %s",
		model, procs, runtime.NumCPU(), runtime.GOOS, runtime.GOARCH, runtime.Version(), toolGo)
}

// freshTxID is the last transaction id of a bbolt file that was just
// created: its two meta pages hold ids 0 and 1.
const freshTxID = 1

// lastTxID reads the id of the store's last committed write transaction,
// freshTxID for a missing file. The tool must not be running.
func lastTxID(path string) (int, error) {
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return freshTxID, nil
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 5 * time.Second})
	if err != nil {
		return 0, fmt.Errorf("open the store to read its transaction id: %w", err)
	}
	defer db.Close()
	var id int
	err = db.View(func(tx *bbolt.Tx) error { id = tx.ID(); return nil })
	return id, err
}

// fakesBurst is the fakes' default token-bucket burst (fakeapi.Options.Burst).
const fakesBurst = 3

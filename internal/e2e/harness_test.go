// Package e2e runs the real checkin-sync binary against the fake WeCom and
// fake Jiandaoyun, and checks the guarantees a user relies on: the numbers
// are right, nothing is duplicated, and a crash or a fault loses nothing.
package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/config"
	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
)

// binary is the checkin-sync binary built once for all tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "checkin-sync-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "checkin-sync")
	args := []string{"build", "-o", binary}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../../cmd/checkin-sync")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build checkin-sync:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// env is one fake company, its fake servers and a configuration for them.
type env struct {
	t       *testing.T
	company *fakeapi.Company
	srv     *fakeapi.Server
	base    string
	dir     string
	config  string
	vars    []string
}

type envOptions struct {
	users    int
	seed     int64
	monthRPM float64 // fake WeCom month-data limit; default unlimited
	settle   int     // sync.settle_days; default 5
	tz       string
	alert    bool // send alerts to the fake group robot
	// consistencyDelay is jiandaoyun.consistency_delay; zero leaves the
	// key out, so the tool's default (10s) applies. Tests that defer a
	// batch set it short, e.g. 200ms.
	consistencyDelay time.Duration
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	if o.users == 0 {
		o.users = 50
	}
	if o.seed == 0 {
		o.seed = 7
	}
	if o.monthRPM == 0 {
		o.monthRPM = -1
	}
	if o.settle == 0 {
		o.settle = 5
	}
	if o.tz == "" {
		o.tz = "Asia/Shanghai"
	}
	company := fakeapi.NewCompany(o.seed, o.users)
	srv := fakeapi.New(fakeapi.Options{
		Company:            company,
		MonthDataPerMinute: o.monthRPM,
		JDY:                fakeapi.JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1},
		Seed:               o.seed,
	})
	base, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	e := &env{t: t, company: company, srv: srv, base: base, dir: t.TempDir()}
	cr := srv.Credentials()
	e.vars = []string{"E2E_CORP=" + cr.CorpID, "E2E_SECRET=" + cr.Secret, "E2E_KEY=" + cr.APIKey}
	rpm := o.monthRPM
	if rpm < 0 {
		rpm = 100000
	}
	cfg := fmt.Sprintf(`timezone: %s
store: ./state.db
wecom:
  base_url: %s
  corp_id: ${E2E_CORP}
  secret: ${E2E_SECRET}
  rate_per_minute: %g
jiandaoyun:
  base_url: %s
  api_key: ${E2E_KEY}
  app_id: %s
  entry_id: %s
  concurrency: 4
  rate_per_second: {create: 1000, batch_create: 1000, update: 1000, list: 1000, global: 1000}
%ssync:
  months: 2
  settle_days: %d
retry:
  base: 2ms
  max_attempts: 8
  block_wait: 20ms
`, o.tz, base, rpm, base, cr.AppID, cr.EntryID, delayLine(o.consistencyDelay), o.settle)
	if o.alert {
		e.vars = append(e.vars, "E2E_HOOK="+base+"/cgi-bin/webhook/send?key="+cr.WebhookKey)
		cfg += "alert:\n  wecom_webhook: ${E2E_HOOK}\n"
	}
	tmpl := string(config.Template())
	cfg += tmpl[strings.Index(tmpl, "\nmapping:")+1:]
	e.config = filepath.Join(e.dir, "checkin-sync.yaml")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return e
}

// delayLine is the jiandaoyun.consistency_delay line for d, or nothing.
func delayLine(d time.Duration) string {
	if d <= 0 {
		return ""
	}
	return "  consistency_delay: " + d.String() + "\n"
}

// result is one finished run of the binary.
type result struct {
	code           int
	stdout, stderr string
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// command prepares the binary with this env's configuration.
func (e *env) command(ctx context.Context, extraEnv []string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, binary, append([]string{"--config", e.config, "--log-format", "json"}, args...)...)
	cmd.Env = append(append(os.Environ(), e.vars...), extraEnv...)
	cmd.Dir = e.dir
	return cmd
}

// run runs the binary to the end; a minute is a hang guard, not a timing
// assertion.
func (e *env) run(args ...string) result {
	return e.runEnv(nil, args...)
}

func (e *env) runEnv(extraEnv []string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, extraEnv, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			e.t.Fatalf("run %v: %v", args, err)
		}
		code = ee.ExitCode()
	}
	if ctx.Err() != nil {
		e.t.Fatalf("run %v: hang guard hit\n%s", args, errb.String())
	}
	return result{code: code, stdout: out.String(), stderr: errb.String()}
}

// proc is a run of the binary started in the background.
type proc struct {
	t      *testing.T
	cmd    *exec.Cmd
	cancel context.CancelFunc
	done   chan struct{} // closed when the process has ended
	res    result        // valid once done is closed
}

// start starts the binary without waiting for it; wait collects it. The
// same two-minute hang guard as run applies.
func (e *env) start(args ...string) *proc {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	p := &proc{t: e.t, cmd: e.command(ctx, nil, args...), cancel: cancel, done: make(chan struct{})}
	var out, errb bytes.Buffer
	p.cmd.Stdout, p.cmd.Stderr = &out, &errb
	if err := p.cmd.Start(); err != nil {
		cancel()
		e.t.Fatalf("start %v: %v", args, err)
	}
	go func() {
		defer close(p.done)
		err := p.cmd.Wait()
		p.res = result{code: p.cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
		switch {
		case ctx.Err() != nil:
			p.res.code = -2 // the hang guard hit
		case err != nil && p.res.code == 0:
			p.res.code = -1
		}
	}()
	e.t.Cleanup(func() {
		cancel()
		<-p.done
	})
	return p
}

// wait waits for the process to end and returns its result; a run the
// hang guard ended fails the test.
func (p *proc) wait() result {
	p.t.Helper()
	<-p.done
	if p.res.code == -2 {
		p.t.Fatalf("hang guard hit\n%s", p.res)
	}
	return p.res
}

// kill ends the process with SIGKILL, as a power loss would, and waits.
func (p *proc) kill() result {
	_ = p.cmd.Process.Kill()
	<-p.done
	return p.res
}

// inside waits until gate opens while the process runs; it fails the test
// if the process ends first.
func (p *proc) inside(what string, gate <-chan struct{}) {
	p.t.Helper()
	select {
	case <-gate:
	case <-p.done:
		p.t.Fatalf("the run ended before %s\n%s", what, p.res)
	}
}

// mustRun runs and requires the exit code.
func (e *env) mustRun(code int, args ...string) result {
	e.t.Helper()
	r := e.run(args...)
	if r.code != code {
		e.t.Fatalf("%v: want exit %d\n%s", args, code, r)
	}
	return r
}

// mapper compiles the env's mapping against the fake form, to compute what
// every record should hold.
func (e *env) mapper() *mapping.Mapper {
	e.t.Helper()
	return e.mapperFor(fakeapi.DefaultWidgets())
}

// mapperFor compiles the env's mapping against a form of the widgets ws.
func (e *env) mapperFor(ws []fakeapi.Widget) *mapping.Mapper {
	e.t.Helper()
	cfg, err := config.Load(e.config, func(k string) (string, bool) {
		for _, kv := range e.vars {
			if name, v, _ := strings.Cut(kv, "="); name == k {
				return v, true
			}
		}
		return "", false
	})
	if err != nil {
		e.t.Fatal(err)
	}
	compiled, err := mapping.Compile(cfg.Mapping)
	if err != nil {
		e.t.Fatal(err)
	}
	mws := make([]mapping.Widget, len(ws))
	for i, w := range ws {
		mws[i] = mapping.Widget{Name: w.Name, WidgetName: w.WidgetName, Label: w.Label, Type: w.Type}
	}
	m, err := compiled.Bind(mws)
	if err != nil {
		e.t.Fatal(err)
	}
	return m
}

// checkForm asserts exactly one record per key for every user and month,
// each holding what the mapping makes of the fake's current report.
func (e *env) checkForm(months ...month.Month) {
	e.t.Helper()
	mp := e.mapper()
	byKey := map[string][]fakeapi.Record{}
	for _, r := range e.srv.Records() {
		k, _ := r.Data["sync_key"].(string)
		byKey[k] = append(byKey[k], r)
	}
	want := 0
	for _, m := range months {
		for _, u := range e.company.Users() {
			want++
			key := mp.Key(u.UserID, m)
			recs := byKey[key]
			if len(recs) != 1 {
				e.t.Errorf("%s: %d records, want exactly 1", key, len(recs))
				continue
			}
			e.checkRecord(mp, key, recs[0], mapping.Input{UserID: u.UserID, Month: m, Report: e.company.Report(u.UserID, m)})
		}
	}
	if n := len(e.srv.Records()); n != want {
		e.t.Errorf("form holds %d records, want %d", n, want)
	}
}

// checkRecord asserts that rec, the record of key, holds every field the
// mapping makes of in.
func (e *env) checkRecord(mp *mapping.Mapper, key string, rec fakeapi.Record, in mapping.Input) {
	e.t.Helper()
	res, err := mp.Map(in)
	if err != nil {
		e.t.Fatalf("%s: map: %v", key, err)
	}
	var fields map[string]struct{ Value json.RawMessage }
	if err := json.Unmarshal(res.Data, &fields); err != nil {
		e.t.Fatal(err)
	}
	for name, f := range fields {
		got, _ := json.Marshal(rec.Data[name])
		if !jsonEqual(got, f.Value) {
			e.t.Errorf("%s.%s = %s, want %s", key, name, got, f.Value)
		}
	}
}

func jsonEqual(a, b []byte) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return false
	}
	xs, _ := json.Marshal(x)
	ys, _ := json.Marshal(y)
	return bytes.Equal(xs, ys)
}

// writes counts the Jiandaoyun write calls made so far.
func (e *env) writes() (creates, updates int) {
	return e.srv.Calls("data/batch_create") + e.srv.Calls("data/create"), e.srv.Calls("data/update")
}

// statusJSON runs `status --json`.
func (e *env) statusJSON(today string) map[string]any {
	e.t.Helper()
	r := e.mustRun(0, "--today", today, "status", "--json")
	var st map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		e.t.Fatalf("status --json: %v\n%s", err, r)
	}
	return st
}

// leavePending runs `sync --month m` and kills it with SIGKILL while its
// first batch is open: held at the fake before it commits, or (lost)
// committed by the fake, its answer lost, and the deferred lookup held.
// The holds are released only when the test ends: a held batch_create
// released at once could still commit, racing the fake's notice that the
// client is gone, and the batch must stay uncommitted.
func leavePending(t *testing.T, e *env, lost bool, m string) {
	t.Helper()
	sent, releaseSend := e.srv.HoldNext("data/batch_create")
	t.Cleanup(releaseSend)
	p := e.start("--today", "2026-03-15", "sync", "--month", m)
	p.inside("its batch_create", sent)
	if lost {
		lookup, releaseLookup := e.srv.HoldNext("data/list")
		t.Cleanup(releaseLookup)
		e.srv.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"data/batch_create"}})
		releaseSend()
		p.inside("the deferred lookup", lookup)
	}
	if r := p.kill(); r.code != -1 {
		t.Fatalf("killed sync: %s", r)
	}
	e.srv.SetFaults(fakeapi.Faults{})
}

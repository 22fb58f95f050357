package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
)

// binary is the checkin-sync executable built once for the tests that run
// the real command line.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "checkin-sync-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "checkin-sync")
	out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput()
	if err != nil {
		fmt.Fprintf(os.Stderr, "build: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// cmdEnv is the environment the binary runs with: no inherited config
// location, and the template's variables set.
func cmdEnv(extra ...string) []string {
	env := []string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"WECOM_CORP_ID=ww1", "WECOM_SECRET=s3cret", "JDY_API_KEY=k3y"}
	return append(env, extra...)
}

type result struct {
	stdout, stderr string
	code           int
}

// runBinary runs the built binary in dir, with a hang guard.
func runBinary(t *testing.T, dir string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	cmd.Dir = dir
	cmd.Env = env
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("run %v: %v", args, err)
	}
	return result{out.String(), errb.String(), code}
}

func envLookup(env []string) func(string) (string, bool) {
	return func(name string) (string, bool) {
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
}

func TestInitWritesLoadableConfig(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, dir, cmdEnv(), "init")
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	path := filepath.Join(dir, "checkin-sync.yaml")
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o600 {
		t.Errorf("mode %v, want 0600", st.Mode().Perm())
	}
	data, _ := os.ReadFile(path)
	if !bytes.Equal(data, config.Template()) {
		t.Error("written file differs from the template")
	}
	// As written it is refused, naming the two ids the user must fill in;
	// with them filled in it loads.
	_, err = config.Load(path, envLookup(cmdEnv()))
	if err == nil || !strings.Contains(err.Error(), "jiandaoyun.app_id") || !strings.Contains(err.Error(), "jiandaoyun.entry_id") {
		t.Fatalf("the template's placeholders were not refused by name: %v", err)
	}
	edited := strings.NewReplacer("EDIT_ME_APP_ID", "6399c24287cae90008d24e0b", "EDIT_ME_ENTRY_ID", "64093d8613931a00085bb2f4").Replace(string(data))
	if err := os.WriteFile(path, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(path, envLookup(cmdEnv()))
	if err != nil {
		t.Fatalf("the written file, its ids filled in, does not load: %v", err)
	}
	if cfg.Store != filepath.Join(dir, "checkin-sync.db") {
		t.Errorf("store %q", cfg.Store)
	}
	for _, s := range []string{"WECOM_CORP_ID", "WECOM_SECRET", "JDY_API_KEY", "app_id", "entry_id", "checkin-sync check"} {
		if !strings.Contains(r.stdout, s) {
			t.Errorf("next steps do not mention %q:\n%s", s, r.stdout)
		}
	}
}

func TestInitKeepsExistingFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkin-sync.yaml")
	if err := os.WriteFile(path, []byte("mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := runBinary(t, dir, cmdEnv(), "init")
	if r.code != 2 {
		t.Errorf("exit %d, want 2", r.code)
	}
	if !strings.Contains(r.stderr, "Error: ") || !strings.Contains(r.stderr, "already exists") || !strings.Contains(r.stderr, "Try: ") || !strings.Contains(r.stderr, "--force") {
		t.Errorf("stderr:\n%s", r.stderr)
	}
	if data, _ := os.ReadFile(path); string(data) != "mine\n" {
		t.Errorf("file changed to %q", data)
	}

	r = runBinary(t, dir, cmdEnv(), "init", "--force")
	if r.code != 0 {
		t.Fatalf("--force: exit %d: %s", r.code, r.stderr)
	}
	data, _ := os.ReadFile(path)
	st, _ := os.Stat(path)
	if !bytes.Equal(data, config.Template()) || st.Mode().Perm() != 0o600 {
		t.Errorf("--force wrote mode %v, template %v", st.Mode().Perm(), bytes.Equal(data, config.Template()))
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Errorf("leftover files: %v", entries)
	}
}

func TestGlobalFlagsBeforeAndAfterCommand(t *testing.T) {
	dir := t.TempDir()
	for i, args := range [][]string{
		{"--config", "before.yaml", "init"},
		{"init", "--config", "after.yaml"},
		{"--log-level", "debug", "--config", "both-outer.yaml", "init", "--log-format", "json", "--config", "both.yaml"},
		{"--today", "2026-03-05", "init", "--config=eq.yaml", "--log-level=warn"},
	} {
		r := runBinary(t, dir, cmdEnv(), args...)
		if r.code != 0 {
			t.Errorf("%v: exit %d: %s", args, r.code, r.stderr)
		}
		want := []string{"before.yaml", "after.yaml", "both.yaml", "eq.yaml"}[i]
		if _, err := os.Stat(filepath.Join(dir, want)); err != nil {
			t.Errorf("%v: %v", args, err)
		}
		if !strings.Contains(r.stdout, "checkin-sync check --config "+want) {
			t.Errorf("%v: next steps do not carry --config:\n%s", args, r.stdout)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "both-outer.yaml")); err == nil {
		t.Error("the flag after the command should win")
	}
	// CHECKIN_SYNC_CONFIG names the file when --config is absent.
	r := runBinary(t, dir, cmdEnv("CHECKIN_SYNC_CONFIG="+filepath.Join(dir, "env.yaml")), "init")
	if _, err := os.Stat(filepath.Join(dir, "env.yaml")); r.code != 0 || err != nil {
		t.Errorf("env: exit %d, %v", r.code, err)
	}
}

func TestUsageErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		msg  string
	}{
		{[]string{"init", "extra"}, `unexpected argument "extra"`},
		{[]string{"init", "help"}, `unexpected argument "help"`},
		{[]string{"--config", "x.yaml", "init", "stray", "--force"}, `unexpected argument "stray"`},
		{[]string{"init", "--bogus"}, "flag provided but not defined"},
		{[]string{"--bogus", "init"}, "flag provided but not defined"},
		{[]string{"bogus"}, `unknown command "bogus"`},
		{[]string{"int"}, "did you mean `checkin-sync init`?"},
		{[]string{"-v"}, "flag provided but not defined: -v"},
		{[]string{"--log-level", "loud", "init"}, `--log-level "loud"`},
		{[]string{"init", "--log-format", "xml"}, `--log-format "xml"`},
		{[]string{"init", "--today", "2026-02-30"}, "--today"},
		{[]string{"--today", "05/03/2026", "init"}, "YYYY-MM-DD"},
	} {
		r := runBinary(t, dir, cmdEnv(), tc.args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", tc.args, r.code, r.stderr)
		}
		if !strings.HasPrefix(r.stderr, "Error: ") || !strings.Contains(r.stderr, tc.msg) || !strings.Contains(r.stderr, "\nTry: ") {
			t.Errorf("%v: stderr:\n%s", tc.args, r.stderr)
		}
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 0 {
		t.Errorf("a usage error wrote files: %v", entries)
	}
}

func TestVersionAndHelp(t *testing.T) {
	dir := t.TempDir()
	r := runBinary(t, dir, cmdEnv(), "--version")
	if r.code != 0 || !strings.Contains(r.stdout, "checkin-sync version") {
		t.Errorf("--version: exit %d, stdout %q", r.code, r.stdout)
	}
	r = runBinary(t, dir, cmdEnv(), "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "init") || strings.Contains(r.stdout, "-v,") || strings.Contains(r.stdout, ", -v") {
		t.Errorf("--help: exit %d\n%s", r.code, r.stdout)
	}
	r = runBinary(t, dir, cmdEnv(), "init", "--help")
	if r.code != 0 || !strings.Contains(r.stdout, "--force") || !strings.Contains(r.stdout, "--config") {
		t.Errorf("init --help: exit %d\n%s", r.code, r.stdout)
	}
	r = runBinary(t, dir, cmdEnv())
	if r.code != 0 || !strings.Contains(r.stdout, "COMMANDS") {
		t.Errorf("no arguments: exit %d\n%s", r.code, r.stdout)
	}
}

// probe is a test-only subcommand that reports what the helpers see.
func probe(record func(c *cli.Context) error) *cli.Command {
	return &cli.Command{Name: "probe", Action: record}
}

func runProbe(t *testing.T, args []string, record func(c *cli.Context) error) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), append([]string{"checkin-sync"}, args...), &out, &errb, []*cli.Command{probe(record)})
	return code, out.String(), errb.String()
}

func TestGlobalLookup(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"probe"}, ""},
		{[]string{"--config", "a.yaml", "probe"}, "a.yaml"},
		{[]string{"probe", "--config", "b.yaml"}, "b.yaml"},
		{[]string{"--config", "a.yaml", "probe", "--config", "b.yaml"}, "b.yaml"},
	} {
		var got, level string
		code, _, stderr := runProbe(t, tc.args, func(c *cli.Context) error {
			got, level = global(c, flagConfig), global(c, flagLogLevel)
			return nil
		})
		if code != 0 || got != tc.want || level != "info" {
			t.Errorf("%v: code %d config %q level %q (%s)", tc.args, code, got, level, stderr)
		}
	}
}

func TestLoadConfigAndToday(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	t.Setenv("CS_TEST_SECRET", "TOPSECRET-a")
	t.Setenv("CS_TEST_KEY", "TOPSECRET-b")
	doc := `timezone: America/Los_Angeles
wecom:
  corp_id: ww1
  secret: ${CS_TEST_SECRET}
  users: {departments: [2], userids: [a]}
jiandaoyun: {api_key: "${CS_TEST_KEY}", app_id: a, entry_id: e}
mapping: {key: k, fields: {k: {source: key}}}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	var cfg *config.Config
	var d, forced month.Date
	code, _, stderr := runProbe(t, []string{"--log-format", "json", "probe", "--config", path}, func(c *cli.Context) error {
		var err error
		if cfg, err = loadConfig(c); err != nil {
			return err
		}
		d, err = today(c)
		return err
	})
	if code != 0 || cfg == nil {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.Contains(stderr, `"level":"warn"`) || !strings.Contains(stderr, "departments is ignored") {
		t.Errorf("warning not logged as JSON: %s", stderr)
	}
	if strings.Contains(stderr, "TOPSECRET") {
		t.Errorf("secret in the log: %s", stderr)
	}
	// The configured timezone (Los Angeles) does not move "today": it is
	// the date in Shanghai.
	if want := month.TodayCST(time.Now()); d != want {
		// The date may have turned between the two reads; only a
		// difference of more than a day is wrong.
		if d.AddDays(1) != want {
			t.Errorf("today %v, want %v", d, want)
		}
	}

	code, _, _ = runProbe(t, []string{"probe", "--today", "2026-03-05"}, func(c *cli.Context) error {
		var err error
		forced, err = today(c)
		return err
	})
	if code != 0 || forced != (month.Date{Year: 2026, Mon: 3, Day: 5}) {
		t.Errorf("--today: exit %d, %v", code, forced)
	}
}

func TestBadConfigExitsTwo(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "c.yaml")
	doc := "wecom:\n  corp_id: ww1\n  secret: literal-TOPSECRET\n  rate_per_minut: 3\n"
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, stderr := runProbe(t, []string{"probe", "--config", path}, func(c *cli.Context) error {
		_, err := loadConfig(c)
		return err
	})
	if code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	for _, s := range []string{"Error: " + path + " has", path + ":3: wecom.secret:", path + ":4: wecom.rate_per_minut: unknown key", "did you mean wecom.rate_per_minute?"} {
		if !strings.Contains(stderr, s) {
			t.Errorf("stderr lacks %q:\n%s", s, stderr)
		}
	}
	if strings.Contains(stderr, "TOPSECRET") {
		t.Errorf("stderr reveals the literal secret:\n%s", stderr)
	}

	code, _, stderr = runProbe(t, []string{"probe", "--config", filepath.Join(dir, "none.yaml")}, func(c *cli.Context) error {
		_, err := loadConfig(c)
		return err
	})
	if code != 2 || !strings.Contains(stderr, "checkin-sync init") {
		t.Errorf("missing config: exit %d\n%s", code, stderr)
	}
}

func TestInterruptedRun(t *testing.T) {
	ctx, cancel := context.WithCancelCause(context.Background())
	cancel(&interruptError{sig: os.Interrupt})
	var out, errb bytes.Buffer
	code := run(ctx, []string{"checkin-sync", "probe"}, &out, &errb, []*cli.Command{probe(func(c *cli.Context) error {
		return fmt.Errorf("sync: %w", c.Context.Err())
	})})
	if code != exitInterrupted || !strings.Contains(errb.String(), "Error: ") {
		t.Errorf("exit %d: %s", code, errb.String())
	}
	// A command that stops cleanly on the signal (serve) exits 0.
	code = run(ctx, []string{"checkin-sync", "probe"}, &out, &errb, []*cli.Command{probe(func(c *cli.Context) error { return nil })})
	if code != 0 {
		t.Errorf("clean stop: exit %d", code)
	}
}

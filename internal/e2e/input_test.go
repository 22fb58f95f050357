package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// Bad input gets a clear error, the right exit code, and a last line that
// says what failed and what to do (product.md, "Bad input" and the exit
// code table; issue 9).

// lastLine is the last non-empty line of out.
func lastLine(out string) string {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return lines[len(lines)-1]
}

// edit rewrites the env's configuration: each pair is old, new.
func (e *env) edit(pairs ...string) {
	e.t.Helper()
	data, err := os.ReadFile(e.config)
	if err != nil {
		e.t.Fatal(err)
	}
	s := string(data)
	for i := 0; i+1 < len(pairs); i += 2 {
		if !strings.Contains(s, pairs[i]) {
			e.t.Fatalf("configuration lacks %q", pairs[i])
		}
		s = strings.Replace(s, pairs[i], pairs[i+1], 1)
	}
	if err := os.WriteFile(e.config, []byte(s), 0o600); err != nil {
		e.t.Fatal(err)
	}
}

// wantLast asserts the exit code and that the last line of stderr holds
// every one of parts.
func wantLast(t *testing.T, r result, code int, parts ...string) {
	t.Helper()
	if r.code != code {
		t.Fatalf("want exit %d\n%s", code, r)
	}
	last := lastLine(r.stderr)
	for _, p := range parts {
		if !strings.Contains(last, p) {
			t.Errorf("last line lacks %q:\n%s\n(all: %s)", p, last, r)
		}
	}
}

func TestStorePathIsADirectoryIsAUsageError(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	if err := os.Mkdir(filepath.Join(e.dir, "state.db"), 0o700); err != nil {
		t.Fatal(err)
	}
	store := filepath.Join(e.dir, "state.db")
	for _, args := range [][]string{
		{"--today", "2026-03-15", "sync"},
		{"--today", "2026-03-15", "sync", "--dry-run"},
		{"status"},
		{"history"},
		{"reset", "--month", "2026-02"},
	} {
		r := e.run(args...)
		if r.code != 2 {
			t.Fatalf("%v: want exit 2\n%s", args, r)
		}
		if !strings.Contains(r.stderr, "Error: open store: "+store+" is a directory, not a store file") ||
			lastLine(r.stderr) != "Try: point `store:` at a file inside that directory, for example store: "+filepath.Join(store, "checkin-sync.db") {
			t.Errorf("%v: message\n%s", args, r)
		}
	}
	if n := len(e.srv.Records()); n != 0 {
		t.Errorf("%d records written", n)
	}
}

func TestInitIntoAMissingDirectoryIsAUsageError(t *testing.T) {
	e := newEnv(t, envOptions{users: 1})
	path := filepath.Join(e.dir, "no", "such", "checkin-sync.yaml")
	cmd := exec.Command(binary, "init", "--config", path)
	out, err := cmd.CombinedOutput()
	if code := cmd.ProcessState.ExitCode(); code != 2 {
		t.Fatalf("init into a missing directory: exit %d (%v)\n%s", code, err, out)
	}
	dir := filepath.Dir(path)
	want := "Error: cannot write " + path + ": the directory " + dir + " does not exist\n" +
		"Try: create the directory first (mkdir -p " + dir + "), or pass --config with a path in a directory that exists\n"
	if string(out) != want {
		t.Errorf("got\n%s\nwant\n%s", out, want)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "no")); !os.IsNotExist(err) {
		t.Errorf("init created the directory: %v", err)
	}
}

func TestJiandaoyunUnreachableExits1FromCheckAndSync(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	// Nothing listens on port 1: every request fails to connect, and is
	// retried max_attempts times.
	e.edit("jiandaoyun:\n  base_url: "+e.base, "jiandaoyun:\n  base_url: http://127.0.0.1:1")
	r := e.run("--today", "2026-03-15", "check")
	wantLast(t, r, 1, "Error: 1 check failed: jiandaoyun form: jiandaoyun widget/list:", "Jiandaoyun stayed unreachable after the retries: check the network, proxy and base_url")
	if !strings.Contains(r.stdout, "✓ wecom token") || !strings.Contains(r.stdout, "✗ jiandaoyun form") {
		t.Errorf("checklist:\n%s", r)
	}
	r = e.run("--today", "2026-03-15", "sync", "--month", "2026-02")
	wantLast(t, r, 1, "Error: sync stopped: read the form's fields: jiandaoyun widget/list:", "Jiandaoyun stayed unreachable after the retries")

	// The store was not bound to anything: the run never read the form.
	// A later run against the real form works.
	e.edit("base_url: http://127.0.0.1:1", "base_url: "+e.base)
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	e.checkForm(feb)
}

func TestCheckHelpDocumentsItsExitCodes(t *testing.T) {
	out, err := exec.Command(binary, "check", "--help").CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	for _, want := range []string{"0 every check passed", "1 a check could not complete", "2 configuration, mapping or form", "4 credentials, permission or plan"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("check --help lacks %q:\n%s", want, out)
		}
	}
}

func TestMonthsBefore2000AreInputErrors(t *testing.T) {
	e := newEnv(t, envOptions{users: 1})
	for _, tc := range []struct {
		args []string
		last string
	}{
		{[]string{"--month", "0000-01"}, "Error: --month 0000-01: months before 2000-01 are not accepted"},
		{[]string{"--month", "1969-12"}, "Error: --month 1969-12: months before 2000-01 are not accepted"},
		{[]string{"--from", "1999-12", "--to", "2000-02"}, "Error: --from 1999-12: months before 2000-01 are not accepted"},
		{[]string{"--from", "1990-01"}, "Error: --from 1990-01: months before 2000-01 are not accepted"},
	} {
		r := e.run(append([]string{"--today", "2026-03-15", "sync"}, tc.args...)...)
		if r.code != 2 || !strings.Contains(r.stderr, tc.last+"\nTry: name a month from 2000-01 on") || strings.Contains(r.stderr, "bug") {
			t.Errorf("%v:\n%s", tc.args, r)
		}
	}
	if n := e.srv.Calls("getcheckin_monthdata"); n != 0 {
		t.Errorf("%d month-data calls", n)
	}
}

func TestWrongSecretLastLineNamesCauseAndFix(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	bad := []string{"E2E_SECRET=wrong-secret"}
	r := e.runEnv(bad, "--today", "2026-03-15", "sync", "--month", "2026-02")
	wantLast(t, r, 4, "Error: sync stopped: list users: wecom gettoken: code 40001", "check WECOM_SECRET is the secret of the app allowed to call the checkin API", "then run sync again")
	if strings.Contains(r.stderr, "see the summary above") || strings.Contains(r.stderr+r.stdout, "wrong-secret") {
		t.Errorf("output:\n%s", r)
	}
	// check: one failed item, in the singular, with its cause and fix.
	r = e.runEnv(bad, "--today", "2026-03-15", "check")
	wantLast(t, r, 4, "Error: 1 check failed: wecom token: wecom gettoken: code 40001", "check WECOM_SECRET")
}

func TestMissingDepartmentLastLineNamesCauseAndFix(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	e.edit("  secret: ${E2E_SECRET}\n", "  secret: ${E2E_SECRET}\n  users: {departments: [424242]}\n")
	r := e.run("--today", "2026-03-15", "sync", "--month", "2026-02")
	wantLast(t, r, 4, "Error: sync stopped: list users: wecom department/simplelist: code 60003", "the department does not exist; check wecom.users.departments")
	if strings.Contains(r.stderr, "see the summary above") {
		t.Errorf("output:\n%s", r)
	}
	r = e.run("--today", "2026-03-15", "check")
	wantLast(t, r, 4, "Error: 1 check failed: wecom departments:", "code 60003", "check wecom.users.departments")
}

func TestTemplatePlaceholdersAreConfigErrors(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	cr := e.srv.Credentials()
	e.edit("app_id: "+cr.AppID, "app_id: EDIT_ME_APP_ID   # edit")
	for _, args := range [][]string{{"--today", "2026-03-15", "sync"}, {"check"}, {"status"}} {
		r := e.run(args...)
		wantLast(t, r, 2, "checkin-sync.yaml:", ": jiandaoyun.app_id: still holds the template's placeholder \"EDIT_ME_APP_ID\"; Fix: write the id of the Jiandaoyun app")
	}
	if _, err := os.Stat(filepath.Join(e.dir, "state.db")); !os.IsNotExist(err) {
		t.Errorf("a store was created: %v", err)
	}
	if n := e.srv.Calls("gettoken"); n != 0 {
		t.Errorf("%d API calls", n)
	}
}

func TestStoreIsBoundOnlyAfterTheFormWasRead(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	cr := e.srv.Credentials()
	// A wrong form id: Jiandaoyun answers 3000 (form not found).
	e.edit("entry_id: "+cr.EntryID, "entry_id: 0123456789abcdef01234567")
	r := e.run("--today", "2026-03-15", "sync", "--month", "2026-02")
	wantLast(t, r, 4, "Error: sync stopped: read the form's fields: jiandaoyun widget/list: code 3000")
	// Once fixed, the same store works: it was never bound to the wrong form.
	e.edit("entry_id: 0123456789abcdef01234567", "entry_id: "+cr.EntryID)
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	e.checkForm(feb)
}

func TestStoreTildeIsTheHomeDirectory(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	home := t.TempDir()
	e.edit("store: ./state.db", "store: ~/cs/state.db")
	r := e.runEnv([]string{"HOME=" + home}, "--today", "2026-03-15", "sync", "--month", "2026-02")
	if r.code != 0 {
		t.Fatalf("sync: %s", r)
	}
	if _, err := os.Stat(filepath.Join(home, "cs", "state.db")); err != nil {
		t.Errorf("store not in the home directory: %v", err)
	}
	if _, err := os.Stat(filepath.Join(e.dir, "~")); !os.IsNotExist(err) {
		t.Errorf("a directory named ~ was created: %v", err)
	}
	e.edit("store: ~/cs/state.db", "store: ~hr/state.db")
	r = e.runEnv([]string{"HOME=" + home}, "status")
	wantLast(t, r, 2, "store: a path starting with ~user is not supported", "Fix: write the full path")
}

func TestRatesAboveTheLimitsWarn(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	r := e.mustRun(0, "status")
	for _, want := range []string{
		"wecom.rate_per_minute (line 7) is 100000, above the limit of 60 calls a minute that WeCom documents for getcheckin_monthdata; above it WeCom answers 45009",
		"jiandaoyun.rate_per_second.global (line 14) is 1000, above the limit of 50 requests a second",
		"8303",
	} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("stderr lacks %q\n%s", want, r)
		}
	}
}

// commandWithout runs the binary with the env's variables except those
// named: the variables are not set at all.
func (e *env) runWithout(unset []string, args ...string) result {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, nil, args...)
	var keep []string
	for _, kv := range cmd.Env {
		name, _, _ := strings.Cut(kv, "=")
		drop := false
		for _, u := range unset {
			drop = drop || name == u
		}
		if !drop {
			keep = append(keep, kv)
		}
	}
	cmd.Env = keep
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	_ = cmd.Run()
	return result{code: cmd.ProcessState.ExitCode(), stdout: out.String(), stderr: errb.String()}
}

func TestStoreCommandsNeedNoSecrets(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	noSecrets := []string{"E2E_SECRET", "E2E_KEY"}
	r := e.runWithout(noSecrets, "--today", "2026-03-15", "status", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"month": "2026-02"`) {
		t.Fatalf("status without secrets:\n%s", r)
	}
	r = e.runWithout(noSecrets, "history", "--json")
	var h struct{ Runs []store.Run }
	if r.code != 0 || json.Unmarshal([]byte(r.stdout), &h) != nil || len(h.Runs) != 1 {
		t.Fatalf("history without secrets:\n%s", r)
	}
	r = e.runWithout(noSecrets, "reset", "--month", "2026-02")
	if r.code != 0 {
		t.Fatalf("reset without secrets:\n%s", r)
	}
	// sync and check still need them, and say which.
	r = e.runWithout(noSecrets, "--today", "2026-03-15", "sync", "--month", "2026-02")
	if r.code != 2 || !strings.Contains(r.stderr, "wecom.secret: environment variable E2E_SECRET is not set") ||
		!strings.Contains(r.stderr, "jiandaoyun.api_key: environment variable E2E_KEY is not set") {
		t.Errorf("sync without secrets:\n%s", r)
	}
}

func TestLongRangePrintsItsEstimateWithoutAsking(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	// Not a terminal (cron): the estimate is printed, nothing is asked.
	r := e.mustRun(0, "--today", "2026-03-15", "sync", "--from", "2000-01", "--dry-run")
	want := "2000-01 to 2026-03 is 315 months × 3 users = 945 user-months; at 100000 month-data calls a minute (100 users a call) fetching takes about 0s"
	if !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, "Go on?") {
		t.Errorf("stderr lacks the estimate %q, or asked\n%s", want, r)
	}
	listed := e.srv.Calls("user/simplelist")
	// --yes is accepted.
	r = e.mustRun(0, "--today", "2026-03-15", "sync", "--from", "2024-01", "--dry-run", "--yes")
	if !strings.Contains(r.stderr, "2024-01 to 2026-03 is 27 months × 3 users") {
		t.Errorf("estimate:\n%s", r)
	}
	// A short range prints none.
	before := e.srv.Calls("user/simplelist")
	r = e.mustRun(0, "--today", "2026-03-15", "sync", "--from", "2025-06", "--dry-run")
	if strings.Contains(r.stderr, "user-months") {
		t.Errorf("short range printed an estimate:\n%s", r)
	}
	// The estimate's user listing is the run's own: a run with an
	// estimate lists the users no more often than one without.
	if once := e.srv.Calls("user/simplelist") - before; listed != once {
		t.Errorf("user/simplelist: %d calls with the estimate, %d without", listed, once)
	}
}

// An exclude list that removes every user is not an error, but the
// operator is told: a warning names the cause, the run exits 0, and
// nothing is written.
func TestExcludingEveryUserWarns(t *testing.T) {
	e := newEnv(t, envOptions{users: 3})
	var ids []string
	for _, u := range e.company.Users() {
		ids = append(ids, u.UserID)
	}
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "  rate_per_minute:", "  users:\n    exclude: ["+strings.Join(ids, ", ")+"]\n  rate_per_minute:", 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	const want = "no user to sync: the departments hold none the app can see, or wecom.users.exclude removes every one"
	if !strings.Contains(r.stdout, "Warning: "+want) || !strings.Contains(r.stderr, want) {
		t.Fatalf("no warning that no user is left\n%s", r)
	}
	if n := e.srv.Calls("getcheckin_monthdata") + e.srv.Calls("data/batch_create"); n != 0 || len(e.srv.Records()) != 0 {
		t.Fatalf("%d month-data or create calls and %d records, want none", n, len(e.srv.Records()))
	}
}

// A full disk while writing the store: exit 1 with the cause and the
// store's path on the last line, the month partial, and nothing lost or
// duplicated once there is room again. It mounts a small tmpfs, which
// needs root (CI runs as root); without it the test is skipped.
func TestFullDiskIsExit1WithTheCause(t *testing.T) {
	dir := t.TempDir()
	disk := filepath.Join(dir, "disk")
	if err := os.Mkdir(disk, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", disk).CombinedOutput(); err != nil {
		t.Skipf("cannot mount a small tmpfs to fill (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { _ = exec.Command("umount", disk).Run() })
	// Leave too little room for the store of 1,500 records.
	filler := filepath.Join(disk, "filler")
	if err := os.WriteFile(filler, make([]byte, 1024*1024-96*1024), 0o600); err != nil {
		t.Fatal(err)
	}

	e := newEnv(t, envOptions{users: 1500, consistencyDelay: 200 * time.Millisecond})
	storePath := filepath.Join(disk, "state.db")
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(raw), "store: ./state.db", "store: "+storePath, 1)
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	// A backfill of January, outside the settle window on 2026-03-01.
	r := e.run("--today", "2026-03-01", "sync", "--month", "2026-01")
	if r.code != 1 {
		t.Fatalf("a full disk: want exit 1\n%s", r)
	}
	last := lastLine(r.stderr)
	if !strings.Contains(last, "no space left on device") || !strings.Contains(last, storePath) {
		t.Fatalf("the last line does not name the cause and the store's path: %q\n%s", last, r)
	}
	if n := len(e.srv.Duplicates("sync_key")); n != 0 {
		t.Fatalf("%d duplicate keys after the full disk", n)
	}

	// Room again: a plain sync finishes January, left partial, besides
	// February, which is still settling; no record is made twice.
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	if rows := monthRows(t, e.statusJSON("2026-03-01")); rows["2026-01"]["state"] != "partial" {
		t.Fatalf("after the full disk 2026-01 is %v, want partial", rows["2026-01"])
	}
	e.mustRun(0, "--today", "2026-03-01", "sync")
	e.checkForm(month.MustParse("2026-01"), month.MustParse("2026-02"))
	if rows := monthRows(t, e.statusJSON("2026-03-01")); rows["2026-01"]["watermark"] != "2026-01-31" || rows["2026-01"]["state"] != "settled" {
		t.Fatalf("after the rerun 2026-01 is %v", rows["2026-01"])
	}
}

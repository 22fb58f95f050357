package e2e

// What the tool prints: a closed stdout, -v plan lines on a real run, the
// demo's log format, the fake-servers setup snippet, and the summary's
// counts after a replay (issue 9, "Output").

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/store"
	"checkin-sync/sync"
)

var (
	outJan = month.MustParse("2026-01")
	outFeb = month.MustParse("2026-02")
)

// outSummaryRows reads the first summary table in stdout: month (and
// TOTAL) -> column -> number.
func outSummaryRows(t *testing.T, stdout string) map[string]map[string]int {
	t.Helper()
	var header []string
	rows := map[string]map[string]int{}
	for _, line := range strings.Split(stdout, "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0:
			if header != nil && len(rows) > 0 {
				return rows
			}
		case f[0] == "MONTH" && header == nil:
			header = f
		case header != nil:
			if _, err := month.Parse(f[0]); err != nil && f[0] != "TOTAL" {
				return rows
			}
			row := map[string]int{}
			for i, h := range header {
				if i >= len(f) || h == "MONTH" || h == "WATERMARK" || h == "NOTE" {
					continue
				}
				n, err := strconv.Atoi(f[i])
				if err != nil {
					t.Fatalf("summary %s %s = %q\n%s", f[0], h, f[i], stdout)
				}
				row[h] = n
			}
			rows[f[0]] = row
		}
	}
	if len(rows) == 0 {
		t.Fatalf("no summary table\n%s", stdout)
	}
	return rows
}

// planCounts counts the -v plan lines of stdout by month and action
// ("create", "update", "unchanged", "skip", "pending: would create", ...).
func planCounts(stdout string) map[string]map[string]int {
	out := map[string]map[string]int{}
	re := regexp.MustCompile(`^(create|update|unchanged|skip|pending: would \w+)\s+(\d{4}-\d{2})\s+\S+`)
	for _, line := range strings.Split(stdout, "\n") {
		m := re.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		if out[m[2]] == nil {
			out[m[2]] = map[string]int{}
		}
		out[m[2]][m[1]]++
	}
	return out
}

// requireOnceEach asserts, per month of the summary, that every user is
// counted under exactly one outcome.
func requireOnceEach(t *testing.T, r result, months ...month.Month) map[string]map[string]int {
	t.Helper()
	rows := outSummaryRows(t, r.stdout)
	for _, m := range months {
		row := rows[m.String()]
		if row == nil {
			t.Fatalf("no summary row for %s\n%s", m, r)
		}
		sum := row["CREATED"] + row["UPDATED"] + row["UNCHANGED"] + row["FAILED"] + row["PENDING"] + row["SKIPPED"]
		if sum != row["USERS"] {
			t.Errorf("%s: CREATED %d + UPDATED %d + UNCHANGED %d + FAILED %d + PENDING %d + SKIPPED %d = %d, want USERS %d\n%s",
				m, row["CREATED"], row["UPDATED"], row["UNCHANGED"], row["FAILED"], row["PENDING"], row["SKIPPED"], sum, row["USERS"], r)
		}
	}
	return rows
}

// outHistory runs `history --json`, newest first.
func outHistory(t *testing.T, e *env) []store.Run {
	t.Helper()
	r := e.mustRun(0, "history", "--json")
	var h struct {
		Runs []store.Run `json:"runs"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &h); err != nil {
		t.Fatalf("history --json: %v\n%s", err, r)
	}
	return h.Runs
}

// TestOutputClosedStdoutKeepsSyncing is `sync -v | head -1`: stdout is a
// pipe whose reader goes away after the first line, while the run still
// has batches to write and lines to print. The run must go on to the end,
// exit with its own code (0), complete the form and record success.
func TestOutputClosedStdoutKeepsSyncing(t *testing.T) {
	e := newEnv(t, envOptions{users: 60})
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := e.command(ctx, nil, "--today", "2026-03-15", "sync", "-v", "--month", "2026-01", "--month", "2026-02")
	var errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = pw, &errb
	// The first batch_create waits at the fake until the reader is gone:
	// its create lines are printed, and every later line and the summary
	// meet a closed pipe. The second month's data waits too, or its plan
	// lines, planned while the first batch is held, would all be in the
	// pipe before the reader goes.
	_, passFirst := e.srv.HoldNext("getcheckin_monthdata")
	passFirst()
	_, releaseSecond := e.srv.HoldNext("getcheckin_monthdata")
	defer releaseSecond()
	entered, release := e.srv.HoldNext("data/batch_create")
	defer release()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pw.Close()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-entered:
	case err := <-done:
		t.Fatalf("the run ended before its first batch_create: %v\n%s", err, errb.String())
	}
	first, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatalf("first line: %v", err)
	}
	if !strings.HasPrefix(first, "create ") {
		t.Errorf("first line %q, want a create plan line", first)
	}
	pr.Close()
	release()
	releaseSecond()
	err = <-done
	code := cmd.ProcessState.ExitCode()
	if err != nil && code == 0 {
		code = -1
	}
	if code != 0 {
		t.Fatalf("sync with a closed stdout: exit %d (%v), want 0\n%s", code, cmd.ProcessState, errb.String())
	}
	if !strings.Contains(errb.String(), "standard output is closed") {
		t.Errorf("no log line about the closed stdout\n%s", errb.String())
	}
	e.checkForm(outJan, outFeb)
	runs := outHistory(t, e)
	if len(runs) != 1 || runs[0].Outcome != "success" || runs[0].ExitCode != 0 || runs[0].Created != 120 {
		t.Errorf("history: %+v, want one run: success, exit 0, 120 created", runs)
	}
}

// TestOutputVerbosePrintsEveryPlanLine: `sync -v` on a real run prints one
// plan line per record, whatever its action, and the lines agree with the
// summary.
func TestOutputVerbosePrintsEveryPlanLine(t *testing.T) {
	e := newEnv(t, envOptions{users: 40})
	args := []string{"--today", "2026-03-15", "sync", "-v", "--month", "2026-01", "--month", "2026-02"}
	// An explicit user list with one userid WeCom does not know: a skip
	// line in each month.
	users := e.company.Users()
	ids := []string{`"nosuch0000"`}
	for _, u := range users {
		ids = append(ids, strconv.Quote(u.UserID))
	}
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	withList := strings.Replace(string(raw), "\nwecom:\n", "\nwecom:\n  users:\n    userids: ["+strings.Join(ids, ", ")+"]\n", 1)
	if err := os.WriteFile(e.config, []byte(withList), 0o600); err != nil {
		t.Fatal(err)
	}

	r := e.mustRun(0, args...)
	got := planCounts(r.stdout)
	rows := requireOnceEach(t, r, outJan, outFeb)
	for _, m := range []string{"2026-01", "2026-02"} {
		want := map[string]int{"create": 40, "skip": 1}
		if rows[m]["CREATED"] != 40 || rows[m]["SKIPPED"] != 1 || rows[m]["USERS"] != 41 {
			t.Fatalf("%s: summary %v, want 41 users: 40 created, 1 skipped\n%s", m, rows[m], r)
		}
		if !mapsEqual(got[m], want) {
			t.Errorf("first run, %s plan lines %v, want %v\n%s", m, got[m], want, r)
		}
	}

	// Second run: three reports change in February, nothing in January.
	for _, u := range users[1:4] {
		e.company.Bump(u.UserID, outFeb)
	}
	r = e.mustRun(0, args...)
	got = planCounts(r.stdout)
	rows = requireOnceEach(t, r, outJan, outFeb)
	wantJan := map[string]int{"unchanged": 40, "skip": 1}
	wantFeb := map[string]int{"update": 3, "unchanged": 37, "skip": 1}
	if !mapsEqual(got["2026-01"], wantJan) || !mapsEqual(got["2026-02"], wantFeb) {
		t.Errorf("second run plan lines %v, want 2026-01 %v and 2026-02 %v\n%s", got, wantJan, wantFeb, r)
	}
	if rows["2026-02"]["UPDATED"] != 3 || rows["TOTAL"]["UNCHANGED"] != 77 || rows["TOTAL"]["SKIPPED"] != 2 {
		t.Errorf("second run summary %v", rows)
	}
}

func mapsEqual(a, b map[string]int) bool {
	for k, v := range b {
		if v == 0 {
			delete(b, k)
		}
	}
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestOutputCountsAfterReplay leaves a batch pending (its answer lost,
// the process killed during the deferred lookup), then reruns: every
// user of the month is counted once, under its final outcome.
func TestOutputCountsAfterReplay(t *testing.T) {
	for _, tc := range []struct {
		name     string
		users    int
		lost     bool   // the fake commits the held batch, then the answer is lost
		rerun    string // the rerun's --month
		bump     int    // reports changed in WeCom before the rerun
		wantRows map[string]map[string]int
	}{
		// The pending batch's month is the rerun's month.
		{name: "committed/same month", users: 60, lost: true, rerun: "2026-02"},
		{name: "never sent/same month", users: 60, rerun: "2026-02"},
		// Two fetch batches: one pending, one synced before the kill
		// or after it.
		{name: "committed/two batches", users: 150, lost: true, rerun: "2026-02"},
		// The committed batch is adopted, and two of its records changed
		// in WeCom since: adopted and updated in one run.
		{name: "committed/changed since", users: 60, lost: true, rerun: "2026-02", bump: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, envOptions{users: tc.users, consistencyDelay: 200 * time.Millisecond})
			leavePending(t, e, tc.lost, "2026-02")
			for _, u := range e.company.Users()[:tc.bump] {
				e.company.Bump(u.UserID, outFeb)
			}

			r := e.mustRun(0, "--today", "2026-03-15", "sync", "-v", "--month", tc.rerun)
			e.checkForm(outFeb)
			rows := requireOnceEach(t, r, outFeb)
			row := rows["2026-02"]
			if row["USERS"] != tc.users || row["FAILED"]+row["PENDING"] != 0 {
				t.Errorf("rerun 2026-02: %v, want %d users, none failed or pending\n%s", row, tc.users, r)
			}
		})
	}
}

// TestOutputVerboseAfterReplay: under -v, every user of the month gets
// exactly one plan line, also those whose record the settled pending batch
// of the killed run decided (created, adopted).
func TestOutputVerboseAfterReplay(t *testing.T) {
	for _, lost := range []bool{false, true} {
		t.Run("lost="+strconv.FormatBool(lost), func(t *testing.T) {
			e := newEnv(t, envOptions{users: 60, consistencyDelay: 200 * time.Millisecond})
			leavePending(t, e, lost, "2026-02")
			r := e.mustRun(0, "--today", "2026-03-15", "sync", "-v", "--month", "2026-02")
			e.checkForm(outFeb)
			seen := map[string]int{}
			for _, line := range strings.Split(r.stdout, "\n") {
				f := strings.Fields(line)
				if len(f) >= 3 && f[1] == "2026-02" {
					seen[f[2]]++
				}
			}
			wrong := 0
			for _, u := range e.company.Users() {
				if seen[u.UserID] != 1 {
					wrong++
				}
			}
			if wrong > 0 {
				t.Errorf("%d of 60 users do not have exactly one plan line under -v (plan lines per user: %v)\n%s", wrong, seen, r)
			}
		})
	}
}

// TestOutputCountsPendingOfAnotherMonth leaves a January batch pending and
// reruns February only: the rerun settles January's batch first. February
// counts each user once; January's row counts the batch's users and the
// records it created, and its note says where they come from.
func TestOutputCountsPendingOfAnotherMonth(t *testing.T) {
	e := newEnv(t, envOptions{users: 30, consistencyDelay: 200 * time.Millisecond})
	leavePending(t, e, false, "2026-01")
	r := e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	e.checkForm(outJan, outFeb)
	rows := requireOnceEach(t, r, outFeb)
	if feb := rows["2026-02"]; feb["USERS"] != 30 || feb["CREATED"] != 30 {
		t.Errorf("2026-02 row %v, want 30 users, 30 created\n%s", feb, r)
	}
	jan := rows["2026-01"]
	if jan == nil || jan["USERS"] != 30 || jan["FETCHED"] != 30 || jan["CREATED"] != 30 || jan["UNCHANGED"]+jan["UPDATED"]+jan["FAILED"]+jan["PENDING"] != 0 {
		t.Errorf("2026-01 row %v, want the batch's 30 users fetched and 30 created\n%s", jan, r)
	}
	noted := false
	for _, line := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(line, "2026-01 ") && strings.HasSuffix(strings.TrimSpace(line), pendingNote) {
			noted = true
		}
	}
	if !noted {
		t.Errorf("2026-01 row without the note %q\n%s", pendingNote, r)
	}
}

// pendingNote is the summary's note on a month whose only records came
// from a batch an earlier run left pending.
const pendingNote = sync.NotePendingOnly

// TestOutputDemoLogsForPeople: the demo's logs are console lines, not
// JSON, when stderr is not a terminal; --log-format json still wins.
func TestOutputDemoLogsForPeople(t *testing.T) {
	run := func(args ...string) (stdout, stderr string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, binary, args...)
		cmd.Dir = t.TempDir()
		var out, errb bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &errb
		if err := cmd.Run(); err != nil {
			t.Fatalf("%v: %v\n%s\n%s", args, err, out.String(), errb.String())
		}
		return out.String(), errb.String()
	}
	logLines := func(stderr string) (jsonLines, consoleLines int) {
		for _, line := range strings.Split(strings.TrimSpace(stderr), "\n") {
			switch {
			case strings.HasPrefix(line, "{"):
				jsonLines++
			case regexp.MustCompile(`^\d\d:\d\d:\d\d (DBG|INF|WRN|ERR) `).MatchString(line):
				consoleLines++
			}
		}
		return
	}
	stdout, stderr := run("demo", "--users", "10")
	if j, c := logLines(stderr); j != 0 || c == 0 {
		t.Errorf("demo logs: %d JSON lines, %d console lines; want console only\n%s", j, c, stderr)
	}
	if strings.Contains(stdout, `{"level"`) || !strings.Contains(stdout, "The rerun sent 0 writes") {
		t.Errorf("demo stdout\n%s", stdout)
	}
	_, stderr = run("--log-format", "json", "demo", "--users", "10")
	if j, c := logLines(stderr); j == 0 || c != 0 {
		t.Errorf("demo --log-format json: %d JSON lines, %d console lines; want JSON only\n%s", j, c, stderr)
	}
}

// TestOutputFakeServersSnippetFitsTemplate follows the fake-servers
// instructions to the letter: `init`, the values it says to set in the
// file, the variables it says to export; then `check` and `sync` pass.
func TestOutputFakeServersSnippetFitsTemplate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	fs := exec.CommandContext(ctx, binary, "fake-servers", "--listen", "127.0.0.1:0", "--users", "12")
	stdout, err := fs.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := fs.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = fs.Process.Signal(os.Interrupt)
		_ = fs.Wait()
	}()
	var snippet []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		snippet = append(snippet, sc.Text())
		if sc.Text() == "Ctrl-C stops." {
			break
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	text := strings.Join(snippet, "\n")
	if strings.Contains(text, "corp_id:") || strings.Contains(text, "secret:") || strings.Contains(text, "api_key:") {
		t.Errorf("the snippet sets a value the template reads from the environment\n%s", text)
	}

	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "checkin-sync.yaml")
	environ := []string{}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "WECOM_") && !strings.HasPrefix(kv, "JDY_") && !strings.HasPrefix(kv, "CHECKIN_SYNC_") {
			environ = append(environ, kv)
		}
	}
	cli := func(want int, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, binary, append([]string{"--config", cfgPath}, args...)...)
		cmd.Dir, cmd.Env = dir, environ
		out, err := cmd.CombinedOutput()
		code := 0
		if err != nil {
			ee, ok := err.(*exec.ExitError)
			if !ok {
				t.Fatal(err)
			}
			code = ee.ExitCode()
		}
		if code != want {
			t.Fatalf("%v: exit %d, want %d\n%s", args, code, want, out)
		}
		return string(out)
	}
	cli(0, "init")

	// Apply the snippet: `key: value` lines under `wecom:` and
	// `jiandaoyun:` replace the template's, and each `export` is set.
	tmpl, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(tmpl)
	section, exports, edits := "", 0, 0
	for _, line := range snippet {
		tl := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(tl, "export "):
			kv := strings.TrimPrefix(tl, "export ")
			name, v, _ := strings.Cut(kv, "=")
			environ = append(environ, name+"="+strings.Trim(v, "'"))
			exports++
		case tl == "wecom:" || tl == "jiandaoyun:":
			section = tl
		case section != "" && strings.HasPrefix(line, "    ") && strings.Contains(tl, ": "):
			key, v, _ := strings.Cut(tl, ": ")
			start := strings.Index(cfg, "\n"+section+"\n")
			if start < 0 {
				t.Fatalf("template has no %s section", section)
			}
			re := regexp.MustCompile(`(?m)^  ` + regexp.QuoteMeta(key) + `: \S+`)
			loc := re.FindStringIndex(cfg[start:])
			if loc == nil {
				t.Fatalf("template has no %s %s", section, key)
			}
			cfg = cfg[:start+loc[0]] + "  " + key + ": " + v + cfg[start+loc[1]:]
			edits++
		case tl == "":
			section = ""
		}
	}
	if exports != 4 || edits != 4 {
		t.Fatalf("snippet: %d exports, %d edits; want 4 and 4 (base_url twice, app_id, entry_id)\n%s", exports, edits, text)
	}
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cli(0, "check")
	out := cli(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	if !strings.Contains(out, "success") {
		t.Errorf("sync with the snippet's setup\n%s", out)
	}
}

// TestOutputPlanLinesAboveBarOnTerminal runs `sync -v` on a pseudo-terminal
// (util-linux `script`), so that the progress bar is drawn, and replays
// the bytes on a minimal screen: every plan line must be whole on its own
// line, none overwritten by the bar.
func TestOutputPlanLinesAboveBarOnTerminal(t *testing.T) {
	scriptBin, err := exec.LookPath("script")
	if err != nil {
		t.Skip("no `script` to run the binary on a pseudo-terminal")
	}
	e := newEnv(t, envOptions{users: 250})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	inner := e.command(ctx, nil, "--log-level", "warn", "--today", "2026-03-15", "sync", "-v", "--month", "2026-02")
	quoted := make([]string, len(inner.Args))
	for i, a := range inner.Args {
		quoted[i] = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
	}
	cmd := exec.CommandContext(ctx, scriptBin, "-qefc", strings.Join(quoted, " "), "/dev/null")
	cmd.Env, cmd.Dir = inner.Env, inner.Dir
	raw, err := cmd.Output()
	if err != nil {
		t.Fatalf("script: %v\n%s", err, raw)
	}
	var lines [][]rune
	row, col := 0, 0
	for _, c := range string(raw) {
		for len(lines) <= row {
			lines = append(lines, nil)
		}
		switch c {
		case '\r':
			col = 0
		case '\n':
			row, col = row+1, 0
		default:
			for len(lines[row]) <= col {
				lines[row] = append(lines[row], ' ')
			}
			lines[row][col] = c
			col++
		}
	}
	if !strings.Contains(string(raw), "syncing") {
		t.Fatalf("no progress bar drawn on the terminal:\n%q", raw)
	}
	planLine := regexp.MustCompile(`^create {17}2026-02  \S+$`)
	whole, broken := 0, 0
	for _, l := range lines {
		s := strings.TrimRight(string(l), " ")
		switch {
		case planLine.MatchString(s):
			whole++
		case strings.Contains(s, "2026-02  ") && !strings.HasPrefix(s, "2026-02 "): // not the summary row
			broken++
			t.Errorf("plan line mixed with the bar: %q", s)
		}
	}
	if whole != 250 || broken != 0 {
		t.Errorf("%d whole plan lines, %d broken; want 250 whole", whole, broken)
	}
	e.checkForm(outFeb)
}

package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"checkin-sync/internal/apierr"
	"checkin-sync/sync"
)

// The rule: when a run fails, its last line says what failed and what to
// do, in one sentence, terminal or log file.
func TestRunFailureLastLine(t *testing.T) {
	const path = "/var/lib/cs/state.db"
	lastOf := func(err error) string {
		var b bytes.Buffer
		printError(&b, err)
		lines := strings.Split(strings.TrimRight(b.String(), "\n"), "\n")
		if len(lines) != 1 {
			t.Errorf("want one line, got %q", b.String())
		}
		return lines[len(lines)-1]
	}

	// A full disk while writing the store. A tmpfs of a few KiB would need
	// root (or a user namespace) to mount, so the error is built as the
	// store returns it: bbolt's write wrapped in a *os.PathError.
	full := &sync.Summary{Err: fmt.Errorf("commit checkpoints: %w", &os.PathError{Op: "write", Path: path, Err: syscall.ENOSPC})}
	_, code := sync.Verdict(full)
	err := runFailure(full, code, path)
	if exitCode(err) != 1 {
		t.Errorf("disk full: exit %d, want 1", exitCode(err))
	}
	want := "Error: sync stopped: commit checkpoints: write " + path + ": no space left on device; " + diskFullFix
	if got := lastOf(err); got != want {
		t.Errorf("disk full:\n got %s\nwant %s", got, want)
	}
	// Without the path in the cause, the store path is added.
	bare := &sync.Summary{Err: fmt.Errorf("commit: %w", syscall.ENOSPC)}
	if got := lastOf(runFailure(bare, 1, path)); !strings.Contains(got, "no space left on device (store "+path+"); free space") {
		t.Errorf("disk full, bare: %s", got)
	}

	// Partial: records failed or pending; never "see the summary above".
	partial := &sync.Summary{Months: []*sync.MonthSummary{{Month: "2026-02", Failed: 1, Pending: 2}},
		Failures: []sync.Failure{{Key: "u1|2026-02", Month: "2026-02", Error: "jiandaoyun data/batch_create: code 4000 (bad value)"}}}
	got := lastOf(runFailure(partial, 1, path))
	if got != "Error: the run did not complete every record: 1 record failed and 2 records are still pending (first: u1|2026-02: jiandaoyun data/batch_create: code 4000 (bad value)); fix what the failures say, then run sync again: only what is not synced is sent" {
		t.Errorf("partial: %s", got)
	}

	// An unreachable API, a fatal one, an interrupt.
	unreachable := &sync.Summary{Err: &apierr.Error{Service: "wecom", Endpoint: "getcheckin_monthdata", Class: apierr.Retry, Msg: "dial tcp: i/o timeout"}}
	if got := lastOf(runFailure(unreachable, 1, path)); !strings.Contains(got, "i/o timeout; WeCom stayed unreachable after the retries") {
		t.Errorf("unreachable: %s", got)
	}
	if got := lastOf(runFailure(&sync.Summary{Interrupted: true}, 130, path)); got != "Error: interrupted; checkpoints up to the interruption are saved; run sync again to finish" {
		t.Errorf("interrupted: %s", got)
	}
	if runFailure(&sync.Summary{}, 0, path) != nil {
		t.Error("success is no error")
	}
}

func TestStoreErrorDiskFull(t *testing.T) {
	err := storeError(fmt.Errorf("create store: %w", &os.PathError{Op: "open", Path: "/full/state.db", Err: syscall.ENOSPC}))
	if exitCode(err) != 1 || tryOf(err) != diskFullFix {
		t.Errorf("exit %d, try %q", exitCode(err), tryOf(err))
	}
}

func TestEstimate(t *testing.T) {
	// The example: 50 years of 300 users is 180,000 user-months,
	// 1,800 calls at 50 a minute.
	if d := estimate(300, 600, 50); d != 36*time.Minute {
		t.Errorf("estimate = %s, want 36m", d)
	}
	if d := estimate(101, 12, 60); d != 24*time.Second {
		t.Errorf("estimate = %s, want 24s (2 calls a month)", d)
	}
	if d := estimate(10, 10, 0); d != 0 {
		t.Errorf("no rate: %s", d)
	}
}

func TestAskYes(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " yes \n": true, "n\n": false, "\n": false, "": false, "yep\n": false} {
		var out bytes.Buffer
		got, err := askYes(strings.NewReader(in), &out, "2000-01 to 2026-03 is 315 months")
		if err != nil || got != want {
			t.Errorf("%q: %v %v, want %v", in, got, err, want)
		}
		if out.String() != "2000-01 to 2026-03 is 315 months.\nGo on? [y/N] " {
			t.Errorf("prompt %q", out.String())
		}
	}
	if _, err := askYes(errReader{}, &bytes.Buffer{}, "x"); err == nil {
		t.Error("a read error is returned")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("read failed") }

func TestCheckCountsInTheSingular(t *testing.T) {
	var b bytes.Buffer
	l := &checklist{w: &b}
	l.fail("jiandaoyun form", errors.New("code 8301"), "set JDY_API_KEY", exitFatal)
	err := l.result()
	if err == nil || err.Error() != "1 check failed: jiandaoyun form: code 8301; fix: set JDY_API_KEY" || exitCode(err) != exitFatal {
		t.Errorf("one: %v (exit %d)", err, exitCode(err))
	}
	l.fail("wecom token", errors.New("code 40001"), "", exitFatal)
	if err := l.result(); err == nil || !strings.HasPrefix(err.Error(), "2 checks failed (see the checklist above); the first: jiandaoyun form") {
		t.Errorf("two: %v", err)
	}
}

package sync

import (
	"errors"
	"fmt"
	"os"
	"syscall"
	"testing"

	"checkin-sync/internal/apierr"
	"checkin-sync/store"
)

func TestErrorExitCode(t *testing.T) {
	diskFull := fmt.Errorf("commit checkpoints: %w", &os.PathError{Op: "write", Path: "/var/lib/cs/state.db", Err: syscall.ENOSPC})
	unreachable := fmt.Errorf("read the form's fields: %w", &apierr.Error{Service: "jiandaoyun", Endpoint: "widget/list", Class: apierr.Retry, Msg: "dial tcp 127.0.0.1:1: connect: connection refused"})
	busy := &apierr.Error{Service: "jiandaoyun", Endpoint: "data/list", Code: 8303, HTTPStatus: 400, Class: apierr.Retry}
	for _, tc := range []struct {
		name string
		err  error
		code int
	}{
		{"nil", nil, ExitOK},
		{"disk full", diskFull, ExitPartial},
		{"quota", fmt.Errorf("x: %w", syscall.EDQUOT), ExitPartial},
		{"unreachable after retries", unreachable, ExitPartial},
		{"rate limited after retries", busy, ExitPartial},
		{"wrong secret", &apierr.Error{Service: "wecom", Code: 40001, Class: apierr.Fatal}, ExitFatal},
		{"store is a directory", fmt.Errorf("open store: /x %w", store.ErrIsDirectory), ExitUsage},
		{"store corrupt", fmt.Errorf("%w: x", store.ErrCorrupt), ExitUsage},
		{"foreign store", &store.ForeignError{}, ExitUsage},
		{"locked", &store.LockedError{}, ExitLocked},
		{"other", errors.New("boom"), ExitPartial},
	} {
		if got := ErrorExitCode(tc.err); got != tc.code {
			t.Errorf("%s: exit %d, want %d", tc.name, got, tc.code)
		}
	}
	if !DiskFull(diskFull) || DiskFull(unreachable) || !Unreachable(unreachable) || !Unreachable(busy) || Unreachable(diskFull) {
		t.Error("DiskFull/Unreachable misclassify")
	}
	if !DiskFull(errors.New("file resize error: truncate /x/state.db: no space left on device")) {
		t.Error("bbolt's resize error, whose errno is lost, is a full disk too")
	}
	if Unreachable(&apierr.Error{Service: "wecom", Code: 40001, Class: apierr.Fatal}) {
		t.Error("a fatal answer is not unreachable")
	}
}

// A run stopped by a full disk is failed with exit 1, never success or 2.
func TestVerdictDiskFull(t *testing.T) {
	s := &Summary{Err: fmt.Errorf("commit: %w", syscall.ENOSPC)}
	if outcome, code := Verdict(s); outcome != OutcomeFailed || code != ExitPartial {
		t.Errorf("got %s %d", outcome, code)
	}
}

package sync

import (
	"errors"
	"strings"
	"syscall"

	"checkin-sync/internal/apierr"
	"checkin-sync/store"
)

// Exit codes, as the README documents them.
const (
	ExitOK          = 0
	ExitPartial     = 1
	ExitUsage       = 2
	ExitLocked      = 3
	ExitFatal       = 4
	ExitInterrupted = 130
)

// Outcomes kept in the run history.
const (
	OutcomeRunning     = "running"
	OutcomeSuccess     = "success"
	OutcomePartial     = "partial"
	OutcomeFailed      = "failed"
	OutcomeInterrupted = "interrupted"
	OutcomeKilled      = "killed"
)

// Verdict is the one place that turns a run's summary into the outcome
// kept in history and the process exit code, so the two never disagree.
func Verdict(s *Summary) (outcome string, code int) {
	t := s.Totals()
	switch {
	case s.Interrupted:
		return OutcomeInterrupted, ExitInterrupted
	case s.Err != nil:
		return OutcomeFailed, ErrorExitCode(s.Err)
	case t.Failed > 0 || t.Pending > 0:
		return OutcomePartial, ExitPartial
	}
	return OutcomeSuccess, ExitOK
}

// ErrorExitCode is the exit code of an error that stopped a run: 4 for a
// fatal API error (credentials, permission, form, plan, or a request built
// wrong), 2 for a corrupt or foreign store or a store path that is a
// directory, 3 for a store held by another run, and 1 for anything else: a
// store write that failed (a full disk: see DiskFull), an API that stayed
// unreachable after its retries (see Unreachable).
func ErrorExitCode(err error) int {
	var locked *store.LockedError
	var foreign *store.ForeignError
	switch {
	case err == nil:
		return ExitOK
	case apierr.IsFatal(err):
		return ExitFatal
	case errors.As(err, &locked):
		return ExitLocked
	case errors.Is(err, store.ErrCorrupt), errors.As(err, &foreign), errors.Is(err, store.ErrNewerSchema),
		errors.Is(err, store.ErrNeedsMigration), errors.Is(err, store.ErrIsDirectory):
		return ExitUsage
	case DiskFull(err), Unreachable(err):
		return ExitPartial // a later run may not meet it: the month stays partial
	}
	return ExitPartial
}

// DiskFull reports whether err is a write refused for lack of space (or
// quota) on the disk.
func DiskFull(err error) bool {
	if err == nil {
		return false
	}
	// bbolt formats some file errors with %s (a failed resize), which drops
	// the errno; its text is still there.
	return errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EDQUOT) ||
		strings.Contains(err.Error(), syscall.ENOSPC.Error())
}

// Unreachable reports whether err is an API request that failed for a
// reason that is not the API's answer: no connection, a timeout, a 5xx, a
// rate limit that outlasted the retries. A later run may succeed.
func Unreachable(err error) bool {
	e, ok := apierr.As(err)
	if !ok || apierr.IsFatal(err) {
		return false
	}
	return e.Code == 0 || e.Class == apierr.Retry || e.Class == apierr.Unknown
}

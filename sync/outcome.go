package sync

import (
	"errors"

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
// wrong), 2 for a corrupt or foreign store, 3 for a store held by another
// run, and 1 for anything else (a store write that failed, an API that
// stayed unreachable).
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
	case errors.Is(err, store.ErrCorrupt), errors.As(err, &foreign), errors.Is(err, store.ErrNewerSchema), errors.Is(err, store.ErrNeedsMigration):
		return ExitUsage
	}
	return ExitPartial
}

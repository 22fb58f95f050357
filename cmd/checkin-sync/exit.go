package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
	"checkin-sync/store"
	"checkin-sync/sync"
)

// Exit codes, as documented in the README.
const (
	exitOK          = 0   // success (skipped users do not make a run fail)
	exitPartial     = 1   // the run finished but some records failed; also any unclassified error
	exitUsage       = 2   // usage or configuration error, bad mapping, missing form field, foreign or corrupt store
	exitLocked      = 3   // the store is locked by another process
	exitFatal       = 4   // fatal API error: credentials, permission, app or form not found, plan limits
	exitInterrupted = 130 // stopped by SIGINT/SIGTERM; checkpoints up to then are saved
)

// rank orders exit codes by severity for worst.
func rank(code int) int {
	switch code {
	case exitOK:
		return 0
	case exitPartial:
		return 2
	case exitUsage:
		return 4
	case exitLocked:
		return 6
	case exitFatal:
		return 8
	case exitInterrupted:
		return 10
	}
	return 3 // an unknown non-zero code ranks just above a partial failure
}

// worst returns the code that wins among codes: 130 > 4 > 3 > 2 > 1 > 0.
func worst(codes ...int) int {
	best := exitOK
	for _, c := range codes {
		if rank(c) > rank(best) {
			best = c
		}
	}
	return best
}

// exitError is a user-facing error that knows its exit code and, when
// there is one, the fix to suggest. It keeps its cause for errors.Is.
type exitError struct {
	code int
	err  error
	try  string
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

// ExitCode makes any package's error able to name its own code, as
// cli.ExitCoder does.
func (e *exitError) ExitCode() int { return e.code }

// Try is the suggested fix, printed as "Try: ...".
func (e *exitError) Try() string { return e.try }

// usageErr builds an exit-2 error.
func usageErr(try, format string, args ...any) error {
	return &exitError{code: exitUsage, err: fmt.Errorf(format, args...), try: try}
}

// exitCoder is implemented by errors that know their exit code: exitError,
// urfave/cli's Exit errors, and any domain error that chooses to (the
// store's lock error is expected to return exitLocked).
type exitCoder interface{ ExitCode() int }

// hinter is implemented by errors that carry a suggested fix.
type hinter interface{ Try() string }

// classify gives the exit code of one error in a chain, if it has one.
func classify(err error) (int, bool) {
	if ec, ok := err.(exitCoder); ok {
		return ec.ExitCode(), true
	}
	switch e := err.(type) {
	case *config.Error:
		return exitUsage, true
	case *apierr.Error:
		if e.Class == apierr.Fatal || e.Class == apierr.Programming {
			return exitFatal, true
		}
	}
	// Extension point: domain errors that cannot implement ExitCode
	// themselves (store corrupt or foreign → exitUsage; store locked →
	// exitLocked) are matched here by type.
	return 0, false
}

// exitCode maps an error to the process exit code. It looks at every error
// in the tree (wrapped and joined), so a fatal API error wrapped in a
// summary still exits 4; when several codes apply, the worst wins.
// Unclassified errors exit 1.
func exitCode(err error) int {
	if err == nil {
		return exitOK
	}
	var codes []int
	var visit func(error, int)
	visit = func(e error, depth int) {
		if e == nil || depth > 64 {
			return
		}
		if c, ok := classify(e); ok {
			codes = append(codes, c)
		}
		switch x := e.(type) {
		case interface{ Unwrap() []error }:
			for _, sub := range x.Unwrap() {
				visit(sub, depth+1)
			}
		case interface{ Errors() []error }: // urfave/cli's multi-error
			for _, sub := range x.Errors() {
				visit(sub, depth+1)
			}
		case interface{ Unwrap() error }:
			visit(x.Unwrap(), depth+1)
		}
	}
	visit(err, 0)
	if len(codes) == 0 {
		return exitPartial
	}
	return worst(codes...)
}

// tryOf returns the first suggested fix found in the error chain.
func tryOf(err error) string {
	var h hinter
	if errors.As(err, &h) {
		return h.Try()
	}
	return ""
}

// printError writes "Error: <message>" and, when known, "Try: <fix>".
// Continuation lines of a multi-line message are indented under it.
func printError(w io.Writer, err error) {
	var ce *config.Error
	if errors.As(err, &ce) && len(ce.Problems) > 1 {
		fmt.Fprintf(w, "Error: %s has %d problems:\n", ce.File, len(ce.Problems))
		for _, line := range strings.Split(ce.Error(), "\n") {
			fmt.Fprintf(w, "  %s\n", line)
		}
	} else {
		lines := strings.Split(err.Error(), "\n")
		fmt.Fprintf(w, "Error: %s\n", lines[0])
		for _, l := range lines[1:] {
			fmt.Fprintf(w, "       %s\n", l)
		}
	}
	if t := tryOf(err); t != "" {
		fmt.Fprintf(w, "Try: %s\n", t)
	}
}

// interruptError is the cancellation cause after SIGINT or SIGTERM.
type interruptError struct{ sig os.Signal }

func (e *interruptError) Error() string { return "interrupted (signal: " + e.sig.String() + ")" }
func (e *interruptError) ExitCode() int { return exitInterrupted }
func (e *interruptError) Try() string {
	return "run the same command again; it resumes from the saved checkpoints"
}

// storeError gives a store failure its exit code (from sync.ErrorExitCode,
// the one place that decides it) and the fix to try.
func storeError(err error) error {
	if err == nil {
		return nil
	}
	var locked *store.LockedError
	var foreign *store.ForeignError
	code := sync.ErrorExitCode(err)
	switch {
	case errors.As(err, &locked):
		return &exitError{code: code, err: err, try: "wait for that run to finish (`checkin-sync status` shows its progress); runs never wait for each other"}
	case errors.As(err, &foreign):
		return &exitError{code: code, err: err}
	case errors.Is(err, store.ErrCorrupt):
		return &exitError{code: code, err: err, try: "move the file aside and point `store:` at a new path; the next sync adopts the form's records by key"}
	case errors.Is(err, store.ErrIsDirectory):
		return &exitError{code: code, err: err, try: "point `store:` at a file inside that directory, for example store: " + filepath.Join(storeDirOf(err), "checkin-sync.db")}
	case errors.Is(err, store.ErrNewerSchema), errors.Is(err, store.ErrNeedsMigration):
		return &exitError{code: code, err: err}
	case sync.DiskFull(err):
		return &exitError{code: code, err: err, try: diskFullFix}
	default:
		return err
	}
}

// diskFullFix is what to do after a store write found the disk full.
const diskFullFix = "free space on that disk (or move `store:` to a disk with room), then run sync again: it finishes the interrupted months"

// storeDirOf recovers the directory named in an ErrIsDirectory message,
// "open store: <path> is a directory...", for the example in the fix.
func storeDirOf(err error) string {
	msg := strings.TrimPrefix(err.Error(), "open store: ")
	if i := strings.Index(msg, " "+store.ErrIsDirectory.Error()); i > 0 {
		return msg[:i]
	}
	return "<directory>"
}

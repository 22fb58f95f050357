// Package apierr is the one error type both API clients return. Each client
// classifies an error once, where it arises; the engine decides what to do
// from the class alone.
package apierr

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Class says what the caller should do about an error.
type Class int

const (
	// Retry: transient (rate limit, busy, network); back off and try again.
	Retry Class = iota + 1
	// TokenExpired: drop the cached token, fetch a new one, retry once.
	TokenExpired
	// Record: permanent for the records in this request; mark them failed
	// and go on with the rest.
	Record
	// Fatal: credentials, permission, app, form or plan; stop the run.
	Fatal
	// Programming: the request was built wrong; stop the run.
	Programming
	// Unknown: a write was sent but its answer was lost, so it may or may
	// not have been applied. Never resend blindly.
	Unknown
	// Missing: the record addressed by data_id no longer exists.
	Missing
	// BadUser: one or more userids in the request are unknown or outside
	// the app's visible range.
	BadUser
	// NoCompleteDay: the requested range has nothing to fetch yet (WeCom
	// refused a one-day range of the current month); skip the month with
	// a warning and go on.
	NoCompleteDay
)

var classNames = map[Class]string{
	Retry: "retry", TokenExpired: "token-expired", Record: "record", Fatal: "fatal",
	Programming: "programming", Unknown: "unknown-outcome", Missing: "missing", BadUser: "bad-user",
	NoCompleteDay: "no-complete-day",
}

func (c Class) String() string {
	if s, ok := classNames[c]; ok {
		return s
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Error is an API or transport failure with enough context to act on.
type Error struct {
	Service    string        // "wecom" or "jiandaoyun"
	Endpoint   string        // e.g. "getcheckin_monthdata", "data/batch_create"
	Code       int           // the API's code; 0 for HTTP and network failures
	HTTPStatus int           // 0 when no response arrived
	Msg        string        // the API's message, or the transport error text
	Hint       string        // what the user should do, in plain words
	Class      Class         // what the caller should do
	Wait       time.Duration // least wait before a retry (WeCom 45009)
	Err        error         // underlying cause, if any
}

func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Service)
	b.WriteByte(' ')
	b.WriteString(e.Endpoint)
	b.WriteString(": ")
	switch {
	case e.Code != 0:
		fmt.Fprintf(&b, "code %d", e.Code)
		if e.Msg != "" {
			fmt.Fprintf(&b, " (%s)", e.Msg)
		}
	case e.HTTPStatus != 0:
		fmt.Fprintf(&b, "HTTP %d", e.HTTPStatus)
		if e.Msg != "" {
			fmt.Fprintf(&b, " (%s)", e.Msg)
		}
	default:
		b.WriteString(e.Msg)
	}
	if e.Class == Unknown {
		b.WriteString("; outcome unknown: the write may or may not have been applied")
	}
	if e.Hint != "" {
		b.WriteString(": ")
		b.WriteString(e.Hint)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }

// As returns the *Error inside err, if any.
func As(err error) (*Error, bool) {
	var e *Error
	if errors.As(err, &e) {
		return e, true
	}
	return nil, false
}

// ClassOf returns the class of err, or 0 when err is not an *Error.
func ClassOf(err error) Class {
	if e, ok := As(err); ok {
		return e.Class
	}
	return 0
}

// CodeOf returns the API code inside err, or 0. It is for display and
// alert de-duplication only: callers decide what to do from the class,
// through the Is* helpers below.
func CodeOf(err error) int {
	if e, ok := As(err); ok {
		return e.Code
	}
	return 0
}

// IsFatal reports whether err should stop the run: class Fatal or
// Programming.
func IsFatal(err error) bool {
	c := ClassOf(err)
	return c == Fatal || c == Programming
}

// IsRetry reports whether err is transient and nothing it concerns was
// written: the request was refused (rate limit, busy) or never sent, and
// the client's own retries ran out. On a batch_create this means "not
// processed": the batch may be sent again with the same transaction_id.
func IsRetry(err error) bool { return ClassOf(err) == Retry }

// IsUnknownOutcome reports whether a write may or may not have been
// applied (a lost answer, a timeout, a 5xx, an unreadable body, or on
// batch_create any answer that is neither success, not processed nor
// rejected). The caller must resolve it by looking the keys up; it must
// never resend blindly.
func IsUnknownOutcome(err error) bool { return ClassOf(err) == Unknown }

// IsRejected reports whether the API refused the records in the request
// (class Record): nothing was written, and sending the same records again
// will fail again.
func IsRejected(err error) bool { return ClassOf(err) == Record }

// IsMissing reports whether the record addressed by data_id no longer
// exists (deleted by hand): resolve its key again.
func IsMissing(err error) bool { return ClassOf(err) == Missing }

// IsBadUser reports whether a request failed on a userid that is unknown
// or outside the app's visible range.
func IsBadUser(err error) bool { return ClassOf(err) == BadUser }

// IsNoCompleteDay reports whether the range asked for has nothing to fetch
// yet: skip that month with a warning and go on with the run.
func IsNoCompleteDay(err error) bool { return ClassOf(err) == NoCompleteDay }

package apierr

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestErrorNamesEndpointCodeAndHint(t *testing.T) {
	e := &Error{Service: "wecom", Endpoint: "gettoken", Code: 60020, Msg: "not allow to access from your ip",
		Hint: "add this server's IP to the app's trusted IPs", Class: Fatal}
	want := "wecom gettoken: code 60020 (not allow to access from your ip): add this server's IP to the app's trusted IPs"
	if e.Error() != want {
		t.Errorf("got  %q\nwant %q", e.Error(), want)
	}
	lost := &Error{Service: "jiandaoyun", Endpoint: "data/batch_create", HTTPStatus: 502, Class: Unknown}
	if !strings.Contains(lost.Error(), "HTTP 502") || !strings.Contains(lost.Error(), "outcome unknown") {
		t.Errorf("unknown outcome: %q", lost.Error())
	}
}

func TestClassIsFoundThroughWrapping(t *testing.T) {
	base := errors.New("connection reset")
	e := &Error{Class: Retry, Code: 0, Err: base}
	wrapped := fmt.Errorf("look up keys: %w", e)
	if ClassOf(wrapped) != Retry || !errors.Is(wrapped, base) {
		t.Fatal("class or cause lost through wrapping")
	}
	if ClassOf(base) != 0 || CodeOf(base) != 0 {
		t.Fatal("a plain error has no class or code")
	}
	if !IsFatal(fmt.Errorf("x: %w", &Error{Class: Programming})) || IsFatal(wrapped) {
		t.Fatal("IsFatal")
	}
	if Unknown.String() != "unknown-outcome" {
		t.Errorf("class name %q", Unknown.String())
	}
}

func TestBehaviourHelpers(t *testing.T) {
	helpers := map[string]func(error) bool{
		"IsFatal": IsFatal, "IsRetry": IsRetry, "IsUnknownOutcome": IsUnknownOutcome, "IsRejected": IsRejected,
		"IsMissing": IsMissing, "IsBadUser": IsBadUser, "IsNoCompleteDay": IsNoCompleteDay,
	}
	want := map[Class]string{
		Retry: "IsRetry", Record: "IsRejected", Fatal: "IsFatal", Programming: "IsFatal",
		Unknown: "IsUnknownOutcome", Missing: "IsMissing", BadUser: "IsBadUser", NoCompleteDay: "IsNoCompleteDay",
		TokenExpired: "",
	}
	for class, name := range want {
		err := fmt.Errorf("wrapped: %w", &Error{Class: class})
		for h, f := range helpers {
			if got := f(err); got != (h == name) {
				t.Errorf("%s(%v) = %v", h, class, got)
			}
		}
	}
	for h, f := range helpers {
		if f(nil) || f(errors.New("plain")) {
			t.Errorf("%s is true for an error without a class", h)
		}
	}
	if NoCompleteDay.String() != "no-complete-day" {
		t.Errorf("class name %q", NoCompleteDay.String())
	}
}

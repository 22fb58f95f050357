package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
)

// lockedError stands in for the store's lock error, which names its own
// exit code.
type lockedError struct{}

func (lockedError) Error() string { return "store is locked by pid 42" }
func (lockedError) ExitCode() int { return exitLocked }

func TestExitCode(t *testing.T) {
	cfgErr := &config.Error{File: "c.yaml", Problems: []config.Problem{{Line: 1, Key: "k", Msg: "bad"}}}
	fatal := &apierr.Error{Service: "wecom", Endpoint: "gettoken", Code: 40001, Class: apierr.Fatal}
	programming := &apierr.Error{Service: "jiandaoyun", Endpoint: "data/update", Code: 4815, Class: apierr.Programming}
	record := &apierr.Error{Service: "jiandaoyun", Endpoint: "data/update", Code: 4000, Class: apierr.Record}
	interrupted := &interruptError{sig: os.Interrupt}
	for _, tc := range []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, exitOK},
		{"plain", errors.New("boom"), exitPartial},
		{"record class", record, exitPartial},
		{"config", cfgErr, exitUsage},
		{"wrapped config", fmt.Errorf("load: %w", cfgErr), exitUsage},
		{"usage", usageErr("", "bad flag"), exitUsage},
		{"cli exit", cli.Exit("x", 3), exitLocked},
		{"locked", fmt.Errorf("open store: %w", lockedError{}), exitLocked},
		{"fatal", fmt.Errorf("sync: %w", fatal), exitFatal},
		{"programming", programming, exitFatal},
		{"interrupted", interrupted, exitInterrupted},
		{"joined config and fatal", errors.Join(cfgErr, fatal), exitFatal},
		{"joined locked and config", errors.Join(cfgErr, lockedError{}), exitLocked},
		{"joined interrupt and fatal", errors.Join(fmt.Errorf("x: %w", fatal), interrupted), exitInterrupted},
		{"partial wrapping fatal", &exitError{code: exitPartial, err: fatal}, exitFatal},
		{"canceled without a signal", context.Canceled, exitPartial},
	} {
		if got := exitCode(tc.err); got != tc.want {
			t.Errorf("%s: exitCode = %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestWorst(t *testing.T) {
	for _, tc := range []struct {
		codes []int
		want  int
	}{
		{nil, 0},
		{[]int{0}, 0},
		{[]int{1, 0}, 1},
		{[]int{2, 1}, 2},
		{[]int{1, 3, 2}, 3},
		{[]int{4, 3, 2, 1}, 4},
		{[]int{0, 130, 4}, 130},
		{[]int{130, 1}, 130},
		{[]int{7, 1}, 7},
		{[]int{7, 2}, 2},
	} {
		if got := worst(tc.codes...); got != tc.want {
			t.Errorf("worst(%v) = %d, want %d", tc.codes, got, tc.want)
		}
	}
}

func TestPrintError(t *testing.T) {
	var b bytes.Buffer
	printError(&b, usageErr("pass --force", "%s already exists", "c.yaml"))
	if got := b.String(); got != "Error: c.yaml already exists\nTry: pass --force\n" {
		t.Errorf("got %q", got)
	}

	b.Reset()
	printError(&b, errors.New("first\nsecond"))
	if got := b.String(); got != "Error: first\n       second\n" {
		t.Errorf("got %q", got)
	}

	b.Reset()
	ce := &config.Error{File: "c.yaml", Problems: []config.Problem{
		{Line: 2, Key: "a", Msg: "bad", Fix: "fix a"},
		{Line: 5, Key: "b", Msg: "worse"},
	}}
	printError(&b, ce)
	want := "Error: c.yaml has 2 problems:\n  c.yaml:2: a: bad; Fix: fix a\n  c.yaml:5: b: worse\n"
	if got := b.String(); got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}

	b.Reset()
	printError(&b, &apierr.Error{Service: "wecom", Endpoint: "gettoken", Code: 40001, Msg: "invalid secret", Hint: "check wecom.secret", Class: apierr.Fatal})
	if got := b.String(); !strings.HasPrefix(got, "Error: wecom gettoken: code 40001") || strings.Contains(got, "Try:") {
		t.Errorf("got %q", got)
	}
}

func TestBuildLogger(t *testing.T) {
	var b bytes.Buffer
	log, err := buildLogger(&b, "warn", "json")
	if err != nil {
		t.Fatal(err)
	}
	log.Info().Msg("hidden")
	log.Warn().Msg("shown")
	if got := b.String(); strings.Contains(got, "hidden") || !strings.Contains(got, `"level":"warn"`) || !strings.Contains(got, `"message":"shown"`) {
		t.Errorf("json log: %q", got)
	}

	b.Reset()
	log, _ = buildLogger(&b, "debug", "console")
	log.Debug().Msg("hello")
	if got := b.String(); !strings.Contains(got, "hello") || strings.HasPrefix(got, "{") || strings.Contains(got, "\x1b[") {
		t.Errorf("console log (no colour off a terminal): %q", got)
	}

	b.Reset()
	log, _ = buildLogger(&b, "info", "auto")
	log.Info().Msg("auto")
	if got := b.String(); !strings.HasPrefix(got, "{") {
		t.Errorf("auto off a terminal should be JSON: %q", got)
	}

	for _, bad := range [][2]string{{"trace", "json"}, {"info", "text"}} {
		if _, err := buildLogger(&b, bad[0], bad[1]); exitCode(err) != exitUsage {
			t.Errorf("%v: %v", bad, err)
		}
	}
}

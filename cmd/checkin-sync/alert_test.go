package main

import (
	"strings"
	"testing"
	"time"

	"checkin-sync/sync"
)

func TestDecideAlert(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 2, 0, 0, 0, time.UTC)
	var st alertState
	step := func(exit, code int, at time.Time) string {
		kind, next := decideAlert(st, exit, code, at)
		st = next
		return kind
	}
	if k := step(exitOK, 0, t0); k != "" {
		t.Errorf("success with no failure before: %q", k)
	}
	if k := step(exitFatal, 40001, t0); k != alertFailure {
		t.Errorf("first failure: %q", k)
	}
	if k := step(exitFatal, 40001, t0.Add(time.Hour)); k != "" {
		t.Errorf("the same failure an hour later was sent again: %q", k)
	}
	if k := step(exitFatal, 48002, t0.Add(2*time.Hour)); k != alertFailure {
		t.Errorf("a different failure: %q", k)
	}
	if k := step(exitFatal, 48002, t0.Add(27*time.Hour)); k != alertFailure {
		t.Errorf("the same failure after 24 hours: %q", k)
	}
	if k := step(exitPartial, 0, t0.Add(28*time.Hour)); k != alertFailure {
		t.Errorf("a partial run after a fatal one: %q", k)
	}
	if k := step(exitOK, 0, t0.Add(29*time.Hour)); k != alertRecover {
		t.Errorf("recovery: %q", k)
	}
	if k := step(exitOK, 0, t0.Add(30*time.Hour)); k != "" {
		t.Errorf("a second success: %q", k)
	}
	if k := step(exitInterrupted, 0, t0.Add(31*time.Hour)); k != "" {
		t.Errorf("an interrupted run: %q", k)
	}
}

func TestAlertTextIsBounded(t *testing.T) {
	s := &sync.Summary{RunID: "r1", Months: []*sync.MonthSummary{{Month: "2026-02", Failed: 500}}}
	for i := 0; i < 500; i++ {
		s.Failures = append(s.Failures, sync.Failure{Key: "user|2026-02", Error: strings.Repeat("x", 100)})
	}
	text := alertText(alertFailure, s, exitPartial)
	if !strings.Contains(text, "and 490 more") || len(text) > 4096 {
		t.Errorf("alert text: %d bytes\n%s", len(text), text)
	}
}

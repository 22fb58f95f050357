package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"checkin-sync/internal/apierr"
)

func TestDoRetriesOnlyTheRetryClass(t *testing.T) {
	p := Policy{Base: time.Microsecond, MaxAttempts: 4}
	calls, retries := 0, 0
	err := p.Do(context.Background(), func(context.Context) error {
		calls++
		if calls < 3 {
			return &apierr.Error{Class: apierr.Retry}
		}
		return nil
	}, func(error, time.Duration) { retries++ })
	if err != nil || calls != 3 || retries != 2 {
		t.Fatalf("err %v, calls %d, retries %d", err, calls, retries)
	}

	calls = 0
	fatal := &apierr.Error{Class: apierr.Fatal, Code: 40001}
	err = p.Do(context.Background(), func(context.Context) error { calls++; return fatal }, nil)
	if !errors.Is(err, fatal) || calls != 1 {
		t.Fatalf("fatal error retried: %d calls", calls)
	}

	calls = 0
	err = p.Do(context.Background(), func(context.Context) error { calls++; return &apierr.Error{Class: apierr.Retry} }, nil)
	if apierr.ClassOf(err) != apierr.Retry || calls != 4 {
		t.Fatalf("attempts: %d calls, err %v", calls, err)
	}
}

func TestDoHonoursTheBlockWaitAndTheContext(t *testing.T) {
	p := Policy{Base: time.Microsecond, MaxAttempts: 3}
	var waits []time.Duration
	_ = p.Do(context.Background(), func(context.Context) error {
		return &apierr.Error{Class: apierr.Retry, Wait: 3 * time.Millisecond}
	}, func(_ error, d time.Duration) { waits = append(waits, d) })
	for _, w := range waits {
		if w < 3*time.Millisecond {
			t.Errorf("waited %s after an error that asked for 3ms", w)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls := 0
	_ = Policy{Base: time.Hour, MaxAttempts: 5}.Do(ctx, func(context.Context) error {
		calls++
		return &apierr.Error{Class: apierr.Retry}
	}, nil)
	if calls != 1 {
		t.Errorf("kept retrying after the context ended: %d calls", calls)
	}
}

func TestBackoffIsCappedFullJitter(t *testing.T) {
	p := Policy{Base: 10 * time.Millisecond, Cap: 40 * time.Millisecond}
	for n := 1; n < 10; n++ {
		for i := 0; i < 100; i++ {
			ceil := min(40*time.Millisecond, 10*time.Millisecond<<(n-1))
			if d := p.Backoff(n); d < 0 || d >= ceil {
				t.Fatalf("Backoff(%d) = %s, want [0, %s)", n, d, ceil)
			}
		}
	}
}

func TestCounter(t *testing.T) {
	var c Counter
	c.Call("a")
	c.Call("a")
	c.Retry("a")
	c.Call("b")
	s := c.Snapshot()
	if s["a"] != (EndpointStats{Calls: 2, Retries: 1}) || s["b"].Calls != 1 {
		t.Fatalf("snapshot %v", s)
	}
	if eps := c.Endpoints(); len(eps) != 2 || eps[0] != "a" {
		t.Fatalf("endpoints %v", eps)
	}
}

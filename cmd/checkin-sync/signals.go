package main

import (
	"context"
	"os/signal"
	"syscall"
	"time"
)

// A closed stdout or stderr (`checkin-sync sync -v | head -1`) must not
// stop a sync half-way: by default Go dies of SIGPIPE at the first write to
// a closed pipe on fd 1 or 2 (exit 141, no message, a run left `running`).
// Ignored, such a write returns EPIPE instead: the printers drop their
// output (see reporter.plan) and the run finishes with its own exit code.
func init() {
	signal.Ignore(syscall.SIGPIPE)
}

// drainTime is how long requests in flight may finish after a signal.
const drainTime = 10 * time.Second

// drainContext returns a context for requests that outlives stop (done at
// the first SIGINT or SIGTERM, when main cancels it) by drainTime: no new
// request starts after stop, and requests in flight are abandoned after
// drainTime. An abandoned create stays pending and the next run resolves
// it. A second signal exits at once (see main).
func drainContext(stop context.Context) (context.Context, context.CancelFunc) {
	hard, cancel := context.WithCancel(context.WithoutCancel(stop))
	go func() {
		select {
		case <-hard.Done():
			return
		case <-stop.Done():
		}
		t := time.NewTimer(drainTime)
		defer t.Stop()
		select {
		case <-hard.Done():
		case <-t.C:
			cancel()
		}
	}()
	return hard, cancel
}

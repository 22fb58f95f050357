// Package retry runs an API call again after transient failures, with
// exponential backoff and full jitter, and counts calls and retries per
// endpoint for the run summary.
package retry

import (
	"context"
	"math/rand/v2"
	"sort"
	"sync"
	"time"

	"checkin-sync/internal/apierr"
)

// Policy is the retry configuration (the config's `retry:` section).
type Policy struct {
	Base        time.Duration // first backoff ceiling
	MaxAttempts int           // attempts per request, including the first
	BlockWait   time.Duration // wait after WeCom 45009
	Cap         time.Duration // largest single backoff; 30s when zero
}

// Default is the policy when the config says nothing.
func Default() Policy {
	return Policy{Base: time.Second, MaxAttempts: 6, BlockWait: 60 * time.Second, Cap: 30 * time.Second}
}

// Backoff returns the wait before retry number n (1-based): a uniform
// random duration in [0, min(Cap, Base·2^(n-1))).
func (p Policy) Backoff(n int) time.Duration {
	capd := p.Cap
	if capd <= 0 {
		capd = 30 * time.Second
	}
	ceil := p.Base
	for i := 1; i < n && ceil < capd; i++ {
		ceil *= 2
	}
	if ceil > capd {
		ceil = capd
	}
	if ceil <= 0 {
		return 0
	}
	return rand.N(ceil)
}

// Do calls op until it succeeds, fails with an error whose class is not
// apierr.Retry, attempts run out, or ctx ends. An error with a Wait (45009)
// waits at least that long. onRetry, if set, is told of each retry.
func (p Policy) Do(ctx context.Context, op func(ctx context.Context) error, onRetry func(err error, wait time.Duration)) error {
	attempts := p.MaxAttempts
	if attempts < 1 {
		attempts = 1
	}
	var err error
	for n := 1; ; n++ {
		err = op(ctx)
		if err == nil || apierr.ClassOf(err) != apierr.Retry || n >= attempts {
			return err
		}
		wait := p.Backoff(n)
		if e, ok := apierr.As(err); ok && e.Wait > wait {
			wait = e.Wait
		}
		if onRetry != nil {
			onRetry(err, wait)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

// EndpointStats are the counts for one endpoint.
type EndpointStats struct {
	Calls   int `json:"calls"`
	Retries int `json:"retries"`
}

// Counter counts calls and retries per endpoint. Safe for concurrent use.
type Counter struct {
	mu sync.Mutex
	m  map[string]*EndpointStats
}

// Call records one request sent to endpoint.
func (c *Counter) Call(endpoint string) { c.add(endpoint, 1, 0) }

// Retry records one retry of a request to endpoint.
func (c *Counter) Retry(endpoint string) { c.add(endpoint, 0, 1) }

func (c *Counter) add(endpoint string, calls, retries int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = map[string]*EndpointStats{}
	}
	s := c.m[endpoint]
	if s == nil {
		s = &EndpointStats{}
		c.m[endpoint] = s
	}
	s.Calls += calls
	s.Retries += retries
}

// Snapshot returns a copy of the counts.
func (c *Counter) Snapshot() map[string]EndpointStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]EndpointStats, len(c.m))
	for k, v := range c.m {
		out[k] = *v
	}
	return out
}

// Endpoints lists the endpoints seen, sorted.
func (c *Counter) Endpoints() []string {
	snap := c.Snapshot()
	out := make([]string, 0, len(snap))
	for k := range snap {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

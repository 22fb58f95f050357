package fakeapi

import (
	"math/rand/v2"
	"net/http"
	"sync"
	"time"
)

// LatencyRange is how long an API takes to answer: each request waits a
// duration drawn uniformly from [Min, Max] before it is handled, so that
// benchmarks see the round trips of a real service instead of loopback's.
// The wait comes after the rate limits have counted the request, as a
// service's own work does: drawn before, it would reorder requests paced
// at the limit and make bursts no client sent.
// A negative Min counts as 0, and a Max below Min as Min.
type LatencyRange struct {
	Min, Max time.Duration
}

func (r LatencyRange) draw() time.Duration {
	lo := max(r.Min, 0)
	hi := max(r.Max, lo)
	if hi == lo {
		return lo
	}
	return lo + time.Duration(rand.Int64N(int64(hi-lo)+1))
}

// apiLatency holds the latency of each API. Its zero value adds none.
type apiLatency struct {
	mu         sync.Mutex
	wecom, jdy LatencyRange
}

func (a *apiLatency) set(wecom, jdy LatencyRange) {
	a.mu.Lock()
	a.wecom, a.jdy = wecom, jdy
	a.mu.Unlock()
}

// of draws the latency of one request to ep. The group robot is not the
// API being measured, so its webhook gets none.
func (a *apiLatency) of(ep string) time.Duration {
	if ep == EndpointWebhook {
		return 0
	}
	a.mu.Lock()
	r := a.jdy
	if wecomEndpoints[ep] {
		r = a.wecom
	}
	a.mu.Unlock()
	return r.draw()
}

// SetLatency replaces the latency of every WeCom endpoint but the webhook
// and of every Jiandaoyun endpoint, the legacy data_create included.
// LatencyRange{} switches it off. Requests already waiting keep their
// draw. Safe for concurrent use.
func (s *Server) SetLatency(wecom, jdy LatencyRange) { s.latency.set(wecom, jdy) }

// serviceDelay waits out the API's latency for one request that passed
// the rate limits; false when the client went away meanwhile.
func (s *Server) serviceDelay(r *http.Request, ep string) bool {
	d := s.latency.of(ep)
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

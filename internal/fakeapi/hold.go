package fakeapi

import (
	"net/http"
	"sync"
)

// hold is one call that HoldNext will stop at the fake.
type hold struct {
	entered chan struct{}
	release chan struct{}
	once    sync.Once
}

// HoldNext holds the next call to endpoint (an endpoint name such as
// "data/batch_create" or "gettoken") inside the fake: the call is counted,
// entered is closed, and the call waits there until release is called or
// its client gives up. Then it goes on as any other call would: faults,
// latency, then the endpoint itself. A test uses it to know that a client
// is inside a request, and to keep it there for as long as the test needs,
// without timing. Holds on one endpoint queue up in order; release may be
// called more than once and from any goroutine.
func (s *Server) HoldNext(endpoint string) (entered <-chan struct{}, release func()) {
	h := &hold{entered: make(chan struct{}), release: make(chan struct{})}
	fs := s.faults
	fs.mu.Lock()
	if fs.holds == nil {
		fs.holds = make(map[string][]*hold)
	}
	fs.holds[endpoint] = append(fs.holds[endpoint], h)
	fs.mu.Unlock()
	return h.entered, func() { h.once.Do(func() { close(h.release) }) }
}

// takeHold pops the next hold queued for ep, if any.
func (fs *faultState) takeHold(ep string) *hold {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	q := fs.holds[ep]
	if len(q) == 0 {
		return nil
	}
	if len(q) == 1 {
		delete(fs.holds, ep)
	} else {
		fs.holds[ep] = q[1:]
	}
	return q[0]
}

// wait signals that the call has entered and blocks until the test
// releases it; false means the client went away first.
func (h *hold) wait(r *http.Request) bool {
	close(h.entered)
	select {
	case <-h.release:
		return true
	case <-r.Context().Done():
		return false
	}
}

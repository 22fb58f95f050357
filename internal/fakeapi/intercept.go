package fakeapi

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"time"
)

// Interceptor serves a Server's handler on an address of its own, with
// knobs that act on one chosen call rather than on a share of calls: lose
// the answer of exactly the next call to an endpoint, or hold a call at a
// gate before it reaches the fake or after the fake has handled it. Tests
// use the gates to order events between the tool and the fake without
// sleeping. Several interceptors may front one Server, so that two
// clients of one form can be told apart and held separately.
type Interceptor struct {
	inner http.Handler

	mu    sync.Mutex
	steps map[string][]Step // endpoint -> steps for its next calls, in order

	srvMu sync.Mutex
	srv   *http.Server
}

// Step is what the interceptor does to one call of an endpoint. The zero
// Step passes the call through untouched.
type Step struct {
	// Before holds the call before it reaches the fake, until released
	// or until the client goes away (then the fake never sees it).
	Before *Gate
	// After lets the fake handle the call (a write commits), then holds
	// its answer until released; a client that goes away meanwhile never
	// gets it.
	After *Gate
	// Lose lets the fake handle the call (a write commits), then drops
	// the connection without an answer: a lost acknowledgement.
	Lose bool
}

// NewInterceptor fronts s; call Start to listen.
func NewInterceptor(s *Server) *Interceptor {
	return &Interceptor{inner: s.Handler(), steps: make(map[string][]Step)}
}

// Next queues steps for the next calls to endpoint (an endpoint name as
// the Server counts it, e.g. "data/batch_create"), one step per call,
// behind steps queued earlier.
func (i *Interceptor) Next(endpoint string, steps ...Step) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.steps[endpoint] = append(i.steps[endpoint], steps...)
}

// LoseNext loses the answers of the next `times` calls to endpoint, after
// the fake has handled them.
func (i *Interceptor) LoseNext(endpoint string, times int) {
	for n := 0; n < times; n++ {
		i.Next(endpoint, Step{Lose: true})
	}
}

// Pending is the number of queued steps not yet used by a call.
func (i *Interceptor) Pending(endpoint string) int {
	i.mu.Lock()
	defer i.mu.Unlock()
	return len(i.steps[endpoint])
}

func (i *Interceptor) pop(ep string) (Step, bool) {
	i.mu.Lock()
	defer i.mu.Unlock()
	q := i.steps[ep]
	if len(q) == 0 {
		return Step{}, false
	}
	if len(q) == 1 {
		delete(i.steps, ep)
	} else {
		i.steps[ep] = q[1:]
	}
	return q[0], true
}

// Start listens on 127.0.0.1 on a free port and returns the base URL.
func (i *Interceptor) Start() (string, error) {
	i.srvMu.Lock()
	defer i.srvMu.Unlock()
	if i.srv != nil {
		return "", errors.New("fakeapi: interceptor already started")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("fakeapi: interceptor listen: %w", err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(i.serve), ReadHeaderTimeout: 10 * time.Second}
	i.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops the listener and drops its connections; calls held at a
// gate see their client gone.
func (i *Interceptor) Close() {
	i.srvMu.Lock()
	srv := i.srv
	i.srv = nil
	i.srvMu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

func (i *Interceptor) serve(w http.ResponseWriter, r *http.Request) {
	st, ok := i.pop(interceptedEndpoint(r.URL.Path))
	if !ok || (st.Before == nil && st.After == nil && !st.Lose) {
		i.inner.ServeHTTP(w, r)
		return
	}
	if st.Before != nil && !st.Before.hold(r) {
		return
	}
	if st.After == nil && !st.Lose {
		i.inner.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	i.inner.ServeHTTP(rec, r)
	if st.After != nil && !st.After.hold(r) {
		return
	}
	if st.Lose {
		dropConnection(w)
		return
	}
	for k, v := range rec.Header() {
		w.Header()[k] = v
	}
	w.WriteHeader(rec.Code)
	_, _ = w.Write(rec.Body.Bytes())
}

// interceptedEndpoint names a request path as the Server's counters do.
func interceptedEndpoint(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/v5/app/entry/"):
		return strings.TrimPrefix(path, "/api/v5/app/entry/")
	case strings.HasPrefix(path, "/api/v2/"):
		return EndpointLegacyCreate
	case strings.HasPrefix(path, "/cgi-bin/checkin/"):
		return strings.TrimPrefix(path, "/cgi-bin/checkin/")
	case strings.HasPrefix(path, "/cgi-bin/"):
		return strings.TrimPrefix(path, "/cgi-bin/")
	}
	return path
}

// Gate holds one call. Arrived is closed when the call reaches the gate;
// Release lets it go on. Releasing before the call arrives lets it pass
// without waiting.
type Gate struct {
	arrived, release chan struct{}
	arriveOnce       sync.Once
	releaseOnce      sync.Once
}

// NewGate returns a closed gate.
func NewGate() *Gate {
	return &Gate{arrived: make(chan struct{}), release: make(chan struct{})}
}

// Arrived is closed once a call waits at the gate.
func (g *Gate) Arrived() <-chan struct{} { return g.arrived }

// Release opens the gate; it may be called more than once.
func (g *Gate) Release() { g.releaseOnce.Do(func() { close(g.release) }) }

// hold waits for Release; false means the client went away first.
func (g *Gate) hold(r *http.Request) bool {
	g.arriveOnce.Do(func() { close(g.arrived) })
	select {
	case <-g.release:
		return true
	case <-r.Context().Done():
		return false
	}
}

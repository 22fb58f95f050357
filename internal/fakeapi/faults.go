package fakeapi

import (
	"math/rand"
	"net/http"
	"sync"
	"time"
)

// Faults are injected failures. Probabilities are drawn from a math/rand
// seeded with Options.Seed, so a sequential run replays exactly.
type Faults struct {
	RateLimit   float64       // WeCom 45009 / Jiandaoyun 8303
	Busy        float64       // WeCom -1 / Jiandaoyun 9007 or HTTP 429
	ServerError float64       // HTTP 502 with an HTML body, as from a gateway
	LostAck     float64       // writes commit, then the connection drops unanswered; reads drop unanswered
	Latency     time.Duration // added before every affected request, honouring its context
	Endpoints   []string      // affected endpoint names; empty means all
}

type faultAction int

const (
	faultNone faultAction = iota
	faultRateLimit
	faultBusy
	faultBusy429
	faultServerError
)

type faultState struct {
	mu     sync.Mutex
	f      Faults
	only   map[string]bool
	rng    *rand.Rand
	forced map[string][]int   // endpoint -> queued codes
	holds  map[string][]*hold // endpoint -> queued HoldNext gates
}

func newFaultState(seed int64) *faultState {
	return &faultState{rng: rand.New(rand.NewSource(seed)), forced: make(map[string][]int)}
}

// SetFaults replaces the fault settings; Faults{} switches them off.
func (s *Server) SetFaults(f Faults) {
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	fs.f = f
	fs.only = nil
	if len(f.Endpoints) > 0 {
		fs.only = make(map[string]bool, len(f.Endpoints))
		for _, e := range f.Endpoints {
			fs.only[e] = true
		}
	}
}

// FailNext makes the next `times` calls to endpoint answer with code: a
// WeCom errcode in HTTP 200, a Jiandaoyun HTTP 400 {code,msg}, or for 429
// and 502 that HTTP status. Calls queue up behind earlier FailNext codes.
func (s *Server) FailNext(endpoint string, code int, times int) {
	fs := s.faults
	fs.mu.Lock()
	defer fs.mu.Unlock()
	for i := 0; i < times; i++ {
		fs.forced[endpoint] = append(fs.forced[endpoint], code)
	}
}

type faultDecision struct {
	latency time.Duration
	forced  int
	action  faultAction
	lostAck bool
}

// decide draws the faults for one call. Draws happen in a fixed order so a
// sequential run is reproducible from the seed.
func (fs *faultState) decide(ep string) faultDecision {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	var d faultDecision
	if q := fs.forced[ep]; len(q) > 0 {
		d.forced = q[0]
		if len(q) == 1 {
			delete(fs.forced, ep)
		} else {
			fs.forced[ep] = q[1:]
		}
	}
	f := fs.f
	if fs.only != nil && !fs.only[ep] {
		return d
	}
	d.latency = f.Latency
	if f.RateLimit > 0 || f.Busy > 0 || f.ServerError > 0 {
		u := fs.rng.Float64()
		switch {
		case u < f.RateLimit:
			d.action = faultRateLimit
		case u < f.RateLimit+f.Busy:
			d.action = faultBusy
			if fs.rng.Intn(2) == 1 {
				d.action = faultBusy429
			}
		case u < f.RateLimit+f.Busy+f.ServerError:
			d.action = faultServerError
		}
	}
	if f.LostAck > 0 && fs.rng.Float64() < f.LostAck {
		d.lostAck = true
	}
	return d
}

// begin counts the call and applies latency, forced codes and random
// faults. ok=false means the request was answered or dropped here.
// dropAfter asks a write handler to commit and then drop the connection.
func (s *Server) begin(w http.ResponseWriter, r *http.Request, ep string, write bool) (dropAfter, ok bool) {
	s.countCall(ep)
	if h := s.faults.takeHold(ep); h != nil && !h.wait(r) {
		return false, false
	}
	d := s.faults.decide(ep)
	if d.latency > 0 {
		t := time.NewTimer(d.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return false, false
		}
	}
	wecom := wecomEndpoints[ep]
	if d.forced != 0 {
		switch {
		case d.forced == http.StatusBadGateway:
			writeBadGateway(w)
		case d.forced == http.StatusTooManyRequests:
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		case wecom:
			wecomError(w, d.forced, "")
		default:
			jdyError(w, d.forced, "")
		}
		return false, false
	}
	switch d.action {
	case faultRateLimit:
		if wecom {
			wecomError(w, 45009, "")
		} else {
			jdyError(w, 8303, "")
		}
		return false, false
	case faultBusy, faultBusy429:
		switch {
		case wecom:
			wecomError(w, -1, "")
		case d.action == faultBusy429:
			http.Error(w, "Too Many Requests", http.StatusTooManyRequests)
		default:
			jdyError(w, 9007, "")
		}
		return false, false
	case faultServerError:
		writeBadGateway(w)
		return false, false
	}
	if d.lostAck {
		if write {
			return true, true
		}
		dropConnection(w)
		return false, false
	}
	return false, true
}

// dropConnection closes the client's connection without an answer, as a
// crashed proxy or a cut network would.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			_ = conn.Close()
			return
		}
	}
	// Without hijacking (HTTP/2), aborting the handler resets the stream.
	panic(http.ErrAbortHandler)
}

const badGatewayHTML = `<html>
<head><title>502 Bad Gateway</title></head>
<body>
<center><h1>502 Bad Gateway</h1></center>
<hr><center>nginx</center>
</body>
</html>
`

func writeBadGateway(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/html")
	w.WriteHeader(http.StatusBadGateway)
	_, _ = w.Write([]byte(badGatewayHTML))
}

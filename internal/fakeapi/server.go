// Package fakeapi serves a fake WeCom and a fake Jiandaoyun v5 API from one
// http.Handler. Both are written from the API references, not from our
// clients, so that tests catch client mistakes: they check credentials,
// request shapes and limits the way the real services document them, enforce
// rate limits server-side, and can inject faults, above all the lost
// acknowledgement (a write committed whose answer never arrives).
package fakeapi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Options configures a Server. Zero values take the documented defaults.
type Options struct {
	Company *Company // the sample company; default NewCompany(1, 300)

	CorpID, Secret string // accepted WeCom credentials (defaults "wwfakecorp", "fake-secret")
	WebhookKey     string // accepted group-robot key (default "fake-robot-key")

	APIKey, AppID, EntryID string   // accepted Jiandaoyun credentials
	Widgets                []Widget // the form; default DefaultWidgets()

	MonthDataPerMinute float64  // getcheckin_monthdata limit (default 60); negative = unlimited
	ListPerMinute      float64  // department/user simplelist limit (default 10000); negative = unlimited
	JDY                JDYRates // Jiandaoyun limits per second
	Burst              int      // token-bucket burst (default 3)
	Seed               int64    // fault randomness

	WeComLatency LatencyRange // added to every WeCom request but the webhook's (SetLatency)
	JDYLatency   LatencyRange // added to every Jiandaoyun request (SetLatency)
}

// JDYRates are Jiandaoyun's server-side limits in requests per second.
// Zero takes the documented default; negative means unlimited.
type JDYRates struct {
	Create      float64 // data/create, data/delete (default 20)
	BatchCreate float64 // data/batch_create, data/batch_delete (default 10)
	Update      float64 // data/update (default 20)
	List        float64 // data/list, data/get, widget/list (default 30)
	Global      float64 // every v5 and legacy call together (default 50)
	Legacy      float64 // /api/v2/.../data_create (default 5)
}

// Credentials are the values a client needs to talk to the fakes.
type Credentials struct {
	CorpID, Secret, APIKey, AppID, EntryID, WebhookKey string
}

// Endpoint names, shared by every knob and counter (Calls, FailNext,
// HoldNext, Faults.Endpoints).
const (
	EndpointGetToken     = "gettoken"
	EndpointDeptList     = "department/simplelist"
	EndpointUserList     = "user/simplelist"
	EndpointMonthData    = "getcheckin_monthdata"
	EndpointWebhook      = "webhook/send"
	EndpointWidgets      = "widget/list"
	EndpointList         = "data/list"
	EndpointGet          = "data/get"
	EndpointCreate       = "data/create"
	EndpointBatchCreate  = "data/batch_create"
	EndpointUpdate       = "data/update"
	EndpointDelete       = "data/delete"
	EndpointBatchDelete  = "data/batch_delete"
	EndpointLegacyCreate = "legacy/data_create"
)

var wecomEndpoints = map[string]bool{
	EndpointGetToken: true, EndpointDeptList: true, EndpointUserList: true, EndpointMonthData: true, EndpointWebhook: true,
}

func withDefaults(o Options) Options {
	str := func(p *string, d string) {
		if *p == "" {
			*p = d
		}
	}
	num := func(p *float64, d float64) {
		if *p == 0 {
			*p = d
		}
	}
	if o.Company == nil {
		o.Company = NewCompany(1, 300)
	}
	str(&o.CorpID, "wwfakecorp")
	str(&o.Secret, "fake-secret")
	str(&o.WebhookKey, "fake-robot-key")
	str(&o.APIKey, "fake-api-key")
	str(&o.AppID, "fakeapp0000000000000001")
	str(&o.EntryID, "fakeentry00000000000001")
	if o.Widgets == nil {
		o.Widgets = DefaultWidgets()
	}
	num(&o.MonthDataPerMinute, 60)
	num(&o.ListPerMinute, 10000)
	num(&o.JDY.Create, 20)
	num(&o.JDY.BatchCreate, 10)
	num(&o.JDY.Update, 20)
	num(&o.JDY.List, 30)
	num(&o.JDY.Global, 50)
	num(&o.JDY.Legacy, 5)
	if o.Burst <= 0 {
		o.Burst = 3
	}
	return o
}

// Server is the fake WeCom and fake Jiandaoyun. All methods are safe for
// concurrent use.
type Server struct {
	opts     Options
	mux      *http.ServeMux
	limits   *limiterSet
	faults   *faultState
	latency  apiLatency
	wecom    *wecomState
	jdy      *jdyStore
	widgets  map[string]Widget         // by request name
	members  atomic.Pointer[memberSet] // Jiandaoyun contacts (SetMembers); nil: every username exists
	prepared preparedRows              // month rows encoded ahead (PrepareReports)

	clockOffset atomic.Int64 // nanoseconds added to the real clock
	throttled   atomic.Int64

	callsMu sync.Mutex
	calls   map[string]int

	srvMu sync.Mutex
	srv   *http.Server
}

// New builds a server; call Handler, or Start to listen on loopback.
func New(opts Options) *Server {
	o := withDefaults(opts)
	s := &Server{
		opts:    o,
		limits:  newLimiterSet(o),
		faults:  newFaultState(o.Seed),
		wecom:   newWecomState(),
		calls:   make(map[string]int),
		widgets: make(map[string]Widget, len(o.Widgets)),
	}
	for _, w := range o.Widgets {
		s.widgets[w.Name] = w
	}
	s.latency.set(o.WeComLatency, o.JDYLatency)
	s.jdy = newJDYStore(time.Now())
	s.routes()
	return s
}

func (s *Server) routes() {
	m := http.NewServeMux()
	m.HandleFunc("/cgi-bin/gettoken", s.handleGetToken)
	m.HandleFunc("/cgi-bin/department/simplelist", s.handleDeptList)
	m.HandleFunc("/cgi-bin/user/simplelist", s.handleUserList)
	m.HandleFunc("/cgi-bin/checkin/getcheckin_monthdata", s.handleMonthData)
	m.HandleFunc("/cgi-bin/webhook/send", s.handleWebhook)
	m.HandleFunc("/api/v5/app/entry/widget/list", s.jdyHandler(EndpointWidgets, false, s.jdyWidgets))
	m.HandleFunc("/api/v5/app/entry/data/list", s.jdyHandler(EndpointList, false, s.jdyList))
	m.HandleFunc("/api/v5/app/entry/data/get", s.jdyHandler(EndpointGet, false, s.jdyGet))
	m.HandleFunc("/api/v5/app/entry/data/create", s.jdyHandler(EndpointCreate, true, s.jdyCreate))
	m.HandleFunc("/api/v5/app/entry/data/batch_create", s.jdyHandler(EndpointBatchCreate, true, s.jdyBatchCreate))
	m.HandleFunc("/api/v5/app/entry/data/update", s.jdyHandler(EndpointUpdate, true, s.jdyUpdate))
	m.HandleFunc("/api/v5/app/entry/data/delete", s.jdyHandler(EndpointDelete, true, s.jdyDelete))
	m.HandleFunc("/api/v5/app/entry/data/batch_delete", s.jdyHandler(EndpointBatchDelete, true, s.jdyBatchDelete))
	m.HandleFunc("/api/v2/app/{app_id}/entry/{entry_id}/data_create", s.jdyHandler(EndpointLegacyCreate, true, s.jdyLegacyCreate))
	s.mux = m
}

// Handler serves both fakes; their paths do not collide.
func (s *Server) Handler() http.Handler { return s.mux }

// Start listens on 127.0.0.1 on a free port and returns the base URL.
func (s *Server) Start() (string, error) { return s.StartOn("127.0.0.1:0") }

// StartOn listens on addr and returns the base URL.
func (s *Server) StartOn(addr string) (string, error) {
	s.srvMu.Lock()
	defer s.srvMu.Unlock()
	if s.srv != nil {
		return "", errors.New("fakeapi: server already started")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("fakeapi: listen on %s: %w", addr, err)
	}
	srv := &http.Server{Handler: s.mux, ReadHeaderTimeout: 10 * time.Second}
	s.srv = srv
	go func() { _ = srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), nil
}

// Close stops a started server and drops its connections.
func (s *Server) Close() {
	s.srvMu.Lock()
	srv := s.srv
	s.srv = nil
	s.srvMu.Unlock()
	if srv != nil {
		_ = srv.Close()
	}
}

// Shutdown stops a started server gracefully, waiting for running requests.
func (s *Server) Shutdown(ctx context.Context) error {
	s.srvMu.Lock()
	srv := s.srv
	s.srv = nil
	s.srvMu.Unlock()
	if srv == nil {
		return nil
	}
	if err := srv.Shutdown(ctx); err != nil {
		return fmt.Errorf("fakeapi: shutdown: %w", err)
	}
	return nil
}

// Credentials returns the accepted credentials, for tests and demos.
func (s *Server) Credentials() Credentials {
	o := s.opts
	return Credentials{CorpID: o.CorpID, Secret: o.Secret, APIKey: o.APIKey, AppID: o.AppID, EntryID: o.EntryID, WebhookKey: o.WebhookKey}
}

// Company returns the sample company the server reports on.
func (s *Server) Company() *Company { return s.opts.Company }

// AdvanceClock moves the fake's clock forward by d: token expiry,
// transaction_id windows and record timestamps follow it. Rate limits use
// the real clock.
func (s *Server) AdvanceClock(d time.Duration) { s.clockOffset.Add(int64(d)) }

func (s *Server) now() time.Time {
	return time.Now().Add(time.Duration(s.clockOffset.Load()))
}

func (s *Server) countCall(ep string) {
	s.callsMu.Lock()
	s.calls[ep]++
	s.callsMu.Unlock()
}

// Calls is the number of requests to endpoint, rejected ones included.
func (s *Server) Calls(endpoint string) int {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	return s.calls[endpoint]
}

// CallCounts returns a copy of every endpoint's request count.
func (s *Server) CallCounts() map[string]int {
	s.callsMu.Lock()
	defer s.callsMu.Unlock()
	out := make(map[string]int, len(s.calls))
	for k, v := range s.calls {
		out[k] = v
	}
	return out
}

// Throttled is the number of requests the server-side token buckets
// rejected (WeCom 45009, Jiandaoyun 8303/8304). Injected faults do not count.
func (s *Server) Throttled() int { return int(s.throttled.Load()) }

// RecordCount is the number of records in the form: Records without the
// copy, which for the hundreds of thousands of a benchmark costs more than
// the tool being measured.
func (s *Server) RecordCount() int {
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	return len(st.recs)
}

// endpointNames lists every endpoint name, sorted; used by tests.
func endpointNames() []string {
	names := []string{EndpointGetToken, EndpointDeptList, EndpointUserList, EndpointMonthData, EndpointWebhook, EndpointWidgets, EndpointList, EndpointGet,
		EndpointCreate, EndpointBatchCreate, EndpointUpdate, EndpointDelete, EndpointBatchDelete, EndpointLegacyCreate}
	sort.Strings(names)
	return names
}

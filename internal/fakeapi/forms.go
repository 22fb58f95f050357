package fakeapi

import (
	"encoding/json"
	"sync"
	"time"
)

// forms holds the extra forms of the fake's app (AddForm), by entry_id.
type forms struct {
	mu   sync.Mutex
	byID map[string]*Server
}

var extraForms sync.Map // *Server -> *forms

// AddForm adds another form to the fake's app, with the same fields and
// credentials, such as a scratch form for `check --write-probe`. The
// returned Server shows and controls that form alone (Records,
// SetJDYBehaviour); requests still go to s (its Handler or
// address); those naming entryID are answered by the new form, the rest
// as before. SetJDYBehaviour on s is passed on to every added form, so
// both forms behave alike unless the test sets the added one apart
// afterwards.
func (s *Server) AddForm(entryID string) *Server {
	o := s.opts
	o.EntryID = entryID
	f := &Server{
		opts:    o,
		limits:  s.limits,
		faults:  newFaultState(o.Seed),
		wecom:   s.wecom,
		calls:   make(map[string]int),
		widgets: s.widgets,
		jdy:     newJDYStore(time.Now()),
	}
	f.jdy.behaviour = s.JDYBehaviour()
	v, _ := extraForms.LoadOrStore(s, &forms{byID: map[string]*Server{}})
	fs := v.(*forms)
	fs.mu.Lock()
	fs.byID[entryID] = f
	fs.mu.Unlock()
	return f
}

// addedForms lists the forms AddForm added to s.
func (s *Server) addedForms() []*Server {
	v, ok := extraForms.Load(s)
	if !ok {
		return nil
	}
	fs := v.(*forms)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	out := make([]*Server, 0, len(fs.byID))
	for _, f := range fs.byID {
		out = append(out, f)
	}
	return out
}

// formFor returns the added form a v5 request body names, or nil when it
// names none (the main form, or a form that does not exist).
func (s *Server) formFor(body []byte) *Server {
	v, ok := extraForms.Load(s)
	if !ok {
		return nil
	}
	var base struct {
		EntryID string `json:"entry_id"`
	}
	if json.Unmarshal(body, &base) != nil || base.EntryID == "" {
		return nil
	}
	fs := v.(*forms)
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return fs.byID[base.EntryID]
}

// formHandler is the endpoint function of form f for ep, or nil.
func (f *Server) formHandler(ep string) jdyFunc {
	switch ep {
	case EndpointWidgets:
		return f.jdyWidgets
	case EndpointList:
		return f.jdyList
	case EndpointGet:
		return f.jdyGet
	case EndpointCreate:
		return f.jdyCreate
	case EndpointBatchCreate:
		return f.jdyBatchCreate
	case EndpointUpdate:
		return f.jdyUpdate
	case EndpointDelete:
		return f.jdyDelete
	case EndpointBatchDelete:
		return f.jdyBatchDelete
	}
	return nil
}

package fakeapi

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"checkin-sync/internal/month"
)

// MonthDataRequest is one getcheckin_monthdata request as the fake
// received it, before any check. Start and End are 0 when absent.
type MonthDataRequest struct {
	StartTime, EndTime int64 // Unix seconds, as sent
	UserIDs            []string
}

// Start is StartTime as a time in Asia/Shanghai (WeCom's 0 o'clock).
func (r MonthDataRequest) Start() time.Time { return time.Unix(r.StartTime, 0).In(month.CST) }

// End is EndTime as a time in Asia/Shanghai.
func (r MonthDataRequest) End() time.Time { return time.Unix(r.EndTime, 0).In(month.CST) }

// MonthDataTap sits in front of getcheckin_monthdata: it records every
// request and can put a user outside the app's visible range for single
// months only. Get one with Server.TapMonthData.
type MonthDataTap struct {
	s      *Server
	mu     sync.Mutex
	reqs   []MonthDataRequest
	hidden map[string]map[month.Month]bool // lower-cased userid -> months
}

// TapMonthData installs a MonthDataTap. Call it before Start (or before
// taking Handler), once per server.
func (s *Server) TapMonthData() *MonthDataTap {
	t := &MonthDataTap{s: s, hidden: make(map[string]map[month.Month]bool)}
	inner := s.mux
	m := http.NewServeMux()
	m.HandleFunc("/cgi-bin/checkin/getcheckin_monthdata", t.serve)
	m.Handle("/", inner)
	s.mux = m
	return t
}

// Requests returns every getcheckin_monthdata request received so far, in
// arrival order.
func (t *MonthDataTap) Requests() []MonthDataRequest {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make([]MonthDataRequest, len(t.reqs))
	for i, r := range t.reqs {
		out[i] = MonthDataRequest{StartTime: r.StartTime, EndTime: r.EndTime, UserIDs: append([]string(nil), r.UserIDs...)}
	}
	return out
}

// HideUserInMonth makes getcheckin_monthdata answer 60011 (outside the
// app's visible range) to any batch that holds userid (in any case) for a
// window starting in month m, as HideUser does for every month. Unlike
// HideUser, user/simplelist still lists the user.
func (t *MonthDataTap) HideUserInMonth(userid string, m month.Month) {
	t.mu.Lock()
	defer t.mu.Unlock()
	k := strings.ToLower(userid)
	if t.hidden[k] == nil {
		t.hidden[k] = make(map[month.Month]bool)
	}
	t.hidden[k][m] = true
}

func (t *MonthDataTap) serve(w http.ResponseWriter, r *http.Request) {
	body, err := readBody(r)
	if err != nil {
		// Let the real handler answer a body it cannot read.
		r.Body = io.NopCloser(bytes.NewReader(body))
		t.s.handleMonthData(w, r)
		return
	}
	var req struct {
		StartTime  int64    `json:"starttime"`
		EndTime    int64    `json:"endtime"`
		UserIDList []string `json:"useridlist"`
	}
	_ = json.Unmarshal(body, &req) // lenient: the real handler judges the shape
	rec := MonthDataRequest{StartTime: req.StartTime, EndTime: req.EndTime, UserIDs: req.UserIDList}
	t.mu.Lock()
	t.reqs = append(t.reqs, rec)
	hide := false
	if req.StartTime > 0 {
		m := month.Of(rec.Start())
		for _, id := range req.UserIDList {
			if t.hidden[strings.ToLower(id)][m] {
				hide = true
				break
			}
		}
	}
	t.mu.Unlock()
	if hide && r.Method == http.MethodPost {
		// Same order as the real handler: faults, method, token, rate
		// limit; then the visible-range check.
		if !t.s.authorize(w, r, EndpointMonthData, http.MethodPost) {
			return
		}
		wecomError(w, 60011, "")
		return
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	t.s.handleMonthData(w, r)
}

package main

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"strings"
	"sync"
)

// refusals counts, per endpoint, the requests the fakes refused for a rate
// limit. The fakes count them only in total; per endpoint, a refused call
// can be told from an answered one, which is what the floors and the
// per-batch figures need.
type refusals struct {
	mu     sync.Mutex
	n      counts
	global int // of them, by Jiandaoyun's enterprise-wide bucket (8303)
}

func (r *refusals) snapshot() (counts, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make(counts, len(r.n))
	for k, v := range r.n {
		out[k] = v
	}
	return out, r.global
}

// wrap counts the refusals next answers.
func (r *refusals) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		pw := &peekWriter{ResponseWriter: w, status: http.StatusOK}
		next.ServeHTTP(pw, req)
		if isRefusal(pw.status, pw.head) {
			r.mu.Lock()
			if r.n == nil {
				r.n = counts{}
			}
			r.n[endpointOf(req.URL.Path)]++
			if bytes.HasPrefix(pw.head, []byte(`{"code":8303,`)) {
				r.global++
			}
			r.mu.Unlock()
		}
	})
}

// isRefusal recognises the fakes' rate-limit answers by their first bytes:
// WeCom's errcode 45009 in HTTP 200, Jiandaoyun's 8303 or 8304 in HTTP 400
// (the fakes write JSON keys sorted, so the code comes first).
func isRefusal(status int, head []byte) bool {
	switch {
	case bytes.HasPrefix(head, []byte(`{"errcode":45009,`)):
		return status == http.StatusOK
	case bytes.HasPrefix(head, []byte(`{"code":8303,`)), bytes.HasPrefix(head, []byte(`{"code":8304,`)):
		return status == http.StatusBadRequest
	}
	return false
}

// endpointOf names a request path the way the fakes' counters do.
func endpointOf(path string) string {
	switch {
	case strings.HasPrefix(path, "/api/v5/app/entry/"):
		return strings.TrimPrefix(path, "/api/v5/app/entry/")
	case strings.HasPrefix(path, "/api/v2/app/") && strings.HasSuffix(path, "/data_create"):
		return epLegacy
	case path == "/cgi-bin/checkin/getcheckin_monthdata":
		return epMonthData
	}
	return strings.TrimPrefix(path, "/cgi-bin/")
}

// peekHead is enough of a body to read its error code.
const peekHead = 24

// peekWriter keeps the status and the first bytes of the body. It hijacks
// like the writer it wraps, since the fakes drop connections that way.
type peekWriter struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
	head        []byte
}

func (p *peekWriter) WriteHeader(code int) {
	if !p.wroteHeader {
		p.status, p.wroteHeader = code, true
	}
	p.ResponseWriter.WriteHeader(code)
}

func (p *peekWriter) Write(b []byte) (int, error) {
	p.wroteHeader = true
	if n := peekHead - len(p.head); n > 0 {
		p.head = append(p.head, b[:min(n, len(b))]...)
	}
	return p.ResponseWriter.Write(b)
}

func (p *peekWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	if hj, ok := p.ResponseWriter.(http.Hijacker); ok {
		return hj.Hijack()
	}
	return nil, nil, errors.New("hijacking not supported")
}

func (p *peekWriter) Unwrap() http.ResponseWriter { return p.ResponseWriter }

// Package httpx holds the HTTP rules every outgoing client shares: plain
// http only to loopback addresses, TLS verification always on, and no
// redirects (a redirect would resend a write, or a credential, to an
// address nobody configured).
package httpx

import (
	"crypto/tls"
	"errors"
	"net"
	"net/http"
	"strings"
	"time"
)

// DefaultTimeout bounds one HTTP exchange when neither the caller's client
// nor Options sets a timeout.
const DefaultTimeout = 30 * time.Second

// IsLoopback reports whether host (a URL's Hostname(): no port, no
// brackets) is "localhost" (any case) or a loopback IP address, such as
// 127.0.0.1 or ::1. Names other than localhost are not resolved.
func IsLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Options tune the client NewClient builds.
type Options struct {
	// Timeout applies when the caller's client has none; 0 → DefaultTimeout.
	Timeout time.Duration
	// MaxIdleConnsPerHost sizes the idle pool of a transport built here;
	// 0 keeps net/http's default. A caller's transport is left alone.
	MaxIdleConnsPerHost int
}

// ErrInsecureTLS is returned by NewClient for a transport that skips TLS
// certificate verification.
var ErrInsecureTLS = errors.New("TLS certificate verification must stay on (InsecureSkipVerify is set)")

// NewClient returns a copy of base (nil → a new client) that never follows
// a redirect (the 3xx answer itself is returned) and has a timeout. A
// client built here gets a clone of http.DefaultTransport with TLS 1.2 or
// later. A base whose *http.Transport (or, when it has none,
// http.DefaultTransport) skips certificate verification is refused with
// ErrInsecureTLS. base itself is not modified.
func NewClient(base *http.Client, o Options) (*http.Client, error) {
	timeout := o.Timeout
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	var out http.Client
	if base != nil {
		rt := base.Transport
		if rt == nil {
			rt = http.DefaultTransport
		}
		if insecure(rt) {
			return nil, ErrInsecureTLS
		}
		out = *base
	} else {
		def, ok := http.DefaultTransport.(*http.Transport)
		if !ok {
			return nil, errors.New("http.DefaultTransport has been replaced; pass an explicit *http.Client")
		}
		if insecure(def) {
			return nil, ErrInsecureTLS
		}
		t := def.Clone()
		if o.MaxIdleConnsPerHost > 0 {
			t.MaxIdleConnsPerHost = o.MaxIdleConnsPerHost
		}
		if t.TLSClientConfig == nil {
			t.TLSClientConfig = &tls.Config{}
		}
		if t.TLSClientConfig.MinVersion < tls.VersionTLS12 {
			t.TLSClientConfig.MinVersion = tls.VersionTLS12
		}
		out.Transport = t
	}
	if out.Timeout <= 0 {
		out.Timeout = timeout
	}
	out.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &out, nil
}

func insecure(rt http.RoundTripper) bool {
	t, ok := rt.(*http.Transport)
	return ok && t.TLSClientConfig != nil && t.TLSClientConfig.InsecureSkipVerify
}

package httpx

import (
	"crypto/tls"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"
)

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost": true, "LocalHost": true, "127.0.0.1": true, "127.8.9.10": true, "::1": true,
		"": false, "[::1]": false, "localhost.example.com": false, "10.0.0.1": false,
		"api.jiandaoyun.com": false, "0.0.0.0": false, "::": false,
	} {
		if got := IsLoopback(host); got != want {
			t.Errorf("IsLoopback(%q) = %v, want %v", host, got, want)
		}
	}
}

func TestNewClientDefaults(t *testing.T) {
	c, err := NewClient(nil, Options{MaxIdleConnsPerHost: 7})
	if err != nil {
		t.Fatal(err)
	}
	if c.Timeout != DefaultTimeout {
		t.Errorf("timeout %v", c.Timeout)
	}
	tr, ok := c.Transport.(*http.Transport)
	if !ok {
		t.Fatalf("transport %T", c.Transport)
	}
	if tr == http.DefaultTransport {
		t.Error("the default transport must be cloned, not shared")
	}
	if tr.TLSClientConfig == nil || tr.TLSClientConfig.InsecureSkipVerify || tr.TLSClientConfig.MinVersion < tls.VersionTLS12 {
		t.Errorf("TLS config %+v", tr.TLSClientConfig)
	}
	if tr.MaxIdleConnsPerHost != 7 {
		t.Errorf("idle conns %d", tr.MaxIdleConnsPerHost)
	}
	c, err = NewClient(nil, Options{Timeout: time.Second})
	if err != nil || c.Timeout != time.Second {
		t.Errorf("timeout option: %v, %v", c, err)
	}
}

func TestNewClientCopiesCallersClient(t *testing.T) {
	base := &http.Client{Timeout: 3 * time.Second}
	c, err := NewClient(base, Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if c == base || c.Timeout != 3*time.Second || c.Transport != nil {
		t.Errorf("client %+v", c)
	}
	if base.CheckRedirect != nil {
		t.Error("the caller's client was modified")
	}
	c, err = NewClient(&http.Client{}, Options{})
	if err != nil || c.Timeout != DefaultTimeout {
		t.Errorf("a caller's client without timeout: %v, %v", c, err)
	}
}

func TestNewClientRefusesInsecureTLS(t *testing.T) {
	bad := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}
	if _, err := NewClient(bad, Options{}); !errors.Is(err, ErrInsecureTLS) {
		t.Fatalf("err = %v", err)
	}
}

func TestNewClientRefusesRedirects(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		if r.URL.Path == "/start" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		_, _ = io.WriteString(w, "followed")
	}))
	defer srv.Close()
	for _, base := range []*http.Client{nil, {CheckRedirect: func(*http.Request, []*http.Request) error { return nil }}} {
		hits.Store(0)
		c, err := NewClient(base, Options{})
		if err != nil {
			t.Fatal(err)
		}
		resp, err := c.Get(srv.URL + "/start")
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusFound || hits.Load() != 1 {
			t.Errorf("status %d after %d requests; want the 302 itself", resp.StatusCode, hits.Load())
		}
	}
}

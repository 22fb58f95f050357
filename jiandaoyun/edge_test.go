package jiandaoyun

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"checkin-sync/internal/apierr"
)

// Edge cases the fake cannot produce, served by small handlers.

func TestMalformedSuccessBody(t *testing.T) {
	var calls atomic.Int32
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.WriteString(w, `{"data": [truncated`)
	})
	ctx := testCtx(t)

	_, err := c.List(ctx, ListQuery{})
	if apierr.ClassOf(err) != apierr.Retry {
		t.Fatalf("list: class %v (%v), want retry", apierr.ClassOf(err), err)
	}
	if s := c.Stats()["data/list"]; s.Calls != 4 || s.Retries != 3 {
		t.Fatalf("list stats = %+v, want every attempt used", s)
	}

	calls.Store(0)
	_, err = c.BatchCreate(ctx, "tx", []json.RawMessage{json.RawMessage(`{}`)})
	if apierr.ClassOf(err) != apierr.Unknown {
		t.Fatalf("batch_create: class %v (%v), want unknown", apierr.ClassOf(err), err)
	}
	if calls.Load() != 1 {
		t.Fatalf("batch_create sent %d times, want 1", calls.Load())
	}
}

func TestMissingEnvelopeIsMalformed(t *testing.T) {
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"something":"else"}`)
	})
	if _, err := c.Widgets(testCtx(t)); apierr.ClassOf(err) != apierr.Retry || !strings.Contains(err.Error(), "widgets") {
		t.Fatalf("widgets: %v", err)
	}
	if _, err := c.List(testCtx(t), ListQuery{}); apierr.ClassOf(err) != apierr.Retry {
		t.Fatalf("list: %v", err)
	}
	if _, err := c.Get(testCtx(t), "x"); apierr.ClassOf(err) != apierr.Retry {
		t.Fatalf("get: %v", err)
	}
}

func TestHTTPStatusClasses(t *testing.T) {
	cases := []struct {
		name   string
		status int
		header map[string]string
		body   string
		class  apierr.Class
		hint   string
	}{
		{"redirect", http.StatusFound, map[string]string{"Location": "https://elsewhere.example.com/"}, "", apierr.Fatal, "elsewhere.example.com"},
		{"not found", http.StatusNotFound, nil, "nope", apierr.Fatal, "base_url"},
		{"unauthorized", http.StatusUnauthorized, nil, "", apierr.Fatal, "JDY_API_KEY"},
		{"400 without code", http.StatusBadRequest, nil, "<html>bad</html>", apierr.Record, "without an error code"},
		{"413", http.StatusRequestEntityTooLarge, nil, "", apierr.Record, ""},
		{"long plain body", http.StatusTeapot, nil, strings.Repeat("长 ", 300), apierr.Record, ""},
		{"401 with code", http.StatusUnauthorized, nil, `{"code":17018,"msg":"invalid"}`, apierr.Fatal, "invalid or disabled"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
				for k, v := range tc.header {
					w.Header().Set(k, v)
				}
				w.WriteHeader(tc.status)
				_, _ = io.WriteString(w, tc.body)
			})
			err := c.Update(testCtx(t), "id", json.RawMessage(`{}`))
			e, ok := apierr.As(err)
			if !ok || e.Class != tc.class || e.HTTPStatus != tc.status || !strings.Contains(e.Hint, tc.hint) {
				t.Fatalf("err = %#v", err)
			}
			if s := c.Stats()["data/update"]; s.Calls != 1 {
				t.Fatalf("stats = %+v, want a single call", s)
			}
		})
	}
}

func TestRetryAfterIsHonoured(t *testing.T) {
	var calls atomic.Int32
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.Header().Set("Retry-After", "1")
			w.WriteHeader(http.StatusTooManyRequests)
			return
		}
		_, _ = io.WriteString(w, `{"data":[]}`)
	})
	resp := &http.Response{Header: http.Header{"Retry-After": {"1"}}}
	if d := c.rateLimitWait(resp); d != c.policy.Cap {
		t.Errorf("Retry-After 1 under a %v cap waits %v", c.policy.Cap, d)
	}
	c.policy.Cap = 0
	if d := c.rateLimitWait(resp); d != time.Second {
		t.Errorf("Retry-After 1 waits %v, want 1s", d)
	}
	if d := c.rateLimitWait(&http.Response{Header: http.Header{}}); d != c.policy.Base {
		t.Errorf("no Retry-After waits %v, want the policy base", d)
	}
	c.policy.Cap = testPolicy().Cap
	if _, err := c.List(testCtx(t), ListQuery{}); err != nil {
		t.Fatal(err)
	}
	if calls.Load() != 2 {
		t.Fatalf("calls = %d", calls.Load())
	}
}

// A delete whose answer was lost and whose resend finds the record gone
// has done its work.
func TestDeleteAfterLostAnswer(t *testing.T) {
	var calls atomic.Int32
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusBadRequest)
		_, _ = io.WriteString(w, `{"code":4001,"msg":"Data doesn't exist."}`)
	})
	if err := c.Delete(testCtx(t), "id"); err != nil {
		t.Fatalf("delete: %v", err)
	}
	// Without an earlier ambiguous attempt, 4001 stays Missing.
	calls.Store(1)
	if err := c.Delete(testCtx(t), "id"); apierr.ClassOf(err) != apierr.Missing {
		t.Fatalf("delete of a missing record: %v", err)
	}
}

func TestCancelledContext(t *testing.T) {
	var calls atomic.Int32
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) { calls.Add(1) })
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.BatchCreate(ctx, "tx", []json.RawMessage{json.RawMessage(`{}`)})
	if !errors.Is(err, context.Canceled) || apierr.ClassOf(err) == apierr.Unknown {
		t.Fatalf("err = %v (class %v)", err, apierr.ClassOf(err))
	}
	if calls.Load() != 0 {
		t.Fatal("a request went out on a cancelled context")
	}
}

// A batch_create cancelled while waiting for its answer may have been
// applied.
func TestBatchCreateCancelledInFlight(t *testing.T) {
	arrived := make(chan struct{})
	release := make(chan struct{})
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.ReadAll(r.Body)
		close(arrived)
		<-release
	})
	defer close(release) // lets the handler return before the server closes at cleanup
	ctx, cancel := context.WithCancel(testCtx(t))
	go func() { <-arrived; cancel() }()
	_, err := c.BatchCreate(ctx, "tx", []json.RawMessage{json.RawMessage(`{}`)})
	if apierr.ClassOf(err) != apierr.Unknown || !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v (class %v)", err, apierr.ClassOf(err))
	}
}

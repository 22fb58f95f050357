package jiandaoyun

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
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

// The lookup's requests: chunks of at most 200 keys, limit 100, the key
// field first in fields, and the data_id cursor while a page is full. Rows
// of keys not asked (a case variant, another key) are dropped.
func TestFindByKeysRequestsAndFiltering(t *testing.T) {
	type listBody struct {
		DataID string   `json:"data_id"`
		Fields []string `json:"fields"`
		Limit  int      `json:"limit"`
		Filter Filter   `json:"filter"`
	}
	var mu sync.Mutex
	var reqs []listBody
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		var b listBody
		if err := json.NewDecoder(r.Body).Decode(&b); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		reqs = append(reqs, b)
		mu.Unlock()
		var rows []map[string]any
		first, _ := b.Filter.Cond[0].Value[0].(string)
		switch {
		case first == "k000" && b.DataID == "":
			// A full page: asked keys, a case variant, an unasked key, a
			// non-string key and a copy of k001; the ids sort out of
			// request order.
			rows = append(rows,
				map[string]any{"_id": "id-50", "sync_key": "k001", "work_days": 1},
				map[string]any{"_id": "id-51", "sync_key": "K001"},
				map[string]any{"_id": "id-52", "sync_key": "zzz"},
				map[string]any{"_id": "id-53", "sync_key": 7},
				map[string]any{"_id": "id-10", "sync_key": "k000"})
			for i := len(rows); i < 100; i++ {
				rows = append(rows, map[string]any{"_id": fmt.Sprintf("id-6%02d", i), "sync_key": "other"})
			}
		case first == "k000":
			rows = append(rows, map[string]any{"_id": "id-70", "sync_key": "k001"})
		default:
			rows = append(rows, map[string]any{"_id": "id-20", "sync_key": first})
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"data": rows})
	})
	var keys []string
	for i := range 250 {
		keys = append(keys, fmt.Sprintf("k%03d", i))
	}
	rows, err := c.FindByKeys(testCtx(t), "sync_key", keys, []string{"work_days", "sync_key", "name"})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, row := range rows {
		got = append(got, row["_id"].(string)+" "+row["sync_key"].(string))
	}
	want := []string{"id-10 k000", "id-20 k200", "id-50 k001", "id-70 k001"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows %v, want %v", got, want)
	}
	if n, ok := rows[2]["work_days"].(json.Number); !ok || n != "1" {
		t.Errorf("work_days %#v, want json.Number", rows[2]["work_days"])
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != 3 {
		t.Fatalf("%d requests, want 3", len(reqs))
	}
	for i, r := range reqs {
		if r.Limit != 100 || !reflect.DeepEqual(r.Fields, []string{"sync_key", "work_days", "name"}) {
			t.Errorf("request %d: limit %d fields %v", i, r.Limit, r.Fields)
		}
		cond := r.Filter.Cond
		if len(cond) != 1 || cond[0].Field != "sync_key" || cond[0].Method != "in" || len(cond[0].Value) > 200 {
			t.Errorf("request %d: filter %+v", i, r.Filter)
		}
	}
	if reqs[0].DataID != "" || reqs[1].DataID != "id-699" || len(reqs[0].Filter.Cond[0].Value) != 200 || len(reqs[2].Filter.Cond[0].Value) != 50 {
		t.Errorf("cursor %q then %q; chunks of %d and %d keys", reqs[0].DataID, reqs[1].DataID,
			len(reqs[0].Filter.Cond[0].Value), len(reqs[2].Filter.Cond[0].Value))
	}
}

// A row of an asked key without an _id, or a full page that does not move
// the cursor, is a malformed answer: never a silently shorter result.
func TestFindByKeysMalformedAnswers(t *testing.T) {
	for name, page := range map[string]func(after string) []map[string]any{
		"row without _id": func(string) []map[string]any {
			return []map[string]any{{"sync_key": "a"}}
		},
		"cursor stuck": func(after string) []map[string]any {
			rows := make([]map[string]any, 100)
			for i := range rows {
				rows[i] = map[string]any{"_id": "same", "sync_key": "a"}
			}
			return rows
		},
	} {
		t.Run(name, func(t *testing.T) {
			c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
				var b struct {
					DataID string `json:"data_id"`
				}
				_ = json.NewDecoder(r.Body).Decode(&b)
				_ = json.NewEncoder(w).Encode(map[string]any{"data": page(b.DataID)})
			})
			rows, err := c.FindByKeys(testCtx(t), "sync_key", []string{"a"}, nil)
			if !apierr.IsRetry(err) || rows != nil {
				t.Fatalf("rows %v, err %v (class %v)", rows, err, apierr.ClassOf(err))
			}
		})
	}
}

// A listed record without a string _id is a malformed answer: dropped, it
// would shorten the page and end a scan early.
func TestListRowWithoutID(t *testing.T) {
	for name, body := range map[string]string{
		"no _id":     `{"data":[{"_id":"a"},{"sync_key":"b"}]}`,
		"number _id": `{"data":[{"_id":7}]}`,
	} {
		t.Run(name, func(t *testing.T) {
			c := serveClient(t, func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, body) })
			rows, err := c.List(testCtx(t), ListQuery{})
			if !apierr.IsRetry(err) || rows != nil {
				t.Fatalf("rows %v, err %v (class %v)", rows, err, apierr.ClassOf(err))
			}
			if s := c.Stats()["data/list"]; s.Calls != 4 {
				t.Fatalf("stats %+v, want every attempt used", s)
			}
		})
	}
}

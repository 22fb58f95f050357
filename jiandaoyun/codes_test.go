package jiandaoyun

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"checkin-sync/internal/apierr"
)

var (
	fatalCodes       = []int{8301, 8302, 17018, 17052, 17053, 17054, 2004, 3000, 8017, 7212, 7221, 7103, 7206}
	programmingCodes = []int{1, 4815, 17017, 17024, 17025}
	rejectedCodes    = []int{4000, 3005, 17032, 1010}
)

// answer is one canned error answer: an HTTP status with an API code (0:
// none, the body is plain text).
type answer struct {
	status, code int
}

func (a answer) String() string {
	if a.code == 0 {
		return fmt.Sprintf("HTTP %d", a.status)
	}
	return fmt.Sprintf("code %d", a.code)
}

func codeAnswer(code int) answer { return answer{http.StatusBadRequest, code} }

// answerClient serves a every time and counts the requests.
func answerClient(t *testing.T, a answer) (*Client, *atomic.Int32) {
	t.Helper()
	var calls atomic.Int32
	c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.WriteHeader(a.status)
		if a.code != 0 {
			fmt.Fprintf(w, `{"code":%d,"msg":"canned"}`, a.code)
		} else {
			_, _ = io.WriteString(w, "<html>gateway</html>")
		}
	})
	return c, &calls
}

type classCase struct {
	a     answer
	class apierr.Class
	calls int32 // testPolicy makes 4 attempts for a Retry class
}

func classCases(class apierr.Class, calls int32, codes ...int) []classCase {
	var out []classCase
	for _, code := range codes {
		out = append(out, classCase{codeAnswer(code), class, calls})
	}
	return out
}

func runClassCases(t *testing.T, cases []classCase, call func(*Client) error) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.a.String(), func(t *testing.T) {
			c, calls := answerClient(t, tc.a)
			err := call(c)
			e, ok := apierr.As(err)
			if !ok || e.Class != tc.class {
				t.Fatalf("err = %v (class %v), want class %v", err, apierr.ClassOf(err), tc.class)
			}
			if e.Code != tc.a.code || e.Hint == "" {
				t.Errorf("code %d, hint %q", e.Code, e.Hint)
			}
			if n := calls.Load(); n != tc.calls {
				t.Errorf("%d requests, want %d", n, tc.calls)
			}
		})
	}
}

// Every batch_create answer falls in exactly one class (product.md "Crash
// safety"), and only "not processed" is resent by the client.
func TestBatchCreateAnswerClasses(t *testing.T) {
	var cases []classCase
	cases = append(cases, classCases(apierr.Retry, 4, 8303, 8304)...)
	cases = append(cases, classCase{answer{http.StatusTooManyRequests, 0}, apierr.Retry, 4})
	cases = append(cases, classCases(apierr.Record, 1, rejectedCodes...)...)
	cases = append(cases, classCases(apierr.Fatal, 1, fatalCodes...)...)
	cases = append(cases, classCases(apierr.Programming, 1, programmingCodes...)...)
	cases = append(cases, classCases(apierr.Unknown, 1, 9004, 9007, 4012, 17026, 4001, 4402, 17034, 99999)...)
	for _, status := range []int{500, 502, 503, 504} {
		cases = append(cases, classCase{answer{status, 0}, apierr.Unknown, 1})
	}
	cases = append(cases, classCase{answer{http.StatusBadRequest, 0}, apierr.Unknown, 1})
	runClassCases(t, cases, func(c *Client) error {
		_, err := c.BatchCreate(testCtx(t), "tx", []json.RawMessage{record("a|2025-06", 1)})
		return err
	})
}

// For update, 9004, 9007 and 4012 are retried like the rate limits, and a
// code the client does not know is permanent for the record.
func TestUpdateAnswerClasses(t *testing.T) {
	var cases []classCase
	cases = append(cases, classCases(apierr.Retry, 4, 8303, 8304, 9004, 9007, 4012)...)
	for _, status := range []int{http.StatusTooManyRequests, 500, 502} {
		cases = append(cases, classCase{answer{status, 0}, apierr.Retry, 4})
	}
	cases = append(cases, classCases(apierr.Record, 1, rejectedCodes...)...)
	cases = append(cases, classCases(apierr.Record, 1, 17026, 4402, 99999)...)
	cases = append(cases, classCases(apierr.Fatal, 1, fatalCodes...)...)
	cases = append(cases, classCases(apierr.Programming, 1, programmingCodes...)...)
	cases = append(cases, classCases(apierr.Missing, 1, 4001)...)
	runClassCases(t, cases, func(c *Client) error {
		return c.Update(testCtx(t), "id", json.RawMessage(`{"work_days":{"value":1}}`))
	})
}

func TestDeleteAnswerClasses(t *testing.T) {
	var cases []classCase
	cases = append(cases, classCases(apierr.Missing, 1, 4001)...)
	cases = append(cases, classCases(apierr.Retry, 4, 8303, 9007)...)
	cases = append(cases, classCases(apierr.Fatal, 1, 8301, 3000)...)
	cases = append(cases, classCases(apierr.Record, 1, 99999)...)
	runClassCases(t, cases, func(c *Client) error { return c.Delete(testCtx(t), "id") })
}

// A batch_create that was not processed is resent identically: same body,
// same transaction_id.
func TestBatchCreateNotProcessedIsResentIdentically(t *testing.T) {
	for _, first := range []answer{codeAnswer(8303), codeAnswer(8304), {http.StatusTooManyRequests, 0}} {
		t.Run(first.String(), func(t *testing.T) {
			var mu sync.Mutex
			var bodies [][]byte
			c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				mu.Lock()
				bodies = append(bodies, b)
				n := len(bodies)
				mu.Unlock()
				if n == 1 {
					w.WriteHeader(first.status)
					if first.code != 0 {
						fmt.Fprintf(w, `{"code":%d,"msg":"limit"}`, first.code)
					}
					return
				}
				_, _ = io.WriteString(w, `{"status":"success","success_count":2,"success_ids":["id1","id2"]}`)
			})
			res, err := c.BatchCreate(testCtx(t), "tx-same", []json.RawMessage{record("a|2025-06", 1), record("b|2025-06", 2)})
			if err != nil {
				t.Fatal(err)
			}
			if res.SuccessCount != 2 || !reflect.DeepEqual(res.SuccessIDs, []string{"id1", "id2"}) {
				t.Errorf("result %+v", res)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(bodies) != 2 || !bytes.Equal(bodies[0], bodies[1]) {
				t.Fatalf("%d requests; bodies equal: %v", len(bodies), len(bodies) == 2 && bytes.Equal(bodies[0], bodies[1]))
			}
			var req struct {
				TransactionID string `json:"transaction_id"`
			}
			if err := json.Unmarshal(bodies[1], &req); err != nil || req.TransactionID != "tx-same" {
				t.Errorf("resent transaction_id %q (%v)", req.TransactionID, err)
			}
			if s := c.Stats()["data/batch_create"]; s.Calls != 2 || s.Retries != 1 {
				t.Errorf("stats %+v", s)
			}
		})
	}
}

// A success answer that does not confirm every record, or that cannot be
// read as a success, is an unknown outcome, sent once.
func TestBatchCreateUnconfirmedSuccessIsUnknown(t *testing.T) {
	cases := []struct {
		name, body string
		count      int // the SuccessCount returned with the error
	}{
		{"short success_count", `{"status":"success","success_count":1,"success_ids":["id1"]}`, 1},
		{"zero success_count", `{"status":"success","success_count":0,"success_ids":[]}`, 0},
		{"long success_count", `{"status":"success","success_count":3,"success_ids":["id1","id2","id3"]}`, 3},
		{"no success_count", `{"status":"success"}`, 0},
		{"status not success", `{"status":"fail","success_count":2}`, 0},
		{"empty object", `{}`, 0},
		{"not JSON", `<html>ok</html>`, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			c := serveClient(t, func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				_, _ = io.WriteString(w, tc.body)
			})
			res, err := c.BatchCreate(testCtx(t), "tx", []json.RawMessage{record("a|2025-06", 1), record("b|2025-06", 2)})
			if !apierr.IsUnknownOutcome(err) {
				t.Fatalf("err = %v (class %v), want unknown", err, apierr.ClassOf(err))
			}
			if res.SuccessCount != tc.count {
				t.Errorf("SuccessCount %d, want %d", res.SuccessCount, tc.count)
			}
			if strings.HasSuffix(tc.name, "success_count") && tc.name != "no success_count" && !strings.Contains(err.Error(), "for 2 records sent") {
				t.Errorf("error %q does not say how many were sent", err)
			}
			if n := calls.Load(); n != 1 {
				t.Errorf("%d requests, want 1", n)
			}
		})
	}
}

func TestClassifyBatchCreateCode(t *testing.T) {
	want := map[apierr.Class][]int{
		apierr.Retry:       {8303, 8304},
		apierr.Record:      rejectedCodes,
		apierr.Fatal:       fatalCodes,
		apierr.Programming: programmingCodes,
		apierr.Unknown:     {9004, 9007, 4012, 17026, 4001, 4402, 17023, 17033, 17034, 30002, 123456},
	}
	for class, codes := range want {
		for _, code := range codes {
			got, hint := classifyBatchCreateCode(code)
			if got != class || hint == "" {
				t.Errorf("code %d: class %v hint %q, want class %v", code, got, hint, class)
			}
		}
	}
}

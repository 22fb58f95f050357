package jiandaoyun

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/fakeapi"
)

const secretKey = "sk-do-not-log-0123456789abcdef"

// unlimited switches the fake's server-side limits off, for tests about
// something else.
var unlimited = fakeapi.JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1}

func startFake(t *testing.T, opts fakeapi.Options) (*fakeapi.Server, string) {
	t.Helper()
	if opts.APIKey == "" {
		opts.APIKey = secretKey
	}
	srv := fakeapi.New(opts)
	base, err := srv.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	return srv, base
}

func fakeClient(t *testing.T, srv *fakeapi.Server, base string, edit func(*Config)) *Client {
	t.Helper()
	cr := srv.Credentials()
	return newTestClient(t, base, func(c *Config) {
		c.APIKey, c.AppID, c.EntryID = cr.APIKey, cr.AppID, cr.EntryID
		if edit != nil {
			edit(c)
		}
	})
}

// startClient starts a fake without server-side limits and returns it with
// a fakeClient for it.
func startClient(t *testing.T, edit func(*Config)) (*fakeapi.Server, *Client) {
	t.Helper()
	srv, base := startFake(t, fakeapi.Options{JDY: unlimited})
	return srv, fakeClient(t, srv, base, edit)
}

func record(key string, workDays int) json.RawMessage {
	return json.RawMessage(fmt.Sprintf(`{"sync_key":{"value":%q},"work_days":{"value":%d},"name":{"value":"n-%s"}}`, key, workDays, key))
}

func mustClass(t *testing.T, err error, want apierr.Class) *apierr.Error {
	t.Helper()
	e, ok := apierr.As(err)
	if !ok || e.Class != want {
		t.Fatalf("err = %v (class %v), want class %v", err, apierr.ClassOf(err), want)
	}
	return e
}

func TestWidgets(t *testing.T) {
	_, c := startClient(t, nil)
	got, err := c.Widgets(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := fakeapi.DefaultWidgets()
	if len(got) != len(want) {
		t.Fatalf("%d widgets, want %d", len(got), len(want))
	}
	for i := range want {
		w := want[i]
		if got[i].Name != w.Name || got[i].WidgetName != w.WidgetName || got[i].Label != w.Label || got[i].Type != w.Type {
			t.Errorf("widget %d = %+v, want %+v", i, got[i], w)
		}
	}
}

func TestWidgetsWithSubform(t *testing.T) {
	widgets := []fakeapi.Widget{
		{Name: "sync_key", WidgetName: "_widget_1", Label: "key", Type: "text"},
		{Name: "details", WidgetName: "_widget_2", Label: "rows", Type: "subform", Items: []fakeapi.Widget{
			{Name: "_widget_3", WidgetName: "_widget_3", Label: "day", Type: "datetime"},
		}},
	}
	srv, base := startFake(t, fakeapi.Options{JDY: unlimited, Widgets: widgets})
	got, err := fakeClient(t, srv, base, nil).Widgets(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	want := []Widget{
		{Name: "sync_key", WidgetName: "_widget_1", Label: "key", Type: "text"},
		{Name: "details", WidgetName: "_widget_2", Label: "rows", Type: "subform", Items: []Widget{
			{Name: "_widget_3", WidgetName: "_widget_3", Label: "day", Type: "datetime"},
		}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("widgets = %+v", got)
	}
}

// keysOf returns the key field of each row, and checks that the rows come
// sorted by _id and that each has one.
func keysOf(t *testing.T, rows []map[string]any) []string {
	t.Helper()
	var out []string
	prev := ""
	for i, row := range rows {
		id, _ := row["_id"].(string)
		if id == "" || id <= prev {
			t.Fatalf("row %d: _id %q after %q; want ascending ids", i, id, prev)
		}
		prev = id
		k, _ := row["sync_key"].(string)
		out = append(out, k)
	}
	return out
}

func idsOf(rows []map[string]any) []string {
	out := make([]string, len(rows))
	for i, row := range rows {
		out[i], _ = row["_id"].(string)
	}
	return out
}

// 99 keys with one record each: one call, whose short page proves that no
// key has another copy.
func TestFindByKeysOneCallFor99Keys(t *testing.T) {
	srv, c := startClient(t, nil)
	var keys, want []string
	for i := range 99 {
		k := fmt.Sprintf("u%02d|2025-06", i)
		keys = append(keys, k)
		want = append(want, srv.InsertRecord(map[string]any{"sync_key": k, "work_days": i, "name": "n" + k}))
	}
	srv.InsertRecord(map[string]any{"sync_key": "other|2025-06"}) // not asked
	rows, err := c.FindByKeys(testCtx(t), "sync_key", keys, []string{"work_days", "sync_key"})
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls("data/list"); n != 1 {
		t.Errorf("data/list calls = %d, want 1", n)
	}
	if got := keysOf(t, rows); !reflect.DeepEqual(got, keys) {
		t.Errorf("keys = %v", got)
	}
	if got := idsOf(rows); !reflect.DeepEqual(got, want) {
		t.Errorf("ids = %v, want %v", got, want)
	}
	if n, ok := rows[7]["work_days"].(json.Number); !ok || n.String() != "7" {
		t.Errorf("work_days = %#v, want json.Number 7", rows[7]["work_days"])
	}
	if _, ok := rows[0]["name"]; ok {
		t.Error("a field not asked for came back")
	}
}

// A batch's lookups: 100 keys none of which is in the form cost one call
// (before a create); 100 keys each there once fill the page, and the empty
// next page proves there is no other copy (after it).
func TestFindByKeysBatchOf100(t *testing.T) {
	srv, c := startClient(t, nil)
	var keys []string
	for i := range 100 {
		keys = append(keys, fmt.Sprintf("u%03d|2025-06", i))
	}
	rows, err := c.FindByKeys(testCtx(t), "sync_key", keys, nil)
	if err != nil || len(rows) != 0 {
		t.Fatalf("before: %d rows, %v", len(rows), err)
	}
	if n := srv.Calls("data/list"); n != 1 {
		t.Errorf("before the create: data/list calls = %d, want 1", n)
	}
	for _, k := range keys {
		srv.InsertRecord(map[string]any{"sync_key": k})
	}
	rows, err = c.FindByKeys(testCtx(t), "sync_key", keys, nil)
	if err != nil || len(rows) != 100 {
		t.Fatalf("after: %d rows, %v", len(rows), err)
	}
	if n := srv.Calls("data/list"); n != 3 {
		t.Errorf("after the create: data/list calls = %d, want 1 + 2", n)
	}
}

// A key with a second copy among 99 keys fills the page: the lookup pages
// on once and returns both copies.
func TestFindByKeysSecondCopyCostsOneMoreCall(t *testing.T) {
	srv, c := startClient(t, nil)
	var keys []string
	for i := range 99 {
		k := fmt.Sprintf("u%02d|2025-06", i)
		keys = append(keys, k)
		srv.InsertRecord(map[string]any{"sync_key": k})
	}
	first := srv.Records()[42].ID
	second := srv.InsertRecord(map[string]any{"sync_key": keys[42], "work_days": 3})
	rows, err := c.FindByKeys(testCtx(t), "sync_key", keys, nil)
	if err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls("data/list"); n != 2 {
		t.Errorf("data/list calls = %d, want 2", n)
	}
	if len(rows) != 100 {
		t.Fatalf("%d rows, want 100", len(rows))
	}
	keysOf(t, rows)
	var copies []string
	for _, row := range rows {
		if row["sync_key"] == keys[42] {
			copies = append(copies, row["_id"].(string))
		}
	}
	if !reflect.DeepEqual(copies, []string{first, second}) {
		t.Errorf("copies of %s = %v, want %v (oldest first)", keys[42], copies, []string{first, second})
	}
}

func TestFindByKeysChunksAndPages(t *testing.T) {
	srv, c := startClient(t, nil)
	ctx := testCtx(t)

	ids := map[string][]string{}
	for i := range 250 {
		k := fmt.Sprintf("k%03d", i)
		ids[k] = append(ids[k], srv.InsertRecord(map[string]any{"sync_key": k, "work_days": i}))
	}
	// Later copies of k005, k120 and k130: 143 rows in all.
	for _, k := range []string{"k005", "k120", "k130"} {
		ids[k] = append(ids[k], srv.InsertRecord(map[string]any{"sync_key": k}))
	}

	var keys []string
	for i := range 140 {
		keys = append(keys, fmt.Sprintf("k%03d", i))
	}
	for i := range 10 {
		keys = append(keys, fmt.Sprintf("absent%d", i))
	}
	keys = append(keys, "k000", "k120", "absent0") // repeated keys are asked once

	rows, err := c.FindByKeys(ctx, "sync_key", keys, []string{"work_days"})
	if err != nil {
		t.Fatal(err)
	}
	// 150 distinct keys in one chunk: a full page, then a short one.
	if n := srv.Calls("data/list"); n != 2 {
		t.Errorf("data/list calls = %d, want 2", n)
	}
	keysOf(t, rows)
	got := map[string][]string{}
	for _, row := range rows {
		k := row["sync_key"].(string)
		got[k] = append(got[k], row["_id"].(string))
	}
	if len(got) != 140 {
		t.Errorf("%d keys found, want 140", len(got))
	}
	for i := range 140 {
		k := fmt.Sprintf("k%03d", i)
		if !reflect.DeepEqual(got[k], ids[k]) {
			t.Errorf("%s = %v, want %v", k, got[k], ids[k])
		}
	}
	if len(rows) != 143 {
		t.Errorf("%d rows, want 143", len(rows))
	}

	// Three records per key: a chunk of 50 keys needs the cursor.
	want := map[string][]string{}
	var ykeys []string
	for i := range 50 {
		k := fmt.Sprintf("y%02d", i)
		ykeys = append(ykeys, k)
		for range 3 {
			want[k] = append(want[k], srv.InsertRecord(map[string]any{"sync_key": k}))
		}
	}
	before := srv.Calls("data/list")
	rows, err = c.FindByKeys(ctx, "sync_key", ykeys, nil)
	if err != nil {
		t.Fatal(err)
	}
	keysOf(t, rows)
	got = map[string][]string{}
	for _, row := range rows {
		k := row["sync_key"].(string)
		got[k] = append(got[k], row["_id"].(string))
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("paged lookup = %v\nwant %v", got, want)
	}
	if n := srv.Calls("data/list") - before; n != 2 {
		t.Errorf("paged lookup made %d calls, want 2", n)
	}

	// No keys, no calls.
	before = srv.Calls("data/list")
	if got, err := c.FindByKeys(ctx, "sync_key", nil, []string{"work_days"}); err != nil || len(got) != 0 || srv.Calls("data/list") != before {
		t.Errorf("empty lookup = %v, %v", got, err)
	}
}

func TestListAndGet(t *testing.T) {
	srv, c := startClient(t, nil)
	ctx := testCtx(t)
	var ids []string
	for i := range 5 {
		ids = append(ids, srv.InsertRecord(map[string]any{"sync_key": fmt.Sprintf("k%d", i), "work_days": 20 + i}))
	}
	page, err := c.List(ctx, ListQuery{Fields: []string{"sync_key", "work_days"}, Limit: 2, After: ids[1]})
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0]["_id"] != ids[2] || page[1]["_id"] != ids[3] {
		t.Fatalf("page = %v", page)
	}
	if n, ok := page[0]["work_days"].(json.Number); !ok || n.String() != "22" {
		t.Errorf("work_days = %#v, want json.Number 22", page[0]["work_days"])
	}
	rec, err := c.Get(ctx, ids[4])
	if err != nil {
		t.Fatal(err)
	}
	if rec["sync_key"] != "k4" || rec["_id"] != ids[4] {
		t.Errorf("get = %v", rec)
	}
	srv.DeleteRecord(ids[4])
	_, err = c.Get(ctx, ids[4])
	if e := mustClass(t, err, apierr.Missing); e.Code != 4001 {
		t.Errorf("code = %d", e.Code)
	}
}

func TestBatchCreateUpdateDelete(t *testing.T) {
	srv, c := startClient(t, func(c *Config) { c.StartTrigger, c.StartWorkflow = true, true })
	ctx := testCtx(t)
	res, err := c.BatchCreate(ctx, "tx-1", []json.RawMessage{record("a|2025-06", 20), record("b|2025-06", 21)})
	if err != nil {
		t.Fatal(err)
	}
	if res.SuccessCount != 2 || len(res.SuccessIDs) != 2 {
		t.Fatalf("result = %+v", res)
	}
	if err := c.Update(ctx, res.SuccessIDs[0], json.RawMessage(`{"work_days":{"value":19}}`)); err != nil {
		t.Fatal(err)
	}
	recs := srv.Records()
	if len(recs) != 2 || recs[0].Data["work_days"] != float64(19) || recs[0].Data["sync_key"] != "a|2025-06" {
		t.Fatalf("records = %+v", recs)
	}
	if err := c.Delete(ctx, res.SuccessIDs[0]); err != nil {
		t.Fatal(err)
	}
	mustClass(t, c.Delete(ctx, res.SuccessIDs[0]), apierr.Missing)
	n, err := c.BatchDelete(ctx, res.SuccessIDs)
	if err != nil || n != 1 {
		t.Fatalf("batch delete = %d, %v", n, err)
	}
	if len(srv.Records()) != 0 {
		t.Fatal("records left")
	}
	st := c.Stats()
	for ep, calls := range map[string]int{"data/batch_create": 1, "data/update": 1, "data/delete": 2, "data/batch_delete": 1} {
		if st[ep].Calls != calls || st[ep].Retries != 0 {
			t.Errorf("%s stats = %+v, want %d calls", ep, st[ep], calls)
		}
	}
}

func TestBatchCreateLostAckAndReplay(t *testing.T) {
	srv, c := startClient(t, nil)
	ctx := testCtx(t)
	batch := []json.RawMessage{record("a|2025-06", 20), record("b|2025-06", 21), record("c|2025-06", 22)}

	srv.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"data/batch_create"}})
	_, err := c.BatchCreate(ctx, "tx-lost", batch)
	e := mustClass(t, err, apierr.Unknown)
	if !strings.Contains(err.Error(), "data/batch_create") || e.Hint == "" {
		t.Errorf("error %q does not name the endpoint or lacks a hint", err)
	}
	if n := srv.Calls("data/batch_create"); n != 1 {
		t.Fatalf("batch_create calls = %d, want exactly 1 (no client retry)", n)
	}
	recs := srv.Records()
	if len(recs) != 3 {
		t.Fatalf("%d records after the lost answer, want 3 (committed)", len(recs))
	}

	// The engine replays with the same transaction_id: same ids, nothing new.
	srv.SetFaults(fakeapi.Faults{})
	res, err := c.BatchCreate(ctx, "tx-lost", batch)
	if err != nil {
		t.Fatal(err)
	}
	wantIDs := []string{recs[0].ID, recs[1].ID, recs[2].ID}
	if res.SuccessCount != 3 || !reflect.DeepEqual(res.SuccessIDs, wantIDs) {
		t.Errorf("replay = %+v, want ids %v", res, wantIDs)
	}
	if n := len(srv.Records()); n != 3 {
		t.Errorf("%d records after the replay, want 3", n)
	}
	if d := srv.Duplicates("sync_key"); len(d) != 0 {
		t.Errorf("duplicates: %v", d)
	}
	if s := c.Stats()["data/batch_create"]; s.Calls != 2 || s.Retries != 0 {
		t.Errorf("stats = %+v", s)
	}
}

func TestBatchCreateTimeoutIsUnknown(t *testing.T) {
	// The timeout leaves ample time to write the request, even on a busy
	// machine; the fake then sits on it.
	srv, c := startClient(t, func(c *Config) { c.HTTPClient = &http.Client{Timeout: 500 * time.Millisecond} })
	srv.SetFaults(fakeapi.Faults{Latency: time.Minute, Endpoints: []string{"data/batch_create"}})
	_, err := c.BatchCreate(testCtx(t), "tx", []json.RawMessage{record("a|2025-06", 1)})
	mustClass(t, err, apierr.Unknown)
	if n := srv.Calls("data/batch_create"); n != 1 {
		t.Fatalf("batch_create calls = %d, want 1", n)
	}
}

func TestBatchCreate17026IsUnknown(t *testing.T) {
	srv, c := startClient(t, nil)
	srv.FailNext("data/batch_create", 17026, 1)
	_, err := c.BatchCreate(testCtx(t), "tx", []json.RawMessage{record("a|2025-06", 1)})
	if e := mustClass(t, err, apierr.Unknown); e.Code != 17026 {
		t.Errorf("code = %d", e.Code)
	}
	if n := srv.Calls("data/batch_create"); n != 1 {
		t.Fatalf("batch_create calls = %d, want 1", n)
	}
}

func TestRateLimitsAreRetried(t *testing.T) {
	srv, c := startClient(t, func(c *Config) { c.Retry.MaxAttempts = 6 })
	ctx := testCtx(t)
	for _, ep := range []string{"data/list", "data/batch_create", "data/update"} {
		srv.FailNext(ep, 8303, 1)
		srv.FailNext(ep, 8304, 1)
		srv.FailNext(ep, 429, 1)
	}
	srv.FailNext("data/update", 9007, 1)
	srv.FailNext("data/update", 4012, 1)

	if _, err := c.List(ctx, ListQuery{}); err != nil {
		t.Fatalf("list: %v", err)
	}
	res, err := c.BatchCreate(ctx, "tx", []json.RawMessage{record("a|2025-06", 1)})
	if err != nil {
		t.Fatalf("batch_create: %v", err)
	}
	if err := c.Update(ctx, res.SuccessIDs[0], json.RawMessage(`{"work_days":{"value":2}}`)); err != nil {
		t.Fatalf("update: %v", err)
	}
	if n := len(srv.Records()); n != 1 {
		t.Errorf("%d records, want 1", n)
	}
	st := c.Stats()
	for ep, want := range map[string]int{"data/list": 3, "data/batch_create": 3, "data/update": 5} {
		if st[ep].Retries != want || st[ep].Calls != want+1 || srv.Calls(ep) != want+1 {
			t.Errorf("%s: stats %+v, fake calls %d; want %d retries", ep, st[ep], srv.Calls(ep), want)
		}
	}
}

func TestRetriesRunOut(t *testing.T) {
	srv, c := startClient(t, nil) // 4 attempts
	srv.FailNext("data/list", 8303, 10)
	_, err := c.List(testCtx(t), ListQuery{})
	if e := mustClass(t, err, apierr.Retry); e.Code != 8303 {
		t.Errorf("code = %d", e.Code)
	}
	if n := srv.Calls("data/list"); n != 4 {
		t.Errorf("calls = %d, want 4", n)
	}
}

func TestBadGateway(t *testing.T) {
	srv, c := startClient(t, nil)
	ctx := testCtx(t)
	id := srv.InsertRecord(map[string]any{"sync_key": "a|2025-06"})

	srv.FailNext("data/update", 502, 2)
	if err := c.Update(ctx, id, json.RawMessage(`{"work_days":{"value":7}}`)); err != nil {
		t.Fatalf("update after 502s: %v", err)
	}
	if n := srv.Calls("data/update"); n != 3 {
		t.Errorf("update calls = %d, want 3", n)
	}

	srv.FailNext("data/batch_create", 502, 1)
	_, err := c.BatchCreate(ctx, "tx", []json.RawMessage{record("b|2025-06", 1)})
	if e := mustClass(t, err, apierr.Unknown); e.HTTPStatus != 502 || e.Msg != "Bad Gateway" {
		t.Errorf("status = %d, msg %q", e.HTTPStatus, e.Msg)
	}
	if n := srv.Calls("data/batch_create"); n != 1 {
		t.Errorf("batch_create calls = %d, want 1", n)
	}
}

func TestFatalErrorsStopAtOnce(t *testing.T) {
	srv, base := startFake(t, fakeapi.Options{JDY: unlimited})
	ctx := testCtx(t)

	wrongKey := "sk-wrong-key-should-not-leak"
	bad := fakeClient(t, srv, base, func(c *Config) { c.APIKey = wrongKey })
	_, err := bad.Widgets(ctx)
	e := mustClass(t, err, apierr.Fatal)
	if e.Code != 8301 || !strings.Contains(err.Error(), "JDY_API_KEY") || strings.Contains(err.Error(), wrongKey) {
		t.Errorf("wrong key: %v", err)
	}
	if n := srv.Calls("widget/list"); n != 1 {
		t.Errorf("widget/list calls = %d, want 1", n)
	}

	wrongApp := fakeClient(t, srv, base, func(c *Config) { c.AppID = "nope" })
	_, err = wrongApp.List(ctx, ListQuery{})
	if e := mustClass(t, err, apierr.Fatal); e.Code != 2004 || !strings.Contains(e.Hint, "app_id") {
		t.Errorf("wrong app: %v", err)
	}

	c := fakeClient(t, srv, base, nil)
	cases := []struct {
		ep, hint string
		code     int
		call     func() error
	}{
		{"data/list", "entry_id", 3000, func() error { _, err := c.List(ctx, ListQuery{}); return err }},
		{"data/batch_create", "app scope", 17053, func() error {
			_, err := c.BatchCreate(ctx, "tx", []json.RawMessage{record("a|2025-06", 1)})
			return err
		}},
		{"data/update", "interface scope", 17054, func() error { return c.Update(ctx, "x", json.RawMessage(`{}`)) }},
		{"data/list", "IP", 17052, func() error { _, err := c.List(ctx, ListQuery{}); return err }},
		{"data/batch_create", "plan limit", 7212, func() error {
			_, err := c.BatchCreate(ctx, "tx", []json.RawMessage{record("a|2025-06", 1)})
			return err
		}},
	}
	for _, tc := range cases {
		before := srv.Calls(tc.ep)
		srv.FailNext(tc.ep, tc.code, 1)
		err := tc.call()
		e := mustClass(t, err, apierr.Fatal)
		if e.Code != tc.code || !strings.Contains(e.Hint, tc.hint) || !strings.Contains(err.Error(), tc.ep) {
			t.Errorf("%d: %v", tc.code, err)
		}
		if n := srv.Calls(tc.ep) - before; n != 1 {
			t.Errorf("%d: %d calls, want 1", tc.code, n)
		}
	}
	if len(srv.Records()) != 0 {
		t.Error("a fatal error wrote records")
	}
}

func TestProgrammingCodes(t *testing.T) {
	srv, c := startClient(t, nil)
	for _, code := range []int{1, 4815, 17017, 17024, 17025} {
		srv.FailNext("data/list", code, 1)
		_, err := c.List(testCtx(t), ListQuery{})
		mustClass(t, err, apierr.Programming)
	}
}

func TestMissingOnUpdate(t *testing.T) {
	srv, c := startClient(t, nil)
	id := srv.InsertRecord(map[string]any{"sync_key": "a|2025-06"})
	srv.DeleteRecord(id)
	err := c.Update(testCtx(t), id, json.RawMessage(`{"work_days":{"value":1}}`))
	if e := mustClass(t, err, apierr.Missing); e.Code != 4001 {
		t.Errorf("code = %d", e.Code)
	}
	if n := srv.Calls("data/update"); n != 1 {
		t.Errorf("calls = %d, want 1", n)
	}
}

func TestRecordErrors(t *testing.T) {
	srv, c := startClient(t, nil)
	ctx := testCtx(t)
	batch := []json.RawMessage{record("a|2025-06", 1)}

	srv.FailNext("data/batch_create", 4000, 1)
	_, err := c.BatchCreate(ctx, "tx-1", batch)
	if e := mustClass(t, err, apierr.Record); e.Code != 4000 || e.Hint == "" {
		t.Errorf("4000: %v", err)
	}
	// A value of the wrong type: the fake itself answers 4000.
	_, err = c.BatchCreate(ctx, "tx-2", []json.RawMessage{json.RawMessage(`{"work_days":{"value":"many"}}`)})
	if e := mustClass(t, err, apierr.Record); e.Code != 4000 {
		t.Errorf("bad value: %v", err)
	}
	for _, code := range []int{3005, 17032, 1010, 99999} {
		srv.FailNext("data/update", code, 1)
		mustClass(t, c.Update(ctx, "x", json.RawMessage(`{}`)), apierr.Record)
	}
	if n := srv.Calls("data/batch_create"); n != 2 {
		t.Errorf("batch_create calls = %d, want 2", n)
	}
	if len(srv.Records()) != 0 {
		t.Error("a rejected batch wrote records")
	}
}

// The client's own buckets keep it under the fake's server-side limits at
// the same rates. Because a slot is taken before the limiters, a request
// spends its token only while holding a slot, so the server can see at most
// Concurrency requests beyond the rate, whatever the scheduling delays: a
// server burst of Concurrency+1 is never exceeded, and this test holds on a
// loaded machine too.
func TestClientLimitsKeepUnderServerLimits(t *testing.T) {
	for _, tc := range []struct{ concurrency, burst int }{{2, 3}, {4, 5}} {
		t.Run(fmt.Sprintf("concurrency %d burst %d", tc.concurrency, tc.burst), func(t *testing.T) {
			rates := fakeapi.JDYRates{List: 30, Update: 20, Create: 20, BatchCreate: 10, Global: 40}
			srv, base := startFake(t, fakeapi.Options{JDY: rates, Burst: tc.burst})
			c := fakeClient(t, srv, base, func(c *Config) {
				c.Rates = Rates{List: rates.List, Update: rates.Update, Create: rates.Create, BatchCreate: rates.BatchCreate, Global: rates.Global}
				c.Concurrency = tc.concurrency
			})
			limitedCalls(t, srv, c)
		})
	}
}

func limitedCalls(t *testing.T, srv *fakeapi.Server, c *Client) {
	ctx := testCtx(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, srv.InsertRecord(map[string]any{"sync_key": fmt.Sprintf("k%d", i)}))
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for i := range 5 {
				var err error
				switch (g + i) % 3 {
				case 0:
					_, err = c.List(ctx, ListQuery{Limit: 5})
				case 1:
					_, err = c.Get(ctx, ids[i])
				default:
					err = c.Update(ctx, ids[g], json.RawMessage(`{"work_days":{"value":1}}`))
				}
				if err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := srv.Throttled(); n != 0 {
		t.Errorf("the fake throttled %d requests", n)
	}
	total := 0
	for ep, s := range c.Stats() {
		total += s.Calls
		if s.Retries != 0 {
			t.Errorf("%s: %d retries", ep, s.Retries)
		}
	}
	if total != 40 {
		t.Errorf("%d calls, want 40", total)
	}
}

// inflight counts concurrent round trips.
type inflight struct {
	next      http.RoundTripper
	cur, peak atomic.Int32
}

func (f *inflight) RoundTrip(r *http.Request) (*http.Response, error) {
	n := f.cur.Add(1)
	defer f.cur.Add(-1)
	for {
		p := f.peak.Load()
		if n <= p || f.peak.CompareAndSwap(p, n) {
			break
		}
	}
	return f.next.RoundTrip(r)
}

func TestConcurrencyIsBounded(t *testing.T) {
	rt := &inflight{next: http.DefaultTransport}
	srv, c := startClient(t, func(c *Config) {
		c.Concurrency = 3
		c.HTTPClient = &http.Client{Transport: rt}
	})
	srv.SetFaults(fakeapi.Faults{Latency: 10 * time.Millisecond})
	srv.FailNext("data/list", 8303, 5) // retries must not leak slots either
	ctx := testCtx(t)
	var wg sync.WaitGroup
	var failed atomic.Int32
	for range 30 {
		wg.Go(func() {
			if _, err := c.List(ctx, ListQuery{Limit: 1}); err != nil {
				failed.Add(1)
			}
		})
	}
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d lists failed", failed.Load())
	}
	if p := rt.peak.Load(); p > 3 || p < 2 {
		t.Errorf("peak in flight = %d, want 2..3", p)
	}
}

func TestLogsNeverHoldTheKey(t *testing.T) {
	var buf bytes.Buffer
	var mu sync.Mutex
	w := zerolog.SyncWriter(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return buf.Write(p)
	}))
	log := zerolog.New(w).Level(zerolog.DebugLevel)
	srv, base := startFake(t, fakeapi.Options{JDY: unlimited})
	c := fakeClient(t, srv, base, func(c *Config) { c.Log = log })
	ctx := testCtx(t)

	var errs []error
	srv.FailNext("data/list", 8303, 1)
	_, err := c.List(ctx, ListQuery{})
	errs = append(errs, err)
	srv.SetFaults(fakeapi.Faults{LostAck: 1, Endpoints: []string{"data/batch_create"}})
	_, err = c.BatchCreate(ctx, "tx", []json.RawMessage{record("a|2025-06", 1)})
	errs = append(errs, err)
	srv.SetFaults(fakeapi.Faults{})
	errs = append(errs, c.Update(ctx, "missing", json.RawMessage(`{}`)))
	bad := fakeClient(t, srv, base, func(c *Config) { c.Log = log; c.APIKey = secretKey + "-wrong" })
	_, err = bad.Widgets(ctx)
	errs = append(errs, err)

	mu.Lock()
	out := buf.String()
	mu.Unlock()
	for _, want := range []string{`"endpoint":"data/list"`, `"status":400`, `"code":8303`, `"duration"`, "retrying", `"endpoint":"data/batch_create"`} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %s:\n%s", want, out)
		}
	}
	if strings.Contains(out, secretKey) || strings.Contains(out, "Bearer") {
		t.Errorf("log holds the API key:\n%s", out)
	}
	for _, err := range errs[1:] {
		if err == nil {
			t.Fatal("want an error")
		}
		if strings.Contains(err.Error(), secretKey) {
			t.Errorf("error holds the API key: %v", err)
		}
	}
}

type writerFunc func(p []byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// A lookup stopped by its context returns promptly with the context's error.
func TestFindByKeysHonoursContext(t *testing.T) {
	srv, c := startClient(t, nil)
	srv.SetFaults(fakeapi.Faults{Latency: 10 * time.Second})
	ctx, cancel := context.WithTimeout(testCtx(t), 50*time.Millisecond)
	defer cancel()
	_, err := c.FindByKeys(ctx, "sync_key", []string{"a"}, nil)
	if err == nil || ctx.Err() == nil {
		t.Fatalf("err = %v", err)
	}
}

// Dropped connections on idempotent calls are resent; a delete whose first
// attempt went through is not reported as missing on the resend.
func TestDroppedConnectionsOnIdempotentCalls(t *testing.T) {
	srv, base := startFake(t, fakeapi.Options{JDY: unlimited, Seed: 7})
	c := fakeClient(t, srv, base, func(c *Config) { c.Retry.MaxAttempts = 12 })
	ctx := testCtx(t)
	var ids []string
	for i := range 10 {
		ids = append(ids, srv.InsertRecord(map[string]any{"sync_key": fmt.Sprintf("k%d", i)}))
	}
	srv.SetFaults(fakeapi.Faults{LostAck: 0.5, Endpoints: []string{"data/update", "data/delete", "data/list"}})
	for i, id := range ids {
		if err := c.Update(ctx, id, json.RawMessage(fmt.Sprintf(`{"work_days":{"value":%d}}`, i))); err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
	}
	got, err := c.FindByKeys(ctx, "sync_key", []string{"k0", "k9"}, nil)
	if err != nil || len(got) != 2 {
		t.Fatalf("lookup = %v, %v", got, err)
	}
	for i, r := range srv.Records() {
		if r.Data["work_days"] != float64(i) {
			t.Errorf("record %d: work_days %v", i, r.Data["work_days"])
		}
	}
	for i, id := range ids {
		if err := c.Delete(ctx, id); err != nil {
			t.Fatalf("delete %d: %v", i, err)
		}
	}
	if n := len(srv.Records()); n != 0 {
		t.Errorf("%d records left", n)
	}
	st := c.Stats()
	for _, ep := range []string{"data/update", "data/delete"} {
		if st[ep].Retries == 0 {
			t.Errorf("%s: no retries; the fault did not fire", ep)
		}
	}
}

// Right after a create, a first page holding exactly the records created
// ends the lookup; any other first page is paged on from.
func TestFindCreatedStopsAtItsOwnRecords(t *testing.T) {
	srv, c := startClient(t, nil)
	var keys, created []string
	for i := range 100 {
		k := fmt.Sprintf("u%03d|2025-06", i)
		keys = append(keys, k)
		created = append(created, srv.InsertRecord(map[string]any{"sync_key": k}))
	}
	// A legacy spelling asked too, with no record.
	asked := append(slices.Clone(keys), "U001|2025-06")
	rows, err := c.FindCreated(testCtx(t), "sync_key", asked, nil, created)
	if err != nil || len(rows) != 100 {
		t.Fatalf("%d rows, %v", len(rows), err)
	}
	if n := srv.Calls("data/list"); n != 1 {
		t.Errorf("data/list calls = %d, want 1", n)
	}

	// A newer copy of one key: still one call, the page is the oldest.
	srv.InsertRecord(map[string]any{"sync_key": keys[7]})
	if _, err := c.FindCreated(testCtx(t), "sync_key", keys, nil, created); err != nil {
		t.Fatal(err)
	}
	if n := srv.Calls("data/list"); n != 2 {
		t.Errorf("data/list calls = %d, want 2", n)
	}

	// Not the records created (another writer's came first): every copy.
	rows, err = c.FindCreated(testCtx(t), "sync_key", keys, nil, created[1:])
	if err != nil || len(rows) != 101 {
		t.Fatalf("%d rows, %v; want every copy", len(rows), err)
	}
	if n := srv.Calls("data/list"); n != 4 {
		t.Errorf("data/list calls = %d, want 4", n)
	}
}

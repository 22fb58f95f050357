package fakeapi

import (
	"context"
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var idPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

func TestJDYAuthAndForm(t *testing.T) {
	f := start(t, unlimited(Options{}))
	body := map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID}
	for _, key := range []string{"", "wrong-key"} {
		st, raw, err := f.jdyRaw(t.Context(), pathWidgets, key, body)
		if err != nil {
			t.Fatal(err)
		}
		m := decodeMap(t, raw)
		wantJDY(t, st, m, 8301)
		if strings.Contains(string(raw), f.cred.APIKey) {
			t.Fatal("error echoes the API key")
		}
	}
	st, m := f.jdy(pathWidgets, map[string]any{"app_id": "otherapp"})
	wantJDY(t, st, m, 2004)
	st, m = f.jdy(pathWidgets, map[string]any{"entry_id": "otherentry"})
	wantJDY(t, st, m, 3000)

	// Request-shape mistakes: code 1.
	for name, b := range map[string]any{
		"missing app_id":   map[string]any{"entry_id": f.cred.EntryID},
		"missing entry_id": map[string]any{"app_id": f.cred.AppID},
		"app_id a number":  map[string]any{"app_id": 5, "entry_id": f.cred.EntryID},
		"unknown field":    map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "entryId": "x"},
		"not JSON":         `{"app_id":`,
		"empty body":       ``,
	} {
		st, raw, err := f.jdyRaw(t.Context(), pathWidgets, f.cred.APIKey, b)
		if err != nil {
			t.Fatal(err)
		}
		if st != http.StatusBadRequest || decodeMap(t, raw)["code"].(float64) != 1 {
			t.Errorf("%s: HTTP %d %s, want code 1", name, st, raw)
		}
	}
	st, raw, _ := f.jdyRaw(t.Context(), pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "limit": "10"})
	if st != http.StatusBadRequest || decodeMap(t, raw)["code"].(float64) != 1 {
		t.Errorf("limit as a string: HTTP %d %s", st, raw)
	}
}

func TestWidgetList(t *testing.T) {
	f := start(t, unlimited(Options{}))
	st, m := f.jdy(pathWidgets, nil)
	wantOK(t, st, m)
	ws := m["widgets"].([]any)
	if len(ws) != len(DefaultWidgets()) {
		t.Fatalf("%d widgets", len(ws))
	}
	types := map[string]string{}
	for _, w := range ws {
		wm := w.(map[string]any)
		if !regexp.MustCompile(`^_widget_\d{13}$`).MatchString(wm["widgetName"].(string)) || wm["label"] == "" {
			t.Fatalf("widget %v", wm)
		}
		types[wm["name"].(string)] = wm["type"].(string)
	}
	for name, typ := range map[string]string{"sync_key": "text", "month": "datetime", "record_type": "number", "departs_name": "text", "restdays_over_sec": "number"} {
		if types[name] != typ {
			t.Errorf("widget %s has type %q, want %q", name, types[name], typ)
		}
	}
	if _, ok := m["sysWidgets"].([]any); !ok {
		t.Fatal("no sysWidgets")
	}
	if _, err := time.Parse(time.RFC3339, m["dataModifyTime"].(string)); err != nil {
		t.Fatalf("dataModifyTime: %v", err)
	}
}

func TestCreateGetUpdateDelete(t *testing.T) {
	f := start(t, unlimited(Options{}))
	st, m := f.jdy(pathCreate, map[string]any{"data": row("sync_key", "a|2025-06", "work_days", 20, "month", 1748707200000, "extra_field", "kept"), "is_start_workflow": false, "is_start_trigger": false})
	wantOK(t, st, m)
	rec := m["data"].(map[string]any)
	id := rec["_id"].(string)
	if !idPattern.MatchString(id) {
		t.Fatalf("_id %q", id)
	}
	if rec["sync_key"] != "a|2025-06" || rec["work_days"] != 20.0 || rec["extra_field"] != "kept" {
		t.Fatalf("created %v", rec)
	}
	if rec["month"] != "2025-05-31T16:00:00.000Z" {
		t.Fatalf("month stored as %v", rec["month"])
	}
	for _, k := range []string{"appId", "entryId", "createTime", "updateTime", "creator"} {
		if _, ok := rec[k]; !ok {
			t.Fatalf("record lacks %s: %v", k, rec)
		}
	}

	st, m = f.jdy(pathGet, map[string]any{"data_id": id})
	wantOK(t, st, m)
	if !reflect.DeepEqual(m["data"], rec) {
		t.Fatalf("get %v, want %v", m["data"], rec)
	}

	st, m = f.jdy(pathUpdate, map[string]any{"data_id": id, "data": row("work_days", 21, "name", "张三")})
	wantOK(t, st, m)
	up := m["data"].(map[string]any)
	if up["work_days"] != 21.0 || up["name"] != "张三" || up["sync_key"] != "a|2025-06" {
		t.Fatalf("update did not merge: %v", up)
	}

	st, m = f.jdy(pathUpdate, map[string]any{"data_id": "ffffffffffffffffffffffff", "data": row("work_days", 1)})
	wantJDY(t, st, m, 4001)
	st, m = f.jdy(pathUpdate, map[string]any{"data": row("work_days", 1)})
	wantJDY(t, st, m, 1)
	st, m = f.jdy(pathGet, map[string]any{"data_id": "ffffffffffffffffffffffff"})
	wantJDY(t, st, m, 4001)

	st, m = f.jdy(pathDelete, map[string]any{"data_id": id})
	wantOK(t, st, m)
	if m["status"] != "success" {
		t.Fatalf("delete: %v", m)
	}
	st, m = f.jdy(pathDelete, map[string]any{"data_id": id})
	wantJDY(t, st, m, 4001)
	if n := len(f.s.Records()); n != 0 {
		t.Fatalf("%d records after delete", n)
	}
}

func TestWriteValueChecks(t *testing.T) {
	f := start(t, unlimited(Options{}))
	cases := map[string]map[string]any{
		"string into number":     row("work_days", "20"),
		"number into text":       row("sync_key", 5),
		"epoch seconds datetime": row("month", 1748707200),
		"slashed date":           row("month", "2025/06/01"),
		"null datetime":          row("month", nil),
		"flat value":             {"sync_key": "a|2025-06"},
		"system field":           row("_id", "x"),
	}
	for name, data := range cases {
		st, m := f.jdy(pathCreate, map[string]any{"data": data})
		wantJDY(t, st, m, 4000)
		_ = name
	}
	st, m := f.jdy(pathCreate, map[string]any{"data": []any{}})
	wantJDY(t, st, m, 1)
	// Accepted datetime forms all normalise to UTC.
	for _, v := range []any{"2025-06-01", "2025-06-01 00:00:00", "2025-05-31T16:00:00Z", "2025-06-01T00:00:00+08:00", 1748707200000} {
		st, m := f.jdy(pathCreate, map[string]any{"data": row("month", v)})
		wantOK(t, st, m)
		if got := m["data"].(map[string]any)["month"]; got != "2025-05-31T16:00:00.000Z" {
			t.Errorf("month %v stored as %v", v, got)
		}
	}
	// A batch with one bad record creates nothing.
	before := len(f.s.Records())
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": []any{row("sync_key", "ok"), row("work_days", "bad")}})
	wantJDY(t, st, m, 4000)
	if !strings.Contains(m["msg"].(string), "data_list[1]") {
		t.Fatalf("batch error does not name the record: %v", m)
	}
	if len(f.s.Records()) != before {
		t.Fatal("rejected batch created records")
	}
}

func TestBatchCreateAndTransactionReplay(t *testing.T) {
	f := start(t, unlimited(Options{}))
	list := func(n int, prefix string) []any {
		out := make([]any, n)
		for i := range out {
			out[i] = row("sync_key", fmt.Sprintf("%s%03d|2025-06", prefix, i), "work_days", i)
		}
		return out
	}
	st, m := f.jdy(pathBatchCreate, map[string]any{"data_list": list(101, "x")})
	wantJDY(t, st, m, 17024)
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": []any{}})
	wantJDY(t, st, m, 1)

	batch := list(3, "u")
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx-1", "data_list": batch})
	wantOK(t, st, m)
	first := m["success_ids"].([]any)
	if m["status"] != "success" || m["success_count"].(float64) != 3 || len(first) != 3 {
		t.Fatalf("batch_create: %v", m)
	}
	// Replay within the hour: same ids, nothing new.
	f.s.AdvanceClock(59 * time.Minute)
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx-1", "data_list": batch})
	wantOK(t, st, m)
	if !reflect.DeepEqual(m["success_ids"], first) || len(f.s.Records()) != 3 {
		t.Fatalf("replay within the hour: %v, %d records", m, len(f.s.Records()))
	}
	// After the hour: a new batch.
	f.s.AdvanceClock(2 * time.Minute)
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx-1", "data_list": batch})
	wantOK(t, st, m)
	second := m["success_ids"].([]any)
	if reflect.DeepEqual(second, first) || len(f.s.Records()) != 6 {
		t.Fatalf("replay after the hour: %v, %d records", m, len(f.s.Records()))
	}
	dups := f.s.Duplicates("sync_key")
	if len(dups) != 3 || !reflect.DeepEqual(dups["u000|2025-06"], []string{first[0].(string), second[0].(string)}) {
		t.Fatalf("duplicates %v", dups)
	}
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "${uuid}", "data_list": batch})
	wantJDY(t, st, m, 17025)

	// batch_delete: limits and counts.
	ids := make([]string, 101)
	for i := range ids {
		ids[i] = "ffffffffffffffffffffffff"
	}
	st, m = f.jdy(pathBatchDelete, map[string]any{"data_ids": ids})
	wantJDY(t, st, m, 17033)
	st, m = f.jdy(pathBatchDelete, map[string]any{"data_ids": []any{first[0], first[1], "ffffffffffffffffffffffff"}})
	wantOK(t, st, m)
	if m["success_count"].(float64) != 2 || len(f.s.Records()) != 4 {
		t.Fatalf("batch_delete: %v, %d left", m, len(f.s.Records()))
	}
}

func TestIDsGrowWithCreation(t *testing.T) {
	f := start(t, unlimited(Options{}))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				st, _, err := f.jdyRaw(context.Background(), pathCreate, f.cred.APIKey, map[string]any{
					"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "data": row("sync_key", fmt.Sprintf("g%d-%d", g, i)),
				})
				if err != nil || st != http.StatusOK {
					t.Errorf("create: %d %v", st, err)
				}
			}
		}()
	}
	wg.Wait()
	recs := f.s.Records()
	if len(recs) != 40 {
		t.Fatalf("%d records", len(recs))
	}
	for i := 1; i < len(recs); i++ {
		if recs[i-1].ID >= recs[i].ID || recs[i-1].CreateTime.After(recs[i].CreateTime) {
			t.Fatalf("ids out of creation order at %d", i)
		}
	}
}

func seed(t *testing.T, f *fixture, n int) []string {
	t.Helper()
	var ids []string
	for i := 0; i < n; i += 100 {
		var list []any
		for j := i; j < min(n, i+100); j++ {
			list = append(list, row("sync_key", fmt.Sprintf("k%03d", j), "work_days", j, "name", fmt.Sprintf("n%d", j%3),
				"month", fmt.Sprintf("2025-%02d-01", 1+j%12)))
		}
		st, m := f.jdy(pathBatchCreate, map[string]any{"data_list": list})
		wantOK(t, st, m)
		for _, id := range m["success_ids"].([]any) {
			ids = append(ids, id.(string))
		}
	}
	sort.Strings(ids)
	return ids
}

func listIDs(t *testing.T, m map[string]any) []string {
	t.Helper()
	var out []string
	for _, r := range m["data"].([]any) {
		out = append(out, r.(map[string]any)["_id"].(string))
	}
	return out
}

func TestListPagingAndFields(t *testing.T) {
	f := start(t, unlimited(Options{}))
	ids := seed(t, f, 25)

	st, m := f.jdy(pathList, nil)
	wantOK(t, st, m)
	if got := listIDs(t, m); !reflect.DeepEqual(got, ids[:10]) {
		t.Fatalf("default page: %v", got)
	}
	var all []string
	cursor := ""
	for {
		body := map[string]any{"limit": 7}
		if cursor != "" {
			body["data_id"] = cursor
		}
		st, m := f.jdy(pathList, body)
		wantOK(t, st, m)
		page := listIDs(t, m)
		all = append(all, page...)
		if len(page) < 7 {
			break
		}
		cursor = page[len(page)-1]
	}
	if !reflect.DeepEqual(all, ids) {
		t.Fatalf("paging returned %d ids, want %d in order", len(all), len(ids))
	}
	for _, lim := range []int{0, 101, -1} {
		st, m := f.jdy(pathList, map[string]any{"limit": lim})
		wantJDY(t, st, m, 17017)
	}
	st, m = f.jdy(pathList, map[string]any{"limit": 1, "fields": []string{"sync_key", "updateTime"}})
	wantOK(t, st, m)
	r := m["data"].([]any)[0].(map[string]any)
	keys := make([]string, 0, len(r))
	for k := range r {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if !reflect.DeepEqual(keys, []string{"_id", "appId", "entryId", "sync_key", "updateTime"}) {
		t.Fatalf("fields gave keys %v", keys)
	}
}

func TestListFilters(t *testing.T) {
	f := start(t, unlimited(Options{}))
	ids := seed(t, f, 30)
	f.s.EditRecord(ids[5], "name", nil) // one record with an empty name
	count := func(filter any) int {
		t.Helper()
		st, m := f.jdy(pathList, map[string]any{"limit": 100, "filter": filter})
		wantOK(t, st, m)
		got := listIDs(t, m)
		if !sort.StringsAreSorted(got) {
			t.Fatalf("results not ascending by _id")
		}
		return len(got)
	}
	cond := func(field, method string, value any) map[string]any {
		c := map[string]any{"field": field, "method": method}
		if value != nil {
			c["value"] = value
		}
		return c
	}
	and := func(cs ...any) map[string]any { return map[string]any{"rel": "and", "cond": append([]any{}, cs...)} }
	or := func(cs ...any) map[string]any { return map[string]any{"rel": "or", "cond": cs} }

	cases := []struct {
		name   string
		filter any
		want   int
	}{
		{"eq", and(cond("sync_key", "eq", []any{"k007"})), 1},
		{"eq with type", and(map[string]any{"field": "sync_key", "type": "text", "method": "eq", "value": []any{"k007"}}), 1},
		{"in", and(cond("sync_key", "in", []any{"k001", "k002", "nope"})), 2},
		{"ne", and(cond("name", "ne", []any{"n0"})), 20},
		{"empty", and(cond("name", "empty", nil)), 1},
		{"not_empty", and(cond("name", "not_empty", nil)), 29},
		{"range numbers", and(cond("work_days", "range", []any{10, 19})), 10},
		{"range open high", and(cond("work_days", "range", []any{25, nil})), 5},
		{"range open low", and(cond("work_days", "range", []any{nil, 4})), 5},
		{"range datetimes", and(cond("month", "range", []any{"2025-01-01", "2025-02-01"})), 6},
		{"range ISO datetimes", and(cond("month", "range", []any{"2024-12-31T16:00:00.000Z", "2025-01-31T16:00:00.000Z"})), 6},
		{"and of two", and(cond("name", "eq", []any{"n1"}), cond("work_days", "range", []any{0, 9})), 3},
		{"or of two", or(cond("sync_key", "eq", []any{"k000"}), cond("sync_key", "eq", []any{"k029"})), 2},
		{"by _id", and(cond("_id", "in", []any{ids[3], ids[4]})), 2},
		{"unknown field", and(cond("nothing", "eq", []any{"x"})), 0},
		{"no conditions", and(), 30},
	}
	for _, c := range cases {
		if got := count(c.filter); got != c.want {
			t.Errorf("%s: %d records, want %d", c.name, got, c.want)
		}
	}

	many := make([]any, 201)
	for i := range many {
		many[i] = fmt.Sprintf("k%03d", i)
	}
	bad := map[string]any{
		"in over 200":          and(cond("sync_key", "in", many)),
		"rel xor":              map[string]any{"rel": "xor", "cond": []any{}},
		"no rel":               map[string]any{"cond": []any{}},
		"cond not an array":    map[string]any{"rel": "and", "cond": cond("sync_key", "eq", []any{"a"})},
		"value not an array":   and(cond("sync_key", "eq", "k001")),
		"unknown method":       and(cond("sync_key", "equals", []any{"k001"})),
		"no field":             and(map[string]any{"method": "eq", "value": []any{"x"}}),
		"range of one":         and(cond("work_days", "range", []any{1})),
		"range bound object":   and(cond("work_days", "range", []any{map[string]any{}, 2})),
		"unknown cond key":     and(map[string]any{"field": "sync_key", "method": "eq", "value": []any{"x"}, "op": 1}),
		"filter is an array":   []any{},
		"in with empty values": and(cond("sync_key", "in", []any{})),
	}
	for name, flt := range bad {
		st, m := f.jdy(pathList, map[string]any{"filter": flt})
		if st != http.StatusBadRequest || m["code"].(float64) != 4815 {
			t.Errorf("%s: HTTP %d %v, want 4815", name, st, m)
		}
	}

	// Paging through a filtered result with the cursor.
	st, m := f.jdy(pathList, map[string]any{"limit": 2, "data_id": ids[10], "filter": and(cond("name", "eq", []any{"n2"}))})
	wantOK(t, st, m)
	if got := listIDs(t, m); !reflect.DeepEqual(got, []string{ids[11], ids[14]}) {
		t.Fatalf("filtered page after cursor: %v", got)
	}

	// Index stays right after writes.
	count(and(cond("sync_key", "eq", []any{"k001"})))
	f.s.EditRecord(ids[1], "sync_key", "moved")
	f.s.DeleteRecord(ids[2])
	if count(and(cond("sync_key", "in", []any{"k001", "k002"}))) != 0 || count(and(cond("sync_key", "eq", []any{"moved"}))) != 1 {
		t.Fatal("index out of step with edits")
	}
	newID := f.s.InsertRecord(map[string]any{"sync_key": "k001", "work_days": 3})
	st, m = f.jdy(pathList, map[string]any{"filter": and(cond("sync_key", "eq", []any{"k001"}), cond("work_days", "eq", []any{3}))})
	wantOK(t, st, m)
	if got := listIDs(t, m); !reflect.DeepEqual(got, []string{newID}) {
		t.Fatalf("inserted record lookup: %v", got)
	}
}

func TestTestHooks(t *testing.T) {
	f := start(t, unlimited(Options{}))
	a := f.s.InsertRecord(map[string]any{"sync_key": "dup", "n": 1})
	b := f.s.InsertRecord(map[string]any{"sync_key": "dup"})
	c := f.s.InsertRecord(map[string]any{"sync_key": "solo"})
	if !(a < b && b < c) {
		t.Fatal("inserted ids not increasing")
	}
	if d := f.s.Duplicates("sync_key"); len(d) != 1 || !reflect.DeepEqual(d["dup"], []string{a, b}) {
		t.Fatalf("Duplicates = %v", d)
	}
	f.s.EditRecord(b, "sync_key", "other")
	if d := f.s.Duplicates("sync_key"); len(d) != 0 {
		t.Fatalf("Duplicates after edit = %v", d)
	}
	recs := f.s.Records()
	if len(recs) != 3 || recs[0].Data["n"] != 1.0 || recs[1].Data["sync_key"] != "other" {
		t.Fatalf("Records = %+v", recs)
	}
	recs[0].Data["n"] = 99.0 // a copy: the store is unaffected
	if f.s.Records()[0].Data["n"] != 1.0 {
		t.Fatal("Records shares maps with the store")
	}
	f.s.DeleteRecord(a)
	f.s.EditRecord("missing", "x", 1)
	f.s.DeleteRecord("missing")
	if len(f.s.Records()) != 2 {
		t.Fatal("DeleteRecord")
	}
}

func TestLegacyCreate(t *testing.T) {
	f := start(t, unlimited(Options{}))
	path := fmt.Sprintf("/api/v2/app/%s/entry/%s/data_create", f.cred.AppID, f.cred.EntryID)
	st, raw, err := f.jdyRaw(t.Context(), path, f.cred.APIKey, map[string]any{"data": row("sync_key", "legacy|2025-06")})
	if err != nil {
		t.Fatal(err)
	}
	m := decodeMap(t, raw)
	wantOK(t, st, m)
	if m["data"].(map[string]any)["sync_key"] != "legacy|2025-06" || f.s.Calls(EndpointLegacyCreate) != 1 {
		t.Fatalf("legacy create: %v", m)
	}
	st, raw, _ = f.jdyRaw(t.Context(), fmt.Sprintf("/api/v2/app/%s/entry/%s/data_create", "nope", f.cred.EntryID), f.cred.APIKey, map[string]any{"data": row("sync_key", "x")})
	wantJDY(t, st, decodeMap(t, raw), 2004)
	st, raw, _ = f.jdyRaw(t.Context(), path, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "data": row("sync_key", "x")})
	wantJDY(t, st, decodeMap(t, raw), 1)
}

func TestJDYRateLimits(t *testing.T) {
	tiny := 1e-9 // never refills during the test
	f := start(t, Options{Burst: 3, JDY: JDYRates{Create: tiny, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: tiny}})
	var codes []any
	for i := 0; i < 5; i++ {
		st, m := f.jdy(pathCreate, map[string]any{"data": row("sync_key", fmt.Sprint(i))})
		codes = append(codes, st, m["code"])
	}
	want := []any{200, nil, 200, nil, 200, nil, 400, 8304.0, 400, 8304.0}
	if !reflect.DeepEqual(codes, want) {
		t.Fatalf("create answers %v, want %v", codes, want)
	}
	if f.s.Throttled() != 2 || len(f.s.Records()) != 3 {
		t.Fatalf("Throttled = %d, records = %d", f.s.Throttled(), len(f.s.Records()))
	}
	// Other interfaces have their own buckets.
	st, m := f.jdy(pathList, nil)
	wantOK(t, st, m)
	path := fmt.Sprintf("/api/v2/app/%s/entry/%s/data_create", f.cred.AppID, f.cred.EntryID)
	for i := 0; i < 4; i++ {
		st, raw, _ := f.jdyRaw(t.Context(), path, f.cred.APIKey, map[string]any{"data": row("sync_key", "l")})
		if i < 3 && st != http.StatusOK {
			t.Fatalf("legacy call %d: %d %s", i, st, raw)
		}
		if i == 3 {
			wantJDY(t, st, decodeMap(t, raw), 8304)
		}
	}

	g := start(t, Options{Burst: 3, JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: tiny, Legacy: -1}})
	for i := 0; i < 3; i++ {
		st, m := g.jdy(pathList, nil)
		wantOK(t, st, m)
	}
	st, m = g.jdy(pathCreate, map[string]any{"data": row("sync_key", "x")})
	wantJDY(t, st, m, 8303)
	if g.s.Throttled() != 1 {
		t.Fatalf("Throttled = %d", g.s.Throttled())
	}
}

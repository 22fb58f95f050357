package fakeapi

import (
	"fmt"
	"net/http"
	"reflect"
	"regexp"
	"sort"
	"sync"
	"testing"
	"time"
)

// keys builds n write-shape records keyed prefix000, prefix001, ...
func keys(prefix string, n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = row("sync_key", fmt.Sprintf("%s%03d", prefix, i), "work_days", i)
	}
	return out
}

func strs(t *testing.T, v any) []string {
	t.Helper()
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

func recordIDs(s *Server) []string {
	var out []string
	for _, r := range s.Records() {
		out = append(out, r.ID)
	}
	return out
}

func TestTxModeDedupe(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetJDYBehaviour(JDYBehaviour{TxMode: TxDedupe})
	st, m := f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 3)})
	wantOK(t, st, m)
	first := m["success_ids"]
	// Even different content under a known id is answered from the table.
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("b", 2)})
	wantOK(t, st, m)
	if !reflect.DeepEqual(m["success_ids"], first) || m["success_count"] != 3.0 || len(f.s.Records()) != 3 {
		t.Fatalf("dedupe resend: %v, %d records", m, len(f.s.Records()))
	}
}

func TestTxModeOverwrite(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetJDYBehaviour(JDYBehaviour{TxMode: TxOverwrite})
	other := f.s.InsertRecord(map[string]any{"sync_key": "other"})
	st, m := f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 3)})
	wantOK(t, st, m)
	first := strs(t, m["success_ids"])

	f.s.AdvanceClock(30 * time.Minute)
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 2)})
	wantOK(t, st, m)
	second := strs(t, m["success_ids"])
	if m["status"] != "success" || m["success_count"] != 2.0 || len(second) != 2 {
		t.Fatalf("overwrite answer: %v", m)
	}
	if want := append([]string{other}, second...); !reflect.DeepEqual(recordIDs(f.s), want) {
		t.Fatalf("records %v, want %v (first batch %v deleted)", recordIDs(f.s), want, first)
	}
	if second[0] <= first[2] {
		t.Fatalf("overwrite reused or reordered ids: %v after %v", second, first)
	}
	if c := f.s.CountBy("sync_key"); !reflect.DeepEqual(c, map[string]int{"other": 1, "a000": 1, "a001": 1}) {
		t.Fatalf("CountBy = %v", c)
	}

	// The window runs from the first use: 31 more minutes is past it, so the
	// id starts a new batch and the overwritten one stays.
	f.s.AdvanceClock(31 * time.Minute)
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 1)})
	wantOK(t, st, m)
	if n := len(f.s.Records()); n != 4 {
		t.Fatalf("after the hour: %d records, want 4", n)
	}
	if d := f.s.Duplicates("sync_key"); !reflect.DeepEqual(d["a000"], []string{second[0], strs(t, m["success_ids"])[0]}) {
		t.Fatalf("Duplicates = %v", d)
	}
}

func TestTxModeIgnore(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetJDYBehaviour(JDYBehaviour{TxMode: TxIgnore})
	var all []string
	for i := 0; i < 3; i++ {
		st, m := f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 2)})
		wantOK(t, st, m)
		if m["success_count"] != 2.0 {
			t.Fatalf("call %d: %v", i, m)
		}
		all = append(all, strs(t, m["success_ids"])...)
	}
	if !reflect.DeepEqual(recordIDs(f.s), all) || !reflect.DeepEqual(f.s.CountBy("sync_key"), map[string]int{"a000": 3, "a001": 3}) {
		t.Fatalf("records %v, counts %v", recordIDs(f.s), f.s.CountBy("sync_key"))
	}
	// Ignored ids are not remembered: back in dedupe mode the id is new.
	f.s.SetJDYBehaviour(JDYBehaviour{})
	st, m := f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 2)})
	wantOK(t, st, m)
	if len(f.s.Records()) != 8 {
		t.Fatalf("%d records, want 8", len(f.s.Records()))
	}
	// Its format is still checked.
	f.s.SetJDYBehaviour(JDYBehaviour{TxMode: TxIgnore})
	st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "", "data_list": keys("a", 1)})
	wantJDY(t, st, m, 17025)
}

func TestTxModeReject(t *testing.T) {
	for _, tc := range []struct{ set, want int }{{0, 17026}, {17026, 17026}, {4000, 4000}, {99999, 99999}} {
		t.Run(fmt.Sprint(tc.want), func(t *testing.T) {
			f := start(t, unlimited(Options{}))
			f.s.SetJDYBehaviour(JDYBehaviour{TxMode: TxReject, ResendCode: tc.set})
			st, m := f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 2)})
			wantOK(t, st, m)
			f.s.AdvanceClock(59 * time.Minute)
			st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 2)})
			wantJDY(t, st, m, tc.want)
			if len(f.s.Records()) != 2 {
				t.Fatalf("rejected resend created: %d records", len(f.s.Records()))
			}
			// Other ids and calls without one are unaffected.
			st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx2", "data_list": keys("b", 1)})
			wantOK(t, st, m)
			st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys("c", 1)})
			wantOK(t, st, m)
			// Past the hour the id starts a new batch.
			f.s.AdvanceClock(time.Minute)
			st, m = f.jdy(pathBatchCreate, map[string]any{"transaction_id": "tx", "data_list": keys("a", 2)})
			wantOK(t, st, m)
			if len(f.s.Records()) != 6 || len(f.s.Duplicates("sync_key")) != 2 {
				t.Fatalf("after the hour: %d records, duplicates %v", len(f.s.Records()), f.s.Duplicates("sync_key"))
			}
		})
	}
}

func TestListLag(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetJDYBehaviour(JDYBehaviour{ListLag: 10 * time.Minute})
	hand := f.s.InsertRecord(map[string]any{"sync_key": "hand"})
	st, m := f.jdy(pathCreate, map[string]any{"data": row("sync_key", "one")})
	wantOK(t, st, m)
	one := m["data"].(map[string]any)["_id"].(string)
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys("b", 2)})
	wantOK(t, st, m)
	batch := strs(t, m["success_ids"])

	list := func(filter any) []string {
		t.Helper()
		body := map[string]any{"limit": 100}
		if filter != nil {
			body["filter"] = filter
		}
		st, m := f.jdy(pathList, body)
		wantOK(t, st, m)
		return listIDs(t, m)
	}
	byKey := map[string]any{"rel": "and", "cond": []any{map[string]any{"field": "sync_key", "method": "in", "value": []any{"one", "b000", "hand"}}}}
	if got := list(nil); !reflect.DeepEqual(got, []string{hand}) {
		t.Fatalf("list right after creating: %v, want only the hand record", got)
	}
	if got := list(byKey); !reflect.DeepEqual(got, []string{hand}) {
		t.Fatalf("key lookup right after creating: %v", got)
	}
	// get is immediate.
	st, m = f.jdy(pathGet, map[string]any{"data_id": one})
	wantOK(t, st, m)

	f.s.AdvanceClock(10*time.Minute - time.Second)
	if got := list(nil); len(got) != 1 {
		t.Fatalf("list before the lag has passed: %v", got)
	}
	f.s.AdvanceClock(time.Second)
	if got := list(nil); !reflect.DeepEqual(got, []string{hand, one, batch[0], batch[1]}) {
		t.Fatalf("list after the lag: %v", got)
	}
	if got := list(byKey); !reflect.DeepEqual(got, []string{hand, one, batch[0]}) {
		t.Fatalf("key lookup after the lag: %v", got)
	}

	// A later record lags on its own clock; the cursor skips it too.
	st, m = f.jdy(pathCreate, map[string]any{"data": row("sync_key", "late")})
	wantOK(t, st, m)
	late := m["data"].(map[string]any)["_id"].(string)
	if got := list(nil); len(got) != 4 {
		t.Fatalf("new record listed early: %v", got)
	}
	st, m = f.jdy(pathList, map[string]any{"data_id": batch[1]})
	wantOK(t, st, m)
	if len(listIDs(t, m)) != 0 {
		t.Fatalf("page after the cursor: %v", listIDs(t, m))
	}
	// Switching the lag off shows everything at once.
	f.s.SetJDYBehaviour(JDYBehaviour{})
	if got := list(nil); len(got) != 5 || got[4] != late {
		t.Fatalf("lag off: %v", got)
	}
}

func TestPartialBatch(t *testing.T) {
	f := start(t, unlimited(Options{}))

	// An error after writing the first two.
	f.s.PartialBatchNext(PartialBatch{Keep: 2, Code: 9004}, 1)
	st, m := f.jdy(pathBatchCreate, map[string]any{"data_list": keys("a", 5)})
	wantJDY(t, st, m, 9004)
	if c := f.s.CountBy("sync_key"); !reflect.DeepEqual(c, map[string]int{"a000": 1, "a001": 1}) {
		t.Fatalf("after an erroring partial batch: %v", c)
	}

	// Success with a short count: half of five, then the queue is spent.
	f.s.PartialBatchNext(PartialBatch{Keep: -1}, 2)
	for i, prefix := range []string{"b", "c"} {
		st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys(prefix, 5)})
		wantOK(t, st, m)
		ids := strs(t, m["success_ids"])
		if m["status"] != "success" || m["success_count"] != 2.0 || len(ids) != 2 {
			t.Fatalf("partial call %d: %v", i, m)
		}
		recs := f.s.Records()
		if last := recs[len(recs)-2:]; last[0].ID != ids[0] || last[1].ID != ids[1] || last[1].Data["sync_key"] != prefix+"001" {
			t.Fatalf("partial call %d wrote %+v", i, last)
		}
	}
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys("d", 5)})
	wantOK(t, st, m)
	if m["success_count"] != 5.0 || len(f.s.Records()) != 11 {
		t.Fatalf("after the queue: %v, %d records", m, len(f.s.Records()))
	}

	// Rejected calls do not use up a queued partial batch; Keep over the
	// size writes all, and Keep 0 writes none.
	f.s.PartialBatchNext(PartialBatch{Keep: 9}, 1)
	f.s.PartialBatchNext(PartialBatch{Keep: 0, Code: 4000}, 1)
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": []any{row("work_days", "bad")}})
	wantJDY(t, st, m, 4000)
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys("e", 3)})
	wantOK(t, st, m)
	if m["success_count"] != 3.0 {
		t.Fatalf("Keep over the size: %v", m)
	}
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys("f", 3)})
	wantJDY(t, st, m, 4000)
	if len(f.s.Records()) != 14 {
		t.Fatalf("%d records, want 14", len(f.s.Records()))
	}
}

// A partial batch under a transaction_id, resent in each mode.
func TestPartialBatchResend(t *testing.T) {
	for _, mode := range []TxMode{TxDedupe, TxOverwrite, TxIgnore, TxReject} {
		t.Run(mode.String(), func(t *testing.T) {
			f := start(t, unlimited(Options{}))
			f.s.SetJDYBehaviour(JDYBehaviour{TxMode: mode})
			f.s.PartialBatchNext(PartialBatch{Keep: 1, Code: 9004}, 1)
			body := map[string]any{"transaction_id": "tx", "data_list": keys("a", 3)}
			st, m := f.jdy(pathBatchCreate, body)
			wantJDY(t, st, m, 9004)
			partial := recordIDs(f.s)
			st, m = f.jdy(pathBatchCreate, body)
			counts := f.s.CountBy("sync_key")
			switch mode {
			case TxDedupe: // answered from the table: only what the first call wrote
				wantOK(t, st, m)
				if !reflect.DeepEqual(strs(t, m["success_ids"]), partial) || m["success_count"] != 1.0 || len(counts) != 1 {
					t.Fatalf("%v, counts %v", m, counts)
				}
			case TxOverwrite: // the partial record replaced by the full batch
				wantOK(t, st, m)
				if m["success_count"] != 3.0 || !reflect.DeepEqual(counts, map[string]int{"a000": 1, "a001": 1, "a002": 1}) {
					t.Fatalf("%v, counts %v", m, counts)
				}
				if recordIDs(f.s)[0] == partial[0] {
					t.Fatal("overwrite kept the partial record")
				}
			case TxIgnore: // a duplicate of the partial record
				wantOK(t, st, m)
				if !reflect.DeepEqual(counts, map[string]int{"a000": 2, "a001": 1, "a002": 1}) {
					t.Fatalf("counts %v", counts)
				}
			case TxReject:
				wantJDY(t, st, m, 17026)
				if !reflect.DeepEqual(counts, map[string]int{"a000": 1}) {
					t.Fatalf("counts %v", counts)
				}
			}
		})
	}
}

var isoMillis = regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)

func TestCreatorAndTimes(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.AdvanceClock(48 * time.Hour)
	before := f.s.now().Truncate(time.Millisecond)

	// Default: the enterprise creator.
	st, m := f.jdy(pathCreate, map[string]any{"data": row("sync_key", "default")})
	wantOK(t, st, m)
	rec := m["data"].(map[string]any)
	if u := rec["creator"].(map[string]any)["username"]; u != "admin" {
		t.Fatalf("default creator %v", u)
	}
	for _, k := range []string{"createTime", "updateTime"} {
		s, _ := rec[k].(string)
		tm, err := time.Parse(time.RFC3339, s)
		if !isoMillis.MatchString(s) || err != nil || tm.Before(before) || tm.After(f.s.now()) {
			t.Fatalf("%s = %q, want UTC millis on the fake clock (>= %v)", k, s, before)
		}
	}

	f.s.SetJDYBehaviour(JDYBehaviour{Creator: "jdy-api"})
	if f.s.JDYBehaviour().Creator != "jdy-api" {
		t.Fatal("JDYBehaviour getter")
	}
	st, m = f.jdy(pathCreate, map[string]any{"data": row("sync_key", "api")})
	wantOK(t, st, m)
	st, m = f.jdy(pathCreate, map[string]any{"data": row("sync_key", "named"), "data_creator": "lisi"})
	wantOK(t, st, m)
	st, m = f.jdy(pathBatchCreate, map[string]any{"data_list": keys("b", 1)})
	wantOK(t, st, m)
	f.s.InsertRecordBy("zhangsan", map[string]any{"sync_key": "hand"})

	st, m = f.jdy(pathList, map[string]any{"limit": 100, "fields": []string{"sync_key", "creator", "createTime"}})
	wantOK(t, st, m)
	want := map[string]string{"default": "admin", "api": "jdy-api", "named": "lisi", "b000": "jdy-api", "hand": "zhangsan"}
	got := map[string]string{}
	for _, r := range m["data"].([]any) {
		rm := r.(map[string]any)
		var ks []string
		for k := range rm {
			ks = append(ks, k)
		}
		sort.Strings(ks)
		if !reflect.DeepEqual(ks, []string{"_id", "appId", "createTime", "creator", "entryId", "sync_key"}) {
			t.Fatalf("fields gave keys %v", ks)
		}
		c := rm["creator"].(map[string]any)
		for _, k := range []string{"name", "username", "status", "type", "departments"} {
			if _, ok := c[k]; !ok {
				t.Fatalf("creator lacks %s: %v", k, c)
			}
		}
		got[rm["sync_key"].(string)] = c["username"].(string)
		if !isoMillis.MatchString(rm["createTime"].(string)) {
			t.Fatalf("createTime %v", rm["createTime"])
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("creators %v, want %v", got, want)
	}
	gotRecs := map[string]string{}
	for _, r := range f.s.Records() {
		gotRecs[r.Data["sync_key"].(string)] = r.Creator
	}
	if !reflect.DeepEqual(gotRecs, want) {
		t.Fatalf("Records creators %v, want %v", gotRecs, want)
	}

	// Without fields every system field is there.
	st, m = f.jdy(pathList, map[string]any{"limit": 1})
	wantOK(t, st, m)
	for _, k := range []string{"_id", "appId", "entryId", "creator", "updater", "createTime", "updateTime", "sync_key"} {
		if _, ok := m["data"].([]any)[0].(map[string]any)[k]; !ok {
			t.Fatalf("list without fields lacks %s", k)
		}
	}
}

func TestUpdateChangesOnlyGivenFields(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetJDYBehaviour(JDYBehaviour{Creator: "jdy-api"})
	id := f.s.InsertRecordBy("zhangsan", map[string]any{
		"sync_key": "k|2025-06", "name": "张三", "work_days": 20, "regular_days": 18, "month": "2025-05-31T16:00:00.000Z", "extra": "x",
	})
	get := func() map[string]any {
		t.Helper()
		st, m := f.jdy(pathGet, map[string]any{"data_id": id})
		wantOK(t, st, m)
		return m["data"].(map[string]any)
	}
	before := get()
	beforeRec := f.s.Records()[0]
	f.s.AdvanceClock(time.Hour)
	st, m := f.jdy(pathUpdate, map[string]any{"data_id": id, "data": row("work_days", 21, "except_days", 1)})
	wantOK(t, st, m)
	after := get()
	if !reflect.DeepEqual(m["data"], after) {
		t.Fatalf("update answered %v, get says %v", m["data"], after)
	}
	changed := map[string]bool{}
	for k := range before {
		if !reflect.DeepEqual(before[k], after[k]) {
			changed[k] = true
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			changed[k] = true
		}
	}
	if want := map[string]bool{"work_days": true, "except_days": true, "updateTime": true, "updater": true}; !reflect.DeepEqual(changed, want) {
		t.Fatalf("update changed %v, want %v\nbefore %v\nafter  %v", changed, want, before, after)
	}
	if after["work_days"] != 21.0 || after["except_days"] != 1.0 || after["updater"].(map[string]any)["username"] != "jdy-api" ||
		after["creator"].(map[string]any)["username"] != "zhangsan" {
		t.Fatalf("after update: %v", after)
	}
	rec := f.s.Records()[0]
	if !rec.CreateTime.Equal(beforeRec.CreateTime) || rec.UpdateTime.Sub(beforeRec.UpdateTime) < time.Hour {
		t.Fatalf("times: %v/%v -> %v/%v", beforeRec.CreateTime, beforeRec.UpdateTime, rec.CreateTime, rec.UpdateTime)
	}
}

func TestCountBy(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.InsertRecord(map[string]any{"sync_key": "a", "work_days": 1})
	f.s.InsertRecord(map[string]any{"sync_key": "a", "work_days": 1})
	f.s.InsertRecord(map[string]any{"sync_key": "b"})
	f.s.InsertRecord(map[string]any{"name": "no key"})
	if c := f.s.CountBy("sync_key"); !reflect.DeepEqual(c, map[string]int{"a": 2, "b": 1}) {
		t.Fatalf("CountBy(sync_key) = %v", c)
	}
	if c := f.s.CountBy("work_days"); !reflect.DeepEqual(c, map[string]int{"1": 2}) {
		t.Fatalf("CountBy(work_days) = %v", c)
	}
	if c := f.s.CountBy("nothing"); len(c) != 0 {
		t.Fatalf("CountBy(nothing) = %v", c)
	}
}

// The switches may be flipped while requests run.
func TestBehaviourConcurrent(t *testing.T) {
	f := start(t, unlimited(Options{}))
	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 10; i++ {
				st, _, err := f.jdyRaw(t.Context(), pathBatchCreate, f.cred.APIKey, map[string]any{
					"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "transaction_id": fmt.Sprint("tx", i), "data_list": keys("k", 2),
				})
				if err != nil || (st != http.StatusOK && st != http.StatusBadRequest) {
					t.Errorf("batch_create: %d %v", st, err)
				}
			}
		}()
	}
	for i := 0; i < 20; i++ {
		f.s.SetJDYBehaviour(JDYBehaviour{TxMode: TxMode(i % 4), ListLag: time.Duration(i%2) * time.Minute})
		f.s.PartialBatchNext(PartialBatch{Keep: 1}, 1)
		f.s.SpellUserID(f.s.Company().Users()[0].UserID, UserIDSpelling{})
	}
	wg.Wait()
}

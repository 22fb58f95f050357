package fakeapi

import (
	"fmt"
	"net/url"
	"reflect"
	"sync"
	"testing"
)

func TestSetLimitsDefaults(t *testing.T) {
	s := New(Options{})
	want := Limits{MonthDataPerMinute: 60, ListPerMinute: 10000,
		JDY: JDYRates{Create: 20, BatchCreate: 10, Update: 20, List: 30, Global: 50, Legacy: 5}}
	if got := s.Limits(); got != want {
		t.Fatalf("Limits of a default server = %+v, want %+v", got, want)
	}
	s.SetLimits(Limits{MonthDataPerMinute: -1, JDY: JDYRates{Global: 500}})
	want.MonthDataPerMinute, want.JDY.Global = -1, 500
	if got := s.Limits(); got != want {
		t.Fatalf("after SetLimits = %+v, want %+v", got, want)
	}
}

func TestSetLimitsAtRuntime(t *testing.T) {
	tiny := 1e-9 // never refills during the test
	f := start(t, Options{Burst: 3, MonthDataPerMinute: -1, ListPerMinute: -1,
		JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: -1}})
	create := func() any {
		st, m := f.jdy(pathCreate, map[string]any{"data": row("sync_key", "x")})
		if st == 200 {
			return 200
		}
		return m["code"]
	}
	for i := 0; i < 5; i++ {
		if c := create(); c != 200 {
			t.Fatalf("unlimited create %d answered %v", i, c)
		}
	}

	f.s.SetLimits(Limits{MonthDataPerMinute: tiny, ListPerMinute: -1,
		JDY: JDYRates{Create: tiny, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: -1}})
	var codes []any
	for i := 0; i < 4; i++ {
		codes = append(codes, create())
	}
	if want := []any{200, 200, 200, 8304.0}; !reflect.DeepEqual(codes, want) {
		t.Fatalf("create under a tiny limit: %v, want %v", codes, want)
	}
	q := url.Values{"access_token": {f.token()}}
	body := map[string]any{"starttime": cst(2025, 6, 1), "endtime": cst(2025, 6, 30), "useridlist": []string{f.s.Company().Users()[0].UserID}}
	var wecomCodes []int
	for i := 0; i < 4; i++ {
		wecomCodes = append(wecomCodes, errcode(f.wecomPost(pathMonthData, q, body)))
	}
	if want := []int{0, 0, 0, 45009}; !reflect.DeepEqual(wecomCodes, want) {
		t.Fatalf("month data under a tiny limit: %v, want %v", wecomCodes, want)
	}
	if f.s.Throttled() != 2 {
		t.Fatalf("Throttled = %d, want 2", f.s.Throttled())
	}

	// Lifted again, the calls pass at once.
	f.s.SetLimits(Limits{MonthDataPerMinute: -1, ListPerMinute: -1,
		JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: -1}})
	for i := 0; i < 5; i++ {
		if c := create(); c != 200 {
			t.Fatalf("create %d after lifting: %v", i, c)
		}
	}
	if c := errcode(f.wecomPost(pathMonthData, q, body)); c != 0 {
		t.Fatalf("month data after lifting: %d", c)
	}
}

func TestSetLimitsGlobalAndLegacy(t *testing.T) {
	tiny := 1e-9
	f := start(t, unlimited(Options{Burst: 1}))
	f.s.SetLimits(Limits{MonthDataPerMinute: -1, ListPerMinute: -1,
		JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: -1, Legacy: tiny}})
	legacy := fmt.Sprintf("/api/v2/app/%s/entry/%s/data_create", f.cred.AppID, f.cred.EntryID)
	for i, want := range []int{200, 400} {
		st, raw, err := f.jdyRaw(t.Context(), legacy, f.cred.APIKey, map[string]any{"data": row("sync_key", "l")})
		if err != nil || st != want {
			t.Fatalf("legacy call %d: %d %s %v", i, st, raw, err)
		}
		if st == 400 {
			wantJDY(t, st, decodeMap(t, raw), 8304)
		}
	}
	f.s.SetLimits(Limits{MonthDataPerMinute: -1, ListPerMinute: -1,
		JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: -1, Global: tiny, Legacy: -1}})
	st, m := f.jdy(pathList, nil)
	wantOK(t, st, m)
	st, m = f.jdy(pathList, nil)
	wantJDY(t, st, m, 8303)
}

func TestSetLimitsReachesAddedForms(t *testing.T) {
	f := start(t, unlimited(Options{Burst: 1}))
	scratch := f.s.AddForm("scratch0000000000000001")
	f.s.SetLimits(Limits{MonthDataPerMinute: -1, ListPerMinute: -1,
		JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: 1e-9, Global: -1, Legacy: -1}})
	if got := scratch.Limits().JDY.List; got != 1e-9 {
		t.Fatalf("added form's list limit = %v", got)
	}
	st, m := f.jdy(pathList, map[string]any{"entry_id": "scratch0000000000000001"})
	wantOK(t, st, m)
	st, m = f.jdy(pathList, nil)
	wantJDY(t, st, m, 8304)
}

func TestSetLimitsConcurrent(t *testing.T) {
	f := start(t, unlimited(Options{}))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 50; j++ {
				f.s.SetLimits(Limits{MonthDataPerMinute: -1, ListPerMinute: -1,
					JDY: JDYRates{Create: -1, BatchCreate: -1, Update: -1, List: float64(1e6 + j), Global: -1, Legacy: -1}})
				_ = f.s.Limits()
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, _, err := f.jdyRaw(t.Context(), pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

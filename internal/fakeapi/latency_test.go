package fakeapi

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sync"
	"testing"
	"time"
)

func TestLatencyRangeDraw(t *testing.T) {
	r := LatencyRange{Min: 10 * time.Millisecond, Max: 12 * time.Millisecond}
	for i := 0; i < 1000; i++ {
		if d := r.draw(); d < r.Min || d > r.Max {
			t.Fatalf("draw %v outside [%v, %v]", d, r.Min, r.Max)
		}
	}
	cases := []struct {
		r    LatencyRange
		want time.Duration
	}{
		{LatencyRange{}, 0},
		{LatencyRange{Min: 5 * time.Millisecond, Max: 5 * time.Millisecond}, 5 * time.Millisecond},
		{LatencyRange{Min: 5 * time.Millisecond}, 5 * time.Millisecond},          // Max below Min counts as Min
		{LatencyRange{Min: -time.Second, Max: 0}, 0},                             // negative Min counts as 0
		{LatencyRange{Min: -time.Second, Max: -time.Millisecond}, 0},             // so does a negative Max
		{LatencyRange{Min: time.Millisecond, Max: -time.Hour}, time.Millisecond}, // and a Max below Min
	}
	for _, c := range cases {
		if d := c.r.draw(); d != c.want {
			t.Errorf("%+v drew %v, want %v", c.r, d, c.want)
		}
	}
}

// elapsed runs call and returns how long it took.
func elapsed(call func()) time.Duration {
	start := time.Now()
	call()
	return time.Since(start)
}

func TestOptionsLatencyPerAPI(t *testing.T) {
	const wecomMin, jdyMin = 60 * time.Millisecond, 30 * time.Millisecond
	f := start(t, unlimited(Options{
		WeComLatency: LatencyRange{Min: wecomMin, Max: wecomMin + 10*time.Millisecond},
		JDYLatency:   LatencyRange{Min: jdyMin, Max: jdyMin + 10*time.Millisecond},
	}))
	var tok string
	if d := elapsed(func() { tok = f.token() }); d < wecomMin {
		t.Errorf("gettoken took %v, want at least %v", d, wecomMin)
	}
	if d := elapsed(func() {
		f.wecomGet("/cgi-bin/department/simplelist", url.Values{"access_token": {tok}})
	}); d < wecomMin {
		t.Errorf("department/simplelist took %v, want at least %v", d, wecomMin)
	}
	if d := elapsed(func() { st, m := f.jdy(pathWidgets, nil); wantOK(t, st, m) }); d < jdyMin {
		t.Errorf("widget/list took %v, want at least %v", d, jdyMin)
	}
	legacy := fmt.Sprintf("/api/v2/app/%s/entry/%s/data_create", f.cred.AppID, f.cred.EntryID)
	if d := elapsed(func() {
		_, _, err := f.jdyRaw(t.Context(), legacy, f.cred.APIKey, map[string]any{"data": row("sync_key", "a|2025-06")})
		if err != nil {
			t.Error(err)
		}
	}); d < jdyMin {
		t.Errorf("legacy data_create took %v, want at least %v", d, jdyMin)
	}
}

func TestSetLatencyLeavesWebhookAlone(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetLatency(LatencyRange{Min: time.Hour, Max: time.Hour}, LatencyRange{Min: time.Hour, Max: time.Hour})
	// The hour is the hang guard: a delayed webhook never answers in time.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	q := url.Values{"key": {f.cred.WebhookKey}}
	st, b, err := f.wecomPostRaw(ctx, "/cgi-bin/webhook/send", q, map[string]any{"msgtype": "text", "text": map[string]any{"content": "hi"}})
	if err != nil || st != 200 || errcode(decodeMap(t, b)) != 0 {
		t.Fatalf("webhook under latency: %d %s %v", st, b, err)
	}
}

func TestSetLatencyHonoursContext(t *testing.T) {
	f := start(t, unlimited(Options{}))
	f.s.SetLatency(LatencyRange{}, LatencyRange{Min: time.Hour, Max: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, _, err := f.jdyRaw(ctx, pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID})
		done <- err
	}()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("delayed call: %v", err)
		}
	case <-time.After(time.Minute): // hang guard only
		t.Fatal("latency did not honour the request context")
	}
	// Switched off, the same call answers.
	f.s.SetLatency(LatencyRange{}, LatencyRange{})
	st, m := f.jdy(pathList, nil)
	wantOK(t, st, m)
	f.s.Close() // must not wait for the handler still sleeping, if any
}

func TestSetLatencyConcurrent(t *testing.T) {
	f := start(t, unlimited(Options{}))
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				d := time.Duration(j%3) * time.Millisecond
				f.s.SetLatency(LatencyRange{Max: d}, LatencyRange{Min: d, Max: 2 * d})
			}
		}()
		go func() {
			defer wg.Done()
			for j := 0; j < 20; j++ {
				if _, _, err := f.jdyRaw(t.Context(), pathWidgets, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	if n := f.s.Calls(EndpointWidgets); n != 80 {
		t.Fatalf("widget/list counted %d, want 80", n)
	}
}

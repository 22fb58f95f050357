package sync

import (
	"context"
	"slices"
	"strings"
	stdsync "sync"
	"testing"
	"time"

	"checkin-sync/internal/month"
)

// openingSource opens the listing's gate on its first month-data call: a
// run that waited for the whole listing before fetching would never
// finish.
type openingSource struct {
	*memSource
	once stdsync.Once
}

func (s *openingSource) MonthData(ctx context.Context, start, end month.Date, userids []string) (Fetched, error) {
	s.once.Do(func() { close(s.listGate) })
	return s.memSource.MonthData(ctx, start, end, userids)
}

func TestFetchingStartsWhileUsersAreListed(t *testing.T) {
	r := newMemRig(t, 250)
	r.src.listGate = make(chan struct{})
	second := memMonth.Prev()
	eng := New(&openingSource{memSource: r.src}, r.sink, r.cp, r.mapper, Options{
		Concurrency: 3, FetchInFlight: 3, ConsistencyDelay: 1, Now: r.clock,
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	sum := eng.Run(ctx, ctx, Request{Command: "test", Months: []month.Month{second, memMonth}, Today: memToday})
	if sum.Err != nil || sum.Interrupted {
		t.Fatalf("run: err %v, interrupted %v", sum.Err, sum.Interrupted)
	}
	per := r.sink.perKey()
	total := 0
	for _, n := range per {
		total += n
	}
	if total != 500 {
		t.Errorf("the form holds %d records, want 500", total)
	}
	for _, m := range []month.Month{second, memMonth} {
		for _, u := range r.src.users {
			if n := per[r.mapper.Key(u, m)]; n != 1 {
				t.Errorf("%s has %d records, want 1", r.mapper.Key(u, m), n)
			}
		}
	}
	// Each user once per month, though the listing gave some twice.
	for _, m := range []month.Month{second, memMonth} {
		for _, u := range r.src.users {
			if n := r.src.fetched[m.String()+"|"+strings.ToLower(u)]; n != 1 {
				t.Fatalf("%s %s fetched %d times, want 1", m, u, n)
			}
		}
	}
	if r.src.calls != 6 {
		t.Errorf("month-data calls %d, want 6: full batches of 100, two months", r.src.calls)
	}
	for _, ms := range sum.Months {
		if ms.Users != 250 || ms.Created != 250 {
			t.Errorf("%s: users %d, created %d; want 250 and 250", ms.Month, ms.Users, ms.Created)
		}
		info, ok, err := r.cp.Month(ms.Month)
		if err != nil || !ok || info.InProgress || info.Watermark == "" {
			t.Errorf("%s: month info %+v (found %v, %v); want finished with a watermark", ms.Month, info, ok, err)
		}
	}
	// Every create batch was sent with its keys in order.
	for _, batch := range r.sink.batchKeys() {
		if !slices.IsSorted(batch) {
			t.Errorf("batch sent unsorted: %v", batch)
		}
	}
}

package fakeapi

import (
	"context"
	"errors"
	"testing"
)

func TestHoldNextHoldsOneCallUntilReleased(t *testing.T) {
	f := start(t, unlimited(Options{}))
	entered, release := f.s.HoldNext(EndpointBatchCreate)
	defer release()
	body := map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID, "transaction_id": "held",
		"data_list": []any{row("sync_key", "held|2025-06")}}
	type answer struct {
		st  int
		err error
	}
	done := make(chan answer, 1)
	go func() {
		st, _, err := f.jdyRaw(t.Context(), pathBatchCreate, f.cred.APIKey, body)
		done <- answer{st, err}
	}()
	select {
	case <-entered:
	case a := <-done:
		t.Fatalf("held call answered before it entered: %+v", a)
	}
	// Held: counted, nothing written yet, and other calls go through,
	// including a second batch_create, since a hold stops one call only.
	if n := f.s.Calls(EndpointBatchCreate); n != 1 {
		t.Fatalf("held call counted %d times, want 1", n)
	}
	if n := len(f.s.Records()); n != 0 {
		t.Fatalf("%d records written while the call is held", n)
	}
	st, m := f.jdy(pathBatchCreate, map[string]any{"transaction_id": "free", "data_list": []any{row("sync_key", "free|2025-06")}})
	wantOK(t, st, m)
	release()
	release() // idempotent
	if a := <-done; a.err != nil || a.st != 200 {
		t.Fatalf("released call: %+v", a)
	}
	if n := len(f.s.Records()); n != 2 {
		t.Fatalf("%d records after release, want 2", n)
	}
}

func TestHoldNextGivesWayToTheClient(t *testing.T) {
	f := start(t, unlimited(Options{}))
	entered, release := f.s.HoldNext(EndpointList)
	defer release()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		_, _, err := f.jdyRaw(ctx, pathList, f.cred.APIKey, map[string]any{"app_id": f.cred.AppID, "entry_id": f.cred.EntryID})
		done <- err
	}()
	<-entered
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned held call: %v", err)
	}
	// The hold is used up: the next call answers at once.
	st, m := f.jdy(pathList, nil)
	wantOK(t, st, m)
}

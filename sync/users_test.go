package sync

import (
	"context"
	"slices"
	"testing"
)

// A month's batches take the smallest userids listed so far, and every
// user comes once, in a batch of the size asked unless the listing ended.
func TestMonthQueueHandsOutTheSmallestKnown(t *testing.T) {
	ctx := context.Background()
	users := newUserList()
	q := &monthQueue{users: users}
	users.add([]string{"m", "Z", "b", "x"})
	users.add([]string{"B", "c"}) // "B" is "b" listed again
	got, err := q.next(ctx, 3)
	if err != nil || !slices.Equal(got, []string{"b", "c", "m"}) {
		t.Fatalf("first batch %v, %v; want [b c m]", got, err)
	}
	users.add([]string{"a", "y"})
	users.finish(nil)
	got, _ = q.next(ctx, 3)
	if !slices.Equal(got, []string{"a", "x", "y"}) {
		t.Errorf("second batch %v, want [a x y]: the smallest known, in key order", got)
	}
	got, _ = q.next(ctx, 3)
	if !slices.Equal(got, []string{"Z"}) {
		t.Errorf("last batch %v, want [Z] (the listing ended)", got)
	}
	if got, _ = q.next(ctx, 3); len(got) != 0 {
		t.Errorf("after the last batch: %v, want none", got)
	}
}

// A queue waits for a full batch while the listing goes on, and a stop
// ends the wait.
func TestMonthQueueWaitsForAFullBatch(t *testing.T) {
	users := newUserList()
	q := &monthQueue{users: users}
	users.add([]string{"a", "b"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan []string)
	go func() {
		got, _ := q.next(ctx, 3)
		done <- got
	}()
	users.add([]string{"c"})
	if got := <-done; !slices.Equal(got, []string{"a", "b", "c"}) {
		t.Errorf("batch %v, want [a b c]", got)
	}
	cancel()
	if _, err := q.next(ctx, 3); err == nil {
		t.Error("a stopped wait returned no error")
	}
}

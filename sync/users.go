package sync

import (
	"context"
	"slices"
	"strings"
	stdsync "sync"
)

// userList collects the users while the source lists them, so that the
// first batches are fetched before the listing ends. A userid is kept once,
// compared in lower case, in the spelling first seen.
type userList struct {
	mu   stdsync.Mutex
	ids  []string
	seen map[string]bool
	done bool
	err  error
	// grown is signalled, without blocking, whenever ids grows or the
	// listing ends.
	grown chan struct{}
}

func newUserList() *userList {
	return &userList{seen: map[string]bool{}, grown: make(chan struct{}, 1)}
}

// add appends the userids not seen before and returns how many were new.
func (l *userList) add(ids []string) int {
	l.mu.Lock()
	n := 0
	for _, id := range ids {
		k := strings.ToLower(id)
		if id == "" || l.seen[k] {
			continue
		}
		l.seen[k] = true
		l.ids = append(l.ids, id)
		n++
	}
	l.mu.Unlock()
	if n > 0 {
		l.signal()
	}
	return n
}

// finish marks the listing ended, with its error if it failed.
func (l *userList) finish(err error) {
	l.mu.Lock()
	l.done, l.err = true, err
	l.mu.Unlock()
	l.signal()
}

func (l *userList) signal() {
	select {
	case l.grown <- struct{}{}:
	default:
	}
}

// wait returns the users known once at least n are known or the listing
// has ended. The slice is shared: it may be read, never written.
func (l *userList) wait(ctx context.Context, n int) (ids []string, done bool, err error) {
	for {
		l.mu.Lock()
		ids, done, err = l.ids[:len(l.ids):len(l.ids)], l.done, l.err
		l.mu.Unlock()
		if len(ids) >= n || done {
			return ids, done, err
		}
		select {
		case <-l.grown:
		case <-ctx.Done():
			return ids, false, ctx.Err()
		}
	}
}

// monthQueue hands out one month's users in batches, the smallest userids
// first among those listed so far. Once the listing has ended, batches
// follow each other in key order, so the store appends to its pages
// instead of splitting them; before, they are in order among themselves.
type monthQueue struct {
	users *userList
	taken int      // how many of the listed users are queued or handed out
	queue []string // listed, not yet handed out, in key order
}

// next returns the next batch of up to n users, waiting until n are
// queued or the listing has ended; an empty batch means the month is
// done.
func (q *monthQueue) next(ctx context.Context, n int) ([]string, error) {
	for {
		ids, done, err := q.users.wait(ctx, q.taken+n-len(q.queue))
		if err != nil {
			return nil, err
		}
		if len(ids) > q.taken {
			q.queue = mergeByKey(q.queue, ids[q.taken:])
			q.taken = len(ids)
		}
		if len(q.queue) >= n || done {
			k := min(n, len(q.queue))
			batch := q.queue[:k:k]
			q.queue = q.queue[k:]
			return batch, nil
		}
	}
}

// rest returns the users queued and not handed out.
func (q *monthQueue) rest() []string { return q.queue }

// mergeByKey merges more, in any order, into sorted, sorted by the store's
// key (the userid in lower case).
func mergeByKey(sorted, more []string) []string {
	more = slices.Clone(more)
	slices.SortFunc(more, compareKeys)
	out := make([]string, 0, len(sorted)+len(more))
	i, j := 0, 0
	for i < len(sorted) && j < len(more) {
		if compareKeys(sorted[i], more[j]) <= 0 {
			out = append(out, sorted[i])
			i++
		} else {
			out = append(out, more[j])
			j++
		}
	}
	out = append(out, sorted[i:]...)
	return append(out, more[j:]...)
}

func compareKeys(a, b string) int { return strings.Compare(strings.ToLower(a), strings.ToLower(b)) }

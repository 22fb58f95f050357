package sync

import (
	"context"
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

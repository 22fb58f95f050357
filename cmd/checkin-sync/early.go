package main

import (
	"context"
	stdsync "sync"

	"checkin-sync/sync"
)

// earlyUsers lists the users from the moment the clients exist, so that
// WeCom's token, the department walk and the first departments' members
// arrive while the form's fields are read and the store is opened. The run
// takes them as they come; the estimate of a long range waits for all of
// them. Either way they are listed once.
type earlyUsers struct {
	sync.Source
	mu    stdsync.Mutex
	ids   []string
	done  bool
	err   error
	grown chan struct{} // signalled, without blocking, when ids grows or the listing ends
}

// listEarly starts listing; cancelling ctx stops it.
func listEarly(ctx context.Context, src sync.Source) *earlyUsers {
	u := &earlyUsers{Source: src, grown: make(chan struct{}, 1)}
	go func() {
		err := src.Users(ctx, func(ids []string) {
			u.mu.Lock()
			u.ids = append(u.ids, ids...)
			u.mu.Unlock()
			u.signal()
		})
		u.mu.Lock()
		u.done, u.err = true, err
		u.mu.Unlock()
		u.signal()
	}()
	return u
}

func (u *earlyUsers) signal() {
	select {
	case u.grown <- struct{}{}:
	default:
	}
}

// Users hands over the users listed so far, then the rest as they come.
func (u *earlyUsers) Users(ctx context.Context, found func([]string)) error {
	for pos := 0; ; {
		u.mu.Lock()
		ids, done, err := u.ids[pos:len(u.ids):len(u.ids)], u.done, u.err
		u.mu.Unlock()
		if len(ids) > 0 {
			found(ids)
			pos += len(ids)
		}
		if done {
			return err
		}
		select {
		case <-u.grown:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// count waits for the whole listing and returns how many users it found.
func (u *earlyUsers) count(ctx context.Context) (int, error) {
	n := 0
	err := u.Users(ctx, func(ids []string) { n += len(ids) })
	return n, err
}

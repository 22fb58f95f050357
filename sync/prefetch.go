package sync

import (
	"context"
	"math"
)

// Prefetched is a Source whose users are being listed already, so that
// the token, the department walk and the first departments' members
// arrive while the caller reads the form's fields and opens the store. The
// run takes them as they come; Count waits for all of them. Either way the
// users are listed once.
type Prefetched struct {
	Source
	users *userList
}

// Prefetch starts listing src's users; cancelling ctx stops it.
func Prefetch(ctx context.Context, src Source) *Prefetched {
	p := &Prefetched{Source: src, users: newUserList()}
	go func() {
		p.users.finish(src.Users(ctx, func(ids []string) { p.users.add(ids) }))
	}()
	return p
}

// Users hands over the users listed so far, then the rest as they come.
func (p *Prefetched) Users(ctx context.Context, found func([]string)) error {
	for pos := 0; ; {
		ids, done, err := p.users.wait(ctx, pos+1)
		if len(ids) > pos {
			found(ids[pos:])
			pos = len(ids)
		}
		if done || err != nil {
			return err
		}
	}
}

// Count waits for the whole listing and returns how many users it found.
func (p *Prefetched) Count(ctx context.Context) (int, error) {
	ids, _, err := p.users.wait(ctx, math.MaxInt)
	return len(ids), err
}

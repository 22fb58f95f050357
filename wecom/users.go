package wecom

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"

	"checkin-sync/internal/apierr"
)

// Department is one entry of department/simplelist.
type Department struct {
	ID       int `json:"id"`
	ParentID int `json:"parentid"`
	Order    int `json:"order"`
}

// User is one employee the app can see.
type User struct {
	UserID      string
	Name        string // empty for users given explicitly by userid
	Departments []int  // departments the user was listed in, ascending
}

// Selection says which users to sync (the config's wecom.users).
type Selection struct {
	Departments []int    // roots to walk; empty → [1], the whole company
	UserIDs     []string // explicit list; when set, Departments is ignored
	Exclude     []string // never synced; matched ignoring case
}

// Departments lists root and all departments below it that the app can
// see (department/simplelist is recursive). root ≤ 0 lists every visible
// department. 60011 here is fatal: the configured department is outside
// the app's visible range.
func (c *Client) Departments(ctx context.Context, root int) ([]Department, error) {
	q := url.Values{}
	if root > 0 {
		q.Set("id", strconv.Itoa(root))
	}
	r := request{endpoint: epDeptList, method: http.MethodGet, path: "/cgi-bin/department/simplelist", query: q, lim: c.listLim}
	var out []Department
	err := c.call(ctx, r, func(raw []byte) error {
		var got struct {
			Departments []Department `json:"department_id"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			return malformed(epDeptList, false, "%v", err)
		}
		out = got.Departments
		return nil
	})
	if err != nil {
		return nil, withDept(err, root)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

// listInFlight bounds the department listings in flight: under latency one
// at a time cannot reach the listing pace, and more than a few would only
// queue on the limiter.
const listInFlight = 4

// Users lists the users to sync: the explicit userids, or every user in
// the configured departments and their sub-departments. The result is
// deduplicated (a user can sit in several departments; userids compare
// ignoring case, as WeCom treats them), has Exclude removed, and is sorted
// by UserID.
func (c *Client) Users(ctx context.Context, sel Selection) ([]User, error) {
	byID := map[string]*User{}
	err := c.eachUser(ctx, sel, func(users []User) {
		for _, u := range users {
			k := strings.ToLower(u.UserID)
			have, ok := byID[k]
			if !ok {
				u.Departments = slices.Clone(u.Departments)
				byID[k] = &u
				continue
			}
			for _, d := range u.Departments {
				if !slices.Contains(have.Departments, d) {
					have.Departments = append(have.Departments, d)
				}
			}
			if have.Name == "" {
				have.Name = u.Name
			}
		}
	})
	if err != nil {
		return nil, err
	}
	out := make([]User, 0, len(byID))
	for _, u := range byID {
		slices.Sort(u.Departments)
		out = append(out, *u)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].UserID < out[j].UserID })
	return out, nil
}

// ListUsers lists the same users as Users, but hands them to found as each
// department's answer comes, so that a caller can start on the first ones
// while the rest are listed. Each user is given once, in the spelling it
// was first seen in; found is called from one goroutine at a time.
func (c *Client) ListUsers(ctx context.Context, sel Selection, found func([]User)) error {
	seen := map[string]bool{}
	return c.eachUser(ctx, sel, func(users []User) {
		fresh := users[:0:0]
		for _, u := range users {
			k := strings.ToLower(u.UserID)
			if !seen[k] {
				seen[k] = true
				fresh = append(fresh, u)
			}
		}
		if len(fresh) > 0 {
			found(fresh)
		}
	})
}

// eachUser calls fn with the selected users of each department in
// department order (or once with the explicit userids), Exclude removed
// and empty userids dropped. A user in several departments comes once per
// department. Departments are listed a few at a time; answers that come
// early wait for those before them.
func (c *Client) eachUser(ctx context.Context, sel Selection, fn func([]User)) error {
	excluded := make(map[string]bool, len(sel.Exclude))
	for _, id := range sel.Exclude {
		excluded[strings.ToLower(id)] = true
	}
	keep := func(users []User) []User {
		out := users[:0]
		for _, u := range users {
			if u.UserID != "" && !excluded[strings.ToLower(u.UserID)] {
				out = append(out, u)
			}
		}
		return out
	}
	if len(sel.UserIDs) > 0 {
		users := make([]User, 0, len(sel.UserIDs))
		for _, id := range sel.UserIDs {
			users = append(users, User{UserID: strings.TrimSpace(id)})
		}
		if users = keep(users); len(users) > 0 {
			fn(users)
		}
		return nil
	}
	type listed struct {
		users []User
		err   error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The roots' own members are asked for alongside the walk: no userid
	// is known before some department's members come back, and the roots
	// are known without it.
	early := map[int]chan listed{}
	for _, root := range rootsOf(sel.Departments) {
		if early[root] != nil {
			continue
		}
		ch := make(chan listed, 1)
		early[root] = ch
		go func() {
			users, err := c.deptUsers(ctx, root)
			ch <- listed{users, err}
		}()
	}
	depts, err := c.walk(ctx, sel.Departments)
	if err != nil {
		return err
	}

	results := make([]chan listed, len(depts))
	for i, d := range depts {
		if results[i] = early[d]; results[i] == nil {
			results[i] = make(chan listed, 1)
		}
	}
	slots := make(chan struct{}, listInFlight)
	go func() {
		for i, d := range depts {
			if early[d] != nil {
				continue // asked for already
			}
			if ctx.Err() != nil {
				results[i] <- listed{err: ctx.Err()}
				continue
			}
			select {
			case slots <- struct{}{}:
			case <-ctx.Done():
				results[i] <- listed{err: ctx.Err()}
				continue
			}
			go func() {
				users, err := c.deptUsers(ctx, d)
				<-slots
				results[i] <- listed{users, err}
			}()
		}
	}()
	for i := range depts {
		res := <-results[i]
		if res.err != nil {
			return res.err
		}
		if users := keep(res.users); len(users) > 0 {
			fn(users)
		}
	}
	return nil
}

// rootsOf is the departments to walk from: the configured ones, or the
// whole company.
func rootsOf(departments []int) []int {
	if len(departments) == 0 {
		return []int{1}
	}
	return departments
}

// walk returns the union of the given roots and their sub-departments,
// ascending.
func (c *Client) walk(ctx context.Context, roots []int) ([]int, error) {
	roots = rootsOf(roots)
	seen := map[int]bool{}
	for _, root := range roots {
		if seen[root] {
			continue // already inside an earlier root's subtree
		}
		depts, err := c.Departments(ctx, root)
		if err != nil {
			return nil, err
		}
		seen[root] = true
		for _, d := range depts {
			seen[d.ID] = true
		}
	}
	out := make([]int, 0, len(seen))
	for id := range seen {
		out = append(out, id)
	}
	slices.Sort(out)
	return out, nil
}

// deptUsers lists the members of one department (not of its children).
func (c *Client) deptUsers(ctx context.Context, dept int) ([]User, error) {
	r := request{endpoint: epUserList, method: http.MethodGet, path: "/cgi-bin/user/simplelist",
		query: url.Values{"department_id": {strconv.Itoa(dept)}}, lim: c.listLim}
	var out []User
	err := c.call(ctx, r, func(raw []byte) error {
		var got struct {
			Users []struct {
				UserID      string `json:"userid"`
				Name        string `json:"name"`
				Departments []int  `json:"department"`
			} `json:"userlist"`
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			return malformed(epUserList, false, "%v", err)
		}
		out = make([]User, 0, len(got.Users))
		for _, u := range got.Users {
			out = append(out, User{UserID: u.UserID, Name: u.Name, Departments: []int{dept}})
		}
		return nil
	})
	if err != nil {
		return nil, withDept(err, dept)
	}
	return out, nil
}

// withDept names the department in a listing error, so "outside the
// visible range" says which one. It never changes err: one error can be
// shared, as the token's failure is by every request that waited for it.
func withDept(err error, dept int) error {
	e, ok := apierr.As(err)
	if !ok || e.Code == 0 {
		return err
	}
	suffix := " (department " + strconv.Itoa(dept) + ")"
	if direct, ok := err.(*apierr.Error); ok {
		named := *direct
		named.Msg = strings.TrimSpace(direct.Msg + suffix)
		return &named
	}
	return fmt.Errorf("%w%s", err, suffix)
}

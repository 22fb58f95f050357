package fakeapi

import (
	"errors"
	"fmt"
	"slices"
)

// Member fields (成员单选 user, 成员多选 usergroup), per jiandaoyun-api.md
// 2.2: a write names each member by username (成员编号); a read gives
// member objects {name, username, status, type, departments,
// integrate_id}. The fake keeps what was written as such objects, so a
// read shows the object, not the string written. The member's name is
// its username unless SetMembers gave one.

// memberSet is Jiandaoyun's contacts as far as the fake knows them:
// username -> display name.
type memberSet map[string]string

// SetMembers makes the fake's Jiandaoyun contacts exactly these members
// (username -> display name; "" shows the username). A write naming any
// other username in a member field is then answered with code 1010, as
// the real API does for a member that does not exist, and nothing of
// the request is written. nil restores the default, in which every
// username exists.
func (s *Server) SetMembers(members map[string]string) {
	if members == nil {
		s.members.Store(nil)
		return
	}
	set := make(memberSet, len(members))
	for u, n := range members {
		set[u] = n
	}
	s.members.Store(&set)
}

// unknownMemberError is a member field naming a username that is not in
// the contacts; the API answers 1010.
type unknownMemberError struct{ username string }

func (e *unknownMemberError) Error() string {
	return fmt.Sprintf("member %q does not exist", e.username)
}

// member turns a written username into the member object reads show.
func (s *Server) member(username string) (map[string]any, error) {
	name := username
	if set := s.members.Load(); set != nil {
		n, ok := (*set)[username]
		if !ok {
			return nil, &unknownMemberError{username}
		}
		if n != "" {
			name = n
		}
	}
	return map[string]any{"name": name, "username": username, "status": 1.0, "type": 0.0,
		"departments": []any{1.0}, "integrate_id": username}, nil
}

// memberValue converts a written user or usergroup value (already checked
// to be a string, or an array, or null) into member objects.
func (s *Server) memberValue(typ string, v any) (any, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case string:
		if typ == "user" {
			return s.member(x)
		}
	case []any:
		if typ != "usergroup" {
			break
		}
		out := make([]any, len(x))
		for i, e := range x {
			u, ok := e.(string)
			if !ok {
				return nil, fmt.Errorf("usergroup field wants usernames, got %s", jsonKind(e))
			}
			m, err := s.member(u)
			if err != nil {
				return nil, err
			}
			out[i] = m
		}
		return out, nil
	}
	return nil, fmt.Errorf("%s field wants a username, got %s", typ, jsonKind(v))
}

// dataErr answers a data conversion error: 1010 for a member that does
// not exist, 4000 for any other bad value. prefix locates it (e.g.
// "data_list[3]: ").
func dataErr(err error, prefix string) *jdyErr {
	var um *unknownMemberError
	if errors.As(err, &um) {
		return errf(1010, "%s%v", prefix, err)
	}
	return errf(4000, "%s%v", prefix, err)
}

// MemberWidgets is DefaultWidgets plus a member field "member" (成员) and a
// number field "annual_leave" (年假), a form for as: member and as: leave.
func MemberWidgets() []Widget {
	ws := DefaultWidgets()
	n := len(ws)
	for i, w := range []Widget{{Name: "member", Label: "成员", Type: "user"}, {Name: "annual_leave", Label: "年假", Type: "number"}} {
		w.WidgetName = fmt.Sprintf("_widget_17580771187%02d", n+i+1)
		ws = append(ws, w)
	}
	return slices.Clip(ws)
}

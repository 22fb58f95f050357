package fakeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"checkin-sync/internal/month"
)

// maxInValues is the documented cap on in/nin values (the official page
// says 200; a third-party copy says 1000, so the stricter one is enforced).
const maxInValues = 200

type fieldKind int

const (
	kindForm fieldKind = iota
	kindID
	kindCreateTime
	kindUpdateTime
)

// bound is one end of a range, or the operand of gt/lt.
type bound struct {
	isTime bool
	t      time.Time
	num    float64
}

type cond struct {
	field  string
	kind   fieldKind
	method string
	keys   map[string]bool // eq, in, ne, nin
	like   string
	lo, hi *bound // range (inclusive), gt (lo, exclusive), lt (hi, exclusive)
}

type filter struct {
	or    bool
	conds []cond
}

type rawFilter struct {
	Rel  *string            `json:"rel"`
	Cond *[]json.RawMessage `json:"cond"`
}

type rawCond struct {
	Field  *string         `json:"field"`
	Type   *string         `json:"type"`
	Method *string         `json:"method"`
	Value  json.RawMessage `json:"value"`
}

// parseFilter checks the filter's shape the way the API does; any error is
// answered with 4815. A null or absent filter returns nil.
func (s *Server) parseFilter(raw json.RawMessage) (*filter, error) {
	if len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return nil, nil
	}
	var rf rawFilter
	if err := decodeStrict(raw, &rf); err != nil {
		return nil, fmt.Errorf("filter: %w", err)
	}
	if rf.Rel == nil || (*rf.Rel != "and" && *rf.Rel != "or") {
		return nil, errors.New(`filter.rel must be "and" or "or"`)
	}
	if rf.Cond == nil {
		return nil, errors.New("filter.cond must be an array")
	}
	f := &filter{or: *rf.Rel == "or"}
	for i, craw := range *rf.Cond {
		c, err := s.parseCond(craw)
		if err != nil {
			return nil, fmt.Errorf("filter.cond[%d]: %w", i, err)
		}
		f.conds = append(f.conds, c)
	}
	return f, nil
}

func (s *Server) parseCond(raw json.RawMessage) (cond, error) {
	var rc rawCond
	if err := decodeStrict(raw, &rc); err != nil {
		return cond{}, err
	}
	if rc.Field == nil || *rc.Field == "" {
		return cond{}, errors.New("field is required")
	}
	if rc.Method == nil {
		return cond{}, errors.New("method is required")
	}
	c := cond{field: *rc.Field, method: *rc.Method}
	switch c.field {
	case "_id":
		c.kind = kindID
	case "createTime":
		c.kind = kindCreateTime
	case "updateTime":
		c.kind = kindUpdateTime
	}
	isTime := c.kind == kindCreateTime || c.kind == kindUpdateTime || s.widgets[c.field].Type == "datetime"

	var vals []any
	if len(rc.Value) > 0 && !bytes.Equal(rc.Value, []byte("null")) {
		if err := json.Unmarshal(rc.Value, &vals); err != nil {
			return cond{}, errors.New("value must be an array")
		}
	}
	need := func(lo, hi int) error {
		if len(vals) < lo || len(vals) > hi {
			if lo == hi {
				return fmt.Errorf("method %s wants %d value(s), got %d", c.method, lo, len(vals))
			}
			return fmt.Errorf("method %s wants %d to %d values, got %d", c.method, lo, hi, len(vals))
		}
		return nil
	}
	switch c.method {
	case "empty", "not_empty":
	case "eq", "in", "ne", "nin":
		most := maxInValues // eq with several values behaves like in, as observed
		if c.method == "ne" {
			most = 1
		}
		if err := need(1, most); err != nil {
			return cond{}, err
		}
		c.keys = make(map[string]bool, len(vals))
		for _, v := range vals {
			if isTime {
				if t, ok := parseTimeAny(v); ok {
					v = formatTime(t)
				}
			}
			if k, ok := valueKey(v); ok {
				c.keys[k] = true
			}
		}
	case "like":
		if err := need(1, 1); err != nil {
			return cond{}, err
		}
		str, ok := vals[0].(string)
		if !ok {
			return cond{}, errors.New("like wants a string")
		}
		c.like = str
	case "range":
		if err := need(2, 2); err != nil {
			return cond{}, err
		}
		var err error
		if c.lo, err = parseBound(vals[0]); err != nil {
			return cond{}, err
		}
		if c.hi, err = parseBound(vals[1]); err != nil {
			return cond{}, err
		}
	case "gt", "lt":
		if err := need(1, 1); err != nil {
			return cond{}, err
		}
		b, err := parseBound(vals[0])
		if err != nil {
			return cond{}, err
		}
		if b == nil {
			return cond{}, fmt.Errorf("%s needs a value", c.method)
		}
		if c.method == "gt" {
			c.lo = b
		} else {
			c.hi = b
		}
	default:
		return cond{}, fmt.Errorf("unsupported method %q", c.method)
	}
	return c, nil
}

func parseBound(v any) (*bound, error) {
	switch x := v.(type) {
	case nil:
		return nil, nil
	case float64:
		return &bound{num: x}, nil
	case string:
		if t, ok := parseTimeAny(x); ok {
			return &bound{isTime: true, t: t}, nil
		}
		if f, err := strconv.ParseFloat(x, 64); err == nil {
			return &bound{num: f}, nil
		}
		return nil, fmt.Errorf("range bound %q is neither a number nor a date", x)
	default:
		return nil, errors.New("range bounds must be numbers, dates or null")
	}
}

const timeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// parseTimeAny reads the datetime forms the API accepts: ISO/RFC 3339
// strings, "yyyy-MM-dd HH:mm:ss" and "yyyy-MM-dd" (tenant time, UTC+8), and
// epoch milliseconds.
func parseTimeAny(v any) (time.Time, bool) {
	switch x := v.(type) {
	case float64:
		if x < 1e11 || x != float64(int64(x)) {
			return time.Time{}, false
		}
		return time.UnixMilli(int64(x)).UTC(), true
	case string:
		if t, err := time.Parse(time.RFC3339Nano, x); err == nil {
			return t, true
		}
		for _, layout := range []string{"2006-01-02 15:04:05", "2006-01-02"} {
			if t, err := time.ParseInLocation(layout, x, month.CST); err == nil {
				return t, true
			}
		}
	}
	return time.Time{}, false
}

// compare orders a stored value against a bound; ok is false when they
// cannot be compared (an empty value, or a number against a date).
func compare(v any, b *bound) (int, bool) {
	if b.isTime {
		t, ok := parseTimeAny(v)
		if !ok {
			return 0, false
		}
		return t.Compare(b.t), true
	}
	f, ok := v.(float64)
	if !ok {
		return 0, false
	}
	switch {
	case f < b.num:
		return -1, true
	case f > b.num:
		return 1, true
	}
	return 0, true
}

func isEmpty(v any) bool {
	switch x := v.(type) {
	case nil:
		return true
	case string:
		return x == ""
	case []any:
		return len(x) == 0
	}
	return false
}

func (st *jdyStore) condValue(r *jdyRecord, c *cond, slot int) any {
	switch c.kind {
	case kindID:
		return r.id
	case kindCreateTime:
		return formatTime(r.created)
	case kindUpdateTime:
		return formatTime(r.updated)
	}
	return r.get(slot)
}

func (c *cond) match(v any) bool {
	switch c.method {
	case "empty":
		return isEmpty(v)
	case "not_empty":
		return !isEmpty(v)
	case "eq", "in":
		k, ok := valueKey(v)
		return ok && c.keys[k]
	case "ne", "nin":
		k, ok := valueKey(v)
		return !ok || !c.keys[k]
	case "like":
		str, ok := v.(string)
		return ok && strings.Contains(str, c.like)
	case "range":
		if isEmpty(v) {
			return false
		}
		if c.lo != nil {
			if n, ok := compare(v, c.lo); !ok || n < 0 {
				return false
			}
		}
		if c.hi != nil {
			if n, ok := compare(v, c.hi); !ok || n > 0 {
				return false
			}
		}
		return true
	case "gt":
		n, ok := compare(v, c.lo)
		return ok && n > 0
	case "lt":
		n, ok := compare(v, c.hi)
		return ok && n < 0
	}
	return false
}

// query returns up to limit records after cursor (exclusive) that match f,
// ascending by id. An and-filter with an eq/in condition on a form field
// or _id is answered from an index, so key lookups stay cheap on large
// forms. Records visible rejects are skipped (nil: none). The caller holds
// st.mu.
func (st *jdyStore) query(f *filter, cursor string, limit int, visible func(*jdyRecord) bool) []*jdyRecord {
	var conds []cond
	var slots []int
	if f != nil {
		conds = f.conds
		slots = make([]int, len(conds))
		for i, c := range conds {
			slots[i] = -1
			if c.kind == kindForm {
				if sl, ok := st.slots[c.field]; ok {
					slots[i] = sl
				}
			}
		}
	}
	matches := func(r *jdyRecord) bool {
		if len(conds) == 0 {
			return true
		}
		for i := range conds {
			ok := conds[i].match(st.condValue(r, &conds[i], slots[i]))
			if ok && f.or {
				return true
			}
			if !ok && !f.or {
				return false
			}
		}
		return !f.or
	}

	candidates := st.recs
	if len(conds) > 0 && (!f.or || len(conds) == 1) {
		for i, c := range conds {
			if c.method != "eq" && c.method != "in" {
				continue
			}
			candidates = nil
			switch {
			case c.kind == kindID:
				for k := range c.keys {
					if r, ok := st.byID[strings.TrimPrefix(k, "s")]; ok && strings.HasPrefix(k, "s") {
						candidates = append(candidates, r)
					}
				}
			case c.kind == kindForm && slots[i] >= 0:
				ix := st.index(slots[i])
				for k := range c.keys {
					candidates = append(candidates, ix[k]...)
				}
			case c.kind != kindForm: // createTime/updateTime: no index, scan
				candidates = st.recs
			}
			if c.kind == kindForm || c.kind == kindID {
				sort.Slice(candidates, func(a, b int) bool { return candidates[a].id < candidates[b].id })
			}
			break
		}
	}

	start := sort.Search(len(candidates), func(i int) bool { return candidates[i].id > cursor })
	var out []*jdyRecord
	for _, r := range candidates[start:] {
		if len(out) == limit {
			break
		}
		if (visible == nil || visible(r)) && matches(r) {
			out = append(out, r)
		}
	}
	return out
}

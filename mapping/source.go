package mapping

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"checkin-sync/internal/suggest"
)

// segment is one dotted step of a source path, optionally with an element
// filter: name[field=value].
type segment struct {
	name   string
	filter bool
	field  string
	value  string
}

// sourcePath is a parsed source such as exception_infos[exception=1].count.
type sourcePath []segment

// parseSource reads the source syntax of the mapping language. Names are
// separated by dots; a name may carry one [field=value] filter, in which a
// backslash escapes ], = and itself.
func parseSource(s string) (sourcePath, error) {
	if s == "" {
		return nil, errors.New("empty source; write a path such as base_info.name")
	}
	var p sourcePath
	i := 0
	for {
		start := i
		for i < len(s) && s[i] != '.' && s[i] != '[' {
			switch s[i] {
			case ']', '=', '\\':
				return nil, fmt.Errorf("unexpected %q at byte %d; filters are written name[field=value]", s[i], i)
			}
			i++
		}
		if i == start {
			return nil, fmt.Errorf("empty name at byte %d; write names separated by single dots, such as base_info.name", i)
		}
		seg := segment{name: s[start:i]}
		if i < len(s) && s[i] == '[' {
			var err error
			open := i
			if seg.field, i, err = scanFilterPart(s, i+1, '='); err != nil {
				return nil, fmt.Errorf("filter at byte %d: %w", open, err)
			}
			if seg.field == "" {
				return nil, fmt.Errorf("filter at byte %d: empty field name; write [field=value], such as [exception=1]", open)
			}
			if seg.value, i, err = scanFilterPart(s, i+1, ']'); err != nil {
				return nil, fmt.Errorf("filter at byte %d: %w", open, err)
			}
			i++ // past ]
			seg.filter = true
		}
		p = append(p, seg)
		if i == len(s) {
			return p, nil
		}
		if s[i] != '.' {
			return nil, fmt.Errorf("unexpected %q at byte %d; a filter is followed by a dot or the end", s[i], i)
		}
		i++
		if i == len(s) {
			return nil, fmt.Errorf("trailing dot at byte %d; remove it or name a field after it", i-1)
		}
	}
}

// scanFilterPart reads up to the unescaped stop byte (= for the field, ]
// for the value) and returns the unescaped text and the stop's index.
func scanFilterPart(s string, i int, stop byte) (string, int, error) {
	start := i
	var sb *strings.Builder // only when an escape is seen
	for i < len(s) {
		c := s[i]
		switch {
		case c == stop:
			if sb == nil {
				return s[start:i], i, nil
			}
			return sb.String(), i, nil
		case c == '\\':
			if i+1 >= len(s) {
				return "", i, errors.New(`ends in a lone \; write \\ for a backslash`)
			}
			n := s[i+1]
			if n != '\\' && n != ']' && n != '=' {
				return "", i, fmt.Errorf(`\%c at byte %d: \ escapes only ], = and \`, n, i)
			}
			if sb == nil {
				sb = &strings.Builder{}
				sb.WriteString(s[start:i])
			}
			sb.WriteByte(n)
			i += 2
			continue
		case stop == '=' && c == ']':
			return "", i, errors.New("no = before ]; write [field=value], such as [exception=1]")
		case stop == '=' && c == '[':
			return "", i, fmt.Errorf("unexpected [ at byte %d inside a filter", i)
		case stop == ']' && c == '=':
			return "", i, fmt.Errorf(`second = at byte %d; write \= for an = inside the value`, i)
		}
		if sb != nil {
			sb.WriteByte(c)
		}
		i++
	}
	if stop == '=' {
		return "", i, errors.New("unclosed [; write [field=value]")
	}
	return "", i, errors.New("unclosed [; add the closing ]")
}

// String writes the path back in source syntax, escaping filter text, so
// that parseSource(p.String()) gives p again.
func (p sourcePath) String() string {
	var sb strings.Builder
	for i, seg := range p {
		if i > 0 {
			sb.WriteByte('.')
		}
		sb.WriteString(seg.name)
		if seg.filter {
			sb.WriteByte('[')
			writeEscaped(&sb, seg.field)
			sb.WriteByte('=')
			writeEscaped(&sb, seg.value)
			sb.WriteByte(']')
		}
	}
	return sb.String()
}

func writeEscaped(sb *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '\\', ']', '=':
			sb.WriteByte('\\')
		}
		sb.WriteByte(s[i])
	}
}

// synth names a value that is not read from the report.
type synth uint8

const (
	synthNone synth = iota
	synthKey
	synthMonth
	synthMonthStart
	synthUserID
)

var synthNames = [...]string{synthKey: "key", synthMonth: "month", synthMonthStart: "month_start", synthUserID: "userid"}

func synthOf(p sourcePath) synth {
	if len(p) != 1 || p[0].filter {
		return synthNone
	}
	for s, n := range synthNames {
		if n != "" && n == p[0].name {
			return synth(s)
		}
	}
	return synthNone
}

// kind is the shape of a value in the report schema.
type kind uint8

const (
	kindNumber kind = iota + 1
	kindString
	kindObject
	kindArray   // list of objects
	kindInstant // month_start
)

// node is one place in the static month-report schema.
type node struct {
	kind   kind
	names  []string // field order, for messages
	fields map[string]*node
	elem   *node // kindArray: the element object
}

type namedNode struct {
	name string
	n    *node
}

func object(fields ...namedNode) *node {
	o := &node{kind: kindObject, fields: make(map[string]*node, len(fields))}
	for _, f := range fields {
		o.names = append(o.names, f.name)
		o.fields[f.name] = f.n
	}
	return o
}

func numbers(names ...string) []namedNode {
	out := make([]namedNode, len(names))
	for i, n := range names {
		out[i] = namedNode{n, &node{kind: kindNumber}}
	}
	return out
}

func str(name string) namedNode { return namedNode{name, &node{kind: kindString}} }
func num(name string) namedNode { return namedNode{name, &node{kind: kindNumber}} }

// reportSchema is the month report's shape (getcheckin_monthdata, one
// datas element). It is rebuilt per Compile so no package state is shared.
func reportSchema() *node {
	return object(
		namedNode{"base_info", object(
			num("record_type"), str("name"), str("name_ex"), str("departs_name"), str("acctid"),
			namedNode{"rule_info", object(num("groupid"), str("groupname"))},
		)},
		namedNode{"summary_info", object(numbers("work_days", "regular_days", "except_days", "rest_days",
			"regular_work_sec", "standard_work_sec")...)},
		namedNode{"exception_infos", &node{kind: kindArray, elem: object(numbers("exception", "count", "duration")...)}},
		namedNode{"sp_items", &node{kind: kindArray, elem: object(append(numbers("type", "vacation_id", "count",
			"duration", "time_type"), str("name"))...)}},
		namedNode{"overwork_info", object(numbers("workday_over_sec", "holidays_over_sec", "restdays_over_sec",
			"workdays_over_as_vacation", "workdays_over_as_money", "restdays_over_as_vacation",
			"restdays_over_as_money", "holidays_over_as_vacation", "holidays_over_as_money")...)},
	)
}

// step is one compiled lookup: a key, then, for a filter, the first
// element of the list there whose field matches.
type step struct {
	key    string
	filter bool
	field  string
	raw    string // filter value as written
	num    dec    // filter value as a number, when isNum
	isNum  bool
}

// source is a compiled source: either synthetic or a chain of steps into
// the report (or into a subform element).
type source struct {
	text  string
	path  sourcePath
	synth synth
	steps []step
	kind  kind
	elem  *node // kindArray: element schema, for a subform's own fields
	// holder is the object schema that holds the value's last field (nil
	// for a synthetic source); as: leave checks that it has a time_type.
	holder *node
}

// compileSource resolves p against root (the report, or a subform element
// called rootName) and returns the problem in words when it cannot exist.
func compileSource(text string, root *node, rootName string) (*source, error) {
	p, err := parseSource(text)
	if err != nil {
		return nil, err
	}
	src := &source{text: text, path: p}
	if src.synth = synthOf(p); src.synth != synthNone {
		src.kind = kindString
		if src.synth == synthMonthStart {
			src.kind = kindInstant
		}
		return src, nil
	}
	cur, where := root, rootName
	for i, seg := range p {
		child := cur.fields[seg.name]
		if child == nil {
			msg := fmt.Sprintf("no field %q in %s; fields are %s", seg.name, where, strings.Join(cur.names, ", "))
			names := cur.names
			if cur == root && rootName == "the report" {
				msg += "; synthetic sources are key, month, month_start, userid"
				names = append(slices.Clone(names), synthNames[1:]...)
			}
			return nil, errors.New(msg + didYouMean(seg.name, names))
		}
		prefix := p[:i+1].String()
		last := i == len(p)-1
		st := step{key: seg.name}
		if seg.filter {
			list := p[:i].join(seg.name)
			if child.kind != kindArray {
				return nil, fmt.Errorf("%s is not a list, so it takes no [field=value] filter; lists are %s",
					list, listNames(root))
			}
			el := child.elem
			fn := el.fields[seg.field]
			if fn == nil {
				return nil, fmt.Errorf("no field %q in %s elements; fields are %s%s", seg.field,
					list, strings.Join(el.names, ", "), didYouMean(seg.field, el.names))
			}
			st.filter, st.field, st.raw = true, seg.field, seg.value
			if d, err := parseDec(seg.value); err == nil {
				st.num, st.isNum = d, true
			} else if fn.kind == kindNumber {
				return nil, fmt.Errorf("filter [%s=%s]: %s is a number, and %q is not one", seg.field, seg.value, seg.field, seg.value)
			}
			if last {
				return nil, fmt.Errorf("%s is a whole element; add one of its fields: %s.%s (fields are %s)",
					prefix, prefix, el.names[0], strings.Join(el.names, ", "))
			}
			src.steps = append(src.steps, st)
			cur, where = el, list+" elements"
			continue
		}
		src.steps = append(src.steps, st)
		switch child.kind {
		case kindArray:
			if !last {
				ex := child.elem.names[0]
				return nil, fmt.Errorf("%s is a list; pick one element with a filter, such as %s[%s=1].%s",
					prefix, prefix, ex, p[i+1].name)
			}
			src.kind, src.elem = kindArray, child.elem
			return src, nil
		case kindObject:
			if last {
				return nil, fmt.Errorf("%s is an object; name one of its fields: %s", prefix, strings.Join(child.names, ", "))
			}
			cur, where = child, prefix
		default:
			if !last {
				return nil, fmt.Errorf("%s is a %s value and has no fields; remove %q", prefix, kindName(child.kind),
					"."+p[i+1:].String())
			}
			src.kind = child.kind
			src.holder = cur
		}
	}
	return src, nil
}

func (p sourcePath) join(name string) string {
	if len(p) == 0 {
		return name
	}
	return p.String() + "." + name
}

func listNames(root *node) string {
	var out []string
	for _, n := range root.names {
		if root.fields[n].kind == kindArray {
			out = append(out, n)
		}
	}
	if len(out) == 0 {
		return "none here"
	}
	return strings.Join(out, ", ")
}

func kindName(k kind) string {
	switch k {
	case kindNumber:
		return "number"
	case kindString:
		return "text"
	case kindObject:
		return "object"
	case kindArray:
		return "list of objects"
	case kindInstant:
		return "instant"
	}
	return "value"
}

// didYouMean suggests the closest name when a typo is likely.
func didYouMean(name string, names []string) string {
	if best := suggest.Closest(name, names); best != "" {
		return fmt.Sprintf("; did you mean %q?", best)
	}
	return ""
}

// lookup reads the source's value from obj. A value that is absent or null
// anywhere along the path is missing: (nil, nil). A value of the wrong shape
// (a string where an object belongs) is an error, because writing zeros for
// a malformed report would hide it.
func (s *source) lookup(obj map[string]any) (any, error) {
	var cur any = obj
	for i := range s.steps {
		v, ok := s.steps[i].apply(cur)
		if !ok {
			return nil, s.shapeError(i, cur)
		}
		if v == nil {
			return nil, nil
		}
		cur = v
	}
	return cur, nil
}

// apply takes one step from cur. ok is false when cur or what the step
// meets has the wrong shape; a nil value with ok means missing.
func (st *step) apply(cur any) (v any, ok bool) {
	m, ok := cur.(map[string]any)
	if !ok {
		return nil, false
	}
	v = m[st.key]
	if v == nil || !st.filter {
		return v, true
	}
	switch l := v.(type) {
	case []any:
		for _, e := range l {
			if e == nil {
				continue
			}
			el, ok := e.(map[string]any)
			if !ok {
				return nil, false
			}
			if st.matches(el[st.field]) {
				return el, true
			}
		}
	case []map[string]any:
		for _, el := range l {
			if el != nil && st.matches(el[st.field]) {
				return el, true
			}
		}
	default:
		return nil, false
	}
	return nil, true
}

// matches compares a filter value as text after number normalization: the
// filter 1 matches 1, "1" and 1.0; a non-numeric filter matches text only.
func (st *step) matches(v any) bool {
	switch x := v.(type) {
	case nil:
		return false
	case string:
		if d, err := parseDec(x); err == nil {
			return st.isNum && d == st.num
		}
		return !st.isNum && x == st.raw
	case bool:
		return !st.isNum && st.raw == strconv.FormatBool(x)
	}
	d, err := decOf(v)
	return err == nil && st.isNum && d == st.num
}

// shapeError explains why step i could not be taken from cur.
func (s *source) shapeError(i int, cur any) error {
	where := "the report"
	if i > 0 {
		where = s.path[:i].String()
	}
	m, ok := cur.(map[string]any)
	if !ok {
		return fmt.Errorf("%s is %s, not an object", where, describeValue(cur))
	}
	name := s.path[:i].join(s.path[i].name)
	switch l := m[s.steps[i].key].(type) {
	case []any:
		for _, e := range l {
			if _, ok := e.(map[string]any); !ok && e != nil {
				return fmt.Errorf("an element of %s is %s, not an object", name, describeValue(e))
			}
		}
	case []map[string]any:
	default:
		return fmt.Errorf("%s is %s, not a list", name, describeValue(l))
	}
	return fmt.Errorf("%s has an unexpected shape", name)
}

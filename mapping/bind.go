package mapping

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/cespare/xxhash/v2"

	"checkin-sync/internal/month"
	"checkin-sync/internal/suggest"
)

// Widget is one form field as widget/list returns it.
type Widget struct {
	Name       string   // request name: the alias when one is set, else the _widget_ id
	WidgetName string   // the _widget_ id, which never changes
	Label      string   // shown in messages only
	Type       string   // text, textarea, number, datetime, combo, radiogroup, subform, ...
	Items      []Widget // a subform's own fields
}

// Widget types the converters write to, and the other types whose values
// ReadBack knows how to read.
const (
	typeText          = "text"
	typeTextarea      = "textarea"
	typeNumber        = "number"
	typeDatetime      = "datetime"
	typeCombo         = "combo"
	typeRadiogroup    = "radiogroup"
	typeSubform       = "subform"
	typeCheckboxgroup = "checkboxgroup"
	typeCombocheck    = "combocheck"
	typeUser          = "user"
	typeUsergroup     = "usergroup"
)

// emptyValue is the canonical value that clears a field of widget type
// typ, written when a source is missing and no default is given, so that a
// value that disappears from WeCom is cleared in Jiandaoyun rather than
// left stale. It is nil for the types with no documented empty value
// (datetime, user and every other type): those need a default when their
// source can be missing.
func emptyValue(typ string) []byte {
	switch typ {
	case typeText, typeTextarea, typeCombo, typeRadiogroup:
		return []byte(`""`)
	case typeNumber:
		return []byte("0")
	case typeCheckboxgroup, typeCombocheck, typeUsergroup, typeSubform:
		return []byte("[]")
	}
	return nil
}

// canBeMissing reports whether a report may lack the source's value. The
// report schema (reportSchema) has no notion of an optional field: WeCom
// documents none of them as always present and leaves fields out in
// practice, so every path into the report, and every filter, which may
// match no element, can be missing. Only the synthetic sources (key, month,
// month_start, userid) are always there.
func canBeMissing(src *source) bool {
	return src.synth == synthNone
}

// fitTypes is the converter table of the mapping language: the widget types
// each converter may write to.
func fitTypes(as string) []string {
	switch as {
	case AsNone:
		return []string{typeText, typeTextarea, typeNumber, typeCombo, typeRadiogroup}
	case AsText:
		return []string{typeText, typeTextarea, typeCombo, typeRadiogroup}
	case AsNumber, AsHours, AsDays, AsLeave:
		return []string{typeNumber}
	case AsMember:
		return []string{typeUser}
	case AsDatetime:
		return []string{typeDatetime}
	case AsEnum:
		return []string{typeText, typeCombo, typeRadiogroup}
	case AsSubform:
		return []string{typeSubform}
	}
	return nil
}

// conv is a converter resolved for the hot path.
type conv uint8

const (
	convNone conv = iota
	convText
	convNumber
	convHours
	convDays
	convDatetime
	convEnum
	convSubform
	convMember
	convLeave
)

func convOf(as string) conv {
	switch as {
	case AsText:
		return convText
	case AsNumber:
		return convNumber
	case AsHours:
		return convHours
	case AsDays:
		return convDays
	case AsDatetime:
		return convDatetime
	case AsEnum:
		return convEnum
	case AsSubform:
		return convSubform
	case AsMember:
		return convMember
	case AsLeave:
		return convLeave
	}
	return convNone
}

// bfield is a field bound to its form field, with everything Map needs
// precomputed.
type bfield struct {
	name   string // request name
	label  string // config target (parent.child inside a subform)
	as     string
	wtype  string
	prefix []byte // ,"name":{"value":
	conv   conv
	src    *source
	toText bool // write numbers as strings (text-like targets)
	enum   map[string]string
	def    []byte // canonical default; nil when none
	// ifMissing is written when the source is missing: the default when one
	// is given, else the widget type's empty value. Bind refuses a field
	// that can be missing and has neither, so every mapped field is in
	// every payload.
	ifMissing []byte
	sub       []*bfield
	parent    int // slot of the source's parent object, or -1: look up the whole path
	// changed is set by TreatAsChanged: ReadBack reports the field as
	// inexact whatever the record holds.
	changed atomic.Bool
}

// maxSlots bounds the parent objects cached per Map call; the report schema
// has far fewer, and a source beyond the bound is simply looked up whole.
const maxSlots = 16

// slot is a parent object shared by several sources (base_info,
// exception_infos[exception=1], ...). Map resolves each at most once.
type slot struct {
	parent int // -1: the report itself
	step   step
}

// assignSlots gives each top-level report source a cached parent, so that
// base_info is looked up once, not once per base_info field.
func assignSlots(fields []*bfield) []slot {
	var slots []slot
	ids := make(map[string]int)
	for _, f := range fields {
		f.parent = -1
		if f.src.synth != synthNone || len(f.src.steps) < 2 {
			continue
		}
		parent := -1
		for k := 1; k < len(f.src.steps); k++ {
			key := f.src.path[:k].String()
			id, ok := ids[key]
			if !ok {
				if len(slots) == maxSlots {
					parent = -1
					break
				}
				id = len(slots)
				slots = append(slots, slot{parent: parent, step: f.src.steps[k-1]})
				ids[key] = id
			}
			parent = id
		}
		f.parent = parent
	}
	return slots
}

// Mapper maps report rows to Jiandaoyun payloads for one form. It is
// immutable after Bind and safe for concurrent use.
type Mapper struct {
	keyField string
	fields   []*bfield // sorted by request name: the canonical key order
	slots    []slot
	fp       uint64
	pool     sync.Pool // *[]byte scratch buffers
	// subKeys holds each subform field's name as a JSON string, in the
	// payload's order; empty when the mapping has no subform.
	subKeys [][]byte
}

// Bind checks the mapping against the form's widgets: every target exists
// (by alias or _widget_ id), its type fits the converter, and the key field
// is single-line text. The error is a Problems listing every problem.
func (m *Mapping) Bind(widgets []Widget) (*Mapper, error) {
	b := &binder{}
	fields, matched := b.fields(m.fields, widgets, "")
	var keyField string
	for i, cf := range m.fields {
		w := matched[i]
		if cf.target != m.key || w == nil {
			continue
		}
		keyField = requestName(w)
		if w.Type != typeText {
			b.add(cf, fmt.Sprintf("the key field %q must be a single-line text (text) field, and form field %s is %s; change the form field's type or point mapping.key at a text field",
				m.key, describe(w), article(w.Type)))
		}
	}
	if len(b.problems) > 0 {
		return nil, b.problems
	}
	mp := &Mapper{keyField: keyField, fields: fields, slots: assignSlots(fields)}
	for _, f := range fields {
		if f.conv == convSubform {
			mp.subKeys = append(mp.subKeys, appendString(nil, f.name))
		}
	}
	mp.fp = fingerprint(keyField, fields)
	mp.pool.New = func() any {
		b := make([]byte, 0, 1024)
		return &b
	}
	return mp, nil
}

type binder struct{ problems Problems }

func (b *binder) add(cf *cfield, msg string) {
	src := ""
	if cf.src != nil {
		src = cf.src.text
	}
	b.problems = append(b.problems, Problem{Key: cf.key, Target: cf.target, Source: src, Line: cf.line, Msg: msg})
}

func requestName(w *Widget) string {
	if w.Name != "" {
		return w.Name
	}
	return w.WidgetName
}

func describe(w *Widget) string {
	if w.Label != "" {
		return fmt.Sprintf("%q (%s)", requestName(w), w.Label)
	}
	return fmt.Sprintf("%q", requestName(w))
}

func article(typ string) string {
	if typ == "" {
		return "of no stated type"
	}
	return "a " + typ + " field"
}

// fields binds cfs to ws and returns them sorted by request name, with the
// widget each cfs[i] matched (nil when none).
func (b *binder) fields(cfs []*cfield, ws []Widget, parent string) ([]*bfield, []*Widget) {
	byName := make(map[string]*Widget, len(ws))
	byID := make(map[string]*Widget, len(ws))
	for i := range ws {
		w := &ws[i]
		if _, ok := byName[w.Name]; !ok && w.Name != "" {
			byName[w.Name] = w
		}
		if _, ok := byID[w.WidgetName]; !ok && w.WidgetName != "" {
			byID[w.WidgetName] = w
		}
	}
	used := make(map[string]string, len(cfs))
	out := make([]*bfield, 0, len(cfs))
	matched := make([]*Widget, len(cfs))
	for i, cf := range cfs {
		w := byName[cf.target]
		if w == nil {
			w = byID[cf.target]
		}
		if w == nil {
			where := "the form"
			if parent != "" {
				where = fmt.Sprintf("subform %q", parent)
			}
			b.add(cf, fmt.Sprintf("no field %q in %s (fields match by alias or _widget_ id); %s", cf.target, where, closeNames(cf.target, ws)))
			continue
		}
		matched[i] = w
		name := requestName(w)
		if other, dup := used[name]; dup {
			b.add(cf, fmt.Sprintf("%q and %q both write form field %s; keep one of them", other, cf.target, describe(w)))
			continue
		}
		used[name] = cf.target
		if f := b.field(cf, w, name); f != nil {
			out = append(out, f)
		}
	}
	slices.SortFunc(out, func(x, y *bfield) int { return cmp.Compare(x.name, y.name) })
	return out, matched
}

func (b *binder) field(cf *cfield, w *Widget, name string) *bfield {
	f := &bfield{
		name: name, label: cf.label, as: cf.as, wtype: w.Type, conv: convOf(cf.as), src: cf.src,
		enum: cf.enum, def: cf.def, toText: w.Type != typeNumber, parent: -1,
	}
	f.prefix = append(appendString([]byte{','}, name), `:{"value":`...)
	f.ifMissing = cf.def
	if f.ifMissing == nil {
		f.ifMissing = emptyValue(w.Type)
	}
	ok := true
	if allowed := fitTypes(cf.as); !slices.Contains(allowed, w.Type) {
		ok = false
		conv := "as: " + cf.as + " writes"
		if cf.as == AsNone {
			conv = "without as:, a value fits"
		}
		hint := ""
		if w.Type == typeDatetime {
			hint = "; a datetime field takes source: month_start with as: datetime"
		}
		b.add(cf, fmt.Sprintf("form field %s is %s; %s %s fields only%s", describe(w), article(w.Type), conv, strings.Join(allowed, ", "), hint))
	} else if cf.as == AsNone && w.Type == typeNumber && cf.src.kind == kindString {
		ok = false
		b.add(cf, fmt.Sprintf("%s is text, and form field %s is a number field; map a number source to it, or make it a text field", cf.src.text, describe(w)))
	}
	if cf.def != nil {
		if msg := defaultFit(cf, w); msg != "" {
			ok = false
			b.add(cf, msg)
		}
	} else if msg := missingProblem(cf, w); ok && msg != "" {
		ok = false
		b.add(cf, msg)
	}
	if cf.as == AsSubform && w.Type == typeSubform {
		n := len(b.problems)
		f.sub, _ = b.fields(cf.sub, w.Items, cf.target)
		ok = ok && len(b.problems) == n
	}
	if !ok {
		return nil
	}
	return f
}

// missingProblem says why a field cannot be bound for want of a default,
// or "": its source can be missing, no default is given, and its widget
// type (datetime, user, any type without a documented empty value) has no
// empty value to write instead. Without the rule the field would be left
// out of the payload, and a value that disappeared from WeCom would stay
// in Jiandaoyun. It applies to subform rows' fields alike.
func missingProblem(cf *cfield, w *Widget) string {
	if cf.def != nil || emptyValue(w.Type) != nil || cf.src == nil || !canBeMissing(cf.src) {
		return ""
	}
	example := ""
	if w.Type == typeDatetime {
		example = `, such as default: "2000-01-01T00:00:00.000Z" (ISO-8601 UTC with milliseconds, the form Jiandaoyun reads back)`
	}
	return fmt.Sprintf("form field %s is %s, which has no empty value, and this source can be missing from a report (WeCom leaves fields out); add default: with the value to write when it is missing%s",
		describe(w), article(w.Type), example)
}

// defaultFit says why a default cannot go to the widget, or "". Defaults
// are written as given, so their JSON kind must already suit the field.
func defaultFit(cf *cfield, w *Widget) string {
	switch w.Type {
	case typeNumber:
		if cf.defIs == defNumber {
			return ""
		}
		return fmt.Sprintf("default %s is not a number, and form field %s is a number field; give a number, such as default: 0", cf.def, describe(w))
	case typeDatetime:
		if cf.defIs == defText || cf.defIs == defNumber {
			return ""
		}
	default:
		if cf.defIs == defText {
			return ""
		}
		if cf.defIs == defNumber {
			return fmt.Sprintf("default %s is a number, and form field %s is %s; quote it: default: \"%s\"", cf.def, describe(w), article(w.Type), cf.def)
		}
	}
	return fmt.Sprintf("default %s does not fit form field %s, which is %s", cf.def, describe(w), article(w.Type))
}

// closeNames lists the form fields a missing target probably meant, or
// the form's fields when none is close.
func closeNames(target string, ws []Widget) string {
	type cand struct {
		w *Widget
		d int
	}
	var cands []cand
	lt := strings.ToLower(target)
	for i := range ws {
		w := &ws[i]
		best := -1
		for _, n := range []string{w.Name, w.WidgetName, w.Label} {
			if n == "" {
				continue
			}
			ln := strings.ToLower(n)
			d := suggest.Distance(lt, ln)
			if len(lt) >= 3 && len(ln) >= 3 && (strings.Contains(ln, lt) || strings.Contains(lt, ln)) {
				d = min(d, 1)
			}
			if best < 0 || d < best {
				best = d
			}
		}
		if best >= 0 && best <= suggest.Limit(target) {
			cands = append(cands, cand{w, best})
		}
	}
	slices.SortStableFunc(cands, func(a, b cand) int { return cmp.Compare(a.d, b.d) })
	var names []string
	if len(cands) > 0 {
		for i, c := range cands {
			if i == 5 {
				break
			}
			names = append(names, describe(c.w))
		}
		return "close names: " + strings.Join(names, ", ")
	}
	if len(ws) == 0 {
		return "the form has no fields"
	}
	for i := range ws {
		if i == 12 {
			names = append(names, fmt.Sprintf("and %d more", len(ws)-12))
			break
		}
		names = append(names, describe(&ws[i]))
	}
	return "the form's fields are " + strings.Join(names, ", ")
}

// fingerprint hashes what decides a payload: the key field, and for each
// field its request name, form type, source, converter, enum table, default and
// subform fields. Two mappers with the same fingerprint write the same bytes.
func fingerprint(keyField string, fields []*bfield) uint64 {
	desc := []any{"csfp1", keyField, describeFields(fields)}
	// Only strings, maps and lists go in, which always encode.
	b, _ := appendCanonical(nil, desc)
	return xxhash.Sum64(b)
}

func describeFields(fields []*bfield) []any {
	out := make([]any, 0, len(fields))
	for _, f := range fields {
		enum := make(map[string]any, len(f.enum))
		for k, v := range f.enum {
			enum[k] = v
		}
		def := "-"
		if f.def != nil {
			def = "=" + string(f.def)
		}
		out = append(out, map[string]any{
			"name": f.name, "type": f.wtype, "source": f.src.path.String(), "as": f.as,
			"enum": enum, "default": def, "missing": string(f.ifMissing), "fields": describeFields(f.sub),
		})
	}
	return out
}

// Fingerprint identifies the compiled mapping and form binding; a changed
// fingerprint means payloads may change, which is worth logging.
func (m *Mapper) Fingerprint() uint64 { return m.fp }

// Targets lists the request field names the mapper writes, sorted.
func (m *Mapper) Targets() []string {
	out := make([]string, len(m.fields))
	for i, f := range m.fields {
		out[i] = f.name
	}
	return out
}

// KeyField is the request name of the field that holds the sync key.
func (m *Mapper) KeyField() string { return m.keyField }

// Key is the sync key of a record: "<userid>|<YYYY-MM>" with the userid in
// lower case (strings.ToLower), because WeCom userids are case-insensitive:
// ZhangSan and zhangsan are one record. It is the value Map writes to the
// key field (source: key). The userid source, by contrast, keeps the
// spelling it is given.
func (m *Mapper) Key(userid string, mo month.Month) string {
	var buf [80]byte
	b := appendLower(buf[:0], userid)
	b = append(b, '|')
	return string(appendMonth(b, mo))
}

// DiffTargets compares two Targets lists, for logging a mapping change.
// Both results are sorted and free of duplicates.
func DiffTargets(old, new []string) (added, removed []string) {
	in := func(list []string) map[string]bool {
		s := make(map[string]bool, len(list))
		for _, t := range list {
			s[t] = true
		}
		return s
	}
	o, n := in(old), in(new)
	for t := range n {
		if !o[t] {
			added = append(added, t)
		}
	}
	for t := range o {
		if !n[t] {
			removed = append(removed, t)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

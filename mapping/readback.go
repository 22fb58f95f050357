package mapping

import (
	"errors"
	"slices"
	"time"

	"github.com/cespare/xxhash/v2"
)

// ReadBackResult is one Jiandaoyun record read back through the mapping.
type ReadBackResult struct {
	// Data is the canonical payload the record holds, in Map's encoding:
	// when the form holds what Map would write, Data equals Map's Data
	// byte for byte.
	Data []byte
	// Hash is Map's hash of Data when Exact. When not Exact it is computed
	// with a different prefix, so it never equals a hash that Map returns
	// and a caller that compares hashes only still updates the record.
	Hash uint64
	// Exact is false when some mapped field could not be compared with
	// confidence: absent from the record, null, a value of a kind the
	// widget type does not read back as, or a widget type ReadBack cannot
	// normalise. The caller must then treat the record as different and
	// update it; it never skips a write on a guess.
	Exact bool
	// Inexact names the fields that made Exact false (request names,
	// parent.child inside a subform), for logs. Nil when Exact.
	Inexact []string
	// SubformHash is Map's SubformHash of Data when SubformExact, so it
	// equals Map's exactly when the form's subform rows are those Map
	// would write, whatever the other fields hold. When not SubformExact it
	// is computed with a different prefix and never equals one Map returns.
	// It is 0 when the mapping has no subform.
	SubformHash uint64
	// SubformExact is true when every subform field read back exactly
	// (present, a list of objects, and every mapped field of every row
	// exact), even if other fields did not; it is true when the mapping has
	// no subform. A subform that is not exact must be sent.
	SubformExact bool
}

// inexactMark follows hashPrefix in the hash of an inexact read-back.
// Map's Data always starts with '{', so no Map payload hashes the same
// input.
const inexactMark = "\xff"

// ReadFields lists the request names to ask data/list for in `fields`
// when reading records back: the key field first, then every other mapped
// target, sorted. A subform is requested whole, by its own name.
func (m *Mapper) ReadFields() []string {
	out := make([]string, 0, len(m.fields))
	out = append(out, m.keyField)
	for _, f := range m.fields {
		if f.name != m.keyField {
			out = append(out, f.name)
		}
	}
	return out
}

// TreatAsChanged makes ReadBack report every mapped field whose widget
// type is one of widgetTypes as inexact, whatever the record holds, so
// that a record holding such a field is always updated rather than
// adopted as unchanged. It is for widget types that a write probe found
// not to survive a round trip (what is read back is not what was
// written). Subform rows' fields count; a type of "subform" covers the
// whole subform. Each call replaces the previous set; nil clears it. It is
// safe to call while other goroutines use the Mapper, and changes neither
// Map's payloads nor the Fingerprint.
func (m *Mapper) TreatAsChanged(widgetTypes []string) {
	var mark func(fields []*bfield)
	mark = func(fields []*bfield) {
		for _, f := range fields {
			f.changed.Store(slices.Contains(widgetTypes, f.wtype))
			mark(f.sub)
		}
	}
	mark(m.fields)
}

// ReadBack turns one record as data/list returns it into the canonical
// payload and hash that Map gives for the same content, so that
// ReadBack(record).Hash == Map(report).Hash exactly when the form holds
// what Map would write. Adoption, verify and rebuild use it to tell an
// unchanged record from one that needs an update.
//
// row is the record in Jiandaoyun's read shape, decoded with
// json.Decoder.UseNumber (float64 numbers are accepted too): flat, {"_id":
// "...", "<name>": <value>, ...}, with no {"value": ...} wrapper. Fields
// that are not mapped (_id, appId, entryId, creator, ...) are ignored. Each
// mapped field is read by its widget type:
//   - text, textarea, combo, radiogroup: the string as it is;
//   - number: the shortest decimal form, as Map writes numbers;
//   - datetime: the instant, as ISO-8601 UTC with milliseconds;
//   - user: the member object's username; usergroup: the usernames;
//   - checkboxgroup, combocheck: the list as it is;
//   - subform: each row's mapped fields, read by the same rules, without
//     the row's _id.
//
// Anything else makes the result inexact (see ReadBackResult.Exact). The
// error is only for a nil row.
func (m *Mapper) ReadBack(row map[string]any) (ReadBackResult, error) {
	if row == nil {
		return ReadBackResult{}, errors.New("read back: no record")
	}
	bp := m.pool.Get().(*[]byte)
	rb := readBack{}
	if len(m.subKeys) > 0 {
		rb.sub.Reset()
		_, _ = rb.sub.WriteString(subformHashPrefix)
	}
	b := rb.object(append((*bp)[:0], hashPrefix...), m.fields, row, "")
	data := make([]byte, len(b)-len(hashPrefix))
	copy(data, b[len(hashPrefix):])
	res := ReadBackResult{Data: data, Exact: len(rb.inexact) == 0, Inexact: rb.inexact, SubformExact: !rb.subInexact}
	switch {
	case len(m.subKeys) == 0:
	case res.SubformExact:
		res.SubformHash = rb.sub.Sum64()
	default:
		d := xxhash.New()
		_, _ = d.WriteString(subformHashPrefix + inexactMark)
		_, _ = d.Write(data)
		res.SubformHash = d.Sum64()
	}
	if res.Exact {
		res.Hash = xxhash.Sum64(b)
	} else {
		d := xxhash.New()
		_, _ = d.WriteString(hashPrefix + inexactMark)
		_, _ = d.Write(data)
		res.Hash = d.Sum64()
	}
	m.release(bp, b)
	return res, nil
}

// readBack is the per-call state of ReadBack.
type readBack struct {
	inexact []string
	fails   int // calls of fail, duplicates included
	// sub hashes the subform fields as Map does; subInexact is set when a
	// subform field did not read back exactly.
	sub        xxhash.Digest
	subInexact bool
}

func (rb *readBack) fail(f *bfield, parent string) {
	rb.fails++
	name := f.name
	if parent != "" {
		name = parent + "." + f.name
	}
	if !slices.Contains(rb.inexact, name) {
		rb.inexact = append(rb.inexact, name)
	}
}

// object writes fields (sorted by request name) read from a flat record
// or subform row in Map's shape: {"name":{"value":v},...}. A field absent
// from the row is left out, which makes the payload differ from any that
// Map writes, since Map writes every field.
func (rb *readBack) object(b []byte, fields []*bfield, row map[string]any, parent string) []byte {
	b = append(b, '{')
	n := 0
	for _, f := range fields {
		isSub := f.conv == convSubform && parent == ""
		v, ok := row[f.name]
		if !ok {
			rb.fail(f, parent)
			rb.subInexact = rb.subInexact || isSub
			continue
		}
		if n > 0 {
			b = append(b, f.prefix...)
		} else {
			b = append(b, f.prefix[1:]...)
		}
		n++
		vmark, fails := len(b), rb.fails
		var exact bool
		b, exact = rb.value(b, f, v, parent)
		if !exact || f.changed.Load() {
			rb.fail(f, parent)
		}
		if isSub {
			if rb.fails == fails {
				hashSubform(&rb.sub, f, b[vmark:])
			} else {
				rb.subInexact = true
			}
		}
		b = append(b, '}')
	}
	return append(b, '}')
}

// value writes one read value canonically for f's widget type. exact is
// false when the value is not of the kind that type reads back as; it is
// then written as canonical JSON of what was read (null when it cannot be
// encoded), for logs.
func (rb *readBack) value(b []byte, f *bfield, v any, parent string) (_ []byte, exact bool) {
	if v == nil {
		return append(b, "null"...), false
	}
	switch f.wtype {
	case typeText, typeTextarea, typeCombo, typeRadiogroup:
		if s, ok := v.(string); ok {
			return appendString(b, s), true
		}
	case typeNumber:
		if isNumber(v) {
			if d, err := decOf(v); err == nil {
				return d.append(b), true
			}
		}
	case typeDatetime:
		if s, ok := v.(string); ok {
			// Jiandaoyun keeps milliseconds; a finer instant is not one
			// Map wrote, so it is not rounded into one.
			if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.Nanosecond()%int(time.Millisecond) == 0 {
				return appendDatetime(b, t), true
			}
		}
	case typeUser:
		if u, ok := username(v); ok {
			return appendString(b, u), true
		}
	case typeUsergroup:
		if l, ok := v.([]any); ok {
			mark := len(b)
			b = append(b, '[')
			for i, e := range l {
				u, ok := username(e)
				if !ok {
					b = b[:mark]
					return appendOrNull(b, v), false
				}
				if i > 0 {
					b = append(b, ',')
				}
				b = appendString(b, u)
			}
			return append(b, ']'), true
		}
	case typeCheckboxgroup, typeCombocheck:
		if l, ok := v.([]any); ok && allStrings(l) {
			return appendOrNull(b, l), true
		}
	case typeSubform:
		if l, ok := v.([]any); ok {
			return rb.rows(b, f, l, parent)
		}
	}
	return appendOrNull(b, v), false
}

// rows writes subform rows, each without its _id (rows are read by their
// mapped fields only).
func (rb *readBack) rows(b []byte, f *bfield, l []any, parent string) (_ []byte, exact bool) {
	name := f.name
	if parent != "" {
		name = parent + "." + f.name
	}
	exact = true
	b = append(b, '[')
	for i, e := range l {
		if i > 0 {
			b = append(b, ',')
		}
		row, ok := e.(map[string]any)
		if !ok {
			exact = false
			b = appendOrNull(b, e)
			continue
		}
		b = rb.object(b, f.sub, row, name)
	}
	return append(b, ']'), exact
}

// username reads a member as Jiandaoyun returns it: an object whose
// username is the member's 成员编号 (the userid for contacts integrated
// with WeCom).
func username(v any) (string, bool) {
	m, ok := v.(map[string]any)
	if !ok {
		return "", false
	}
	u, ok := m["username"].(string)
	return u, ok
}

func allStrings(l []any) bool {
	for _, e := range l {
		if _, ok := e.(string); !ok {
			return false
		}
	}
	return true
}

// appendOrNull writes v canonically, or null when it cannot be encoded.
func appendOrNull(b []byte, v any) []byte {
	mark := len(b)
	out, err := appendCanonical(b, v)
	if err != nil {
		return append(b[:mark], "null"...)
	}
	return out
}

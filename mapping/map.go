package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/cespare/xxhash/v2"

	"checkin-sync/internal/month"
)

// Input is one report row to map.
type Input struct {
	// UserID is the listed userid. The key (Mapper.Key and source: key)
	// uses it in lower case, since WeCom userids are case-insensitive;
	// source: userid writes it as spelled here.
	UserID string
	Month  month.Month    // the report's month
	Report map[string]any // one element of WeCom's datas
}

// EnumMiss is a code that an enum table does not list; it was written as
// its own text.
type EnumMiss struct {
	Target string // the target as written in the config (parent.child in a subform)
	Code   string // the code, numbers in shortest form
}

// Result is one mapped record.
type Result struct {
	// Data is the canonical JSON object sent as Jiandaoyun's data:
	// {"field":{"value":v},...} with keys sorted. The caller may keep it.
	Data []byte
	// Hash is xxhash64 of a version prefix and Data; equal content gives
	// an equal hash however the report was decoded.
	Hash uint64
	// SubformHash is xxhash64 of another version prefix and the subform
	// fields alone of Data, names and values, in Data's order: equal rows
	// give an equal SubformHash whatever the other fields hold. A caller
	// that stored it can leave an unchanged subform out of an update
	// (WithoutSubforms), since resending rows replaces their _ids. It is 0
	// when the mapping has no subform field (HasSubforms).
	SubformHash uint64
	UnknownEnum []EnumMiss
}

// pooledBufMax keeps one unusually large record from pinning a large
// buffer in the pool.
const pooledBufMax = 64 << 10

// Map maps one report row. It is the hot path of a sync: the work per field
// is a few map lookups and appends into a pooled buffer; the only
// allocation on the common path is the returned Data.
func (m *Mapper) Map(in Input) (Result, error) {
	if err := checkInput(in); err != nil {
		return Result{}, err
	}
	bp := m.pool.Get().(*[]byte)
	st := mapState{userID: in.UserID, mon: in.Month, root: in.Report, slots: m.slots}
	if len(m.subKeys) > 0 {
		st.sub.Reset()
		_, _ = st.sub.WriteString(subformHashPrefix)
	}
	b, err := st.object(append((*bp)[:0], hashPrefix...), m.fields, in.Report)
	if err != nil {
		m.release(bp, b)
		return Result{}, fmt.Errorf("map %s|%s: %w", in.UserID, in.Month, err)
	}
	data := make([]byte, len(b)-len(hashPrefix))
	copy(data, b[len(hashPrefix):])
	res := Result{Data: data, Hash: xxhash.Sum64(b), UnknownEnum: st.misses}
	if len(m.subKeys) > 0 {
		res.SubformHash = st.sub.Sum64()
	}
	m.release(bp, b)
	return res, nil
}

func checkInput(in Input) error {
	switch {
	case in.UserID == "":
		return errors.New("map: empty userid")
	case in.Month.Mon < time.January || in.Month.Mon > time.December || in.Month.Year < 1 || in.Month.Year > 9999:
		return fmt.Errorf("map %s: invalid month %d-%d", in.UserID, in.Month.Year, int(in.Month.Mon))
	case in.Report == nil:
		return fmt.Errorf("map %s|%s: no report", in.UserID, in.Month)
	}
	return nil
}

func (m *Mapper) release(bp *[]byte, b []byte) {
	if cap(b) > pooledBufMax {
		return
	}
	*bp = b[:0]
	m.pool.Put(bp)
}

// mapState is the per-call state of Map. It lives on the stack.
type mapState struct {
	userID    string
	mon       month.Month
	root      map[string]any
	slots     []slot
	done, bad uint16 // bit i: slot i resolved; its shape was wrong
	vals      [maxSlots]any
	misses    []EnumMiss
	scratch   [48]byte
	// sub hashes the subform fields as they are written (Result.SubformHash);
	// it is used only when the mapping has a subform.
	sub xxhash.Digest
}

// slot returns the parent object of slot i, resolving it once per call.
// ok is false when the report has the wrong shape on the way there.
func (st *mapState) slot(i int) (v any, ok bool) {
	bit := uint16(1) << i
	if st.done&bit != 0 {
		return st.vals[i], st.bad&bit == 0
	}
	s := &st.slots[i]
	var parent any = st.root
	ok = true
	if s.parent >= 0 {
		parent, ok = st.slot(s.parent)
	}
	if ok && parent != nil {
		v, ok = s.step.apply(parent)
	}
	st.done |= bit
	if !ok {
		st.bad |= bit
		return nil, false
	}
	st.vals[i] = v
	return v, true
}

// lookup reads f's source, through the slot cache when it has a parent.
func (st *mapState) lookup(f *bfield, obj map[string]any) (any, error) {
	if f.parent < 0 {
		return f.src.lookup(obj)
	}
	p, ok := st.slot(f.parent)
	var v any
	if ok && p != nil {
		v, ok = f.src.steps[len(f.src.steps)-1].apply(p)
	}
	if !ok {
		// The slow path words the error with the whole path.
		if _, err := f.src.lookup(obj); err != nil {
			return nil, err
		}
		return nil, errors.New("unexpected report shape")
	}
	return v, nil
}

// object writes fields (sorted by request name) read from obj as one JSON
// object; fields whose value is left out leave no trace, not even a comma.
func (st *mapState) object(b []byte, fields []*bfield, obj map[string]any) ([]byte, error) {
	b = append(b, '{')
	n := 0
	for _, f := range fields {
		mark := len(b)
		if n > 0 {
			b = append(b, f.prefix...)
		} else {
			b = append(b, f.prefix[1:]...)
		}
		vmark := len(b)
		var ok bool
		var err error
		if b, ok, err = st.value(b, f, obj); err != nil {
			return b, fmt.Errorf("field %q from %q: %w", f.label, f.src.text, err)
		}
		if !ok {
			b = b[:mark]
			continue
		}
		if f.conv == convSubform {
			// Only top-level fields are subforms (Compile refuses nested
			// ones), so this runs once per subform field.
			hashSubform(&st.sub, f, b[vmark:])
		}
		b = append(b, '}')
		n++
	}
	return append(b, '}'), nil
}

// value writes one field's value; ok is false when the field is left out.
func (st *mapState) value(b []byte, f *bfield, obj map[string]any) (_ []byte, ok bool, err error) {
	if f.src.synth != synthNone {
		return st.synthetic(b, f), true, nil
	}
	v, err := st.lookup(f, obj)
	if err != nil {
		return b, false, err
	}
	if v == nil {
		if f.ifMissing == nil {
			// Bind refuses such a field; this is a guard, not a path.
			return b, false, errors.New("missing, and the field has no default")
		}
		return append(b, f.ifMissing...), true, nil
	}
	if f.conv == convSubform {
		b, err = st.rows(b, f, v)
		return b, err == nil, err
	}

	var (
		d     dec
		s     string
		isNum bool
	)
	if f.src.kind == kindNumber {
		if f.conv == convNone || f.conv == convNumber {
			// Most report numbers are plain integers: write them directly.
			mark := len(b)
			if f.toText {
				b = append(b, '"')
			}
			if nb, ok := appendPlainInt(b, v); ok {
				if f.toText {
					nb = append(nb, '"')
				}
				return nb, true, nil
			}
			b = b[:mark]
		}
		if d, err = decOf(v); err != nil {
			return b, false, err
		}
		isNum = true
	} else {
		switch x := v.(type) {
		case string:
			s = x
		case bool:
			s = strconv.FormatBool(x)
		default:
			if d, err = decOf(v); err != nil {
				return b, false, fmt.Errorf("%s is not text", describeValue(v))
			}
			isNum = true
		}
	}

	switch f.conv {
	case convHours, convDays:
		div := uint64(3600)
		if f.conv == convDays {
			div = 86400
		}
		if d, err = d.divRound(div); err != nil {
			return b, false, err
		}
		return d.append(b), true, nil
	case convLeave:
		div, err := st.leaveDivisor(f, obj)
		if err != nil {
			return b, false, err
		}
		if d, err = d.divRound(div); err != nil {
			return b, false, err
		}
		return d.append(b), true, nil
	case convEnum:
		var code []byte
		if isNum {
			code = d.append(st.scratch[:0])
		} else if nd, err := parseDec(s); err == nil {
			code = nd.append(st.scratch[:0])
		} else {
			code = append(st.scratch[:0], s...)
		}
		if label, ok := f.enum[string(code)]; ok {
			return appendString(b, label), true, nil
		}
		st.miss(f.label, string(code))
		return appendString(b, string(code)), true, nil
	}
	// convNone, convText, convNumber: the value as it is, numbers as
	// strings when the target is text-like.
	if !isNum {
		return appendString(b, s), true, nil
	}
	if f.toText {
		b = append(b, '"')
		b = d.append(b)
		return append(b, '"'), true, nil
	}
	return d.append(b), true, nil
}

// leaveDivisor reads the time_type next to an as: leave field's duration:
// 0 counts the entry in days, 1 in hours (wecom-api.md, sp_items). Any
// other value, or none, is an error rather than a guess, since a wrong unit
// would be written as a plausible number.
func (st *mapState) leaveDivisor(f *bfield, obj map[string]any) (uint64, error) {
	var holder any
	if f.parent >= 0 {
		holder, _ = st.slot(f.parent)
	} else {
		holder = obj
		for i := 0; i < len(f.src.steps)-1 && holder != nil; i++ {
			holder, _ = f.src.steps[i].apply(holder)
		}
	}
	h, _ := holder.(map[string]any)
	tt := h["time_type"]
	if tt == nil {
		return 0, errors.New("the entry has no time_type, so the unit of its duration is unknown; map it with as: hours or as: days instead")
	}
	d, err := decOf(tt)
	switch {
	case err == nil && d == (dec{}):
		return 86400, nil
	case err == nil && d == (dec{mant: 1}):
		return 3600, nil
	}
	return 0, fmt.Errorf("the entry's time_type is %s, neither 0 (days) nor 1 (hours); map it with as: hours or as: days instead", describeValue(tt))
}

// appendPlainInt writes v when it is an integer whose canonical form needs
// no parsing: a json.Number or numeric string of at most 18 digits already
// in canonical form (no sign on zero, no leading zeros), an int or int64,
// or a float64 holding an integer exactly. ok is false for anything else,
// which then takes the general decimal path to the same bytes.
func appendPlainInt(b []byte, v any) (_ []byte, ok bool) {
	var s string
	switch x := v.(type) {
	case json.Number:
		s = string(x)
	case string:
		s = x
	case int64:
		return strconv.AppendInt(b, x, 10), true
	case int:
		return strconv.AppendInt(b, int64(x), 10), true
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return strconv.AppendInt(b, int64(x), 10), true
		}
		return b, false
	default:
		return b, false
	}
	i := 0
	if len(s) > 0 && s[0] == '-' {
		i = 1
	}
	n := len(s) - i
	if n == 0 || n > 18 || s[i] == '0' && (n > 1 || i == 1) {
		return b, false
	}
	for ; i < len(s); i++ {
		if !isDigit(s[i]) {
			return b, false
		}
	}
	return append(b, s...), true
}

// synthetic writes a value that is not read from the report. The key
// holds the userid in lower case; the userid source keeps its spelling.
func (st *mapState) synthetic(b []byte, f *bfield) []byte {
	if f.conv == convEnum {
		code := string(st.syntheticText(st.scratch[:0], f.src.synth))
		if label, ok := f.enum[normCode(code)]; ok {
			return appendString(b, label)
		}
		st.miss(f.label, code)
		return appendString(b, code)
	}
	switch f.src.synth {
	case synthMonthStart:
		return appendDatetime(b, st.mon.Start())
	case synthUserID:
		return appendString(b, st.userID)
	case synthMonth:
		b = append(b, '"')
		b = appendMonth(b, st.mon)
		return append(b, '"')
	}
	b = append(b, '"')
	b = appendLowerBody(b, st.userID)
	b = append(b, '|')
	b = appendMonth(b, st.mon)
	return append(b, '"')
}

// appendLower appends strings.ToLower(s) without allocating: ASCII byte by
// byte, other runes through unicode.ToLower, and each invalid UTF-8 byte as
// U+FFFD, exactly as strings.ToLower does.
func appendLower(b []byte, s string) []byte {
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if 'A' <= c && c <= 'Z' {
				c += 'a' - 'A'
			}
			b = append(b, c)
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		b = utf8.AppendRune(b, unicode.ToLower(r))
		i += size
	}
	return b
}

// appendLowerBody is appendStringBody(b, strings.ToLower(s)). It allocates
// nothing unless the lowered text needs escaping, which a WeCom userid
// (letters, digits, _-@.) never does.
func appendLowerBody(b []byte, s string) []byte {
	mark := len(b)
	b = appendLower(b, s)
	low := b[mark:]
	for i, c := range low {
		// appendLower's output is valid UTF-8, so appendStringBody would
		// change only these: controls, " and \, U+2028 and U+2029.
		if c < 0x20 || c == '"' || c == '\\' ||
			c == 0xE2 && i+2 < len(low) && low[i+1] == 0x80 && (low[i+2] == 0xA8 || low[i+2] == 0xA9) {
			lower := string(low)
			return appendStringBody(b[:mark], lower)
		}
	}
	return b
}

// syntheticText appends the text of a synthetic source (not month_start).
func (st *mapState) syntheticText(b []byte, s synth) []byte {
	switch s {
	case synthKey:
		b = appendLower(b, st.userID)
		b = append(b, '|')
		return appendMonth(b, st.mon)
	case synthMonth:
		return appendMonth(b, st.mon)
	case synthUserID:
		return append(b, st.userID...)
	}
	return b
}

// rows writes a list of report objects as subform rows.
func (st *mapState) rows(b []byte, f *bfield, v any) ([]byte, error) {
	b = append(b, '[')
	n := 0
	row := func(e any, i int) error {
		if e == nil {
			return nil
		}
		el, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("element %d is %s, not an object", i, describeValue(e))
		}
		if n > 0 {
			b = append(b, ',')
		}
		n++
		var err error
		b, err = st.object(b, f.sub, el)
		return err
	}
	switch l := v.(type) {
	case []any:
		for i, e := range l {
			if err := row(e, i); err != nil {
				return b, err
			}
		}
	case []map[string]any:
		for i, e := range l {
			if e == nil {
				continue
			}
			if err := row(e, i); err != nil {
				return b, err
			}
		}
	default:
		return b, fmt.Errorf("%s is not a list", describeValue(v))
	}
	return append(b, ']'), nil
}

// miss records an unknown enum code once per record.
func (st *mapState) miss(target, code string) {
	for _, m := range st.misses {
		if m.Target == target && m.Code == code {
			return
		}
	}
	st.misses = append(st.misses, EnumMiss{Target: target, Code: code})
}

func appendMonth(b []byte, m month.Month) []byte {
	b = appendPadded(b, m.Year, 4)
	b = append(b, '-')
	return appendPadded(b, int(m.Mon), 2)
}

// appendDatetime writes t as Jiandaoyun's datetime value: ISO-8601 in UTC
// with milliseconds, quoted.
func appendDatetime(b []byte, t time.Time) []byte {
	t = t.UTC()
	y, mo, d := t.Date()
	h, mi, s := t.Clock()
	b = append(b, '"')
	b = appendPadded(b, y, 4)
	b = append(b, '-')
	b = appendPadded(b, int(mo), 2)
	b = append(b, '-')
	b = appendPadded(b, d, 2)
	b = append(b, 'T')
	b = appendPadded(b, h, 2)
	b = append(b, ':')
	b = appendPadded(b, mi, 2)
	b = append(b, ':')
	b = appendPadded(b, s, 2)
	b = append(b, '.')
	b = appendPadded(b, t.Nanosecond()/1e6, 3)
	return append(b, 'Z', '"')
}

// appendPadded writes v (0 <= v) in at least width digits.
func appendPadded(b []byte, v, width int) []byte {
	switch {
	case width == 2 && v >= 0 && v < 100:
		return append(b, byte('0'+v/10), byte('0'+v%10))
	case width == 3 && v >= 0 && v < 1000:
		return append(b, byte('0'+v/100), byte('0'+v/10%10), byte('0'+v%10))
	case width == 4 && v >= 0 && v < 10000:
		return append(b, byte('0'+v/1000), byte('0'+v/100%10), byte('0'+v/10%10), byte('0'+v%10))
	}
	var buf [20]byte
	digits := strconv.AppendInt(buf[:0], int64(v), 10)
	for i := len(digits); i < width; i++ {
		b = append(b, '0')
	}
	return append(b, digits...)
}

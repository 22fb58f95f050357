package mapping

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Problem is one reason a mapping is refused. It names the config key and
// line so that the user can go straight to it, and says how to fix it.
type Problem struct {
	Key    string // config key, e.g. mapping.fields.late or mapping.key
	Target string // target field as written in the config ("" for mapping.key problems)
	Source string // source as written ("" when there is none)
	Line   int    // config line; 0 when unknown
	Msg    string // what is wrong and how to fix it
}

func (p Problem) String() string {
	var sb strings.Builder
	sb.WriteString(p.Key)
	if p.Line > 0 {
		fmt.Fprintf(&sb, " (line %d)", p.Line)
	}
	sb.WriteString(": ")
	if p.Source != "" {
		fmt.Fprintf(&sb, "source %q: ", p.Source)
	}
	sb.WriteString(p.Msg)
	return sb.String()
}

// Problems is every reason a mapping is refused, so that one run of `check`
// shows them all instead of one per edit.
type Problems []Problem

func (ps Problems) Error() string {
	lines := make([]string, len(ps))
	for i, p := range ps {
		lines[i] = p.String()
	}
	if len(ps) == 1 {
		return "bad mapping: " + lines[0]
	}
	return fmt.Sprintf("bad mapping (%d problems):\n  %s", len(ps), strings.Join(lines, "\n  "))
}

// Mapping is a mapping whose sources have been checked against the report
// schema. Bind checks it against a form and yields the Mapper.
type Mapping struct {
	key    string
	fields []*cfield
}

// cfield is one compiled field.
type cfield struct {
	key    string // config key: mapping.fields.<target>[.fields.<sub>]
	target string
	label  string // target for messages and enum warnings: parent.child in a subform
	line   int
	as     string
	src    *source
	enum   map[string]string // normalized code -> label
	def    []byte            // canonical default; nil when none
	defIs  defKind
	sub    []*cfield
}

// Compile checks a mapping without the form: that every field has a
// source that can exist in a month report, a known converter that fits that
// source, and that the key field is mapped from the key. The error is a
// Problems listing every problem found.
func Compile(spec Spec) (*Mapping, error) {
	c := &compiler{}
	m := &Mapping{key: spec.Key}
	if len(spec.Fields) == 0 {
		c.add(Problem{Key: "mapping.fields", Line: spec.Line,
			Msg: "no fields; map at least the key field, such as sync_key: {source: key}"})
	}
	m.fields = c.fields(spec.Fields, "mapping.fields", "", reportSchema(), "the report")
	c.checkKey(spec, m.fields)
	if len(c.problems) > 0 {
		return nil, c.problems
	}
	return m, nil
}

type compiler struct{ problems Problems }

func (c *compiler) add(p Problem) { c.problems = append(c.problems, p) }

func (c *compiler) fields(specs []FieldSpec, prefix, parent string, root *node, rootName string) []*cfield {
	out := make([]*cfield, 0, len(specs))
	seen := make(map[string]int, len(specs))
	for i := range specs {
		fs := &specs[i]
		if fs.Target == "" {
			c.add(Problem{Key: prefix, Source: fs.Source, Line: fs.Line,
				Msg: "a field has an empty target name; use the form field's alias or _widget_ id"})
			continue
		}
		if prev, dup := seen[fs.Target]; dup {
			c.add(Problem{Key: prefix + "." + fs.Target, Target: fs.Target, Source: fs.Source, Line: fs.Line,
				Msg: fmt.Sprintf("target %q is mapped twice%s; keep one of them", fs.Target, lineNote(prev))})
			continue
		}
		seen[fs.Target] = fs.Line
		if f := c.field(fs, prefix, parent, root, rootName); f != nil {
			out = append(out, f)
		}
	}
	return out
}

// field compiles one field, adding every problem it has; it returns nil
// when the field is unusable.
func (c *compiler) field(fs *FieldSpec, prefix, parent string, root *node, rootName string) *cfield {
	f := &cfield{key: prefix + "." + fs.Target, target: fs.Target, label: fs.Target, line: fs.Line, as: fs.As}
	if parent != "" {
		f.label = parent + "." + fs.Target
	}
	bad := false
	add := func(format string, args ...any) {
		bad = true
		c.add(Problem{Key: f.key, Target: fs.Target, Source: fs.Source, Line: fs.Line, Msg: fmt.Sprintf(format, args...)})
	}
	known := IsConverter(fs.As)
	if !known {
		add("unknown converter as: %q; use one of %s, or leave as: out", fs.As, strings.Join(Converters, ", "))
	}
	if fs.Source == "" {
		add("no source; set source:, such as source: base_info.name")
	} else if src, err := compileSource(fs.Source, root, rootName); err != nil {
		add("%s", err.Error())
	} else {
		f.src = src
		if known {
			if msg := fitSource(fs.As, src, parent != ""); msg != "" {
				add("%s", msg)
			}
		}
	}

	switch {
	case fs.As == AsEnum && len(fs.Enum) == 0:
		add("as: enum needs an enum: table of code: label, such as enum: {1: 固定上下班, 3: 按班次上下班}")
	case fs.As == AsEnum:
		f.enum = make(map[string]string, len(fs.Enum))
		codes := make([]string, 0, len(fs.Enum))
		for code := range fs.Enum {
			codes = append(codes, code)
		}
		slices.Sort(codes)
		first := make(map[string]string, len(codes))
		for _, code := range codes {
			norm := normCode(code)
			if prev, dup := first[norm]; dup {
				add("enum codes %q and %q are the same number; keep one", prev, code)
				continue
			}
			first[norm] = code
			f.enum[norm] = fs.Enum[code]
		}
	case len(fs.Enum) > 0:
		add("enum: is only used with as: enum; add as: enum or remove the table")
	}

	switch {
	case fs.As == AsSubform && parent != "":
		add("a subform inside a subform is not supported; map a field of the element instead")
	case fs.As == AsSubform && len(fs.Fields) == 0:
		add("as: subform needs fields: mapping each subform field from an element field, such as fields: {kind: {source: name}}")
	case fs.As == AsSubform:
		if f.src != nil && f.src.kind == kindArray {
			f.sub = c.fields(fs.Fields, f.key+".fields", fs.Target, f.src.elem, f.src.path.String()+" elements")
		}
	case len(fs.Fields) > 0:
		add("fields: is only used with as: subform; add as: subform or remove fields:")
	}

	switch {
	case fs.HasDefault && fs.As == AsSubform:
		add("a subform takes no default; when the list is missing it is written with no rows ([])")
	case fs.HasDefault:
		b, k, err := encodeDefault(fs.Default)
		if err != nil {
			add("%s", err.Error())
		}
		f.def, f.defIs = b, k
	}
	if bad {
		return nil
	}
	return f
}

// fitSource says why a converter cannot take a source, or "".
func fitSource(as string, src *source, inSubform bool) string {
	what := src.text
	switch src.kind {
	case kindInstant:
		if as != AsDatetime {
			return "month_start is an instant; write it with as: datetime"
		}
		return ""
	case kindArray:
		if as != AsSubform {
			el := src.elem.names
			return fmt.Sprintf("%s is a list of objects; pick one element's field with a filter, such as %s[%s=1].%s, or write the whole list with as: subform",
				what, what, el[0], el[len(el)-1])
		}
		return ""
	}
	switch as {
	case AsSubform:
		if inSubform {
			return ""
		}
		return fmt.Sprintf("as: subform needs a list of objects (exception_infos or sp_items), and %s is a %s value", what, kindName(src.kind))
	case AsDatetime:
		return "as: datetime needs source: month_start"
	case AsMember:
		switch {
		case src.synth == synthUserID:
		case src.synth != synthNone:
			return fmt.Sprintf("%s is not a member; as: member writes a userid, such as source: userid", what)
		case src.kind != kindString:
			return fmt.Sprintf("%s is a %s value; as: member writes a userid as text, such as source: userid or source: base_info.acctid", what, kindName(src.kind))
		}
	case AsLeave:
		if src.kind != kindNumber || src.path[len(src.path)-1].name != "duration" ||
			src.holder == nil || src.holder.fields["time_type"] == nil {
			return fmt.Sprintf("as: leave reads an sp_items entry's duration in the unit its time_type gives, and %s is not one; write source: sp_items[name=年假].duration, or duration inside an sp_items subform", what)
		}
	case AsNumber, AsHours, AsDays:
		if src.kind != kindNumber {
			if src.synth != synthNone {
				return fmt.Sprintf("%s is text; as: %s needs a number field of the report", what, as)
			}
			return fmt.Sprintf("%s is text in the report; as: %s needs a number field", what, as)
		}
	}
	return ""
}

// checkKey enforces that mapping.key names a field mapped from source: key,
// which is how records are found again.
func (c *compiler) checkKey(spec Spec, fields []*cfield) {
	if spec.Key == "" {
		c.add(Problem{Key: "mapping.key", Line: spec.Line,
			Msg: `missing; set key: to the target field that holds "<userid>|<YYYY-MM>", such as key: sync_key`})
		return
	}
	var fs *FieldSpec
	for i := range spec.Fields {
		if spec.Fields[i].Target == spec.Key {
			fs = &spec.Fields[i]
			break
		}
	}
	if fs == nil {
		c.add(Problem{Key: "mapping.key", Target: spec.Key, Line: spec.Line,
			Msg: fmt.Sprintf("%q is not one of mapping.fields; add %s: {source: key}", spec.Key, spec.Key)})
		return
	}
	p := Problem{Key: "mapping.key", Target: spec.Key, Source: fs.Source, Line: fs.Line}
	if fs.Source != "key" {
		p.Msg = fmt.Sprintf(`the key field %q must be mapped from source: key, which holds "<userid>|<YYYY-MM>"`, spec.Key)
		c.add(p)
	}
	if fs.As != AsNone && fs.As != AsText {
		p.Msg = fmt.Sprintf("the key field %q takes no converter; remove as: %s", spec.Key, fs.As)
		c.add(p)
	}
}

// normCode writes an enum code the way Map looks it up: numbers in shortest
// form, so that a YAML key 1 and a report value "1" or 1.0 meet.
func normCode(code string) string {
	if d, err := parseDec(code); err == nil {
		return d.String()
	}
	return code
}

// defKind is the JSON kind of a default, checked against the form by Bind.
type defKind uint8

const (
	defText defKind = iota + 1
	defNumber
	defBool
)

// encodeDefault checks a default's Go type and encodes it canonically once.
func encodeDefault(v any) ([]byte, defKind, error) {
	switch x := v.(type) {
	case string:
		return appendString(nil, x), defText, nil
	case bool:
		return strconv.AppendBool(nil, x), defBool, nil
	case float64:
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return nil, 0, fmt.Errorf("default %v is not a finite number", x)
		}
	case int, int64, int32, uint, uint64, uint32:
	default:
		return nil, 0, fmt.Errorf("default must be a string or a number, not %s", describeValue(v))
	}
	d, err := decOf(v)
	if err != nil {
		return nil, 0, fmt.Errorf("default: %w", err)
	}
	return d.append(nil), defNumber, nil
}

func lineNote(line int) string {
	if line <= 0 {
		return ""
	}
	return fmt.Sprintf(" (first at line %d)", line)
}

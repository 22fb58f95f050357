package mapping

import (
	"strings"
	"testing"
)

// Every widget type's empty value, the rule "A missing source" states.
func TestEmptyValueByWidgetType(t *testing.T) {
	cases := []struct {
		typ  string
		want string // "" : none documented
	}{
		{"text", `""`}, {"textarea", `""`}, {"combo", `""`}, {"radiogroup", `""`},
		{"number", `0`},
		{"checkboxgroup", `[]`}, {"combocheck", `[]`}, {"usergroup", `[]`},
		{"subform", `[]`},
		{"datetime", ""}, {"user", ""}, {"dept", ""}, {"deptgroup", ""}, {"address", ""},
		{"location", ""}, {"phone", ""}, {"image", ""}, {"upload", ""}, {"lookup", ""}, {"", ""},
	}
	for _, c := range cases {
		if got := string(emptyValue(c.typ)); got != c.want {
			t.Errorf("emptyValue(%q) = %q, want %q", c.typ, got, c.want)
		}
	}
}

// A missing source writes the widget type's empty value, or the default
// when one is given, for each type a converter can write to, at the top
// level and in subform rows. No mapped field is ever left out.
func TestMissingByWidgetType(t *testing.T) {
	enum := map[string]string{"1": "固定上下班"}
	cases := []struct {
		name string
		fs   FieldSpec
		w    Widget
		want string // the value Map writes when the source is missing
	}{
		{"text", FieldSpec{Source: "base_info.name"}, Widget{Type: "text"}, `""`},
		{"textarea", FieldSpec{Source: "base_info.name"}, Widget{Type: "textarea"}, `""`},
		{"combo", FieldSpec{Source: "base_info.name"}, Widget{Type: "combo"}, `""`},
		{"radiogroup", FieldSpec{Source: "base_info.name"}, Widget{Type: "radiogroup"}, `""`},
		{"number to text", FieldSpec{Source: "summary_info.work_days"}, Widget{Type: "text"}, `""`},
		{"as text to combo", FieldSpec{Source: "summary_info.work_days", As: AsText}, Widget{Type: "combo"}, `""`},
		{"enum to radiogroup", FieldSpec{Source: "base_info.record_type", As: AsEnum, Enum: enum}, Widget{Type: "radiogroup"}, `""`},
		{"filter to text", FieldSpec{Source: "sp_items[name=年假].name"}, Widget{Type: "text"}, `""`},
		{"number", FieldSpec{Source: "summary_info.work_days"}, Widget{Type: "number"}, `0`},
		{"as number", FieldSpec{Source: "summary_info.work_days", As: AsNumber}, Widget{Type: "number"}, `0`},
		{"hours", FieldSpec{Source: "summary_info.regular_work_sec", As: AsHours}, Widget{Type: "number"}, `0`},
		{"days filter", FieldSpec{Source: "sp_items[name=年假].duration", As: AsDays}, Widget{Type: "number"}, `0`},
		{"subform", FieldSpec{Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}},
			Widget{Type: "subform", Items: []Widget{{Name: "n", Type: "text"}}}, `[]`},
		{"datetime never missing", FieldSpec{Source: "month_start", As: AsDatetime}, Widget{Type: "datetime"}, `"2025-05-31T16:00:00.000Z"`},
		// Defaults are written as they stand.
		{"text default", FieldSpec{Source: "base_info.name", Default: "无", HasDefault: true}, Widget{Type: "text"}, `"无"`},
		{"combo default", FieldSpec{Source: "sp_items[name=年假].name", Default: "-", HasDefault: true}, Widget{Type: "combo"}, `"-"`},
		{"radiogroup default", FieldSpec{Source: "base_info.record_type", As: AsEnum, Enum: enum, Default: "未知", HasDefault: true}, Widget{Type: "radiogroup"}, `"未知"`},
		{"number default", FieldSpec{Source: "summary_info.work_days", Default: int64(-1), HasDefault: true}, Widget{Type: "number"}, `-1`},
		{"hours default", FieldSpec{Source: "summary_info.regular_work_sec", As: AsHours, Default: 7.50, HasDefault: true}, Widget{Type: "number"}, `7.5`},
		{"datetime default", FieldSpec{Source: "month_start", As: AsDatetime, Default: "2000-01-01T00:00:00.000Z", HasDefault: true}, Widget{Type: "datetime"}, `"2025-05-31T16:00:00.000Z"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			fs, w := c.fs, c.w
			fs.Target, w.Name = "x", "x"
			mp := mapper(t, []FieldSpec{fs}, []Widget{w})
			for _, report := range []map[string]any{
				{},
				{"base_info": nil, "summary_info": map[string]any{}, "sp_items": nil},
				{"base_info": map[string]any{"name": nil, "record_type": nil}, "sp_items": []any{map[string]any{"name": "外出", "duration": 1}}},
			} {
				if c.name == "subform" && report["sp_items"] != nil {
					continue // a list is there: not missing
				}
				p := payloadRaw(t, mapOne(t, mp, report).Data)
				if got, ok := p["x"]; !ok || got != c.want {
					t.Errorf("report %v: x = %s (present %v), want %s", report, got, ok, c.want)
				}
			}
		})
	}

	// Subform rows follow the same rules, field by field.
	mp := mapper(t, []FieldSpec{{Target: "rows", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
		{Target: "t", Source: "name"},
		{Target: "a", Source: "name", As: AsEnum, Enum: map[string]string{"年假": "annual"}},
		{Target: "c", Source: "type", As: AsText},
		{Target: "r", Source: "name"},
		{Target: "n", Source: "duration"},
		{Target: "h", Source: "duration", As: AsHours},
		{Target: "d", Source: "count", Default: int64(1), HasDefault: true},
		{Target: "s", Source: "name", Default: "无", HasDefault: true},
		{Target: "w", Source: "month_start", As: AsDatetime},
	}}}, []Widget{{Name: "rows", Type: "subform", Items: []Widget{
		{Name: "t", Type: "textarea"}, {Name: "a", Type: "text"}, {Name: "c", Type: "combo"}, {Name: "r", Type: "radiogroup"},
		{Name: "n", Type: "number"}, {Name: "h", Type: "number"}, {Name: "d", Type: "number"}, {Name: "s", Type: "text"},
		{Name: "w", Type: "datetime"},
	}}})
	res := mapOne(t, mp, map[string]any{"sp_items": []any{map[string]any{}, map[string]any{"name": nil, "type": nil}}})
	row := `{"a":{"value":""},"c":{"value":""},"d":{"value":1},"h":{"value":0},"n":{"value":0},"r":{"value":""},"s":{"value":"无"},"t":{"value":""},"w":{"value":"2025-05-31T16:00:00.000Z"}}`
	if want := `{"rows":{"value":[` + row + `,` + row + `]},"sync_key":{"value":"zhangsan|2025-06"}}`; string(res.Data) != want {
		t.Errorf("subform rows:\ngot  %s\nwant %s", res.Data, want)
	}
}

// payloadRaw decodes Result.Data into field -> raw JSON value.
func payloadRaw(t testing.TB, data []byte) map[string]string {
	t.Helper()
	p := payload(t, data)
	out := make(map[string]string, len(p))
	for k, v := range p {
		b, err := appendCanonical(nil, v)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = string(b)
	}
	return out
}

// A type with no empty value needs a default when its source can be
// missing. No converter writes such a type from a report path today (a
// datetime is only written from month_start), so the rule is checked on
// the binder's own test: every widget type against a path, a filter, a
// subform element's path, and the synthetic sources.
func TestMissingNeedsDefault(t *testing.T) {
	compiled := func(source string) *cfield {
		t.Helper()
		fs := FieldSpec{Target: "x", Source: source}
		if source == "month_start" {
			fs.As = AsDatetime
		}
		m, err := Compile(withField(fs))
		if err != nil {
			t.Fatalf("Compile %s: %v", source, err)
		}
		for _, f := range m.fields {
			if f.target == "x" {
				return f
			}
		}
		t.Fatal("no field x")
		return nil
	}
	sub, err := Compile(withField(FieldSpec{Target: "x", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "y", Source: "name", Line: 61}}}))
	if err != nil {
		t.Fatal(err)
	}
	var subField *cfield
	for _, f := range sub.fields {
		if f.target == "x" {
			subField = f.sub[0]
		}
	}
	sources := map[string]*cfield{
		"path":        compiled("base_info.name"),
		"filter":      compiled("exception_infos[exception=1].count"),
		"subform row": subField,
	}
	for _, synth := range []string{"key", "month", "month_start", "userid"} {
		sources[synth] = compiled(synth)
	}
	types := []string{"text", "textarea", "combo", "radiogroup", "number", "checkboxgroup", "combocheck", "usergroup", "subform",
		"datetime", "user", "dept", "address"}
	for name, cf := range sources {
		for _, typ := range types {
			w := &Widget{Name: "x", Label: "X", Type: typ}
			msg := missingProblem(cf, w)
			want := emptyValue(typ) == nil && cf.src.synth == synthNone
			if (msg != "") != want {
				t.Errorf("%s to %s: problem %q, want one: %v", name, typ, msg, want)
			}
			if !want {
				continue
			}
			if !strings.Contains(msg, `form field "x" (X) is a `+typ+` field, which has no empty value`) || !strings.Contains(msg, "add default:") {
				t.Errorf("%s to %s: %q does not name the field and the fix", name, typ, msg)
			}
			// A default, whatever it is, answers it.
			withDef := *cf
			withDef.def = []byte(`"-"`)
			if msg := missingProblem(&withDef, w); msg != "" {
				t.Errorf("%s to %s with a default: %q", name, typ, msg)
			}
		}
	}

	// The problem as check and sync print it.
	b := &binder{}
	cf := sources["filter"]
	if msg := missingProblem(cf, &Widget{Name: "late_at", Label: "迟到时间", Type: "datetime"}); msg != "" {
		b.add(cf, msg)
	}
	want := `mapping.fields.x (line 60): source "exception_infos[exception=1].count": form field "late_at" (迟到时间) is a datetime field, which has no empty value, and this source can be missing from a report (WeCom leaves fields out); add default: with the value to write when it is missing, such as default: "2000-01-01T00:00:00.000Z" (ISO-8601 UTC with milliseconds, the form Jiandaoyun reads back)`
	if len(b.problems) != 1 || b.problems[0].String() != want {
		t.Errorf("got  %v\nwant %s", b.problems, want)
	}
	b = &binder{}
	if msg := missingProblem(subField, &Widget{Name: "who", Type: "user"}); msg != "" {
		b.add(subField, msg)
	}
	want = `mapping.fields.x.fields.y (line 61): source "name": form field "who" is a user field, which has no empty value, and this source can be missing from a report (WeCom leaves fields out); add default: with the value to write when it is missing`
	if len(b.problems) != 1 || b.problems[0].String() != want {
		t.Errorf("got  %v\nwant %s", b.problems, want)
	}
}

// Bind accepts every mapping whose fields all have a value when their
// source is missing, and the datetime of month_start needs no default.
func TestBindNoDefaultNeeded(t *testing.T) {
	mp, err := bindWith(t, FieldSpec{Target: "rows", Source: "exception_infos", As: AsSubform, Fields: []FieldSpec{
		{Target: "when", Source: "month_start", As: AsDatetime},
		{Target: "n", Source: "count"},
	}}, Widget{Name: "rows", Type: "subform", Items: []Widget{{Name: "when", Type: "datetime"}, {Name: "n", Type: "number"}}})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range mp.fields {
		if f.ifMissing == nil && f.src.synth == synthNone {
			t.Errorf("field %s has no value for a missing source", f.name)
		}
		for _, s := range f.sub {
			if s.ifMissing == nil && s.src.synth == synthNone {
				t.Errorf("field %s.%s has no value for a missing source", f.name, s.name)
			}
		}
	}
}

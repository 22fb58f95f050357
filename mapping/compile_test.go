package mapping

import (
	"errors"
	"math"
	"strings"
	"testing"
)

// withField is the default mapping plus one field at line 60.
func withField(fs FieldSpec) Spec {
	s := defaultSpec()
	if fs.Line == 0 {
		fs.Line = 60
	}
	s.Fields = append(s.Fields, fs)
	return s
}

func TestCompileDefault(t *testing.T) {
	m, err := Compile(defaultSpec())
	if err != nil {
		t.Fatal(err)
	}
	if len(m.fields) != len(defaultFields) {
		t.Fatalf("%d fields, want %d", len(m.fields), len(defaultFields))
	}
}

// The example from the mapping language, word for word.
func TestCompileErrorExample(t *testing.T) {
	s := withField(FieldSpec{Target: "late", Source: "exception_infos[exceptoin=1].count", Line: 34})
	_, err := Compile(s)
	ps := problemsOf(t, err)
	if len(ps) != 1 {
		t.Fatalf("want one problem, got %v", ps)
	}
	want := `mapping.fields.late (line 34): source "exception_infos[exceptoin=1].count": no field "exceptoin" in exception_infos elements; fields are exception, count, duration`
	if got := ps[0].String(); !strings.HasPrefix(got, want) {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !strings.Contains(ps[0].String(), `did you mean "exception"?`) {
		t.Errorf("no suggestion in %s", ps[0])
	}
	if ps[0].Target != "late" || ps[0].Line != 34 || ps[0].Source != "exception_infos[exceptoin=1].count" {
		t.Errorf("problem fields: %+v", ps[0])
	}
	if !strings.HasPrefix(err.Error(), "bad mapping: mapping.fields.late (line 34)") {
		t.Errorf("Error() = %s", err)
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name string
		fs   FieldSpec
		want string // substring of the problem
	}{
		{"empty target", FieldSpec{Source: "base_info.name"}, "empty target name"},
		{"unknown converter", FieldSpec{Target: "x", Source: "base_info.name", As: "minutes"}, `unknown converter as: "minutes"; use one of text, number, hours, days, datetime, enum, subform, member, leave`},
		{"no source", FieldSpec{Target: "x"}, "no source; set source:"},
		{"syntax", FieldSpec{Target: "x", Source: "base_info..name"}, "empty name at byte 10"},
		{"unknown top-level", FieldSpec{Target: "x", Source: "base.name"}, `no field "base" in the report; fields are base_info, summary_info, exception_infos, sp_items, overwork_info; synthetic sources are key, month, month_start, userid`},
		{"synthetic typo", FieldSpec{Target: "x", Source: "user_id"}, `did you mean`},
		{"unknown nested", FieldSpec{Target: "x", Source: "base_info.nmae"}, `no field "nmae" in base_info; fields are record_type, name, name_ex, departs_name, acctid, rule_info; did you mean "name"?`},
		{"unknown deep", FieldSpec{Target: "x", Source: "base_info.rule_info.group"}, `no field "group" in base_info.rule_info; fields are groupid, groupname`},
		{"day-report field", FieldSpec{Target: "x", Source: "summary_info.checkin_count"}, `no field "checkin_count" in summary_info`},
		{"unknown element field", FieldSpec{Target: "x", Source: "sp_items[name=年假].hours"}, `no field "hours" in sp_items elements; fields are type, vacation_id, count, duration, time_type, name`},
		{"filter on object", FieldSpec{Target: "x", Source: "base_info[name=a].acctid"}, "base_info is not a list, so it takes no [field=value] filter; lists are exception_infos, sp_items"},
		{"filter on number", FieldSpec{Target: "x", Source: "summary_info.work_days[a=1]"}, "summary_info.work_days is not a list"},
		{"non-numeric filter on number", FieldSpec{Target: "x", Source: "exception_infos[exception=late].count"}, `filter [exception=late]: exception is a number, and "late" is not one`},
		{"filter picks element", FieldSpec{Target: "x", Source: "exception_infos[exception=1]"}, "exception_infos[exception=1] is a whole element; add one of its fields: exception_infos[exception=1].exception"},
		{"list without filter", FieldSpec{Target: "x", Source: "exception_infos.count"}, "exception_infos is a list; pick one element with a filter, such as exception_infos[exception=1].count"},
		{"object as value", FieldSpec{Target: "x", Source: "base_info.rule_info"}, "base_info.rule_info is an object; name one of its fields: groupid, groupname"},
		{"field of a number", FieldSpec{Target: "x", Source: "summary_info.work_days.x"}, `summary_info.work_days is a number value and has no fields; remove ".x"`},
		{"list as value", FieldSpec{Target: "x", Source: "sp_items"}, "sp_items is a list of objects; pick one element's field with a filter, such as sp_items[type=1].name, or write the whole list with as: subform"},
		{"enum without table", FieldSpec{Target: "x", Source: "base_info.record_type", As: AsEnum}, "as: enum needs an enum: table"},
		{"table without enum", FieldSpec{Target: "x", Source: "base_info.record_type", Enum: map[string]string{"1": "a"}}, "enum: is only used with as: enum"},
		{"duplicate codes", FieldSpec{Target: "x", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "a", "1.0": "b"}}, `enum codes "1" and "1.0" are the same number`},
		{"subform without fields", FieldSpec{Target: "x", Source: "sp_items", As: AsSubform}, "as: subform needs fields:"},
		{"fields without subform", FieldSpec{Target: "x", Source: "base_info.name", Fields: []FieldSpec{{Target: "a", Source: "name"}}}, "fields: is only used with as: subform"},
		{"subform of a scalar", FieldSpec{Target: "x", Source: "base_info.name", As: AsSubform, Fields: []FieldSpec{{Target: "a", Source: "name"}}}, "as: subform needs a list of objects (exception_infos or sp_items), and base_info.name is a text value"},
		{"subform of an element", FieldSpec{Target: "x", Source: "sp_items[type=1]", As: AsSubform, Fields: []FieldSpec{{Target: "a", Source: "name"}}}, "is a whole element"},
		{"subform default", FieldSpec{Target: "x", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "a", Source: "name"}}, Default: "", HasDefault: true}, "a subform takes no default"},
		{"default of a list", FieldSpec{Target: "x", Source: "base_info.name", Default: []any{1}, HasDefault: true}, "default must be a string or a number, not a list"},
		{"default NaN", FieldSpec{Target: "x", Source: "summary_info.work_days", Default: math.NaN(), HasDefault: true}, "is not a finite number"},
		{"default nil", FieldSpec{Target: "x", Source: "summary_info.work_days", Default: nil, HasDefault: true}, "default must be a string or a number, not null"},
		{"month_start without datetime", FieldSpec{Target: "x", Source: "month_start"}, "month_start is an instant; write it with as: datetime"},
		{"month_start as text", FieldSpec{Target: "x", Source: "month_start", As: AsText}, "month_start is an instant; write it with as: datetime"},
		{"datetime of a number", FieldSpec{Target: "x", Source: "summary_info.work_days", As: AsDatetime}, "as: datetime needs source: month_start"},
		{"datetime of month", FieldSpec{Target: "x", Source: "month", As: AsDatetime}, "as: datetime needs source: month_start"},
		{"number of text", FieldSpec{Target: "x", Source: "base_info.name", As: AsNumber}, "base_info.name is text in the report; as: number needs a number field"},
		{"hours of text", FieldSpec{Target: "x", Source: "sp_items[type=1].name", As: AsHours}, "is text in the report; as: hours needs a number field"},
		{"days of synthetic", FieldSpec{Target: "x", Source: "month", As: AsDays}, "month is text; as: days needs a number field of the report"},
		{"number of key", FieldSpec{Target: "x", Source: "key", As: AsNumber}, "key is text; as: number needs a number field"},
		{"duplicate target", FieldSpec{Target: "name", Source: "base_info.name_ex"}, `target "name" is mapped twice (first at line 46); keep one of them`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Compile(withField(c.fs))
			ps := problemsOf(t, err)
			found := false
			for _, p := range ps {
				if strings.Contains(p.String(), c.want) {
					found = true
					if p.Line != 60 {
						t.Errorf("line %d, want 60: %s", p.Line, p)
					}
					if c.fs.Target != "" && !strings.HasPrefix(p.String(), "mapping.fields."+c.fs.Target+" (line 60): ") {
						t.Errorf("problem does not name the target and line: %s", p)
					}
					if c.fs.Source != "" && !strings.Contains(p.String(), `source "`+c.fs.Source+`"`) {
						t.Errorf("problem does not name the source: %s", p)
					}
				}
			}
			if !found {
				t.Errorf("no problem contains %q; got:\n%v", c.want, err)
			}
		})
	}
}

func TestCompileSubformProblems(t *testing.T) {
	_, err := Compile(withField(FieldSpec{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
		{Target: "kind", Source: "nmae", Line: 61},
		{Target: "hours", Source: "duration", As: AsHours, Line: 62},
		{Target: "inner", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "a", Source: "name"}}, Line: 63},
		{Target: "hours", Source: "count", Line: 64},
	}}))
	ps := problemsOf(t, err)
	want := []string{
		`mapping.fields.leave.fields.kind (line 61): source "nmae": no field "nmae" in sp_items elements; fields are type, vacation_id, count, duration, time_type, name; did you mean "name"?`,
		`mapping.fields.leave.fields.inner (line 63): source "sp_items": no field "sp_items" in sp_items elements`,
		`mapping.fields.leave.fields.inner (line 63): source "sp_items": a subform inside a subform is not supported`,
		`mapping.fields.leave.fields.hours (line 64): source "count": target "hours" is mapped twice (first at line 62)`,
	}
	if len(ps) != len(want) {
		t.Fatalf("got %d problems, want %d:\n%v", len(ps), len(want), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(ps[i].String(), w) {
			t.Errorf("problem %d:\ngot  %s\nwant %s", i, ps[i], w)
		}
	}
}

func TestCompileKeyProblems(t *testing.T) {
	cases := []struct {
		name string
		edit func(*Spec)
		want string
	}{
		{"no key", func(s *Spec) { s.Key = "" }, `mapping.key (line 40): missing; set key: to the target field that holds "<userid>|<YYYY-MM>", such as key: sync_key`},
		{"key not a target", func(s *Spec) { s.Key = "sync" }, `mapping.key (line 40): "sync" is not one of mapping.fields; add sync: {source: key}`},
		{"key from another source", func(s *Spec) { s.Fields[0].Source = "userid" }, `mapping.key (line 43): source "userid": the key field "sync_key" must be mapped from source: key`},
		{"key with a converter", func(s *Spec) { s.Fields[0].As = AsEnum; s.Fields[0].Enum = map[string]string{"a": "b"} }, `mapping.key (line 43): source "key": the key field "sync_key" takes no converter; remove as: enum`},
		{"no fields", func(s *Spec) { s.Fields = nil }, "mapping.fields (line 40): no fields; map at least the key field"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := defaultSpec()
			c.edit(&s)
			_, err := Compile(s)
			ps := problemsOf(t, err)
			found := false
			for _, p := range ps {
				found = found || strings.HasPrefix(p.String(), c.want)
			}
			if !found {
				t.Errorf("want problem\n  %s\ngot\n%v", c.want, err)
			}
		})
	}
	// as: text on the key is allowed.
	s := defaultSpec()
	s.Fields[0].As = AsText
	if _, err := Compile(s); err != nil {
		t.Errorf("key with as: text: %v", err)
	}
}

// Every problem is listed at once, in config order.
func TestCompileListsEveryProblem(t *testing.T) {
	s := defaultSpec()
	s.Key = "nope"
	s.Fields[3].Source = "base_info.nam"
	s.Fields[9].As = "hour"
	s.Fields = append(s.Fields, FieldSpec{Target: "late", Source: "exception_infos[exceptoin=1].count", Line: 70})
	_, err := Compile(s)
	ps := problemsOf(t, err)
	if len(ps) != 4 {
		t.Fatalf("want 4 problems, got %d:\n%v", len(ps), err)
	}
	for i, key := range []string{"mapping.fields.name", "mapping.fields.work_days", "mapping.fields.late", "mapping.key"} {
		if ps[i].Key != key {
			t.Errorf("problem %d is %s, want %s", i, ps[i].Key, key)
		}
	}
	if !strings.HasPrefix(err.Error(), "bad mapping (4 problems):\n  mapping.fields.name (line 46)") {
		t.Errorf("Error() = %s", err)
	}
	var target Problems
	if !errors.As(err, &target) || len(target) != 4 {
		t.Error("errors.As must find the Problems")
	}
}

func TestCompileAcceptsConverters(t *testing.T) {
	for _, fs := range []FieldSpec{
		{Target: "a", Source: "base_info.record_type", As: AsText},
		{Target: "a", Source: "base_info.name", As: AsText},
		{Target: "a", Source: "summary_info.work_days", As: AsNumber},
		{Target: "a", Source: "summary_info.regular_work_sec", As: AsHours},
		{Target: "a", Source: "sp_items[name=年假].duration", As: AsDays},
		{Target: "a", Source: "month_start", As: AsDatetime},
		{Target: "a", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "固定上下班"}},
		{Target: "a", Source: "base_info.name", As: AsEnum, Enum: map[string]string{"张三": "San"}},
		{Target: "a", Source: "month", As: AsEnum, Enum: map[string]string{"2025-06": "六月"}},
		{Target: "a", Source: "userid"},
		{Target: "a", Source: "month"},
		{Target: "a", Source: "exception_infos", As: AsSubform, Fields: []FieldSpec{{Target: "e", Source: "exception"}, {Target: "k", Source: "key"}}},
		{Target: "a", Source: "summary_info.work_days", Default: int64(0), HasDefault: true},
		{Target: "a", Source: "summary_info.work_days", Default: 1.5, HasDefault: true},
		{Target: "a", Source: "base_info.name", Default: "无", HasDefault: true},
		{Target: "a", Source: "base_info.name", Default: false, HasDefault: true},
	} {
		if _, err := Compile(withField(fs)); err != nil {
			t.Errorf("%+v: %v", fs, err)
		}
	}
}

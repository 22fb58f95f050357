package mapping

import (
	"reflect"
	"slices"
	"strings"
	"testing"
)

// bindWith compiles the default mapping plus fs and binds it to the
// default form plus ws.
func bindWith(t *testing.T, fs FieldSpec, ws ...Widget) (*Mapper, error) {
	t.Helper()
	m, err := Compile(withField(fs))
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return m.Bind(append(defaultWidgets(), ws...))
}

func TestBindDefault(t *testing.T) {
	mp := bindDefault(t)
	if mp.KeyField() != "sync_key" {
		t.Errorf("KeyField = %q", mp.KeyField())
	}
	var want []string
	for _, f := range defaultFields {
		want = append(want, f[0])
	}
	slices.Sort(want)
	if got := mp.Targets(); !reflect.DeepEqual(got, want) {
		t.Errorf("Targets = %v, want %v", got, want)
	}
	mp.Targets()[0] = "changed"
	if mp.Targets()[0] == "changed" {
		t.Error("Targets must return a copy")
	}
	for _, uid := range []string{"ZhangSan", "zhangsan", "ZHANGSAN"} {
		if got := mp.Key(uid, june); got != "zhangsan|2025-06" {
			t.Errorf("Key(%q) = %q, want the userid in lower case", uid, got)
		}
	}
}

// Targets may be written as the _widget_ id; requests use the alias, so
// the payload, the hash and the fingerprint are those of the alias spelling.
func TestBindByWidgetID(t *testing.T) {
	s := defaultSpec()
	ws := defaultWidgets()
	s.Fields[0].Target = ws[0].WidgetName // sync_key by id
	s.Key = ws[0].WidgetName
	s.Fields[3].Target = ws[3].WidgetName // name by id
	mp := bind(t, s, ws)
	if mp.KeyField() != "sync_key" {
		t.Errorf("KeyField = %q, want the alias", mp.KeyField())
	}
	ref := bindDefault(t)
	if !reflect.DeepEqual(mp.Targets(), ref.Targets()) || mp.Fingerprint() != ref.Fingerprint() {
		t.Errorf("Targets %v / fingerprint %x differ from the alias spelling's %v / %x", mp.Targets(), mp.Fingerprint(), ref.Targets(), ref.Fingerprint())
	}
	in := Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(t)[0]}
	got, err1 := mp.Map(in)
	want, err2 := ref.Map(in)
	if err1 != nil || err2 != nil || string(got.Data) != string(want.Data) || got.Hash != want.Hash {
		t.Errorf("payload differs:\n%s\n%s", got.Data, want.Data)
	}

	// A field with no alias is requested by its _widget_ id.
	s.Fields = append(s.Fields, FieldSpec{Target: "_widget_1758077119999", Source: "userid", Line: 80})
	ws = append(ws, Widget{WidgetName: "_widget_1758077119999", Label: "备注", Type: "text"})
	res, err := bind(t, s, ws).Map(in)
	if err != nil {
		t.Fatal(err)
	}
	if p := payload(t, res.Data); p["_widget_1758077119999"] != "ZhangSan" {
		t.Errorf("payload %s", res.Data)
	}
}

func TestBindMissingTarget(t *testing.T) {
	_, err := bindWith(t, FieldSpec{Target: "late_cnt", Source: "exception_infos[exception=1].count"},
		Widget{Name: "late_count", WidgetName: "_widget_1", Label: "迟到次数", Type: "number"},
		Widget{Name: "leave", WidgetName: "_widget_2", Label: "请假", Type: "number"})
	ps := problemsOf(t, err)
	want := `mapping.fields.late_cnt (line 60): source "exception_infos[exception=1].count": no field "late_cnt" in the form (fields match by alias or _widget_ id); close names: "late_count" (迟到次数)`
	if len(ps) != 1 || ps[0].String() != want {
		t.Errorf("got  %v\nwant %s", err, want)
	}

	// Nothing close: the form's fields are listed.
	m, _ := Compile(Spec{Key: "k", Fields: []FieldSpec{{Target: "k", Source: "key", Line: 3}, {Target: "zzzzzz", Source: "userid", Line: 4}}})
	_, err = m.Bind([]Widget{{Name: "k", Type: "text"}, {Name: "abc", Label: "甲", Type: "text"}})
	ps = problemsOf(t, err)
	if len(ps) != 1 || !strings.HasSuffix(ps[0].String(), `the form's fields are "k", "abc" (甲)`) {
		t.Errorf("got %v", err)
	}
	_, err = m.Bind(nil)
	if ps = problemsOf(t, err); len(ps) != 2 || !strings.HasSuffix(ps[1].String(), "the form has no fields") {
		t.Errorf("got %v", err)
	}
}

// The converter table of the mapping language, row by row.
func TestBindConverterTable(t *testing.T) {
	types := []string{"text", "textarea", "number", "datetime", "combo", "radiogroup", "subform", "user", "checkboxgroup"}
	rows := []struct {
		fs   FieldSpec
		fits []string
	}{
		{FieldSpec{Source: "summary_info.work_days"}, []string{"text", "textarea", "number", "combo", "radiogroup"}},
		{FieldSpec{Source: "base_info.name"}, []string{"text", "textarea", "combo", "radiogroup"}}, // text to number refused
		{FieldSpec{Source: "summary_info.work_days", As: AsText}, []string{"text", "textarea", "combo", "radiogroup"}},
		{FieldSpec{Source: "summary_info.work_days", As: AsNumber}, []string{"number"}},
		{FieldSpec{Source: "summary_info.work_days", As: AsHours}, []string{"number"}},
		{FieldSpec{Source: "summary_info.work_days", As: AsDays}, []string{"number"}},
		{FieldSpec{Source: "month_start", As: AsDatetime}, []string{"datetime"}},
		{FieldSpec{Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "a"}}, []string{"text", "combo", "radiogroup"}},
		{FieldSpec{Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}}, []string{"subform"}},
	}
	for _, r := range rows {
		for _, typ := range types {
			fs := r.fs
			fs.Target = "x"
			w := Widget{Name: "x", WidgetName: "_widget_9", Label: "X", Type: typ}
			if typ == "subform" {
				w.Items = []Widget{{Name: "n", Type: "text"}}
			}
			_, err := bindWith(t, fs, w)
			fits := slices.Contains(r.fits, typ)
			if fits && err != nil {
				t.Errorf("%s as %q to %s: %v", fs.Source, fs.As, typ, err)
			}
			if !fits {
				if err == nil {
					t.Errorf("%s as %q to %s: want a problem", fs.Source, fs.As, typ)
					continue
				}
				ps := problemsOf(t, err)
				if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), `mapping.fields.x (line 60): source "`+fs.Source+`": `) {
					t.Errorf("%s as %q to %s: %v", fs.Source, fs.As, typ, err)
				}
			}
		}
	}
}

func TestBindProblemMessages(t *testing.T) {
	cases := []struct {
		name string
		fs   FieldSpec
		w    Widget
		want string
	}{
		{"text to number", FieldSpec{Target: "x", Source: "base_info.name"}, Widget{Name: "x", Label: "姓名", Type: "number"},
			`base_info.name is text, and form field "x" (姓名) is a number field; map a number source to it, or make it a text field`},
		{"synthetic text to number", FieldSpec{Target: "x", Source: "userid"}, Widget{Name: "x", Type: "number"},
			`userid is text, and form field "x" is a number field`},
		{"hours to text", FieldSpec{Target: "x", Source: "summary_info.regular_work_sec", As: AsHours}, Widget{Name: "x", Type: "text"},
			`form field "x" is a text field; as: hours writes number fields only`},
		{"none to datetime", FieldSpec{Target: "x", Source: "summary_info.work_days"}, Widget{Name: "x", Type: "datetime"},
			`form field "x" is a datetime field; without as:, a value fits text, textarea, number, combo, radiogroup fields only; a datetime field takes source: month_start with as: datetime`},
		{"enum to textarea", FieldSpec{Target: "x", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "a"}}, Widget{Name: "x", Type: "textarea"},
			`as: enum writes text, combo, radiogroup fields only`},
		{"string default to number", FieldSpec{Target: "x", Source: "summary_info.work_days", Default: "无", HasDefault: true}, Widget{Name: "x", Type: "number"},
			`default "无" is not a number, and form field "x" is a number field; give a number, such as default: 0`},
		{"number default to text", FieldSpec{Target: "x", Source: "base_info.name", Default: int64(0), HasDefault: true}, Widget{Name: "x", Type: "text"},
			`default 0 is a number, and form field "x" is a text field; quote it: default: "0"`},
		{"bool default", FieldSpec{Target: "x", Source: "base_info.name", Default: true, HasDefault: true}, Widget{Name: "x", Type: "text"},
			`default true does not fit form field "x", which is a text field`},
		{"bool default to datetime", FieldSpec{Target: "x", Source: "month_start", As: AsDatetime, Default: true, HasDefault: true}, Widget{Name: "x", Type: "datetime"},
			`default true does not fit form field "x", which is a datetime field`},
		{"two targets one field", FieldSpec{Target: "_widget_1758077118703", Source: "base_info.name"}, Widget{},
			`"name" and "_widget_1758077118703" both write form field "name" (name); keep one of them`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var ws []Widget
			if c.w.Name != "" {
				ws = append(ws, c.w)
			}
			_, err := bindWith(t, c.fs, ws...)
			ps := problemsOf(t, err)
			if len(ps) != 1 || !strings.Contains(ps[0].String(), c.want) {
				t.Errorf("got  %v\nwant %s", err, c.want)
			}
			if !strings.HasPrefix(ps[0].String(), "mapping.fields."+c.fs.Target+" (line 60): source ") {
				t.Errorf("problem does not name target, line and source: %s", ps[0])
			}
		})
	}
}

func TestBindKeyNotText(t *testing.T) {
	for _, typ := range []string{"textarea", "combo", "radiogroup"} {
		ws := defaultWidgets()
		ws[0].Type = typ
		m, _ := Compile(defaultSpec())
		_, err := m.Bind(ws)
		ps := problemsOf(t, err)
		want := `mapping.fields.sync_key (line 43): source "key": the key field "sync_key" must be a single-line text (text) field, and form field "sync_key" (sync_key) is a ` + typ + ` field`
		if len(ps) != 1 || !strings.HasPrefix(ps[0].String(), want) {
			t.Errorf("%s: got %v", typ, err)
		}
	}
	// A number key field fails the converter table and the key rule.
	ws := defaultWidgets()
	ws[0].Type = "number"
	m, _ := Compile(defaultSpec())
	_, err := m.Bind(ws)
	if ps := problemsOf(t, err); len(ps) != 2 {
		t.Errorf("got %v", err)
	}
}

func TestBindSubform(t *testing.T) {
	fs := FieldSpec{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
		{Target: "kind", Source: "name", Line: 61},
		{Target: "hours", Source: "duration", As: AsHours, Line: 62},
		{Target: "_widget_33", Source: "count", Line: 63},
	}}
	good := Widget{Name: "leave", WidgetName: "_widget_30", Type: "subform", Items: []Widget{
		{Name: "kind", WidgetName: "_widget_31", Type: "combo"},
		{Name: "hours", WidgetName: "_widget_32", Type: "number"},
		{Name: "cnt", WidgetName: "_widget_33", Type: "number"},
	}}
	mp, err := bindWith(t, fs, good)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(mp.Targets(), "leave") {
		t.Errorf("Targets = %v", mp.Targets())
	}

	bad := good
	bad.Items = []Widget{{Name: "kind", Type: "number"}, {Name: "hour", Label: "时长", Type: "number"}}
	_, err = bindWith(t, fs, bad)
	ps := problemsOf(t, err)
	want := []string{
		`mapping.fields.leave.fields.kind (line 61): source "name": name is text, and form field "kind" is a number field`,
		`mapping.fields.leave.fields.hours (line 62): source "duration": no field "hours" in subform "leave" (fields match by alias or _widget_ id); close names: "hour" (时长)`,
		`mapping.fields.leave.fields._widget_33 (line 63): source "count": no field "_widget_33" in subform "leave"`,
	}
	if len(ps) != len(want) {
		t.Fatalf("got %v", err)
	}
	for i, w := range want {
		if !strings.HasPrefix(ps[i].String(), w) {
			t.Errorf("problem %d:\ngot  %s\nwant %s", i, ps[i], w)
		}
	}
}

func TestFingerprint(t *testing.T) {
	base := bindDefault(t).Fingerprint()
	if again := bindDefault(t).Fingerprint(); again != base {
		t.Fatal("fingerprint is not stable")
	}
	// Field order in the config does not matter.
	s := defaultSpec()
	slices.Reverse(s.Fields)
	if bind(t, s, defaultWidgets()).Fingerprint() != base {
		t.Error("reordering fields changed the fingerprint")
	}
	change := func(name string, edit func(*Spec, []Widget) []Widget) {
		t.Helper()
		s := defaultSpec()
		ws := edit(&s, defaultWidgets())
		if bind(t, s, ws).Fingerprint() == base {
			t.Errorf("%s: fingerprint unchanged", name)
		}
	}
	change("source", func(s *Spec, ws []Widget) []Widget { s.Fields[4].Source = "base_info.name"; return ws })
	change("converter", func(s *Spec, ws []Widget) []Widget { s.Fields[12].As = AsHours; return ws })
	change("default", func(s *Spec, ws []Widget) []Widget {
		s.Fields[12].Default, s.Fields[12].HasDefault = int64(1), true
		return ws
	})
	change("widget type", func(s *Spec, ws []Widget) []Widget { ws[3].Type = "textarea"; return ws })
	change("added field", func(s *Spec, ws []Widget) []Widget {
		s.Fields = append(s.Fields, FieldSpec{Target: "uid", Source: "userid"})
		return append(ws, Widget{Name: "uid", Type: "text"})
	})
	enumSpec := func(table map[string]string) uint64 {
		s := defaultSpec()
		s.Fields[2].As, s.Fields[2].Enum = AsEnum, table
		ws := defaultWidgets()
		ws[2].Type = "combo"
		return bind(t, s, ws).Fingerprint()
	}
	if enumSpec(map[string]string{"1": "a"}) == enumSpec(map[string]string{"1": "b"}) {
		t.Error("enum label change kept the fingerprint")
	}
	if enumSpec(map[string]string{"1": "a", "3": "b"}) != enumSpec(map[string]string{"3": "b", "1": "a"}) {
		t.Error("enum table order changed the fingerprint")
	}
}

func TestDiffTargets(t *testing.T) {
	added, removed := DiffTargets([]string{"a", "b", "c", "c"}, []string{"d", "b", "a", "e", "e"})
	if !reflect.DeepEqual(added, []string{"d", "e"}) || !reflect.DeepEqual(removed, []string{"c"}) {
		t.Errorf("added %v removed %v", added, removed)
	}
	added, removed = DiffTargets(nil, nil)
	if added != nil || removed != nil {
		t.Errorf("empty: added %v removed %v", added, removed)
	}
	added, removed = DiffTargets([]string{"x"}, []string{"x"})
	if len(added)+len(removed) != 0 {
		t.Errorf("same: added %v removed %v", added, removed)
	}
}

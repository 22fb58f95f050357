package mapping

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestParseSource(t *testing.T) {
	cases := []struct {
		in   string
		want sourcePath
	}{
		{"key", sourcePath{{name: "key"}}},
		{"base_info.rule_info.groupid", sourcePath{{name: "base_info"}, {name: "rule_info"}, {name: "groupid"}}},
		{"exception_infos[exception=1].count", sourcePath{{name: "exception_infos", filter: true, field: "exception", value: "1"}, {name: "count"}}},
		{"sp_items[name=年假].duration", sourcePath{{name: "sp_items", filter: true, field: "name", value: "年假"}, {name: "duration"}}},
		{`sp_items[name=a\]b\=c\\d].count`, sourcePath{{name: "sp_items", filter: true, field: "name", value: `a]b=c\d`}, {name: "count"}}},
		{"sp_items[name=].count", sourcePath{{name: "sp_items", filter: true, field: "name", value: ""}, {name: "count"}}},
		{"sp_items[name=a.b[c].count", sourcePath{{name: "sp_items", filter: true, field: "name", value: "a.b[c"}, {name: "count"}}},
		{"sp_items", sourcePath{{name: "sp_items"}}},
	}
	for _, c := range cases {
		got, err := parseSource(c.in)
		if err != nil {
			t.Errorf("parseSource(%q): %v", c.in, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) {
			t.Errorf("parseSource(%q) = %#v, want %#v", c.in, got, c.want)
		}
		if back := got.String(); back != c.in {
			t.Errorf("String() = %q, want %q", back, c.in)
		}
	}
}

func TestParseSourceErrors(t *testing.T) {
	cases := map[string]string{
		"":                                  "empty source",
		".a":                                "empty name at byte 0",
		"a..b":                              "empty name at byte 2",
		"a.":                                "trailing dot",
		"a]":                                `unexpected ']'`,
		"a=b":                               `unexpected '='`,
		`a\b`:                               `unexpected '\\'`,
		"a[":                                "unclosed [",
		"a[x":                               "unclosed [",
		"a[x=1":                             "add the closing ]",
		"a[]":                               "no = before ]",
		"a[=1]":                             "empty field name",
		"a[x=1=2]":                          `second = at byte 5; write \= for an = inside the value`,
		`a[x=1\]`:                           "add the closing ]",
		`a[x=\q]`:                           `\ escapes only ], = and \`,
		`a[x=1\`:                            `lone \`,
		"a[x=1]b":                           `unexpected 'b' at byte 6; a filter is followed by a dot or the end`,
		"a[x=1][y=2]":                       `unexpected '['`,
		"a[x[=1]":                           "unexpected [ at byte 3 inside a filter",
		"exception_infos[exception=1]count": "a filter is followed by a dot",
	}
	for in, want := range cases {
		_, err := parseSource(in)
		if err == nil {
			t.Errorf("parseSource(%q): want an error", in)
			continue
		}
		if !strings.Contains(err.Error(), want) {
			t.Errorf("parseSource(%q) = %q, want it to contain %q", in, err, want)
		}
	}
}

// FuzzParseSource: parsing never panics, a parsed path writes back to text
// that parses to the same path, and compiling it against the schema never
// panics either.
func FuzzParseSource(f *testing.F) {
	for _, s := range []string{
		"key", "month_start", "base_info.rule_info.groupid", "exception_infos[exception=1].count",
		"sp_items[name=年假].duration", `sp_items[name=a\]b\=c\\d].count`, "a[x=1][y=2]", "a..b", "a[",
		"sp_items[type=1.0].duration", "base_info[x=1].name", "exception_infos.count",
	} {
		f.Add(s)
	}
	schema := reportSchema()
	f.Fuzz(func(t *testing.T, s string) {
		p, err := parseSource(s)
		if err != nil {
			if p != nil {
				t.Fatalf("error %v with a path", err)
			}
			return
		}
		if len(p) == 0 {
			t.Fatalf("%q parsed to an empty path", s)
		}
		for _, seg := range p {
			if seg.name == "" || strings.ContainsAny(seg.name, ".[]=\\") {
				t.Fatalf("%q: bad segment name %q", s, seg.name)
			}
			if seg.filter && seg.field == "" {
				t.Fatalf("%q: filter without a field", s)
			}
		}
		text := p.String()
		p2, err := parseSource(text)
		if err != nil {
			t.Fatalf("%q wrote back as %q, which fails: %v", s, text, err)
		}
		if !reflect.DeepEqual(p, p2) {
			t.Fatalf("%q → %q → %#v, want %#v", s, text, p2, p)
		}
		if p2.String() != text {
			t.Fatalf("writing is not stable: %q then %q", text, p2.String())
		}
		if src, err := compileSource(s, schema, "the report"); err == nil {
			if src.kind == 0 {
				t.Fatalf("%q compiled without a kind", s)
			}
			// A compiled source can always be looked up without panicking.
			_, _ = src.lookup(map[string]any{"base_info": "x", "sp_items": []any{1, map[string]any{"name": 2}}})
		}
	})
}

func TestCompileSourceKinds(t *testing.T) {
	schema := reportSchema()
	cases := map[string]kind{
		"key":                                  kindString,
		"month":                                kindString,
		"userid":                               kindString,
		"month_start":                          kindInstant,
		"base_info.name":                       kindString,
		"base_info.record_type":                kindNumber,
		"base_info.rule_info.groupname":        kindString,
		"summary_info.rest_days":               kindNumber,
		"exception_infos[exception=1].count":   kindNumber,
		"sp_items[name=年假].duration":           kindNumber,
		"sp_items[vacation_id=3].name":         kindString,
		"sp_items":                             kindArray,
		"exception_infos":                      kindArray,
		"overwork_info.holidays_over_as_money": kindNumber,
	}
	for in, want := range cases {
		src, err := compileSource(in, schema, "the report")
		if err != nil {
			t.Errorf("compileSource(%q): %v", in, err)
			continue
		}
		if src.kind != want {
			t.Errorf("compileSource(%q).kind = %v, want %v", in, src.kind, want)
		}
	}
}

func TestFilterMatching(t *testing.T) {
	report := decodeNumber(t, `{"sp_items":[
		{"type":1,"name":"事假","duration":7200},
		{"type":"1","name":"年假","duration":86400},
		{"type":1.0,"name":"a]b=c","duration":3},
		{"type":2,"name":"1","duration":4}
	],"exception_infos":[{"exception":"3","count":1},{"exception":1,"count":2},{"exception":1,"count":9}]}`)
	schema := reportSchema()
	cases := []struct {
		src  string
		want any // nil: missing
	}{
		{"sp_items[type=1].duration", json.Number("7200")}, // first match in order
		{"sp_items[type=1.0].duration", json.Number("7200")},
		{"sp_items[type=01].duration", json.Number("7200")},
		{"sp_items[name=年假].duration", json.Number("86400")},
		{`sp_items[name=a\]b\=c].duration`, json.Number("3")},
		{"sp_items[name=1].duration", json.Number("4")},   // text "1" matches the filter 1
		{"sp_items[name=1.0].duration", json.Number("4")}, // after number normalization
		{"sp_items[type=2].duration", json.Number("4")},
		{"sp_items[name=病假].duration", nil},
		{"sp_items[type=9].duration", nil},
		{"exception_infos[exception=3].count", json.Number("1")}, // "3" matches 3
		{"exception_infos[exception=1].count", json.Number("2")},
		{"exception_infos[exception=4].count", nil},
	}
	for _, c := range cases {
		src, err := compileSource(c.src, schema, "the report")
		if err != nil {
			t.Fatalf("%s: %v", c.src, err)
		}
		got, err := src.lookup(report)
		if err != nil {
			t.Errorf("%s: %v", c.src, err)
			continue
		}
		if got != c.want {
			t.Errorf("%s = %v, want %v", c.src, got, c.want)
		}
	}
	// []map[string]any, as hand-built reports may have it.
	src, _ := compileSource("sp_items[name=年假].duration", schema, "the report")
	got, err := src.lookup(map[string]any{"sp_items": []map[string]any{{"name": "事假", "duration": 1}, nil, {"name": "年假", "duration": 2}}})
	if err != nil || got != 2 {
		t.Errorf("typed list: got %v, %v", got, err)
	}
}

func TestLookupShapeErrors(t *testing.T) {
	schema := reportSchema()
	cases := []struct {
		src    string
		report map[string]any
		want   string
	}{
		{"base_info.name", map[string]any{"base_info": "x"}, `base_info is "x", not an object`},
		{"base_info.rule_info.groupid", map[string]any{"base_info": map[string]any{"rule_info": []any{}}}, "base_info.rule_info is a list, not an object"},
		{"sp_items[name=年假].duration", map[string]any{"sp_items": map[string]any{}}, "sp_items is an object, not a list"},
		{"sp_items[name=年假].duration", map[string]any{"sp_items": []any{"x"}}, `an element of sp_items is "x", not an object`},
	}
	for _, c := range cases {
		src, err := compileSource(c.src, schema, "the report")
		if err != nil {
			t.Fatal(err)
		}
		_, err = src.lookup(c.report)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: err = %v, want %q", c.src, err, c.want)
		}
	}
	// Absent and null are missing, not errors.
	src, _ := compileSource("base_info.rule_info.groupid", schema, "the report")
	for _, r := range []map[string]any{{}, {"base_info": nil}, {"base_info": map[string]any{"rule_info": nil}}, {"base_info": map[string]any{"rule_info": map[string]any{"groupid": nil}}}} {
		if v, err := src.lookup(r); v != nil || err != nil {
			t.Errorf("lookup in %v = %v, %v; want missing", r, v, err)
		}
	}
}

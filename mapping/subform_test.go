package mapping

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"testing"

	"checkin-sync/internal/month"
)

// withoutSubformSpec is richSpec without its subform fields: what Map
// writes with it is what WithoutSubforms must give for richSpec's payload.
func withoutSubformSpec() ([]FieldSpec, []Widget) {
	fs, ws := richSpec()
	var fs2 []FieldSpec
	for _, f := range fs {
		if f.As != AsSubform {
			fs2 = append(fs2, f)
		}
	}
	var ws2 []Widget
	for _, w := range ws {
		if w.Type != "subform" {
			ws2 = append(ws2, w)
		}
	}
	return fs2, ws2
}

// subformMember is the member of a subform field as Map writes it after a
// comma, read out of Data; the test's own spelling of the hashed encoding.
func subformMember(t *testing.T, data []byte, name string) []byte {
	t.Helper()
	var p map[string]json.RawMessage
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatal(err)
	}
	v, ok := p[name]
	if !ok {
		t.Fatalf("no %q in %s", name, data)
	}
	return []byte(`,"` + name + `":` + string(v))
}

func TestSubformHashDefinition(t *testing.T) {
	fs, ws := richSpec()
	mp := mapper(t, fs, ws)
	if !mp.HasSubforms() || bindDefault(t).HasSubforms() {
		t.Fatal("HasSubforms is wrong")
	}
	res := mapOne(t, mp, fixtureRows(t)[0])
	// exc sorts before leave.
	want := append([]byte(subformHashPrefix), subformMember(t, res.Data, "exc")...)
	want = append(want, subformMember(t, res.Data, "leave")...)
	if res.SubformHash != xxhashOf(want) {
		t.Errorf("SubformHash %x, want xxhash of %s", res.SubformHash, want)
	}
	if res.SubformHash == 0 || res.SubformHash == res.Hash {
		t.Errorf("SubformHash %x, Hash %x", res.SubformHash, res.Hash)
	}
	// No subform: 0.
	if got := mapOne(t, bindDefault(t), fixtureRows(t)[0]); got.SubformHash != 0 {
		t.Errorf("default mapping: SubformHash %x, want 0", got.SubformHash)
	}
}

func TestSubformHashContent(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "name", Source: "base_info.name"},
		{Target: "days", Source: "summary_info.work_days"},
		{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "n", Source: "name"},
			{Target: "h", Source: "duration", As: AsHours},
		}},
		{Target: "other", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}},
	}, []Widget{
		{Name: "name", Type: "text"}, {Name: "days", Type: "number"},
		{Name: "leave", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}, {Name: "h", Type: "number"}}},
		{Name: "other", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}}},
	})
	report := func(name string, days any, items string) map[string]any {
		return decodeNumber(t, `{"base_info":{"name":"`+name+`"},"summary_info":{"work_days":`+days.(string)+`},"sp_items":`+items+`}`)
	}
	rows := `[{"name":"年假","duration":3600},{"name":"外出","duration":"5400"}]`
	base := mapOne(t, mp, report("张三", "20", rows))

	// Other fields differ, and the same rows are spelled differently: the
	// payload changes, the subform hash does not.
	for name, r := range map[string]map[string]any{
		"other fields": report("李四", "21", rows),
		"number forms": report("张三", "20", `[{"name":"年假","duration":"3600"},null,{"name":"外出","duration":5400.0}]`),
		"userid case":  nil,
	} {
		var res Result
		var err error
		if r == nil {
			res, err = mp.Map(Input{UserID: "ZHANGSAN", Month: month.MustParse("2026-01"), Report: report("张三", "20", rows)})
		} else {
			res, err = mp.Map(Input{UserID: "ZhangSan", Month: june, Report: r})
		}
		if err != nil {
			t.Fatal(err)
		}
		if res.SubformHash != base.SubformHash {
			t.Errorf("%s: SubformHash %x, want %x", name, res.SubformHash, base.SubformHash)
		}
		if name == "other fields" && res.Hash == base.Hash {
			t.Errorf("%s: Hash should differ", name)
		}
	}

	// Different rows: a different hash.
	seen := map[uint64]string{base.SubformHash: "base"}
	for name, items := range map[string]string{
		"cell changed":   `[{"name":"年假","duration":7200},{"name":"外出","duration":"5400"}]`,
		"row removed":    `[{"name":"年假","duration":3600}]`,
		"row added":      `[{"name":"年假","duration":3600},{"name":"外出","duration":"5400"},{"name":"病假"}]`,
		"rows reordered": `[{"name":"外出","duration":"5400"},{"name":"年假","duration":3600}]`,
		"no rows":        `[]`,
	} {
		res := mapOne(t, mp, report("张三", "20", items))
		if prev, dup := seen[res.SubformHash]; dup {
			t.Errorf("%s: SubformHash %x equals that of %s", name, res.SubformHash, prev)
		}
		seen[res.SubformHash] = name
	}
	// A missing list is written as no rows, so it hashes as no rows.
	if a, b := mapOne(t, mp, report("张三", "20", `null`)), mapOne(t, mp, report("张三", "20", `[]`)); a.SubformHash != b.SubformHash {
		t.Errorf("missing list: SubformHash %x, no rows %x", a.SubformHash, b.SubformHash)
	}
	// The name is hashed with the value: the same rows in a subform of
	// another name hash differently.
	one := func(name string) uint64 {
		m := mapper(t, []FieldSpec{{Target: name, Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}}},
			[]Widget{{Name: name, Type: "subform", Items: []Widget{{Name: "n", Type: "text"}}}})
		return mapOne(t, m, report("张三", "20", rows)).SubformHash
	}
	if one("leave") == one("leave2") {
		t.Error("subforms of different names hash the same")
	}
}

// The subform hash of a read-back equals Map's when the rows are Map's,
// whatever else the record holds, and never when a subform cannot be
// compared.
func TestReadBackSubformHash(t *testing.T) {
	mp, want, fresh := readRow(t)
	got, err := mp.ReadBack(fresh())
	if err != nil {
		t.Fatal(err)
	}
	if !got.Exact || !got.SubformExact || got.SubformHash != want.SubformHash {
		t.Fatalf("exact %v/%v, SubformHash %x want %x", got.Exact, got.SubformExact, got.SubformHash, want.SubformHash)
	}
	firstRow := func(row map[string]any, sub string) map[string]any {
		return row[sub].([]any)[0].(map[string]any)
	}
	cases := []struct {
		name         string
		edit         func(row map[string]any)
		exact        bool // Exact
		subformExact bool
		same         bool // SubformHash == Map's
	}{
		{"text changed", func(row map[string]any) { row["name"] = "张三三" }, true, true, true},
		{"field absent", func(row map[string]any) { delete(row, "hours") }, false, true, true},
		{"null number", func(row map[string]any) { row["late"] = nil }, false, true, true},
		{"row ids changed", func(row map[string]any) { firstRow(row, "leave")["_id"] = "000000000000000000000000" }, true, true, true},
		{"subform cell changed", func(row map[string]any) { firstRow(row, "exc")["count"] = json.Number("99") }, true, true, false},
		{"subform row removed", func(row map[string]any) { row["leave"] = row["leave"].([]any)[1:] }, true, true, false},
		{"subform absent", func(row map[string]any) { delete(row, "leave") }, false, false, false},
		{"subform null", func(row map[string]any) { row["exc"] = nil }, false, false, false},
		{"subform not a list", func(row map[string]any) { row["leave"] = map[string]any{} }, false, false, false},
		{"subform row not an object", func(row map[string]any) { row["exc"] = append(row["exc"].([]any), "x") }, false, false, false},
		{"subform cell absent", func(row map[string]any) { delete(firstRow(row, "leave"), "h") }, false, false, false},
		{"subform cell of wrong kind", func(row map[string]any) { firstRow(row, "exc")["count"] = "2" }, false, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			row := fresh()
			c.edit(row)
			got, err := mp.ReadBack(row)
			if err != nil {
				t.Fatal(err)
			}
			if got.Exact != c.exact || got.SubformExact != c.subformExact || (got.SubformHash == want.SubformHash) != c.same {
				t.Errorf("Exact %v SubformExact %v same hash %v, want %v %v %v (%v)",
					got.Exact, got.SubformExact, got.SubformHash == want.SubformHash, c.exact, c.subformExact, c.same, got.Inexact)
			}
			if got.SubformHash == 0 {
				t.Error("SubformHash is 0")
			}
		})
	}

	// No subform: 0, and vacuously exact.
	mp = bindDefault(t)
	res := mapOne(t, mp, fixtureRows(t)[0])
	row := readShape(t, rand.New(rand.NewPCG(1, 1)), res.Data, true)
	got, _ = mp.ReadBack(row)
	if got.SubformHash != 0 || !got.SubformExact {
		t.Errorf("default mapping: SubformHash %x SubformExact %v", got.SubformHash, got.SubformExact)
	}
	delete(row, "name")
	if got, _ = mp.ReadBack(row); got.SubformHash != 0 || !got.SubformExact || got.Exact {
		t.Errorf("default mapping, inexact: SubformHash %x SubformExact %v Exact %v", got.SubformHash, got.SubformExact, got.Exact)
	}
}

// Over random reports: ReadBack of Map's output gives Map's SubformHash,
// and WithoutSubforms of Map's (and ReadBack's) Data is, byte for byte, what
// Map writes with the same mapping minus its subform fields.
func TestSubformRoundTrip(t *testing.T) {
	fs, ws := richSpec()
	mp := mapper(t, fs, ws)
	fs2, ws2 := withoutSubformSpec()
	plain := mapper(t, fs2, ws2)
	if plain.HasSubforms() {
		t.Fatal("the mapping without subforms has one")
	}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 5))
	reports := append([]map[string]any{}, fixtureRows(t)...)
	for range 1000 {
		reports = append(reports, genReport(r))
	}
	for i, report := range reports {
		in := Input{UserID: "ZhangSan", Month: june, Report: report}
		want, err := mp.Map(in)
		if err != nil {
			t.Fatal(err)
		}
		got, err := mp.ReadBack(readShape(t, r, want.Data, r.IntN(2) == 0))
		if err != nil {
			t.Fatal(err)
		}
		if !got.SubformExact || got.SubformHash != want.SubformHash {
			t.Fatalf("report %d (seed %d): SubformExact %v, SubformHash %x want %x", i, seed, got.SubformExact, got.SubformHash, want.SubformHash)
		}
		p, err := plain.Map(in)
		if err != nil {
			t.Fatal(err)
		}
		for _, data := range [][]byte{want.Data, got.Data} {
			out, err := mp.WithoutSubforms(data)
			if err != nil {
				t.Fatalf("report %d: WithoutSubforms(%s): %v", i, data, err)
			}
			if !bytes.Equal(out, p.Data) {
				t.Fatalf("report %d (seed %d):\ngot  %s\nwant %s", i, seed, out, p.Data)
			}
		}
	}
}

// The subform field may come first, in the middle or last in the sorted
// payload; the commas must come out right in each case.
func TestWithoutSubformsPositions(t *testing.T) {
	sub := func(target string) FieldSpec {
		return FieldSpec{Target: target, Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}}
	}
	subW := func(name string) Widget {
		return Widget{Name: name, Type: "subform", Items: []Widget{{Name: "n", Type: "text"}}}
	}
	text := FieldSpec{Target: "m_name", Source: "base_info.name"}
	textW := Widget{Name: "m_name", Type: "text"}
	report := decodeNumber(t, `{"base_info":{"name":"a,b}\"c"},"sp_items":[{"name":"x\"},{"},{"name":"[]"}]}`)
	plain := mapOne(t, mapper(t, []FieldSpec{text}, []Widget{textW}), report)
	for name, c := range map[string]struct {
		fs []FieldSpec
		ws []Widget
	}{
		"first":  {[]FieldSpec{sub("a_rows"), text}, []Widget{subW("a_rows"), textW}},
		"middle": {[]FieldSpec{sub("n_rows"), text}, []Widget{subW("n_rows"), textW}},
		"last":   {[]FieldSpec{sub("z_rows"), text}, []Widget{subW("z_rows"), textW}},
		"all":    {[]FieldSpec{sub("a_rows"), text, sub("n_rows"), sub("z_rows")}, []Widget{subW("a_rows"), textW, subW("n_rows"), subW("z_rows")}},
		// A field whose name begins like a subform's is kept.
		"prefix": {[]FieldSpec{sub("m"), text}, []Widget{subW("m"), textW}},
	} {
		mp := mapper(t, c.fs, c.ws)
		res := mapOne(t, mp, report)
		out, err := mp.WithoutSubforms(res.Data)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !bytes.Equal(out, plain.Data) {
			t.Errorf("%s:\ngot  %s\nwant %s", name, out, plain.Data)
		}
		if &out[0] == &res.Data[0] {
			t.Errorf("%s: the result shares Data's memory", name)
		}
	}
}

func TestWithoutSubformsNoSubform(t *testing.T) {
	mp := bindDefault(t)
	res := mapOne(t, mp, fixtureRows(t)[0])
	out, err := mp.WithoutSubforms(res.Data)
	if err != nil {
		t.Fatal(err)
	}
	if len(out) != len(res.Data) || &out[0] != &res.Data[0] {
		t.Errorf("not a no-op: %s", out)
	}
}

func TestWithoutSubformsRejects(t *testing.T) {
	fs, ws := richSpec()
	mp := mapper(t, fs, ws)
	for _, in := range []string{
		``, `[]`, `"x"`, `{"a":}`, `{"leave":{"value":[]}`, `{"a":1} {}`, `{ "a":1}`, `{"a":1,}`, `null`,
	} {
		if out, err := mp.WithoutSubforms([]byte(in)); err == nil {
			t.Errorf("%q: accepted, gave %s", in, out)
		}
	}
	for in, want := range map[string]string{
		`{}`: `{}`,
		`{"leave":{"value":[{"n":{"value":"}"}}]}}`:                           `{}`,
		`{"a":{"value":[1,{"b":"]"}]},"exc":{"value":[]},"z":{"value":true}}`: `{"a":{"value":[1,{"b":"]"}]},"z":{"value":true}}`,
		`{"a\"":{"value":"\\"},"leave":{"value":null}}`:                       `{"a\"":{"value":"\\"}}`,
	} {
		out, err := mp.WithoutSubforms([]byte(in))
		if err != nil || string(out) != want {
			t.Errorf("%s: %s, %v; want %s", in, out, err, want)
		}
	}
}

// FuzzWithoutSubforms: any input either is refused or gives valid JSON
// with no subform member left; it never panics.
func FuzzWithoutSubforms(f *testing.F) {
	fs, ws := richSpec()
	mp := mapper(f, fs, ws)
	res, err := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(f)[0]})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(res.Data)
	f.Add([]byte(`{"a":{"value":[1,{"b":"]"}]},"exc":{"value":[]},"z":{"value":true}}`))
	f.Add([]byte(`{"leave":1}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		out, err := mp.WithoutSubforms(data)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("%s gave invalid JSON %s", data, out)
		}
		// Removing again changes nothing: no subform member is left (keys
		// are compared as written; canonical payloads escape nothing in a
		// field name that a JSON decoder would read differently).
		again, err := mp.WithoutSubforms(out)
		if err != nil || !bytes.Equal(again, out) {
			t.Fatalf("%s gave %s, then %s, %v", data, out, again, err)
		}
	})
}

package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"checkin-sync/internal/month"
)

// richSpec maps every converter to every widget type it fits, with filters,
// defaults, a field without an alias and two subforms.
func richSpec() ([]FieldSpec, []Widget) {
	fs := []FieldSpec{
		{Target: "month", Source: "month_start", As: AsDatetime},
		{Target: "uid", Source: "userid"},
		{Target: "ym", Source: "month"},
		{Target: "name", Source: "base_info.name"},
		{Target: "name_ex", Source: "base_info.name_ex"},
		{Target: "dept", Source: "base_info.departs_name"},
		{Target: "rule", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "固定上下班", "3": "按班次上下班"}},
		{Target: "groupid", Source: "base_info.rule_info.groupid"},
		{Target: "groupname", Source: "base_info.rule_info.groupname", Default: "无", HasDefault: true},
		{Target: "work_days", Source: "summary_info.work_days"},
		{Target: "work_days_text", Source: "summary_info.work_days", As: AsText},
		{Target: "hours", Source: "summary_info.regular_work_sec", As: AsHours},
		{Target: "days", Source: "summary_info.standard_work_sec", As: AsDays},
		{Target: "late", Source: "exception_infos[exception=1].count"},
		{Target: "late_sec", Source: "exception_infos[exception=1].duration", As: AsNumber},
		{Target: "annual", Source: "sp_items[name=年假].duration", As: AsDays, Default: int64(-1), HasDefault: true},
		{Target: "_widget_1700000000099", Source: "overwork_info.workday_over_sec"},
		{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "n", Source: "name"},
			{Target: "h", Source: "duration", As: AsHours},
			{Target: "kind", Source: "type", As: AsText},
			{Target: "vac", Source: "vacation_id"},
			{Target: "when", Source: "month_start", As: AsDatetime},
			{Target: "unit", Source: "time_type", As: AsEnum, Enum: map[string]string{"0": "天", "1": "小时"}},
			{Target: "cnt", Source: "count", Default: int64(0), HasDefault: true},
		}},
		{Target: "exc", Source: "exception_infos", As: AsSubform, Fields: []FieldSpec{
			{Target: "what", Source: "exception", As: AsEnum, Enum: map[string]string{"1": "迟到", "2": "早退"}},
			{Target: "count", Source: "count"},
		}},
	}
	ws := []Widget{
		{Name: "month", Type: "datetime"}, {Name: "uid", Type: "text"}, {Name: "ym", Type: "combo"},
		{Name: "name", Type: "text"}, {Name: "name_ex", Type: "textarea"}, {Name: "dept", Type: "combo"},
		{Name: "rule", Type: "radiogroup"}, {Name: "groupid", Type: "text"}, {Name: "groupname", Type: "radiogroup"},
		{Name: "work_days", Type: "number"}, {Name: "work_days_text", Type: "textarea"}, {Name: "hours", Type: "number"},
		{Name: "days", Type: "number"}, {Name: "late", Type: "number"}, {Name: "late_sec", Type: "number"},
		{Name: "annual", Type: "number"}, {WidgetName: "_widget_1700000000099", Type: "number"},
		{Name: "leave", Type: "subform", Items: []Widget{
			{Name: "n", Type: "text"}, {Name: "h", Type: "number"}, {Name: "kind", Type: "combo"}, {Name: "vac", Type: "number"},
			{Name: "when", Type: "datetime"}, {Name: "unit", Type: "radiogroup"}, {Name: "cnt", Type: "number"},
		}},
		{Name: "exc", Type: "subform", Items: []Widget{{Name: "what", Type: "combo"}, {Name: "count", Type: "number"}}},
	}
	return fs, ws
}

// readShape turns a Map payload into the record data/list would return
// for it: values unwrapped from {"value": v}, subform rows flat with their
// own _id, the system fields added, and numbers and datetimes in another
// of the spellings Jiandaoyun may use for the same value. The result is
// re-decoded from JSON, with UseNumber or without, as a client would.
func readShape(t testing.TB, r *rand.Rand, data []byte, useNumber bool) map[string]any {
	t.Helper()
	var wrapped map[string]map[string]any
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&wrapped); err != nil {
		t.Fatalf("payload %s: %v", data, err)
	}
	row := map[string]any{
		"_id": randomID(r), "appId": "6399c24287cae90008d24e0b", "entryId": "64093d8613931a00085bb2f4",
	}
	if r.IntN(2) == 0 { // fields not asked for may still come
		row["creator"] = map[string]any{"name": "API", "username": "api", "status": 1, "type": 0}
		row["updateTime"] = "2026-10-02T01:02:03.000Z"
	}
	for name, w := range wrapped {
		row[name] = readValue(r, w["value"])
	}
	raw, err := json.Marshal(row)
	if err != nil {
		t.Fatal(err)
	}
	var out map[string]any
	d = json.NewDecoder(bytes.NewReader(raw))
	if useNumber {
		d.UseNumber()
	}
	if err := d.Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func readValue(r *rand.Rand, v any) any {
	switch x := v.(type) {
	case []any: // subform rows
		rows := make([]any, len(x))
		for i, e := range x {
			flat := map[string]any{"_id": randomID(r)}
			for k, w := range e.(map[string]any) {
				flat[k] = readValue(r, w.(map[string]any)["value"])
			}
			rows[i] = flat
		}
		return rows
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x
		}
		switch r.IntN(4) {
		case 0:
			return json.Number(strconv.FormatFloat(f, 'e', -1, 64))
		case 1:
			if f == float64(int64(f)) {
				return json.Number(string(x) + ".0")
			}
		}
		return f
	case string:
		t, err := time.Parse(time.RFC3339Nano, x)
		if err != nil || !strings.HasSuffix(x, ".000Z") {
			return x
		}
		switch r.IntN(3) {
		case 0:
			return t.In(time.FixedZone("CST", 8*3600)).Format(time.RFC3339Nano)
		case 1:
			return t.Format(time.RFC3339)
		}
		return x
	}
	return v
}

func randomID(r *rand.Rand) string {
	return fmt.Sprintf("%024x", r.Uint64())
}

// genReport builds a month report in WeCom's shape with fields left out,
// nulls, numbers in each way WeCom and the decoders spell them, odd text,
// and lists with and without the filtered elements.
func genReport(r *rand.Rand) map[string]any {
	texts := []string{"张三", "Li Si", "", "a\"b\\c", "line\nbreak", "\u2028", "年假", "示例科技/研发中心", "007", "🙂"}
	text := func() any {
		if r.IntN(8) == 0 {
			return genNumber(r) // text fields sometimes hold numbers
		}
		return texts[r.IntN(len(texts))]
	}
	obj := func(fields map[string]func() any) any {
		switch r.IntN(10) {
		case 0:
			return nil
		case 1:
			return map[string]any{}
		}
		o := map[string]any{}
		for k, gen := range fields {
			switch r.IntN(8) {
			case 0: // left out
			case 1:
				o[k] = nil
			default:
				o[k] = gen()
			}
		}
		return o
	}
	num := func() any { return genNumber(r) }
	list := func(elem func() any) any {
		switch r.IntN(6) {
		case 0:
			return nil
		case 1:
			return []any{}
		}
		out := make([]any, r.IntN(5))
		for i := range out {
			if r.IntN(12) == 0 {
				continue // a null element
			}
			out[i] = elem()
		}
		return out
	}
	small := func(n int) func() any {
		return func() any {
			v := 1 + r.IntN(n)
			switch r.IntN(3) {
			case 0:
				return strconv.Itoa(v)
			case 1:
				return float64(v)
			}
			return json.Number(strconv.Itoa(v))
		}
	}
	report := map[string]any{
		"base_info": obj(map[string]func() any{
			"record_type": small(3), "name": text, "name_ex": text, "departs_name": text, "acctid": text,
			"rule_info": func() any { return obj(map[string]func() any{"groupid": num, "groupname": text}) },
		}),
		"summary_info": obj(map[string]func() any{
			"work_days": num, "regular_days": num, "except_days": num, "regular_work_sec": num, "standard_work_sec": num,
		}),
		"exception_infos": list(func() any {
			return obj(map[string]func() any{"exception": small(4), "count": num, "duration": num})
		}),
		"sp_items": list(func() any {
			return obj(map[string]func() any{
				"type": small(4), "vacation_id": small(5), "count": num, "duration": num, "time_type": small(2),
				"name": func() any { return []string{"年假", "事假", "外出"}[r.IntN(3)] },
			})
		}),
		"overwork_info": obj(map[string]func() any{"workday_over_sec": num}),
	}
	for k, v := range report {
		if r.IntN(10) == 0 {
			delete(report, k)
		} else if v == nil {
			report[k] = nil
		}
	}
	return report
}

func genNumber(r *rand.Rand) any {
	ints := []int64{0, 1, 2, 17, 22, 3600, 5400, 28800, 86400, 546300, 576000, 999999999}
	n := ints[r.IntN(len(ints))]
	switch r.IntN(8) {
	case 0:
		return strconv.FormatInt(n, 10)
	case 1:
		return float64(n)
	case 2:
		return json.Number(strconv.FormatInt(n, 10) + ".0")
	case 3:
		return json.Number(strconv.FormatInt(n, 10) + ".25")
	case 4:
		return 1.5
	case 5:
		return "0.50"
	case 6:
		return -n
	}
	return json.Number(strconv.FormatInt(n, 10))
}

// The property behind adoption: a record holding what Map wrote reads
// back to Map's bytes and hash, exactly, for many generated reports, in
// whichever spelling Jiandaoyun returns numbers and instants.
func TestReadBackRoundTrip(t *testing.T) {
	fs, ws := richSpec()
	mps := map[string]*Mapper{"rich": mapper(t, fs, ws), "default": bindDefault(t)}
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 3))
	userids := []string{"ZhangSan", "lisi", "WANG.wu@corp", "x_1-2"}
	months := []month.Month{june, month.MustParse("2026-01"), month.MustParse("2024-02")}
	reports := append([]map[string]any{}, fixtureRows(t)...)
	for range 1500 {
		reports = append(reports, genReport(r))
	}
	for name, mp := range mps {
		for i, report := range reports {
			in := Input{UserID: userids[r.IntN(len(userids))], Month: months[r.IntN(len(months))], Report: report}
			want, err := mp.Map(in)
			if err != nil {
				t.Fatalf("%s report %d: Map: %v", name, i, err)
			}
			row := readShape(t, r, want.Data, r.IntN(2) == 0)
			got, err := mp.ReadBack(row)
			if err != nil {
				t.Fatalf("%s report %d: ReadBack: %v", name, i, err)
			}
			if !got.Exact || got.Hash != want.Hash || !bytes.Equal(got.Data, want.Data) {
				t.Fatalf("%s report %d (seed %d): exact %v %v, hash %x want %x\nread %v\ngot  %s\nwant %s",
					name, i, seed, got.Exact, got.Inexact, got.Hash, want.Hash, row, got.Data, want.Data)
			}
		}
	}
}

// readRow maps the fixture's first row with the rich mapping and returns
// Map's result and the record as Jiandaoyun would return it.
func readRow(t *testing.T) (*Mapper, Result, func() map[string]any) {
	t.Helper()
	fs, ws := richSpec()
	mp := mapper(t, fs, ws)
	report := fixtureRows(t)[0]
	want, err := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: report})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(want.Data), `"leave":{"value":[{`) || !strings.Contains(string(want.Data), `"exc":{"value":[{`) {
		t.Fatalf("the fixture row should fill both subforms: %s", want.Data)
	}
	fresh := func() map[string]any {
		return readShape(t, rand.New(rand.NewPCG(1, 1)), want.Data, true)
	}
	return mp, want, fresh
}

// What must read back as different, exactly (a real change) or inexactly
// (cannot be compared), and never as equal.
func TestReadBackDiffers(t *testing.T) {
	mp, want, fresh := readRow(t)
	firstRow := func(row map[string]any, sub string) map[string]any {
		return row[sub].([]any)[0].(map[string]any)
	}
	cases := []struct {
		name    string
		edit    func(row map[string]any)
		exact   bool
		inexact []string
	}{
		{"text changed", func(row map[string]any) { row["name"] = "张三三" }, true, nil},
		{"number changed", func(row map[string]any) { row["work_days"] = json.Number("21") }, true, nil},
		{"key in another case", func(row map[string]any) { row["sync_key"] = "ZhangSan|2025-06" }, true, nil},
		{"number text differs in form", func(row map[string]any) { row["work_days_text"] = "20.0" }, true, nil},
		{"datetime changed", func(row map[string]any) { row["month"] = "2025-06-30T16:00:00.000Z" }, true, nil},
		{"subform row removed", func(row map[string]any) { row["leave"] = row["leave"].([]any)[1:] }, true, nil},
		{"subform rows reordered", func(row map[string]any) {
			l := row["leave"].([]any)
			if len(l) > 1 {
				l[0], l[1] = l[1], l[0]
			} else {
				l = append(l, l[0])
			}
			row["leave"] = l
		}, true, nil},
		{"subform cell changed", func(row map[string]any) { firstRow(row, "exc")["count"] = json.Number("99") }, true, nil},
		{"empty text cleared to a value", func(row map[string]any) { row["name"] = "" }, true, nil},

		{"field absent", func(row map[string]any) { delete(row, "hours") }, false, []string{"hours"}},
		{"key absent", func(row map[string]any) { delete(row, "sync_key") }, false, []string{"sync_key"}},
		{"null number", func(row map[string]any) { row["late"] = nil }, false, []string{"late"}},
		{"null text", func(row map[string]any) { row["name_ex"] = nil }, false, []string{"name_ex"}},
		{"number as text", func(row map[string]any) { row["work_days"] = "20" }, false, []string{"work_days"}},
		{"text as number", func(row map[string]any) { row["groupid"] = json.Number("3") }, false, []string{"groupid"}},
		{"datetime unparsable", func(row map[string]any) { row["month"] = "2025-06-01 00:00:00" }, false, []string{"month"}},
		{"datetime finer than ms", func(row map[string]any) { row["month"] = "2025-05-31T16:00:00.0001Z" }, false, []string{"month"}},
		{"datetime as epoch ms", func(row map[string]any) { row["month"] = json.Number("1748707200000") }, false, []string{"month"}},
		{"subform not a list", func(row map[string]any) { row["leave"] = map[string]any{} }, false, []string{"leave"}},
		{"subform row not an object", func(row map[string]any) { row["exc"] = append(row["exc"].([]any), "x") }, false, []string{"exc"}},
		{"subform cell absent", func(row map[string]any) { delete(firstRow(row, "leave"), "h") }, false, []string{"leave.h"}},
		{"subform cell of wrong kind", func(row map[string]any) { firstRow(row, "exc")["count"] = "2" }, false, []string{"exc.count"}},
		{"number out of range", func(row map[string]any) { row["days"] = json.Number("1e999") }, false, []string{"days"}},
		{"bool in text", func(row map[string]any) { row["dept"] = true }, false, []string{"dept"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			row := fresh()
			if same, _ := mp.ReadBack(row); !same.Exact || same.Hash != want.Hash {
				t.Fatalf("unedited row does not read back equal: %s", same.Data)
			}
			c.edit(row)
			got, err := mp.ReadBack(row)
			if err != nil {
				t.Fatal(err)
			}
			if got.Hash == want.Hash || bytes.Equal(got.Data, want.Data) {
				t.Errorf("reads back equal to Map's payload: %s", got.Data)
			}
			if got.Exact != c.exact || !reflect.DeepEqual(got.Inexact, c.inexact) {
				t.Errorf("Exact %v Inexact %v, want %v %v", got.Exact, got.Inexact, c.exact, c.inexact)
			}
			if !json.Valid(got.Data) {
				t.Errorf("Data is not valid JSON: %s", got.Data)
			}
			if !got.Exact && got.Hash == xxhashOf(append([]byte(hashPrefix), got.Data...)) {
				t.Error("an inexact read-back must not hash as Map would")
			}
		})
	}

	// Unmapped fields and subform columns are ignored; so is the row order
	// of system fields.
	row := fresh()
	row["notes"] = "typed by hand"
	firstRow(row, "leave")["extra"] = "x"
	if got, _ := mp.ReadBack(row); !got.Exact || got.Hash != want.Hash {
		t.Errorf("unmapped fields changed the read-back: %s", got.Data)
	}
	if _, err := mp.ReadBack(nil); err == nil {
		t.Error("ReadBack(nil): want an error")
	}
}

// The widget types no converter writes yet read back by the rules of the
// reference: members by username, option lists as they are; a type with no
// rule is inexact.
func TestReadBackWidgetTypes(t *testing.T) {
	field := func(name, typ string) *bfield {
		return &bfield{name: name, wtype: typ, src: &source{text: "x"}, prefix: append(appendString([]byte{','}, name), `:{"value":`...), parent: -1}
	}
	mp := &Mapper{keyField: "a_key", fields: []*bfield{
		field("a_key", "text"), field("b_user", "user"), field("c_users", "usergroup"),
		field("d_checks", "checkboxgroup"), field("e_combo", "combocheck"),
	}}
	mp.pool.New = func() any { b := make([]byte, 0, 64); return &b }
	member := func(u string) any {
		return map[string]any{"name": "张三", "username": u, "status": json.Number("1"), "type": json.Number("0"), "departments": []any{json.Number("1")}, "integrate_id": u}
	}
	row := map[string]any{
		"_id": "1", "a_key": "zhangsan|2025-06",
		"b_user": member("zhangsan"), "c_users": []any{member("a"), member("b")},
		"d_checks": []any{"选项1", "选项2"}, "e_combo": []any{},
	}
	got, err := mp.ReadBack(row)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"a_key":{"value":"zhangsan|2025-06"},"b_user":{"value":"zhangsan"},"c_users":{"value":["a","b"]},"d_checks":{"value":["选项1","选项2"]},"e_combo":{"value":[]}}`
	if !got.Exact || string(got.Data) != want {
		t.Errorf("got %v %s\nwant %s", got.Exact, got.Data, want)
	}
	if got.Hash != xxhashOf(append([]byte(hashPrefix), want...)) {
		t.Error("hash is not Map's hash of the data")
	}
	for name, v := range map[string]any{
		"b_user":   "zhangsan", // a bare username is not the read shape
		"c_users":  []any{member("a"), "b"},
		"d_checks": []any{"a", json.Number("1")},
		"e_combo":  "a",
	} {
		bad := maps(row)
		bad[name] = v
		got, _ := mp.ReadBack(bad)
		if got.Exact || !slices.Equal(got.Inexact, []string{name}) {
			t.Errorf("%s = %v: Exact %v %v, want inexact", name, v, got.Exact, got.Inexact)
		}
	}
	for _, typ := range []string{"dept", "address", "phone", "image", ""} {
		mp := &Mapper{keyField: "a_key", fields: []*bfield{field("a_key", "text"), field("z", typ)}}
		mp.pool.New = func() any { b := make([]byte, 0, 64); return &b }
		got, _ := mp.ReadBack(map[string]any{"a_key": "k", "z": map[string]any{"dept_no": json.Number("12")}})
		if got.Exact || string(got.Data) != `{"a_key":{"value":"k"},"z":{"value":{"dept_no":12}}}` {
			t.Errorf("type %q: Exact %v %s, want inexact", typ, got.Exact, got.Data)
		}
	}
}

func maps(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func TestReadFields(t *testing.T) {
	mp := bindDefault(t)
	got := mp.ReadFields()
	if got[0] != "sync_key" {
		t.Errorf("ReadFields()[0] = %q, want the key field", got[0])
	}
	rest := slices.Clone(got)
	slices.Sort(rest)
	if !slices.Equal(rest, mp.Targets()) {
		t.Errorf("ReadFields = %v, want the key and every target %v", got, mp.Targets())
	}
	if !slices.IsSorted(got[1:]) {
		t.Errorf("ReadFields after the key are not sorted: %v", got)
	}
	fs, ws := richSpec()
	rich := mapper(t, fs, ws).ReadFields()
	if !slices.Contains(rich, "_widget_1700000000099") || !slices.Contains(rich, "leave") || slices.Contains(rich, "n") {
		t.Errorf("ReadFields = %v: want request names, subforms whole", rich)
	}
	got[0] = "changed"
	if mp.ReadFields()[0] != "sync_key" {
		t.Error("ReadFields must return a copy")
	}
}

// ReadBack shares the mapper's buffer pool with Map.
func TestReadBackConcurrent(t *testing.T) {
	mp, want, fresh := readRow(t)
	rows := make([]map[string]any, 8)
	for i := range rows {
		rows[i] = fresh()
	}
	other := Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(t)[1]}
	var wg sync.WaitGroup
	errs := make(chan string, len(rows))
	for _, row := range rows {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 200 {
				got, err := mp.ReadBack(row)
				if err != nil || got.Hash != want.Hash {
					errs <- fmt.Sprintf("%v %s", err, got.Data)
					return
				}
				if _, err := mp.Map(other); err != nil {
					errs <- err.Error()
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}

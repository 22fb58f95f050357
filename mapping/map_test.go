package mapping

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/cespare/xxhash/v2"

	"checkin-sync/internal/month"
)

func xxhashOf(b []byte) uint64 { return xxhash.Sum64(b) }

// mapper compiles and binds fields (plus the key field) to widgets (plus
// the key widget).
func mapper(t testing.TB, fields []FieldSpec, widgets []Widget) *Mapper {
	t.Helper()
	s := Spec{Key: "sync_key", Fields: append([]FieldSpec{{Target: "sync_key", Source: "key", Line: 1}}, fields...)}
	return bind(t, s, append([]Widget{{Name: "sync_key", Type: "text"}}, widgets...))
}

func mapOne(t *testing.T, mp *Mapper, report map[string]any) Result {
	t.Helper()
	res, err := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: report})
	if err != nil {
		t.Fatalf("Map: %v", err)
	}
	if !json.Valid(res.Data) {
		t.Fatalf("Data is not valid JSON: %s", res.Data)
	}
	return res
}

func TestMapSynthetic(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "m", Source: "month"},
		{Target: "start", Source: "month_start", As: AsDatetime},
		{Target: "uid", Source: "userid"},
		{Target: "k2", Source: "key", As: AsText},
	}, []Widget{{Name: "m", Type: "text"}, {Name: "start", Type: "datetime"}, {Name: "uid", Type: "text"}, {Name: "k2", Type: "textarea"}})
	for _, c := range []struct {
		mo    string
		start string
	}{
		{"2026-10", "2026-09-30T16:00:00.000Z"},
		{"2025-06", "2025-05-31T16:00:00.000Z"},
		{"2026-01", "2025-12-31T16:00:00.000Z"},
		{"2024-03", "2024-02-29T16:00:00.000Z"},
	} {
		res, err := mp.Map(Input{UserID: `a"b`, Month: month.MustParse(c.mo), Report: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`{"k2":{"value":"a\"b|%[1]s"},"m":{"value":"%[1]s"},"start":{"value":"%[2]s"},"sync_key":{"value":"a\"b|%[1]s"},"uid":{"value":"a\"b"}}`, c.mo, c.start)
		if string(res.Data) != want {
			t.Errorf("%s:\ngot  %s\nwant %s", c.mo, res.Data, want)
		}
	}
}

func TestMapNumbersToText(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "a", Source: "summary_info.work_days"},
		{Target: "b", Source: "summary_info.regular_days", As: AsText},
		{Target: "c", Source: "summary_info.except_days"},
		{Target: "d", Source: "summary_info.rest_days", As: AsNumber},
		{Target: "e", Source: "base_info.name"},
		{Target: "f", Source: "base_info.name_ex"},
	}, []Widget{{Name: "a", Type: "text"}, {Name: "b", Type: "combo"}, {Name: "c", Type: "number"}, {Name: "d", Type: "number"}, {Name: "e", Type: "radiogroup"}, {Name: "f", Type: "textarea"}})
	res := mapOne(t, mp, decodeNumber(t, `{"summary_info":{"work_days":20.50,"regular_days":"017","except_days":"3","rest_days":1e1},"base_info":{"name":"007","name_ex":12}}`))
	want := `{"a":{"value":"20.5"},"b":{"value":"17"},"c":{"value":3},"d":{"value":10},"e":{"value":"007"},"f":{"value":"12"},"sync_key":{"value":"zhangsan|2025-06"}}`
	if string(res.Data) != want {
		t.Errorf("got  %s\nwant %s", res.Data, want)
	}
}

func TestMapHoursDays(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "h", Source: "summary_info.regular_work_sec", As: AsHours},
		{Target: "d", Source: "summary_info.standard_work_sec", As: AsDays},
	}, []Widget{{Name: "h", Type: "number"}, {Name: "d", Type: "number"}})
	cases := []struct {
		sec  any
		h, d string
	}{
		{json.Number("5400"), "1.5", "0.06"},
		{json.Number("18"), "0.01", "0"}, // 0.005 h rounds up
		{"18", "0.01", "0"},
		{18.0, "0.01", "0"},
		{json.Number("-18"), "-0.01", "0"}, // ties away from zero
		{json.Number("-54"), "-0.02", "0"},
		{json.Number("432"), "0.12", "0.01"}, // 0.005 d rounds up
		{json.Number("-432"), "-0.12", "-0.01"},
		{json.Number("546300"), "151.75", "6.32"},
		{json.Number("576000"), "160", "6.67"},
		{json.Number("0"), "0", "0"},
		{json.Number("86400"), "24", "1"},
	}
	for _, c := range cases {
		res := mapOne(t, mp, map[string]any{"summary_info": map[string]any{"regular_work_sec": c.sec, "standard_work_sec": c.sec}})
		want := fmt.Sprintf(`{"d":{"value":%s},"h":{"value":%s},"sync_key":{"value":"zhangsan|2025-06"}}`, c.d, c.h)
		if string(res.Data) != want {
			t.Errorf("%v s:\ngot  %s\nwant %s", c.sec, res.Data, want)
		}
	}
}

// A missing source: the widget type's empty value (number → 0, text,
// textarea, combo and radiogroup → "", subform → []), so every mapped field
// is in every payload; a default is written as given, never through the
// converter.
func TestMapMissing(t *testing.T) {
	fields := []FieldSpec{
		{Target: "num", Source: "overwork_info.holidays_over_sec"},
		{Target: "hours", Source: "overwork_info.restdays_over_sec", As: AsHours},
		{Target: "txt", Source: "base_info.name"},
		{Target: "area", Source: "base_info.name_ex"},
		{Target: "combo", Source: "base_info.departs_name"},
		{Target: "enum", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "固定上下班"}},
		{Target: "enumtext", Source: "base_info.rule_info.groupid", As: AsEnum, Enum: map[string]string{"1": "a"}},
		{Target: "late", Source: "exception_infos[exception=1].count"},
		{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}},
		// defaults
		{Target: "dhours", Source: "summary_info.regular_work_sec", As: AsHours, Default: 1.5, HasDefault: true},
		{Target: "ddays", Source: "summary_info.standard_work_sec", As: AsDays, Default: int64(86400), HasDefault: true},
		{Target: "denum", Source: "base_info.acctid", As: AsEnum, Enum: map[string]string{"x": "y"}, Default: "未知", HasDefault: true},
		{Target: "dtext", Source: "base_info.rule_info.groupname", Default: "", HasDefault: true},
		{Target: "dcombo", Source: "sp_items[name=年假].name", Default: "无", HasDefault: true},
		{Target: "dnum", Source: "sp_items[name=年假].duration", Default: int64(-1), HasDefault: true},
	}
	widgets := []Widget{
		{Name: "num", Type: "number"}, {Name: "hours", Type: "number"}, {Name: "txt", Type: "text"}, {Name: "area", Type: "textarea"},
		{Name: "combo", Type: "combo"}, {Name: "enum", Type: "radiogroup"}, {Name: "enumtext", Type: "text"}, {Name: "late", Type: "number"},
		{Name: "leave", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}}},
		{Name: "dhours", Type: "number"}, {Name: "ddays", Type: "number"}, {Name: "denum", Type: "combo"},
		{Name: "dtext", Type: "text"}, {Name: "dcombo", Type: "combo"}, {Name: "dnum", Type: "number"},
	}
	mp := mapper(t, fields, widgets)
	for _, report := range []map[string]any{
		{},
		{"base_info": nil, "overwork_info": map[string]any{}, "sp_items": nil, "exception_infos": []any{}, "summary_info": map[string]any{"regular_work_sec": nil}},
		{"base_info": map[string]any{"rule_info": map[string]any{}}, "sp_items": nil, "exception_infos": []any{map[string]any{"exception": 2, "count": 5}}},
	} {
		res := mapOne(t, mp, report)
		want := `{"area":{"value":""},"combo":{"value":""},"dcombo":{"value":"无"},"ddays":{"value":86400},"denum":{"value":"未知"},"dhours":{"value":1.5},"dnum":{"value":-1},"dtext":{"value":""},"enum":{"value":""},"enumtext":{"value":""},"hours":{"value":0},"late":{"value":0},"leave":{"value":[]},"num":{"value":0},"sync_key":{"value":"zhangsan|2025-06"},"txt":{"value":""}}`
		if string(res.Data) != want {
			t.Errorf("report %v:\ngot  %s\nwant %s", report, res.Data, want)
		}
		if len(res.UnknownEnum) != 0 {
			t.Errorf("defaults must not count as enum misses: %v", res.UnknownEnum)
		}
	}
	// An empty list is not missing: the subform is written, with no rows.
	res := mapOne(t, mp, map[string]any{"sp_items": []any{}})
	if !strings.Contains(string(res.Data), `"leave":{"value":[]}`) {
		t.Errorf("empty list: %s", res.Data)
	}
}

func TestMapEnum(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "rule", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "固定上下班", "3": "按班次上下班", "07": "无规则"}},
		{Target: "who", Source: "base_info.name", As: AsEnum, Enum: map[string]string{"张三": "San"}},
		{Target: "rows", Source: "exception_infos", As: AsSubform, Fields: []FieldSpec{
			{Target: "kind", Source: "exception", As: AsEnum, Enum: map[string]string{"1": "迟到", "2": "早退"}},
		}},
	}, []Widget{{Name: "rule", Type: "combo"}, {Name: "who", Type: "text"}, {Name: "rows", Type: "subform", Items: []Widget{{Name: "kind", Type: "radiogroup"}}}})
	cases := []struct {
		code any
		want string
	}{
		{json.Number("1"), "固定上下班"},
		{"3", "按班次上下班"},
		{1.0, "固定上下班"},
		{json.Number("3.0"), "按班次上下班"},
		{7, "无规则"}, // the table's 07 is the number 7
	}
	for _, c := range cases {
		res := mapOne(t, mp, map[string]any{"base_info": map[string]any{"record_type": c.code, "name": "张三"}})
		p := payload(t, res.Data)
		if p["rule"] != c.want || p["who"] != "San" {
			t.Errorf("code %v: %s", c.code, res.Data)
		}
		if len(res.UnknownEnum) != 0 {
			t.Errorf("code %v: misses %v", c.code, res.UnknownEnum)
		}
	}
	res := mapOne(t, mp, decodeNumber(t, `{"base_info":{"record_type":5,"name":"李四"},"exception_infos":[{"exception":1},{"exception":6},{"exception":"6"},{"exception":2}]}`))
	p := payload(t, res.Data)
	if p["rule"] != "5" || p["who"] != "李四" {
		t.Errorf("unknown codes are written as text: %s", res.Data)
	}
	if !strings.Contains(string(res.Data), `"rows":{"value":[{"kind":{"value":"迟到"}},{"kind":{"value":"6"}},{"kind":{"value":"6"}},{"kind":{"value":"早退"}}]}`) {
		t.Errorf("subform enum: %s", res.Data)
	}
	want := []EnumMiss{{Target: "rows.kind", Code: "6"}, {Target: "rule", Code: "5"}, {Target: "who", Code: "李四"}}
	if !reflect.DeepEqual(res.UnknownEnum, want) {
		t.Errorf("UnknownEnum = %v, want %v (once per target and code)", res.UnknownEnum, want)
	}
}

func TestMapSubform(t *testing.T) {
	// The name field has no alias: the mapping and the request use its id.
	mp := mapper(t, []FieldSpec{
		{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "_widget_2", Source: "name"},
			{Target: "hours", Source: "duration", As: AsHours},
			{Target: "a_type", Source: "type", As: AsText},
			{Target: "vac", Source: "vacation_id"},
			{Target: "when", Source: "month_start", As: AsDatetime},
			{Target: "memo", Source: "name", As: AsEnum, Enum: map[string]string{"年假": "annual"}},
		}},
	}, []Widget{{Name: "leave", WidgetName: "_widget_1", Type: "subform", Items: []Widget{
		{Name: "_widget_2", WidgetName: "_widget_2", Type: "text", Label: "名称"},
		{Name: "hours", WidgetName: "_widget_3", Type: "number"},
		{Name: "a_type", WidgetName: "_widget_4", Type: "combo"},
		{Name: "vac", WidgetName: "_widget_5", Type: "number"},
		{Name: "when", WidgetName: "_widget_6", Type: "datetime"},
		{Name: "memo", WidgetName: "_widget_7", Type: "combo"},
	}}})
	res := mapOne(t, mp, decodeNumber(t, `{"sp_items":[
		{"type":1,"vacation_id":1,"duration":86400,"name":"年假"},
		null,
		{"type":"4","duration":"5400","name":"外出"},
		{"name":"空"}
	]}`))
	want := `{"leave":{"value":[` +
		`{"_widget_2":{"value":"年假"},"a_type":{"value":"1"},"hours":{"value":24},"memo":{"value":"annual"},"vac":{"value":1},"when":{"value":"2025-05-31T16:00:00.000Z"}},` +
		`{"_widget_2":{"value":"外出"},"a_type":{"value":"4"},"hours":{"value":1.5},"memo":{"value":"外出"},"vac":{"value":0},"when":{"value":"2025-05-31T16:00:00.000Z"}},` +
		`{"_widget_2":{"value":"空"},"a_type":{"value":""},"hours":{"value":0},"memo":{"value":"空"},"vac":{"value":0},"when":{"value":"2025-05-31T16:00:00.000Z"}}` +
		`]},"sync_key":{"value":"zhangsan|2025-06"}}`
	if string(res.Data) != want {
		t.Errorf("got  %s\nwant %s", res.Data, want)
	}
	// Typed rows as a hand-built report may have them.
	res2 := mapOne(t, mp, map[string]any{"sp_items": []map[string]any{
		{"type": 1, "vacation_id": 1, "duration": 86400, "name": "年假"},
		{"type": "4", "duration": "5400", "name": "外出"},
		{"name": "空"},
	}})
	if res2.Hash != res.Hash {
		t.Errorf("[]map rows hash differently:\n%s\n%s", res2.Data, res.Data)
	}
}

func TestMapFilters(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "late", Source: "exception_infos[exception=1].count"},
		{Target: "late_min", Source: "exception_infos[exception=1].duration", As: AsHours},
		{Target: "annual", Source: "sp_items[name=年假].duration", As: AsDays},
		{Target: "personal", Source: "sp_items[vacation_id=3].duration", As: AsHours},
		{Target: "trip", Source: "sp_items[type=3].count"},
	}, []Widget{{Name: "late", Type: "number"}, {Name: "late_min", Type: "number"}, {Name: "annual", Type: "number"}, {Name: "personal", Type: "number"}, {Name: "trip", Type: "number"}})
	rows := fixtureRows(t)
	want := []string{
		`{"annual":{"value":1},"late":{"value":2},"late_min":{"value":0.42},"personal":{"value":0},"sync_key":{"value":"zhangsan|2025-06"},"trip":{"value":0}}`,
		`{"annual":{"value":0},"late":{"value":0},"late_min":{"value":0},"personal":{"value":2},"sync_key":{"value":"zhangsan|2025-06"},"trip":{"value":0}}`,
		`{"annual":{"value":0},"late":{"value":0},"late_min":{"value":0},"personal":{"value":0},"sync_key":{"value":"zhangsan|2025-06"},"trip":{"value":0}}`,
	}
	for i, row := range rows {
		res := mapOne(t, mp, row)
		if string(res.Data) != want[i] {
			t.Errorf("row %d:\ngot  %s\nwant %s", i, res.Data, want[i])
		}
	}
}

func TestMapErrors(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "days", Source: "summary_info.work_days"},
		{Target: "name", Source: "base_info.name"},
		{Target: "late", Source: "exception_infos[exception=1].count"},
		{Target: "rows", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "n", Source: "name"}}},
	}, []Widget{{Name: "days", Type: "number"}, {Name: "name", Type: "text"}, {Name: "late", Type: "number"}, {Name: "rows", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}}}})
	cases := []struct {
		report map[string]any
		want   string
	}{
		{map[string]any{"summary_info": map[string]any{"work_days": "twenty"}}, `map ZhangSan|2025-06: field "days" from "summary_info.work_days": not a number`},
		{map[string]any{"summary_info": map[string]any{"work_days": true}}, `field "days" from "summary_info.work_days": true is not a number`},
		{map[string]any{"summary_info": map[string]any{"work_days": json.Number("1e500")}}, `number out of range`},
		{map[string]any{"summary_info": "x"}, `field "days" from "summary_info.work_days": summary_info is "x", not an object`},
		{map[string]any{"base_info": map[string]any{"name": map[string]any{}}}, `field "name" from "base_info.name": an object is not text`},
		{map[string]any{"exception_infos": "x"}, `field "late" from "exception_infos[exception=1].count": exception_infos is "x", not a list`},
		{map[string]any{"exception_infos": []any{1}}, `an element of exception_infos is 1, not an object`},
		{map[string]any{"sp_items": map[string]any{}}, `field "rows" from "sp_items": an object is not a list`},
		{map[string]any{"sp_items": []any{"x"}}, `field "rows" from "sp_items": element 0 is "x", not an object`},
		{map[string]any{"sp_items": []any{map[string]any{"name": []any{}}}}, `field "rows.n" from "name": a list is not text`},
	}
	for _, c := range cases {
		_, err := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: c.report})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v: err = %v, want %q", c.report, err, c.want)
		}
	}
	for _, in := range []Input{
		{Month: june, Report: map[string]any{}},
		{UserID: "a", Report: map[string]any{}},
		{UserID: "a", Month: month.Month{Year: 2025, Mon: 13}, Report: map[string]any{}},
		{UserID: "a", Month: june},
	} {
		if _, err := mp.Map(in); err == nil {
			t.Errorf("%+v: want an error", in)
		}
	}
	// The mapper still works after errors (buffers went back to the pool).
	mapOne(t, mp, map[string]any{})
}

// Data is the caller's to keep: a later Map does not write into it.
func TestMapDataIsACopy(t *testing.T) {
	mp := bindDefault(t)
	rows := fixtureRows(t)
	first, err := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: rows[0]})
	if err != nil {
		t.Fatal(err)
	}
	keep := string(first.Data)
	for i := 0; i < 50; i++ {
		if _, err := mp.Map(Input{UserID: "LiSi", Month: june, Report: rows[1]}); err != nil {
			t.Fatal(err)
		}
	}
	if string(first.Data) != keep {
		t.Fatal("Data changed under a later Map")
	}
}

// shuffled rebuilds a JSON-shaped value with every map's keys inserted in a
// random order and every number in a random one of its encodings.
func shuffled(r *rand.Rand, v any) any {
	switch x := v.(type) {
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		r.Shuffle(len(keys), func(i, j int) { keys[i], keys[j] = keys[j], keys[i] })
		out := make(map[string]any, len(x))
		for _, k := range keys {
			out[k] = shuffled(r, x[k])
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = shuffled(r, e)
		}
		return out
	case json.Number:
		n, err := x.Int64()
		if err != nil {
			return x
		}
		switch r.IntN(6) {
		case 0:
			return x
		case 1:
			return string(x) // WeCom's numeric strings
		case 2:
			return float64(n)
		case 3:
			return int(n)
		case 4:
			return int64(n)
		default:
			return json.Number(string(x) + ".0")
		}
	}
	return v
}

// The same content always gives the same bytes and hash, whatever the map
// insertion order or the way numbers were decoded.
func TestHashStableAcrossEncodings(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "name", Source: "base_info.name"},
		{Target: "days", Source: "summary_info.work_days"},
		{Target: "days_text", Source: "summary_info.work_days", As: AsText},
		{Target: "hours", Source: "summary_info.regular_work_sec", As: AsHours},
		{Target: "rule", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "固定上下班"}},
		{Target: "late", Source: "exception_infos[exception=1].count"},
		{Target: "annual", Source: "sp_items[name=年假].duration", As: AsDays},
		{Target: "items", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "n", Source: "name"}, {Target: "d", Source: "duration", As: AsHours}, {Target: "t", Source: "type"},
		}},
	}, []Widget{{Name: "name", Type: "text"}, {Name: "days", Type: "number"}, {Name: "days_text", Type: "text"},
		{Name: "hours", Type: "number"}, {Name: "rule", Type: "combo"}, {Name: "late", Type: "number"},
		{Name: "annual", Type: "number"},
		{Name: "items", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}, {Name: "d", Type: "number"}, {Name: "t", Type: "text"}}}})
	seed := rand.Uint64()
	t.Logf("seed %d", seed)
	r := rand.New(rand.NewPCG(seed, 1))
	for i, row := range fixtureRows(t) {
		in := Input{UserID: "u", Month: june, Report: row}
		ref, err := mp.Map(in)
		if err != nil {
			t.Fatal(err)
		}
		def, err := bindDefault(t).Map(in)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			in.Report = shuffled(r, row).(map[string]any)
			got, err := mp.Map(in)
			if err != nil {
				t.Fatalf("row %d: %v", i, err)
			}
			if got.Hash != ref.Hash || string(got.Data) != string(ref.Data) {
				t.Fatalf("row %d (seed %d): hash differs\n%s\n%s", i, seed, got.Data, ref.Data)
			}
			got, err = bindDefault(t).Map(in)
			if err != nil || got.Hash != def.Hash {
				t.Fatalf("row %d (seed %d): default mapping hash differs: %v", i, seed, err)
			}
		}
	}
}

// A change of content changes the hash, and the hash covers the version
// prefix, not only the data.
func TestHashChanges(t *testing.T) {
	mp := bindDefault(t)
	row := fixtureRows(t)[0]
	a, _ := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: row})
	b, _ := mp.Map(Input{UserID: "ZhangSan", Month: month.MustParse("2025-07"), Report: row})
	c, _ := mp.Map(Input{UserID: "LiSi", Month: june, Report: row})
	changed := shuffled(rand.New(rand.NewPCG(1, 2)), row).(map[string]any)
	changed["summary_info"].(map[string]any)["work_days"] = 21
	d, _ := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: changed})
	seen := map[uint64]bool{}
	for _, r := range []Result{a, b, c, d} {
		if seen[r.Hash] {
			t.Fatalf("two different records share hash %x", r.Hash)
		}
		seen[r.Hash] = true
	}
	// The key's userid is case-insensitive: another spelling is the same
	// record with the same payload (the default mapping has no userid field).
	if same, _ := mp.Map(Input{UserID: "ZHANGSAN", Month: june, Report: row}); same.Hash != a.Hash {
		t.Errorf("userid case changed the hash:\n%s\n%s", same.Data, a.Data)
	}
	if a.Hash == xxhashOf(a.Data) {
		t.Error("the hash must include the version prefix")
	}
	if a.Hash != xxhashOf(append([]byte(hashPrefix), a.Data...)) {
		t.Error("the hash is xxhash64 of prefix and data")
	}
}

// The mapper is shared by the sync workers.
func TestMapConcurrent(t *testing.T) {
	mp := bindDefault(t)
	rows := fixtureRows(t)
	want := make([]Result, len(rows))
	for i, row := range rows {
		want[i], _ = mp.Map(Input{UserID: fmt.Sprint("u", i), Month: june, Report: row})
	}
	var wg sync.WaitGroup
	errs := make(chan string, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range 200 {
				i := (w + k) % len(rows)
				got, err := mp.Map(Input{UserID: fmt.Sprint("u", i), Month: june, Report: rows[i]})
				if err != nil || got.Hash != want[i].Hash || string(got.Data) != string(want[i].Data) {
					errs <- fmt.Sprintf("worker %d row %d: %v\n%s\n%s", w, i, err, got.Data, want[i].Data)
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

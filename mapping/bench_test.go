package mapping

import (
	"encoding/json"
	"testing"
)

// BenchmarkMapDefault is the hot path: one fixture row through the default
// 17-field mapping, as the WeCom client decodes it (json.Number).
func BenchmarkMapDefault(b *testing.B) {
	mp := bindDefault(b)
	row := fixtureRows(b)[0]
	in := Input{UserID: "ZhangSan", Month: june, Report: row}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Map(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapDefaultFloat64 maps a row decoded without UseNumber, the shape
// the fake server's Report gives.
func BenchmarkMapDefaultFloat64(b *testing.B) {
	mp := bindDefault(b)
	raw, err := json.Marshal(fixtureRows(b)[0])
	if err != nil {
		b.Fatal(err)
	}
	var row map[string]any
	if err := json.Unmarshal(raw, &row); err != nil {
		b.Fatal(err)
	}
	in := Input{UserID: "ZhangSan", Month: june, Report: row}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Map(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapParallel checks the pooled buffers under concurrent callers.
func BenchmarkMapParallel(b *testing.B) {
	mp := bindDefault(b)
	row := fixtureRows(b)[0]
	in := Input{UserID: "ZhangSan", Month: june, Report: row}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := mp.Map(in); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkMapConverters covers filters, hours, days, enum and a subform.
func BenchmarkMapConverters(b *testing.B) {
	spec := Spec{Key: "sync_key", Fields: []FieldSpec{
		{Target: "sync_key", Source: "key"},
		{Target: "late", Source: "exception_infos[exception=1].count"},
		{Target: "annual_days", Source: "sp_items[name=年假].duration", As: AsDays},
		{Target: "work_hours", Source: "summary_info.regular_work_sec", As: AsHours},
		{Target: "rule", Source: "base_info.record_type", As: AsEnum, Enum: map[string]string{"1": "固定上下班", "3": "按班次上下班"}},
		{Target: "items", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "item", Source: "name"},
			{Target: "hours", Source: "duration", As: AsHours},
		}},
	}}
	mp := bind(b, spec, []Widget{
		{Name: "sync_key", Type: "text"}, {Name: "late", Type: "number"}, {Name: "annual_days", Type: "number"},
		{Name: "work_hours", Type: "number"}, {Name: "rule", Type: "combo"},
		{Name: "items", Type: "subform", Items: []Widget{{Name: "item", Type: "text"}, {Name: "hours", Type: "number"}}},
	})
	in := Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(b)[0]}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Map(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCompileBind is the per-run setup cost.
func BenchmarkCompileBind(b *testing.B) {
	spec, ws := defaultSpec(), defaultWidgets()
	b.ReportAllocs()
	for b.Loop() {
		m, err := Compile(spec)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := m.Bind(ws); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkReadBackDefault reads one record back through the default
// mapping, as adoption, verify and rebuild do for each record they find.
func BenchmarkReadBackDefault(b *testing.B) {
	mp := bindDefault(b)
	res, err := mp.Map(Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(b)[0]})
	if err != nil {
		b.Fatal(err)
	}
	var wrapped map[string]map[string]any
	if err := json.Unmarshal(res.Data, &wrapped); err != nil {
		b.Fatal(err)
	}
	row := map[string]any{"_id": "6399c24287cae90008d24e0c", "appId": "a", "entryId": "e"}
	for k, v := range wrapped {
		row[k] = v["value"]
	}
	b.ReportAllocs()
	for b.Loop() {
		got, err := mp.ReadBack(row)
		if err != nil || got.Hash != res.Hash {
			b.Fatalf("%v %s", err, got.Data)
		}
	}
}

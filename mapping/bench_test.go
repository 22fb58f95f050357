package mapping

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
)

// The benchmarks below measure the local, per-record work of a sync: Key and
// Map for every report row, and ReadBack for every form record that
// adoption, verify or rebuild compares. Map writes the canonical payload
// while it reads the report and hashes it at the end, so encoding is not a
// step of its own; BenchmarkHashPayload isolates the hashing.

// benchUserID is the listed userid of the fixture's first row, spelled with
// capitals as WeCom may give it, so that the key is lowered.
const benchUserID = "ZhangSan"

// BenchmarkMapDefault is the hot path: one fixture row through the default
// 17-field mapping, as the WeCom client decodes it (json.Number).
func BenchmarkMapDefault(b *testing.B) {
	mp := bindDefault(b)
	row := fixtureRows(b)[0]
	in := Input{UserID: benchUserID, Month: june, Report: row}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Map(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMapDefaultRows maps every row of the fixture in turn, since the
// rows differ in text length and in which sources they hold.
func BenchmarkMapDefaultRows(b *testing.B) {
	mp := bindDefault(b)
	var ins []Input
	for _, row := range fixtureRows(b) {
		uid, _ := row["base_info"].(map[string]any)["acctid"].(string)
		ins = append(ins, Input{UserID: uid, Month: june, Report: row})
	}
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, in := range ins {
			if _, err := mp.Map(in); err != nil {
				b.Fatal(err)
			}
		}
		n += len(ins)
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(n), "ns/record")
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
	in := Input{UserID: benchUserID, Month: june, Report: row}
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
	in := Input{UserID: benchUserID, Month: june, Report: row}
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
	in := Input{UserID: benchUserID, Month: june, Report: fixtureRows(b)[0]}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Map(in); err != nil {
			b.Fatal(err)
		}
	}
}

// subformSpec is the default mapping plus the leave subform the README
// shows (leave_rows: one row per sp_items entry, its amount in the entry's
// own unit), the subform a real form is most likely to have.
func subformSpec() (Spec, []Widget) {
	s, ws := defaultSpec(), defaultWidgets()
	s.Fields = append(s.Fields, FieldSpec{Target: "leave_rows", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
		{Target: "kind", Source: "name"},
		{Target: "amount", Source: "duration", As: AsLeave},
	}})
	ws = append(ws, Widget{Name: "leave_rows", WidgetName: "_widget_1758077118799", Label: "请假明细", Type: "subform", Items: []Widget{
		{Name: "kind", WidgetName: "_widget_1758077118800", Label: "类型", Type: "text"},
		{Name: "amount", WidgetName: "_widget_1758077118801", Label: "时长", Type: "number"},
	}})
	return s, ws
}

func bindSubform(tb testing.TB) *Mapper {
	tb.Helper()
	s, ws := subformSpec()
	return bind(tb, s, ws)
}

// BenchmarkMapSubform maps the fixture's first row, with its six sp_items
// entries, through the default mapping plus a leave subform; Map then also
// computes SubformHash.
func BenchmarkMapSubform(b *testing.B) {
	mp := bindSubform(b)
	in := Input{UserID: benchUserID, Month: june, Report: fixtureRows(b)[0]}
	res, err := mp.Map(in)
	if err != nil || res.SubformHash == 0 {
		b.Fatalf("SubformHash %x: %v", res.SubformHash, err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mp.Map(in); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkKey is the store key and form key the engine derives for every
// listed userid before it maps the row.
func BenchmarkKey(b *testing.B) {
	mp := bindDefault(b)
	b.ReportAllocs()
	for b.Loop() {
		_ = mp.Key(benchUserID, june)
	}
}

// BenchmarkHashPayload is the hashing share of Map: xxhash64 of the version
// prefix and a mapped payload, which Map computes over its pooled buffer
// once the payload is written. (The subform case's SubformHash is a
// digest fed while the subform is written, so it is only in
// BenchmarkMapSubform.)
func BenchmarkHashPayload(b *testing.B) {
	for _, c := range []struct {
		name string
		mp   *Mapper
	}{{"default", bindDefault(b)}, {"subform", bindSubform(b)}} {
		b.Run(c.name, func(b *testing.B) {
			res, err := c.mp.Map(Input{UserID: benchUserID, Month: june, Report: fixtureRows(b)[0]})
			if err != nil {
				b.Fatal(err)
			}
			buf := append([]byte(hashPrefix), res.Data...)
			if xxhash.Sum64(buf) != res.Hash {
				b.Fatal("the hash is not xxhash64 of the prefix and Data")
			}
			b.SetBytes(int64(len(buf)))
			b.ReportAllocs()
			var h uint64
			for b.Loop() {
				h = xxhash.Sum64(buf)
			}
			if h != res.Hash {
				b.Fatal("hash changed")
			}
		})
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

// formRecord renders a Map payload the way data/list returns the record
// that holds it, with the fields the engine asks for: _id, appId and
// entryId, every mapped field flat (no {"value": v} wrapper), subform rows
// with their own _id, and the creator and createTime the engine also
// reads; then decoded with UseNumber, as the Jiandaoyun client does.
func formRecord(tb testing.TB, data []byte) map[string]any {
	tb.Helper()
	var wrapped map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(data, &wrapped); err != nil {
		tb.Fatal(err)
	}
	var sb strings.Builder
	sb.WriteString(`{"_id":"6852a1f0c7d3e40007a1b2c3","appId":"6399c24287cae90008d24e0b","entryId":"64093d8613931a00085bb2f4",` +
		`"creator":{"name":"管理员","username":"admin","status":1,"type":0,"departments":[1],"integrate_id":""},` +
		`"createTime":"2025-07-01T02:00:03.412Z"`)
	for name, w := range wrapped {
		v := w.Value
		if bytes.HasPrefix(v, []byte("[{")) {
			v = withRowIDs(tb, v)
		}
		sb.WriteString(`,"` + name + `":`)
		sb.Write(v)
	}
	sb.WriteString("}")
	dec := json.NewDecoder(strings.NewReader(sb.String()))
	dec.UseNumber()
	var row map[string]any
	if err := dec.Decode(&row); err != nil {
		tb.Fatalf("%v: %s", err, sb.String())
	}
	return row
}

// withRowIDs turns subform rows as Map writes them into their read shape:
// each row flat, with an _id.
func withRowIDs(tb testing.TB, rows json.RawMessage) json.RawMessage {
	tb.Helper()
	var in []map[string]struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(rows, &in); err != nil {
		tb.Fatal(err)
	}
	out := make([]map[string]json.RawMessage, len(in))
	for i, r := range in {
		out[i] = map[string]json.RawMessage{"_id": json.RawMessage(`"6852a1f0c7d3e40007a1b2d` + string(rune('0'+i%10)) + `"`)}
		for k, v := range r {
			out[i][k] = v.Value
		}
	}
	raw, err := json.Marshal(out)
	if err != nil {
		tb.Fatal(err)
	}
	return raw
}

// benchReadBack reads back the record holding the fixture's first row and
// checks that it comes out unchanged (equal hashes), the common case.
func benchReadBack(b *testing.B, mp *Mapper) {
	res, err := mp.Map(Input{UserID: benchUserID, Month: june, Report: fixtureRows(b)[0]})
	if err != nil {
		b.Fatal(err)
	}
	row := formRecord(b, res.Data)
	b.ReportAllocs()
	for b.Loop() {
		got, err := mp.ReadBack(row)
		if err != nil || got.Hash != res.Hash || got.SubformHash != res.SubformHash {
			b.Fatalf("%v %v %s", err, got.Inexact, got.Data)
		}
	}
}

// BenchmarkReadBackDefault reads one record back through the default
// mapping, as adoption, verify and rebuild do for each record they find.
func BenchmarkReadBackDefault(b *testing.B) { benchReadBack(b, bindDefault(b)) }

// BenchmarkReadBackSubform reads back a record with six leave rows.
func BenchmarkReadBackSubform(b *testing.B) { benchReadBack(b, bindSubform(b)) }

package mapping

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// leaveReport is a report whose sp_items count 年假 in days and 事假 in
// hours, numbers as json.Number or strings as WeCom may send them.
func leaveReport(t *testing.T) map[string]any {
	return decodeNumber(t, `{"sp_items":[
		{"type":1,"vacation_id":1,"count":1,"duration":129600,"time_type":0,"name":"年假"},
		{"type":1,"vacation_id":3,"count":1,"duration":"5400","time_type":"1","name":"事假"},
		{"type":1,"vacation_id":4,"count":1,"duration":3600,"time_type":2,"name":"调休"},
		{"type":1,"vacation_id":5,"count":1,"duration":3600,"name":"婚假"}]}`)
}

// as: leave writes days for time_type 0 and hours for time_type 1, rounded
// like hours, for a filter source and inside an sp_items subform.
func TestMapLeave(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "annual", Source: "sp_items[name=年假].duration", As: AsLeave, Default: int64(0), HasDefault: true},
		{Target: "personal", Source: "sp_items[name=事假].duration", As: AsLeave, Default: int64(0), HasDefault: true},
		{Target: "rows", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "n", Source: "name"},
			{Target: "amount", Source: "duration", As: AsLeave},
		}},
	}, []Widget{{Name: "annual", Type: "number"}, {Name: "personal", Type: "number"},
		{Name: "rows", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}, {Name: "amount", Type: "number"}}}})
	report := leaveReport(t)
	report["sp_items"] = report["sp_items"].([]any)[:2]
	res := mapOne(t, mp, report)
	want := `{"annual":{"value":1.5},"personal":{"value":1.5},"rows":{"value":[` +
		`{"amount":{"value":1.5},"n":{"value":"年假"}},{"amount":{"value":1.5},"n":{"value":"事假"}}]},` +
		`"sync_key":{"value":"zhangsan|2025-06"}}`
	if string(res.Data) != want {
		t.Fatalf("got  %s\nwant %s", res.Data, want)
	}

	// Rounding as hours does: half away from zero, 2 decimals.
	one := mapper(t, []FieldSpec{{Target: "v", Source: "sp_items[vacation_id=1].duration", As: AsLeave, Default: int64(0), HasDefault: true}},
		[]Widget{{Name: "v", Type: "number"}})
	for _, c := range []struct{ dur, tt, want string }{
		{"432", "0", "0.01"}, {"431", "0", "0"}, {"18", "1", "0.01"}, {"17", "1", "0"}, {"86400", "0", "1"}, {"0", "1", "0"},
	} {
		r := mapOne(t, one, decodeNumber(t, `{"sp_items":[{"vacation_id":1,"duration":`+c.dur+`,"time_type":`+c.tt+`}]}`))
		if got := payload(t, r.Data)["v"].(json.Number).String(); got != c.want {
			t.Errorf("duration %s time_type %s: %s, want %s", c.dur, c.tt, got, c.want)
		}
	}
	// The entry is missing: the default, as given.
	if r := mapOne(t, one, decodeNumber(t, `{"sp_items":[]}`)); payload(t, r.Data)["v"].(json.Number) != "0" {
		t.Errorf("missing entry: %s", r.Data)
	}
}

// A time_type that is neither 0 nor 1, or none, fails the record with the
// fix rather than guessing a unit.
func TestMapLeaveUnknownUnit(t *testing.T) {
	for _, name := range []string{"调休", "婚假"} {
		mp := mapper(t, []FieldSpec{{Target: "v", Source: "sp_items[name=" + name + "].duration", As: AsLeave, Default: int64(0), HasDefault: true}},
			[]Widget{{Name: "v", Type: "number"}})
		_, err := mp.Map(Input{UserID: "zhangsan", Month: june, Report: leaveReport(t)})
		if err == nil || !strings.Contains(err.Error(), "as: hours or as: days") || !strings.Contains(err.Error(), "time_type") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// as: leave takes only an sp_items entry's duration, and writes numbers.
func TestCompileLeaveAndMemberSources(t *testing.T) {
	bad := []struct {
		fs   FieldSpec
		want string
	}{
		{FieldSpec{Target: "x", Source: "sp_items[name=年假].count", As: AsLeave}, "as: leave reads an sp_items entry's duration"},
		{FieldSpec{Target: "x", Source: "exception_infos[exception=1].duration", As: AsLeave}, "as: leave reads an sp_items entry's duration"},
		{FieldSpec{Target: "x", Source: "summary_info.regular_work_sec", As: AsLeave}, "as: leave reads"},
		{FieldSpec{Target: "x", Source: "userid", As: AsLeave}, "as: leave reads"},
		{FieldSpec{Target: "x", Source: "key", As: AsMember}, "as: member writes a userid"},
		{FieldSpec{Target: "x", Source: "month", As: AsMember}, "as: member writes a userid"},
		{FieldSpec{Target: "x", Source: "base_info.record_type", As: AsMember}, "is a number value; as: member writes a userid as text"},
		{FieldSpec{Target: "x", Source: "month_start", As: AsMember}, "month_start is an instant"},
	}
	for _, c := range bad {
		_, err := Compile(Spec{Key: "sync_key", Fields: []FieldSpec{{Target: "sync_key", Source: "key"}, c.fs}})
		ps := problemsOf(t, err)
		if len(ps) != 1 || !strings.Contains(ps[0].Msg, c.want) {
			t.Errorf("%s as %s: %v, want %q", c.fs.Source, c.fs.As, err, c.want)
		}
	}
	// The converter table: leave fits number, member fits user, and
	// nothing else.
	for _, c := range []struct {
		fs   FieldSpec
		typ  string
		want string
	}{
		{FieldSpec{Target: "x", Source: "sp_items[name=年假].duration", As: AsLeave, Default: int64(0), HasDefault: true}, "text", "as: leave writes number fields only"},
		{FieldSpec{Target: "x", Source: "userid", As: AsMember}, "text", "as: member writes user fields only"},
		{FieldSpec{Target: "x", Source: "userid"}, "user", "without as:, a value fits text, textarea, number, combo, radiogroup fields only"},
		{FieldSpec{Target: "x", Source: "userid", As: AsText}, "user", "as: text writes"},
	} {
		m, err := Compile(Spec{Key: "sync_key", Fields: []FieldSpec{{Target: "sync_key", Source: "key"}, c.fs}})
		if err != nil {
			t.Fatal(err)
		}
		_, err = m.Bind([]Widget{{Name: "sync_key", Type: "text"}, {Name: "x", Type: c.typ}})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s as %q to %s: %v, want %q", c.fs.Source, c.fs.As, c.typ, err, c.want)
		}
	}
}

// as: member writes the userid as spelled (source: userid) or a report
// text as the member's username; a source that can be missing needs a
// default, since a member field has no empty value.
func TestMapMember(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "who", Source: "userid", As: AsMember},
		{Target: "acct", Source: "base_info.acctid", As: AsMember, Default: "", HasDefault: true},
	}, []Widget{{Name: "who", Type: "user"}, {Name: "acct", Type: "user"}})
	res := mapOne(t, mp, decodeNumber(t, `{"base_info":{"acctid":"ZhangSan"}}`))
	want := `{"acct":{"value":"ZhangSan"},"sync_key":{"value":"zhangsan|2025-06"},"who":{"value":"ZhangSan"}}`
	if string(res.Data) != want {
		t.Fatalf("got  %s\nwant %s", res.Data, want)
	}

	m, err := Compile(Spec{Key: "sync_key", Fields: []FieldSpec{{Target: "sync_key", Source: "key"},
		{Target: "acct", Source: "base_info.acctid", As: AsMember}}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Bind([]Widget{{Name: "sync_key", Type: "text"}, {Name: "acct", Type: "user"}})
	if err == nil || !strings.Contains(err.Error(), "has no empty value") || !strings.Contains(err.Error(), "default:") {
		t.Fatalf("member from a source that can be missing, no default: %v", err)
	}
}

// A member field reads back as a member object; its username is what Map
// wrote, so the record reads back exactly and a rerun writes nothing.
func TestReadBackMember(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "who", Source: "userid", As: AsMember},
		{Target: "annual", Source: "sp_items[name=年假].duration", As: AsLeave, Default: int64(0), HasDefault: true},
	}, []Widget{{Name: "who", Type: "user"}, {Name: "annual", Type: "number"}})
	res := mapOne(t, mp, leaveReport(t))
	row := map[string]any{
		"_id": "r1", "sync_key": "zhangsan|2025-06", "annual": json.Number("1.5"),
		"who": map[string]any{"name": "张三", "username": "ZhangSan", "status": json.Number("1"), "type": json.Number("0"),
			"departments": []any{json.Number("1")}, "integrate_id": "ZhangSan"},
	}
	rb, err := mp.ReadBack(row)
	if err != nil {
		t.Fatal(err)
	}
	if !rb.Exact || rb.Hash != res.Hash || string(rb.Data) != string(res.Data) {
		t.Fatalf("exact %v %v\nread %s\nmap  %s", rb.Exact, rb.Inexact, rb.Data, res.Data)
	}
	// The string as written is not what the API reads back: inexact.
	row["who"] = "ZhangSan"
	if rb, _ := mp.ReadBack(row); rb.Exact || rb.Hash == res.Hash || !slices.Equal(rb.Inexact, []string{"who"}) {
		t.Fatalf("a bare string read back as exact: %+v", rb)
	}
	// Another member: exact, and a different hash.
	row["who"] = map[string]any{"username": "lisi"}
	if rb, _ := mp.ReadBack(row); !rb.Exact || rb.Hash == res.Hash {
		t.Fatalf("another member: %+v", rb)
	}
}

// TreatAsChanged makes every field of the named widget types inexact,
// subform rows' fields included, and a later call replaces the set.
func TestTreatAsChanged(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "who", Source: "userid", As: AsMember},
		{Target: "n", Source: "base_info.name"},
		{Target: "rows", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "d", Source: "duration", As: AsHours}}},
	}, []Widget{{Name: "who", Type: "user"}, {Name: "n", Type: "text"},
		{Name: "rows", Type: "subform", Items: []Widget{{Name: "d", Type: "number"}}}})
	res := mapOne(t, mp, decodeNumber(t, `{"base_info":{"name":"张三"},"sp_items":[{"duration":7200}]}`))
	row := map[string]any{"sync_key": "zhangsan|2025-06", "n": "张三", "who": map[string]any{"username": "ZhangSan"},
		"rows": []any{map[string]any{"_id": "x", "d": json.Number("2")}}}
	read := func() ReadBackResult {
		t.Helper()
		rb, err := mp.ReadBack(row)
		if err != nil {
			t.Fatal(err)
		}
		return rb
	}
	if rb := read(); !rb.Exact || rb.Hash != res.Hash || rb.SubformHash != res.SubformHash {
		t.Fatalf("before: %+v", rb)
	}
	mp.TreatAsChanged([]string{"user", "number"})
	rb := read()
	if rb.Exact || rb.Hash == res.Hash || rb.SubformExact || rb.SubformHash == res.SubformHash ||
		!slices.Equal(rb.Inexact, []string{"rows.d", "who"}) {
		t.Fatalf("after user, number: %+v", rb)
	}
	if string(rb.Data) != string(res.Data) {
		t.Fatalf("Data changed: %s", rb.Data)
	}
	// Map and the fingerprint are untouched.
	if again := mapOne(t, mp, decodeNumber(t, `{"base_info":{"name":"张三"},"sp_items":[{"duration":7200}]}`)); again.Hash != res.Hash {
		t.Fatal("Map's hash changed")
	}
	mp.TreatAsChanged([]string{"text"})
	if rb := read(); rb.Exact || !slices.Equal(rb.Inexact, []string{"n", "sync_key"}) || !rb.SubformExact || rb.SubformHash != res.SubformHash {
		t.Fatalf("after text: %+v", rb)
	}
	mp.TreatAsChanged(nil)
	if rb := read(); !rb.Exact || rb.Hash != res.Hash {
		t.Fatalf("after nil: %+v", rb)
	}
}

// LeaveUnits lists the fields written with days or hours whose sampled
// entry counts in the other unit; as: leave and matching units are not
// listed.
func TestLeaveUnits(t *testing.T) {
	m, err := Compile(Spec{Key: "sync_key", Fields: []FieldSpec{
		{Target: "sync_key", Source: "key"},
		{Target: "annual_h", Source: "sp_items[name=年假].duration", As: AsHours, Line: 3},
		{Target: "annual_d", Source: "sp_items[name=年假].duration", As: AsDays},
		{Target: "personal_d", Source: "sp_items[name=事假].duration", As: AsDays},
		{Target: "personal_l", Source: "sp_items[name=事假].duration", As: AsLeave},
		{Target: "absent", Source: "sp_items[name=病假].duration", As: AsDays},
		{Target: "late", Source: "exception_infos[exception=1].duration", As: AsHours},
		{Target: "rows", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{{Target: "h", Source: "duration", As: AsHours}}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	got := m.LeaveUnits(leaveReport(t))
	var lines []string
	for _, u := range got {
		lines = append(lines, u.String())
	}
	want := []string{
		`mapping.fields.annual_h: sp_items entry "年假" counts in days (time_type 0), and source "sp_items[name=年假].duration" is written with as: hours`,
		`mapping.fields.personal_d: sp_items entry "事假" counts in hours (time_type 1), and source "sp_items[name=事假].duration" is written with as: days`,
		`mapping.fields.rows.fields.h: sp_items entry "年假" counts in days (time_type 0), and source "duration" is written with as: hours`,
	}
	if !slices.Equal(lines, want) {
		t.Fatalf("got\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if got[0].Line != 3 || got[2].Target != "rows.h" {
		t.Fatalf("%+v", got)
	}
	if n := len(m.LeaveUnits(map[string]any{})); n != 0 {
		t.Fatalf("empty report: %d", n)
	}
}

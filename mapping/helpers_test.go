package mapping

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"checkin-sync/internal/month"
)

// defaultFields is the init template's mapping, in config order.
var defaultFields = [][2]string{
	{"sync_key", "key"},
	{"month", "month_start"},
	{"record_type", "base_info.record_type"},
	{"name", "base_info.name"},
	{"name_ex", "base_info.name_ex"},
	{"departs_name", "base_info.departs_name"},
	{"acctid", "base_info.acctid"},
	{"groupid", "base_info.rule_info.groupid"},
	{"groupname", "base_info.rule_info.groupname"},
	{"work_days", "summary_info.work_days"},
	{"regular_days", "summary_info.regular_days"},
	{"except_days", "summary_info.except_days"},
	{"regular_work_sec", "summary_info.regular_work_sec"},
	{"standard_work_sec", "summary_info.standard_work_sec"},
	{"workday_over_sec", "overwork_info.workday_over_sec"},
	{"holidays_over_sec", "overwork_info.holidays_over_sec"},
	{"restdays_over_sec", "overwork_info.restdays_over_sec"},
}

// defaultSpec is the init template's mapping, with the lines it has in a
// generated config (mapping: at line 40, fields from line 43).
func defaultSpec() Spec {
	s := Spec{Key: "sync_key", Line: 40}
	for i, f := range defaultFields {
		fs := FieldSpec{Target: f[0], Source: f[1], Line: 43 + i}
		if f[0] == "month" {
			fs.As = AsDatetime
		}
		s.Fields = append(s.Fields, fs)
	}
	return s
}

// defaultWidgets is a form that fits the default mapping, every field with
// an alias.
func defaultWidgets() []Widget {
	var ws []Widget
	for i, f := range defaultFields {
		w := Widget{Name: f[0], WidgetName: fmt.Sprintf("_widget_%013d", 1758077118700+i), Label: f[0], Type: "number"}
		switch f[0] {
		case "sync_key", "name", "name_ex", "departs_name", "acctid", "groupname":
			w.Type = "text"
		case "month":
			w.Type = "datetime"
		}
		ws = append(ws, w)
	}
	return ws
}

// bind compiles s and binds it to ws, failing the test on either error.
func bind(t testing.TB, s Spec, ws []Widget) *Mapper {
	t.Helper()
	m, err := Compile(s)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	mp, err := m.Bind(ws)
	if err != nil {
		t.Fatalf("Bind: %v", err)
	}
	return mp
}

func bindDefault(t testing.TB) *Mapper {
	t.Helper()
	return bind(t, defaultSpec(), defaultWidgets())
}

// fixtureRows reads the datas of the June 2025 fixture as the WeCom client
// decodes it: numbers as json.Number.
func fixtureRows(t testing.TB) []map[string]any {
	t.Helper()
	raw, err := os.ReadFile("../testdata/wecom/monthdata-2025-06.json")
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		Datas []map[string]any `json:"datas"`
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&resp); err != nil {
		t.Fatal(err)
	}
	if len(resp.Datas) == 0 {
		t.Fatal("fixture has no datas")
	}
	return resp.Datas
}

// decodeNumber decodes JSON with UseNumber, as the WeCom client does.
func decodeNumber(t testing.TB, s string) map[string]any {
	t.Helper()
	var v map[string]any
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	if err := d.Decode(&v); err != nil {
		t.Fatalf("decode %s: %v", s, err)
	}
	return v
}

var june = month.MustParse("2025-06")

// payload decodes Result.Data into field -> value.
func payload(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var p map[string]struct {
		Value any `json:"value"`
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	if err := d.Decode(&p); err != nil {
		t.Fatalf("payload %s: %v", data, err)
	}
	out := make(map[string]any, len(p))
	for k, v := range p {
		out[k] = v.Value
	}
	return out
}

// problemsOf asserts err is a Problems and returns it.
func problemsOf(t testing.TB, err error) Problems {
	t.Helper()
	if err == nil {
		t.Fatal("want an error, got none")
	}
	ps, ok := err.(Problems)
	if !ok {
		t.Fatalf("want Problems, got %T: %v", err, err)
	}
	return ps
}

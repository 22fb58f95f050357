package config

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"checkin-sync/internal/retry"
	"checkin-sync/mapping"
)

// testEnv holds every variable the tests use. Secret values contain
// "TOPSECRET" so that any leak into an error message is caught.
var testEnv = map[string]string{
	"S":             "TOPSECRET-s: #x",
	"K":             "TOPSECRET-k",
	"EMPTY":         "",
	"A":             "alpha",
	"N":             "7",
	"HOOK":          "http://example.com/cgi-bin/webhook/send?key=TOPSECRET-hook",
	"LHOOK":         "http://127.0.0.1:9/cgi-bin/webhook/send?key=TOPSECRET-h2",
	"WECOM_CORP_ID": "ww0123456789",
	"WECOM_SECRET":  "TOPSECRET: with # and ${NOT_EXPANDED}",
	"JDY_API_KEY":   "TOPSECRET-jdy",
}

func lookup(name string) (string, bool) {
	v, ok := testEnv[name]
	return v, ok
}

func lines(ls ...string) string { return strings.Join(ls, "\n") + "\n" }

// A valid configuration in three lines; cases replace or extend them.
const (
	W = `wecom: {corp_id: ww1, secret: "${S}"}`
	J = `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e}`
	M = `mapping: {key: k, fields: {k: {source: key}}}`
)

type want struct {
	line int
	key  string
	msg  string // substring of Msg
	fix  string // substring of Fix
}

func TestErrors(t *testing.T) {
	cases := []struct {
		name string
		doc  string
		want []want
	}{
		{"unknown key suggests the closest", lines("wecom:", "  corp_id: ww1", "  secret: ${S}", "  rate_per_minut: 5", J, M),
			[]want{{4, "wecom.rate_per_minut", "unknown key", "did you mean wecom.rate_per_minute?"}}},
		{"key in the wrong section", lines("settle_days: 3", W, J, M),
			[]want{{1, "settle_days", "unknown key", "did you mean sync.settle_days?"}}},
		{"unknown key lists the known keys", lines(W, J, M, "sync: {zzz: 1}"),
			[]want{{4, "sync.zzz", "unknown key", "known keys here: months, settle_days"}}},
		{"duplicate key", lines("wecom:", "  corp_id: ww1", "  secret: ${S}", "  corp_id: ww2", J, M),
			[]want{{4, "wecom.corp_id", "given twice (first on line 2)", ""}}},
		{"int wrong type", lines(W, J, M, "sync: {months: many}"),
			[]want{{4, "sync.months", `must be a whole number (got "many")`, ""}}},
		{"quoted int", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, concurrency: "4"}`, M),
			[]want{{2, "jiandaoyun.concurrency", `must be a whole number (got "4")`, "without quotes"}}},
		{"int out of range", lines(W, J, M, "sync: {months: 99999999999999999999}"),
			[]want{{4, "sync.months", "whole number", ""}}},
		{"float wrong type", lines(`wecom: {corp_id: ww1, secret: "${S}", rate_per_minute: fast}`, J, M),
			[]want{{1, "wecom.rate_per_minute", `must be a number (got "fast")`, ""}}},
		{"bool wrong type", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, start_workflow: yes}`, M),
			[]want{{2, "jiandaoyun.start_workflow", `must be true or false (got "yes")`, ""}}},
		{"list wrong type", lines("wecom:", "  corp_id: ww1", "  secret: ${S}", "  users:", "    userids: bob", J, M),
			[]want{{5, "wecom.users.userids", "must be a list", ""}}},
		{"list item wrong type", lines("wecom:", "  corp_id: ww1", "  secret: ${S}", "  users:", "    departments: [1, x]", J, M),
			[]want{{5, "wecom.users.departments[1]", `must be a whole number (got "x")`, ""}}},
		{"list item null", lines(`wecom: {corp_id: ww1, secret: "${S}", users: {exclude: [a, ~]}}`, J, M),
			[]want{{1, "wecom.users.exclude[1]", "is empty", ""}}},
		{"section not a mapping", lines(W, J, M, "sync: 5"),
			[]want{{4, "sync", `must be a mapping of keys (got "5")`, ""}}},
		{"string given a mapping", lines(`wecom: {corp_id: {a: 1}, secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "must be a string (got a mapping)", ""}}},
		{"bad duration", lines(W, J, M, "retry: {base: 5}"),
			[]want{{4, "retry.base", `must be a duration such as 1s or 200ms (got "5")`, "unit"}}},
		{"negative duration", lines(W, J, M, "retry: {block_wait: -1s}"),
			[]want{{4, "retry.block_wait", "must not be negative", ""}}},
		{"consistency_delay zero", lines(W, "jiandaoyun:", `  api_key: "${K}"`, "  app_id: a", "  entry_id: e", "  consistency_delay: 0s", M),
			[]want{{6, "jiandaoyun.consistency_delay", `must be above 0 (got "0s")`, "up to 10m, or remove the key for the default 10s"}}},
		{"consistency_delay too long", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, consistency_delay: 10h}`, M),
			[]want{{2, "jiandaoyun.consistency_delay", `must be at most 10m (got "10h")`, "default 10s"}}},
		{"consistency_delay just over", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, consistency_delay: 10m1ms}`, M),
			[]want{{2, "jiandaoyun.consistency_delay", "must be at most 10m", ""}}},
		{"consistency_delay negative", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, consistency_delay: -1s}`, M),
			[]want{{2, "jiandaoyun.consistency_delay", "must not be negative", ""}}},
		{"consistency_delay not a duration", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, consistency_delay: 10}`, M),
			[]want{{2, "jiandaoyun.consistency_delay", `must be a duration such as 1s or 200ms (got "10")`, "unit"}}},
		{"consistency_delay in the wrong section", lines(W, J, M, "retry: {consistency_delay: 5s}"),
			[]want{{4, "retry.consistency_delay", "unknown key", "did you mean jiandaoyun.consistency_delay?"}}},
		{"required missing in a section", lines(`wecom: {secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "is required", "WECOM_CORP_ID"}}},
		{"required section missing", lines(J, M),
			[]want{{0, "wecom.corp_id", "is required", ""}, {0, "wecom.secret", "is required", "WECOM_SECRET"}}},
		{"required but empty", lines(`wecom: {corp_id: "", secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "is required but empty", ""}}},
		{"required but null", lines("wecom:", "  corp_id:", "  secret: ${S}", J, M),
			[]want{{2, "wecom.corp_id", "is required but empty", ""}}},
		{"variable empty", lines(`wecom: {corp_id: "${EMPTY}", secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "${EMPTY} expands to an empty value", ""}}},
		{"variable missing", lines(`wecom: {corp_id: "${NOPE}", secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "environment variable NOPE is not set", "export"}}},
		{"two variables missing", lines(`wecom: {corp_id: "${NOPE}-${NADA}", secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "environment variables NOPE, NADA are not set", ""}}},
		{"unterminated variable", lines(`wecom: {corp_id: "${ABC", secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "unterminated ${", "$$"}}},
		{"invalid variable name", lines(`wecom: {corp_id: "${1A}", secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "not a valid environment variable name", ""}}},
		{"secret variable missing", lines(`wecom: {corp_id: ww1, secret: "${NOPE}"}`, J, M),
			[]want{{1, "wecom.secret", "environment variable NOPE is not set", "export NOPE"}}},
		{"secret variable empty", lines(`wecom: {corp_id: ww1, secret: "${EMPTY}"}`, J, M),
			[]want{{1, "wecom.secret", "environment variable EMPTY is empty", ""}}},
		{"literal secret refused", lines("wecom:", "  corp_id: ww1", "  secret: hunter2-TOPSECRET", J, M),
			[]want{{3, "wecom.secret", "must not be written in the file", "environment variable"}}},
		{"secret must be exactly ${VAR}", lines(`wecom: {corp_id: ww1, secret: "TOPSECRET${S}"}`, J, M),
			[]want{{1, "wecom.secret", "must not be written in the file", "${WECOM_SECRET}"}}},
		{"numeric literal secret refused", lines(`wecom: {corp_id: ww1, secret: 12345}`, J, M),
			[]want{{1, "wecom.secret", "must be given as ${VAR}", ""}}},
		{"literal api key refused", lines(W, `jiandaoyun: {api_key: TOPSECRET-lit, app_id: a, entry_id: e}`, M),
			[]want{{2, "jiandaoyun.api_key", "must not be written in the file", "${JDY_API_KEY}"}}},
		{"literal webhook refused", lines(W, J, M, "alert:", "  wecom_webhook: https://qyapi.weixin.qq.com/cgi-bin/webhook/send?key=TOPSECRET"),
			[]want{{5, "alert.wecom_webhook", "must not be written in the file", "${WECOM_ROBOT_WEBHOOK}"}}},
		{"webhook over plain http", lines(W, J, M, `alert: {wecom_webhook: "${HOOK}"}`),
			[]want{{4, "alert.wecom_webhook", "must use https", ""}}},
		{"webhook missing", lines(W, J, M, "alert: {on: [failure]}"),
			[]want{{4, "alert.wecom_webhook", "is required", ""}}},
		{"alert kind unknown", lines(W, J, M, `alert: {wecom_webhook: "${LHOOK}", on: [failur]}`),
			[]want{{4, "alert.on", `unknown alert kind "failur"`, "did you mean failure?"}}},
		{"alert kinds empty", lines(W, J, M, `alert: {wecom_webhook: "${LHOOK}", on: []}`),
			[]want{{4, "alert.on", "is empty", ""}}},
		{"rate zero", lines(`wecom: {corp_id: ww1, secret: "${S}", rate_per_minute: 0}`, J, M),
			[]want{{1, "wecom.rate_per_minute", "must be above 0 (got 0)", "default 50"}}},
		{"rate negative", lines("wecom:", "  corp_id: ww1", "  secret: ${S}", "  rate_per_minute: -1.5", J, M),
			[]want{{4, "wecom.rate_per_minute", "must be above 0 (got -1.5)", ""}}},
		{"jiandaoyun rate zero", lines(W, "jiandaoyun:", "  api_key: ${K}", "  app_id: a", "  entry_id: e", "  rate_per_second:", "    global: 0", M),
			[]want{{7, "jiandaoyun.rate_per_second.global", "must be above 0 (got 0)", "default 20"}}},
		{"concurrency zero", lines(W, `jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, concurrency: 0}`, M),
			[]want{{2, "jiandaoyun.concurrency", "must be above 0 (got 0)", ""}}},
		{"months zero", lines(W, J, M, "sync:", "  months: 0"),
			[]want{{5, "sync.months", "must be above 0 (got 0)", ""}}},
		{"settle days negative", lines(W, J, M, "sync:", "  settle_days: -1"),
			[]want{{5, "sync.settle_days", "must not be negative (got -1)", ""}}},
		{"max attempts zero", lines(W, J, M, "retry: {max_attempts: 0}"),
			[]want{{4, "retry.max_attempts", "must be above 0 (got 0)", ""}}},
		{"unknown timezone", lines("timezone: Mars/Olympus", W, J, M),
			[]want{{1, "timezone", `unknown time zone "Mars/Olympus"`, "Asia/Shanghai"}}},
		{"empty timezone", lines(`timezone: ""`, W, J, M),
			[]want{{1, "timezone", "is required but empty", ""}}},
		{"empty store", lines(`store: ""`, W, J, M),
			[]want{{1, "store", "is required but empty", ""}}},
		{"base url over plain http", lines(`wecom: {base_url: "http://qyapi.weixin.qq.com", corp_id: ww1, secret: "${S}"}`, J, M),
			[]want{{1, "wecom.base_url", "must use https", "127.0.0.1"}}},
		{"base url not a url", lines(W, `jiandaoyun: {base_url: jiandaoyun, api_key: "${K}", app_id: a, entry_id: e}`, M),
			[]want{{2, "jiandaoyun.base_url", `must be a URL such as https://host (got "jiandaoyun")`, ""}}},
		{"base url with a query", lines(W, `jiandaoyun: {base_url: "https://x.example/?a=b", api_key: "${K}", app_id: a, entry_id: e}`, M),
			[]want{{2, "jiandaoyun.base_url", "without user, query or fragment", ""}}},
		{"department zero", lines(`wecom: {corp_id: ww1, secret: "${S}", users: {departments: [0]}}`, J, M),
			[]want{{1, "wecom.users.departments", "1 or more (got 0)", ""}}},
		{"nobody to sync", lines(`wecom: {corp_id: ww1, secret: "${S}", users: {departments: []}}`, J, M),
			[]want{{1, "wecom.users.departments", "nobody to sync", ""}}},
		{"mapping missing", lines(W, J),
			[]want{{0, "mapping.key", "is required", ""}, {0, "mapping.fields", "is required", ""}}},
		{"mapping fields empty", lines(W, J, "mapping: {key: k, fields: {}}"),
			[]want{{3, "mapping.fields", "is empty", ""}}},
		{"mapping key not a field", lines(W, J, "mapping: {key: sync_key, fields: {k: {source: key}}}"),
			[]want{{3, "mapping.key", `"sync_key" is not one of mapping.fields`, "sync_key: {source: key}"}}},
		{"mapping key not from source key", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: base_info.name}"),
			[]want{{6, "mapping.fields.k.source", `must be mapped from source: key (got "base_info.name")`, ""}}},
		{"field without source", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {as: text}"),
			[]want{{7, "mapping.fields.n.source", "is required", ""}}},
		{"field not a mapping", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: base_info.name"),
			[]want{{7, "mapping.fields.n", "must be a mapping such as {source: base_info.name}", ""}}},
		{"unknown converter", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: base_info.name, as: hour}"),
			[]want{{7, "mapping.fields.n.as", `unknown converter "hour"`, "did you mean hours?"}}},
		{"unknown field key", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, sorce: y}"),
			[]want{{7, "mapping.fields.n.sorce", "unknown key", "did you mean mapping.fields.n.source?"}}},
		{"enum without table", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, as: enum}"),
			[]want{{7, "mapping.fields.n.enum", "needs a table", ""}}},
		{"enum without as enum", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, enum: {1: a}}"),
			[]want{{7, "mapping.fields.n.enum", "only used with as: enum", ""}}},
		{"enum code twice", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n:", "      source: x", "      as: enum", "      enum:", "        1: a", `        "1": b`),
			[]want{{12, "mapping.fields.n.enum.1", "code given twice (first on line 11)", ""}}},
		{"subform without fields", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, as: subform}"),
			[]want{{7, "mapping.fields.n.fields", "needs fields", ""}}},
		{"fields without subform", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, fields: {a: {source: y}}}"),
			[]want{{7, "mapping.fields.n.fields", "only used with as: subform", ""}}},
		{"nested subform", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n:", "      source: items", "      as: subform", "      fields:", "        m: {source: inner, as: subform, fields: {z: {source: q}}}"),
			[]want{{11, "mapping.fields.n.fields.m.as", "cannot hold another subform", ""}}},
		{"default null", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, default: ~}"),
			[]want{{7, "mapping.fields.n.default", "needs a value", "remove default"}}},
		{"default a list", lines(W, J, "mapping:", "  key: k", "  fields:", "    k: {source: key}", "    n: {source: x, default: [1]}"),
			[]want{{7, "mapping.fields.n.default", "must be a string, a number or true/false (got a list)", ""}}},
		{"yaml syntax", lines("wecom:", "  corp_id: a: b"),
			[]want{{2, "", "invalid YAML: mapping values are not allowed", "quotes"}}},
		{"second document", lines(W, J, M, "---", "a: 1"),
			[]want{{4, "", "second YAML document", ""}}},
		{"top level not a mapping", lines("- a", "- b"),
			[]want{{1, "", "must be a YAML mapping", "checkin-sync init"}}},
		{"empty file", "",
			[]want{{0, "", "the file is empty", "checkin-sync init"}}},
		{"comments only", "# nothing here\n",
			[]want{{0, "", "the file is empty", ""}}},
		{"merge key", lines(`wecom: {<<: {corp_id: ww1}, secret: "${S}"}`, J, M),
			[]want{{1, "wecom.<<", "merge keys", ""}, {1, "wecom.corp_id", "is required", ""}}},
		{"custom tag", lines(`wecom: {corp_id: !foo ww1, secret: "${S}"}`, J, M),
			[]want{{1, "wecom.corp_id", "tagged !foo", ""}}},
		{"several problems in line order", lines("wecom:", "  corp_id: ww1", "  secret: ${S}", "  rate_per_minute: 0", J, M, "sync: {months: 0, settle_days: x}"),
			[]want{{4, "wecom.rate_per_minute", "above 0", ""}, {7, "sync.settle_days", "whole number", ""}, {7, "sync.months", "above 0", ""}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := Parse([]byte(tc.doc), "checkin-sync.yaml", lookup)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got cfg=%v err=%v", cfg != nil, err)
			}
			if len(ce.Problems) != len(tc.want) {
				t.Fatalf("got %d problems, want %d:\n%v", len(ce.Problems), len(tc.want), err)
			}
			for i, w := range tc.want {
				p := ce.Problems[i]
				if p.Line != w.line || p.Key != w.key || !strings.Contains(p.Msg, w.msg) || !strings.Contains(p.Fix, w.fix) {
					t.Errorf("problem %d = %+v\nwant line %d key %q msg ~%q fix ~%q", i, p, w.line, w.key, w.msg, w.fix)
				}
			}
			text := err.Error()
			if strings.Contains(text, "TOPSECRET") || strings.Contains(text, "hunter2") {
				t.Errorf("error reveals a secret:\n%s", text)
			}
			first := strings.Split(text, "\n")[0]
			prefix := "checkin-sync.yaml"
			if tc.want[0].line > 0 {
				prefix += fmt.Sprintf(":%d", tc.want[0].line)
			}
			prefix += ": "
			if tc.want[0].key != "" {
				prefix += tc.want[0].key + ": "
			}
			if !strings.HasPrefix(first, prefix) {
				t.Errorf("first line %q, want prefix %q", first, prefix)
			}
		})
	}
}

func TestErrorFormat(t *testing.T) {
	_, err := Parse([]byte(lines(J, M, "wecom:", "  corp_id: ww1", "  secret: ${S}", "  rate_per_minute: 0")), "conf/checkin-sync.yaml", lookup)
	got := err.Error()
	wantText := "conf/checkin-sync.yaml:6: wecom.rate_per_minute: must be above 0 (got 0); Fix: use a positive number, or remove the key for the default 50"
	if got != wantText {
		t.Errorf("got  %q\nwant %q", got, wantText)
	}
}

// edited is the template as a user leaves it: placeholders replaced.
func edited() []byte {
	s := strings.NewReplacer("EDIT_ME_APP_ID", "6399c24287cae90008d24e0b", "EDIT_ME_ENTRY_ID", "64093d8613931a00085bb2f4").Replace(string(Template()))
	return []byte(s)
}

func TestTemplateParsesAndValidates(t *testing.T) {
	cfg, err := Parse(edited(), "/srv/cs/checkin-sync.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeCom.Secret != testEnv["WECOM_SECRET"] || cfg.Jiandaoyun.APIKey != testEnv["JDY_API_KEY"] || cfg.WeCom.CorpID != testEnv["WECOM_CORP_ID"] {
		t.Errorf("variables not expanded: %+v %+v", cfg.WeCom, cfg.Jiandaoyun)
	}
	if cfg.Alert != nil {
		t.Errorf("template alert section should be commented out, got %+v", cfg.Alert)
	}
	if len(cfg.Warnings) != 0 {
		t.Errorf("template warnings: %v", cfg.Warnings)
	}
	wantTargets := []string{"sync_key", "month", "record_type", "name", "name_ex", "departs_name", "acctid", "groupid", "groupname",
		"work_days", "regular_days", "except_days", "regular_work_sec", "standard_work_sec", "workday_over_sec", "holidays_over_sec", "restdays_over_sec"}
	wantSources := []string{"key", "month_start", "base_info.record_type", "base_info.name", "base_info.name_ex", "base_info.departs_name",
		"base_info.acctid", "base_info.rule_info.groupid", "base_info.rule_info.groupname", "summary_info.work_days", "summary_info.regular_days",
		"summary_info.except_days", "summary_info.regular_work_sec", "summary_info.standard_work_sec", "overwork_info.workday_over_sec",
		"overwork_info.holidays_over_sec", "overwork_info.restdays_over_sec"}
	m := cfg.Mapping
	if m.Key != "sync_key" || len(m.Fields) != len(wantTargets) {
		t.Fatalf("mapping key %q with %d fields", m.Key, len(m.Fields))
	}
	for i, f := range m.Fields {
		if f.Target != wantTargets[i] || f.Source != wantSources[i] {
			t.Errorf("field %d = %s <- %s, want %s <- %s", i, f.Target, f.Source, wantTargets[i], wantSources[i])
		}
		wantAs := ""
		if f.Target == "month" {
			wantAs = mapping.AsDatetime
		}
		if f.As != wantAs {
			t.Errorf("field %s as %q", f.Target, f.As)
		}
		if i > 0 && f.Line != m.Fields[i-1].Line+1 {
			t.Errorf("field %s on line %d, previous on %d", f.Target, f.Line, m.Fields[i-1].Line)
		}
	}
	// The defaults written in the template are the built-in defaults.
	minimal, err := Parse([]byte(lines(W, J, M)), "/srv/cs/checkin-sync.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	for name, pair := range map[string][2]any{
		"timezone":   {cfg.Timezone, minimal.Timezone},
		"store":      {cfg.Store, minimal.Store},
		"wecom.base": {cfg.WeCom.BaseURL, minimal.WeCom.BaseURL},
		"users":      {fmt.Sprint(cfg.WeCom.Users), fmt.Sprint(minimal.WeCom.Users)},
		"rate":       {cfg.WeCom.RatePerMinute, minimal.WeCom.RatePerMinute},
		"jdy.base":   {cfg.Jiandaoyun.BaseURL, minimal.Jiandaoyun.BaseURL},
		"flags":      {[2]bool{cfg.Jiandaoyun.StartWorkflow, cfg.Jiandaoyun.StartTrigger}, [2]bool{minimal.Jiandaoyun.StartWorkflow, minimal.Jiandaoyun.StartTrigger}},
		"conc":       {cfg.Jiandaoyun.Concurrency, minimal.Jiandaoyun.Concurrency},
		"rates":      {cfg.Jiandaoyun.Rates, minimal.Jiandaoyun.Rates},
		"delay":      {cfg.Jiandaoyun.ConsistencyDelay, minimal.Jiandaoyun.ConsistencyDelay},
		"sync":       {cfg.Sync, minimal.Sync},
		"retry":      {cfg.Retry, minimal.Retry},
	} {
		if pair[0] != pair[1] {
			t.Errorf("%s: template %v, default %v", name, pair[0], pair[1])
		}
	}
}

func TestTemplateNeedsItsVariables(t *testing.T) {
	_, err := Parse(Template(), "checkin-sync.yaml", func(string) (string, bool) { return "", false })
	var ce *Error
	if !errors.As(err, &ce) {
		t.Fatalf("got %v", err)
	}
	for _, v := range []string{"WECOM_CORP_ID", "WECOM_SECRET", "JDY_API_KEY"} {
		if !strings.Contains(err.Error(), v+" is not set") {
			t.Errorf("error does not name %s:\n%v", v, err)
		}
	}
	// The three variables and the two placeholders.
	if len(ce.Problems) != 5 {
		t.Errorf("want 5 problems, got:\n%v", err)
	}
}

func TestDefaults(t *testing.T) {
	cfg, err := Parse([]byte(lines(W, J, M)), "/etc/cs/checkin-sync.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Timezone != "Asia/Shanghai" || cfg.Location == nil || cfg.Location.String() != "Asia/Shanghai" {
		t.Errorf("timezone %q %v", cfg.Timezone, cfg.Location)
	}
	if cfg.File != "/etc/cs/checkin-sync.yaml" || cfg.Dir != "/etc/cs" || cfg.Store != "/etc/cs/checkin-sync.db" {
		t.Errorf("paths %q %q %q", cfg.File, cfg.Dir, cfg.Store)
	}
	w := cfg.WeCom
	if w.BaseURL != "https://qyapi.weixin.qq.com" || w.RatePerMinute != 50 || fmt.Sprint(w.Users.Departments) != "[1]" || len(w.Users.UserIDs) != 0 || len(w.Users.Exclude) != 0 {
		t.Errorf("wecom %+v", w)
	}
	j := cfg.Jiandaoyun
	if j.BaseURL != "https://api.jiandaoyun.com" || j.Concurrency != 4 || j.StartWorkflow || j.StartTrigger ||
		j.Rates != (Rates{Create: 20, BatchCreate: 10, Update: 20, List: 30, Global: 20}) || j.AppID != "a" || j.EntryID != "e" ||
		j.ConsistencyDelay != 10*time.Second {
		t.Errorf("jiandaoyun %+v", j)
	}
	if cfg.Sync != (Sync{Months: 2, SettleDays: 5}) {
		t.Errorf("sync %+v", cfg.Sync)
	}
	if cfg.Retry != (Retry{Base: time.Second, MaxAttempts: 6, BlockWait: 60 * time.Second}) {
		t.Errorf("retry %+v", cfg.Retry)
	}
	if p := cfg.Retry.Policy(); p != (retry.Policy{Base: time.Second, MaxAttempts: 6, BlockWait: time.Minute}) {
		t.Errorf("policy %+v", p)
	}
	if cfg.Alert != nil {
		t.Errorf("alert %+v", cfg.Alert)
	}
}

// consistency_delay accepts anything above 0 up to 10m, also from ${VAR}.
func TestConsistencyDelay(t *testing.T) {
	for doc, want := range map[string]time.Duration{
		"consistency_delay: 10m":              10 * time.Minute,
		"consistency_delay: 1ms":              time.Millisecond,
		"consistency_delay: 1m30s":            90 * time.Second,
		`consistency_delay: "${DELAY}"`:       30 * time.Second,
		"consistency_delay: ~":                10 * time.Second,
		"start_trigger: false # no delay set": 10 * time.Second,
	} {
		look := func(n string) (string, bool) {
			if n == "DELAY" {
				return "30s", true
			}
			return lookup(n)
		}
		cfg, err := Parse([]byte(lines(W, "jiandaoyun:", `  api_key: "${K}"`, "  app_id: a", "  entry_id: e", "  "+doc, M)), "c.yaml", look)
		if err != nil {
			t.Errorf("%s: %v", doc, err)
			continue
		}
		if cfg.Jiandaoyun.ConsistencyDelay != want {
			t.Errorf("%s: got %v, want %v", doc, cfg.Jiandaoyun.ConsistencyDelay, want)
		}
	}
}

func TestFullConfig(t *testing.T) {
	doc := lines(
		"timezone: UTC",
		"store: /var/lib/cs/state.db",
		"wecom:",
		"  base_url: http://127.0.0.1:8080/",
		"  corp_id: ${WECOM_CORP_ID}",
		"  secret: ${S}",
		"  users:",
		"    departments: [1, 0x10]",
		"    userids: [zhangsan, 12345, '${A}']",
		"    exclude: [lisi]",
		"  rate_per_minute: 0.5",
		"jiandaoyun:",
		"  base_url: http://localhost:9000/api/",
		`  api_key: "${K}"`,
		"  app_id: app",
		"  entry_id: entry",
		"  start_workflow: true",
		"  start_trigger: true",
		"  concurrency: ${N}",
		"  rate_per_second: {create: 1, batch_create: 2, update: 3, list: 4, global: 5.5}",
		"sync: {months: 3, settle_days: 0}",
		"retry: {base: 200ms, max_attempts: 2, block_wait: 0s}",
		"alert:",
		"  wecom_webhook: ${LHOOK}",
		"  on: [recovery, recovery]",
		"mapping:",
		"  key: sync_key",
		"  fields:",
		"    sync_key: {source: key}",
		"    late: {source: 'exception_infos[exception=1].count', default: 0}",
		"    ratio: {source: x, default: 1.5}",
		"    flag: {source: y, default: true}",
		"    note: {source: z, default: 'n/a', as: text}",
		"    kind:",
		"      source: base_info.record_type",
		"      as: enum",
		"      enum: {1: 固定上下班, '3': 按班次上下班, 2.0: 自由上下班}",
		"    days:",
		"      source: sp_items",
		"      as: subform",
		"      fields:",
		"        leave: {source: name}",
		"        dur: {source: duration, as: hours}",
	)
	cfg, err := Parse([]byte(doc), "/x/checkin-sync.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Location.String() != "UTC" || cfg.Store != "/var/lib/cs/state.db" {
		t.Errorf("tz %v store %q", cfg.Location, cfg.Store)
	}
	w := cfg.WeCom
	if w.BaseURL != "http://127.0.0.1:8080" || w.CorpID != "ww0123456789" || w.Secret != testEnv["S"] || w.RatePerMinute != 0.5 {
		t.Errorf("wecom %+v", w)
	}
	if w.Users.Departments != nil || fmt.Sprint(w.Users.UserIDs) != "[zhangsan 12345 alpha]" || fmt.Sprint(w.Users.Exclude) != "[lisi]" {
		t.Errorf("users %+v", w.Users)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "departments is ignored") {
		t.Errorf("warnings %q", cfg.Warnings)
	}
	j := cfg.Jiandaoyun
	if j.BaseURL != "http://localhost:9000" || j.APIKey != testEnv["K"] || !j.StartWorkflow || !j.StartTrigger || j.Concurrency != 7 ||
		j.Rates != (Rates{1, 2, 3, 4, 5.5}) {
		t.Errorf("jiandaoyun %+v", j)
	}
	if cfg.Sync != (Sync{3, 0}) || cfg.Retry != (Retry{200 * time.Millisecond, 2, 0}) {
		t.Errorf("sync %+v retry %+v", cfg.Sync, cfg.Retry)
	}
	if cfg.Alert == nil || cfg.Alert.WeComWebhook != testEnv["LHOOK"] || fmt.Sprint(cfg.Alert.On) != "[recovery]" {
		t.Errorf("alert %+v", cfg.Alert)
	}
	f := cfg.Mapping.Fields
	if cfg.Mapping.Line != 26 || len(f) != 7 {
		t.Fatalf("mapping line %d, %d fields", cfg.Mapping.Line, len(f))
	}
	if f[1].Source != "exception_infos[exception=1].count" || f[1].Default != int64(0) || !f[1].HasDefault || f[1].Line != 30 {
		t.Errorf("late %+v", f[1])
	}
	if f[2].Default != 1.5 || f[3].Default != true || f[4].Default != "n/a" || f[4].As != "text" || f[0].HasDefault {
		t.Errorf("defaults %v %v %v %v", f[2].Default, f[3].Default, f[4].Default, f[0].HasDefault)
	}
	if fmt.Sprint(f[5].Enum) != "map[1:固定上下班 2:自由上下班 3:按班次上下班]" || f[5].Line != 34 {
		t.Errorf("enum %v line %d", f[5].Enum, f[5].Line)
	}
	sub := f[6]
	if sub.As != "subform" || len(sub.Fields) != 2 || sub.Fields[0].Target != "leave" || sub.Fields[1].As != "hours" || sub.Fields[1].Line != 43 {
		t.Errorf("subform %+v", sub)
	}
}

func TestExpansionInsideValues(t *testing.T) {
	env := map[string]string{
		"SECRET": `p@ss: word # not a comment ${X} $$`,
		"CORP":   "ww1",
		"KEY":    "k: v",
		"APP":    "app",
	}
	look := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	doc := lines(
		"wecom:",
		"  corp_id: pre-${CORP}-post",
		"  secret: ${SECRET}",
		"jiandaoyun:",
		"  api_key: '${KEY}'",
		`  app_id: "$${APP}"`,
		"  entry_id: cost$$5-$x-${APP}$",
		"mapping: {key: k, fields: {k: {source: key}}}",
	)
	cfg, err := Parse([]byte(doc), "c.yaml", look)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeCom.Secret != env["SECRET"] {
		t.Errorf("secret %q, want it intact", cfg.WeCom.Secret)
	}
	if cfg.WeCom.CorpID != "pre-ww1-post" {
		t.Errorf("corp_id %q", cfg.WeCom.CorpID)
	}
	if cfg.Jiandaoyun.APIKey != "k: v" {
		t.Errorf("api_key %q", cfg.Jiandaoyun.APIKey)
	}
	if cfg.Jiandaoyun.AppID != "${APP}" {
		t.Errorf("$$ should be a literal $: app_id %q", cfg.Jiandaoyun.AppID)
	}
	if cfg.Jiandaoyun.EntryID != "cost$5-$x-app$" {
		t.Errorf("entry_id %q", cfg.Jiandaoyun.EntryID)
	}
}

func TestExpand(t *testing.T) {
	env := map[string]string{"A": "1", "B_2": "two", "E": ""}
	look := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	for in, out := range map[string]string{
		"":             "",
		"plain":        "plain",
		"${A}":         "1",
		"x${A}y${B_2}": "x1ytwo",
		"$$":           "$",
		"$$${A}":       "$1",
		"$${A}":        "${A}",
		"$":            "$",
		"a$b":          "a$b",
		"${E}":         "",
		"100$":         "100$",
	} {
		got, _, err := expand(in, look)
		if err != nil || got != out {
			t.Errorf("expand(%q) = %q, %v; want %q", in, got, err, out)
		}
	}
	for in, msg := range map[string]string{
		"${MISSING}":     "environment variable MISSING is not set",
		"${M1}-${M2}":    "environment variables M1, M2 are not set",
		"${A":            "unterminated",
		"${}":            "not a valid",
		"${A B}":         "not a valid",
		"${9X}":          "not a valid",
		"${A}${MISSING}": "MISSING is not set",
	} {
		_, _, err := expand(in, look)
		if err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("expand(%q) error %v, want %q", in, err, msg)
		}
	}
}

func TestStorePath(t *testing.T) {
	for _, tc := range []struct{ file, store, want string }{
		{"/etc/cs/checkin-sync.yaml", "", "/etc/cs/checkin-sync.db"},
		{"/etc/cs/checkin-sync.yaml", "store: data/state.db", "/etc/cs/data/state.db"},
		{"/etc/cs/checkin-sync.yaml", "store: ../state.db", "/etc/state.db"},
		{"/etc/cs/checkin-sync.yaml", "store: /var/lib/x.db", "/var/lib/x.db"},
	} {
		cfg, err := Parse([]byte(lines(W, J, M, tc.store)), tc.file, lookup)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Store != tc.want {
			t.Errorf("%q in %s: store %q, want %q", tc.store, tc.file, cfg.Store, tc.want)
		}
	}
	// A relative config path resolves against the working directory.
	wd, _ := os.Getwd()
	cfg, err := Parse([]byte(lines(W, J, M)), "sub/checkin-sync.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if want := filepath.Join(wd, "sub", "checkin-sync.db"); cfg.Store != want || cfg.Dir != filepath.Join(wd, "sub") {
		t.Errorf("store %q dir %q, want %q", cfg.Store, cfg.Dir, want)
	}
}

func TestLocate(t *testing.T) {
	env := func(v string) func(string) string {
		return func(name string) string {
			if name == "CHECKIN_SYNC_CONFIG" {
				return v
			}
			return ""
		}
	}
	if got := Locate("flag.yaml", env("env.yaml")); got != "flag.yaml" {
		t.Errorf("flag first: %q", got)
	}
	if got := Locate("", env("env.yaml")); got != "env.yaml" {
		t.Errorf("env second: %q", got)
	}
	if got := Locate("", env("")); got != "./checkin-sync.yaml" {
		t.Errorf("default: %q", got)
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "checkin-sync.yaml")
	if err := os.WriteFile(path, []byte(lines(W, J, M, "store: state/x.db")), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := Load(path, lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.File != path || cfg.Dir != dir || cfg.Store != filepath.Join(dir, "state", "x.db") {
		t.Errorf("paths %q %q %q", cfg.File, cfg.Dir, cfg.Store)
	}

	_, err = Load(filepath.Join(dir, "missing.yaml"), lookup)
	var ce *Error
	if !errors.As(err, &ce) || !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
	for _, s := range []string{"missing.yaml", "not found", "checkin-sync init", "--config"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("missing-file error lacks %q: %v", s, err)
		}
	}

	_, err = Load(dir, lookup)
	if !errors.As(err, &ce) || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("directory: %v", err)
	}

	big := filepath.Join(dir, "big.yaml")
	if err := os.WriteFile(big, make([]byte, maxSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err = Load(big, lookup); !errors.As(err, &ce) || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("big file: %v", err)
	}
}

func TestBaseURLs(t *testing.T) {
	for in, want := range map[string]string{
		"https://api.jiandaoyun.com":       "https://api.jiandaoyun.com",
		"https://api.jiandaoyun.com/":      "https://api.jiandaoyun.com",
		"https://api.jiandaoyun.com/api":   "https://api.jiandaoyun.com",
		"https://api.jiandaoyun.com/api/":  "https://api.jiandaoyun.com",
		"https://proxy.example/jdy/api":    "https://proxy.example/jdy",
		"http://127.0.0.5:81/api":          "http://127.0.0.5:81",
		"http://[::1]:9000":                "http://[::1]:9000",
		"http://LOCALHOST:9000/api":        "http://LOCALHOST:9000",
		"https://api.jiandaoyun.com/apis/": "https://api.jiandaoyun.com/apis",
	} {
		doc := lines(W, fmt.Sprintf(`jiandaoyun: {base_url: %q, api_key: "${K}", app_id: a, entry_id: e}`, in), M)
		cfg, err := Parse([]byte(doc), "c.yaml", lookup)
		if err != nil {
			t.Errorf("%s: %v", in, err)
			continue
		}
		if cfg.Jiandaoyun.BaseURL != want {
			t.Errorf("%s -> %s, want %s", in, cfg.Jiandaoyun.BaseURL, want)
		}
	}
	for _, bad := range []string{"http://10.0.0.1", "http://128.0.0.1", "ftp://127.0.0.1", "https://", "http://localhost.example.com"} {
		doc := lines(fmt.Sprintf(`wecom: {base_url: %q, corp_id: ww1, secret: "${S}"}`, bad), J, M)
		if _, err := Parse([]byte(doc), "c.yaml", lookup); err == nil {
			t.Errorf("%s accepted", bad)
		}
	}
}

func TestUserIDsReplaceDepartments(t *testing.T) {
	// userids alone: the default departments are dropped without a warning.
	cfg, err := Parse([]byte(lines(`wecom: {corp_id: ww1, secret: "${S}", users: {userids: [a, b], exclude: [b]}}`, J, M)), "c.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeCom.Users.Departments != nil || len(cfg.Warnings) != 0 || fmt.Sprint(cfg.WeCom.Users.UserIDs) != "[a b]" {
		t.Errorf("users %+v warnings %q", cfg.WeCom.Users, cfg.Warnings)
	}
	// Both written: departments are ignored, with a warning.
	cfg, err = Parse([]byte(lines(`wecom: {corp_id: ww1, secret: "${S}", users: {departments: [3], userids: [a]}}`, J, M)), "c.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeCom.Users.Departments != nil || len(cfg.Warnings) != 1 {
		t.Errorf("users %+v warnings %q", cfg.WeCom.Users, cfg.Warnings)
	}
}

func TestAlertSection(t *testing.T) {
	// Absent and null alert sections both mean "no alerts".
	for _, extra := range []string{"", "alert:", "alert: ~"} {
		cfg, err := Parse([]byte(lines(W, J, M, extra)), "c.yaml", lookup)
		if err != nil {
			t.Fatal(err)
		}
		if cfg.Alert != nil {
			t.Errorf("%q: alert %+v", extra, cfg.Alert)
		}
	}
	cfg, err := Parse([]byte(lines(W, J, M, `alert: {wecom_webhook: "${LHOOK}"}`)), "c.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(cfg.Alert.On) != "[failure recovery]" {
		t.Errorf("default on: %v", cfg.Alert.On)
	}
}

func TestEnvValuesNotEchoed(t *testing.T) {
	env := map[string]string{"TZ_NAME": "TOPSECRET/zone", "U": "ftp://TOPSECRET", "C": "TOPSECRET-conv", "S": "s", "K": "k"}
	look := func(n string) (string, bool) { v, ok := env[n]; return v, ok }
	doc := lines(
		`timezone: "${TZ_NAME}"`,
		`wecom: {base_url: "${U}", corp_id: ww1, secret: "${S}", rate_per_minute: "${C}"}`,
		J,
		`mapping: {key: "${C}", fields: {k: {source: key, as: "${C}"}}}`,
	)
	_, err := Parse([]byte(doc), "c.yaml", look)
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 5 {
		t.Fatalf("want 5 problems, got %v", err)
	}
	if strings.Contains(err.Error(), "TOPSECRET") {
		t.Errorf("error echoes an environment value:\n%v", err)
	}
	if !strings.Contains(err.Error(), `"${TZ_NAME}", from the environment`) {
		t.Errorf("error should show the value as written:\n%v", err)
	}
}

func TestAliases(t *testing.T) {
	doc := lines(
		W, J,
		"mapping:",
		"  key: k",
		"  fields:",
		"    k: {source: key}",
		"    a: &f {source: base_info.name}",
		"    b: *f",
		"    loop: &l {source: items, as: subform, fields: {x: *l}}",
	)
	_, err := Parse([]byte(doc), "c.yaml", lookup)
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 1 || !strings.Contains(ce.Problems[0].Msg, "cannot hold another subform") {
		t.Fatalf("alias loop: %v", err)
	}
}

func TestUnknownKeySuggestion(t *testing.T) {
	for key, fix := range map[string]string{
		"jiandaoyun.concurency":        "did you mean jiandaoyun.concurrency?",
		"jiandaoyun.rate_per_secnod":   "did you mean jiandaoyun.rate_per_second?",
		"wecom.user":                   "did you mean wecom.users?",
		"wecom.months":                 "did you mean sync.months? Move it there",
		"wecom.completely_unknown_key": "known keys here: base_url, corp_id, secret, users, rate_per_minute, list_per_minute",
	} {
		section, name, _ := strings.Cut(key, ".")
		var doc string
		if section == "wecom" {
			doc = lines(fmt.Sprintf(`wecom: {corp_id: ww1, secret: "${S}", %s: 1}`, name), J, M)
		} else {
			doc = lines(W, fmt.Sprintf(`jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, %s: 1}`, name), M)
		}
		_, err := Parse([]byte(doc), "c.yaml", lookup)
		var ce *Error
		if !errors.As(err, &ce) || len(ce.Problems) != 1 || ce.Problems[0].Key != key || ce.Problems[0].Fix != fix {
			t.Errorf("%s: got %v, want fix %q", key, err, fix)
		}
	}
}

func FuzzLoad(f *testing.F) {
	f.Add(Template())
	f.Add([]byte(lines(W, J, M)))
	f.Add([]byte(lines(W, J, M, `alert: {wecom_webhook: "${LHOOK}", on: [failure]}`, "retry: {base: 1ms}")))
	f.Add([]byte("mapping: {key: k, fields: {k: &a {source: key, as: subform, fields: {x: *a}}}}"))
	f.Add([]byte("wecom: {<<: *x}\n"))
	f.Add([]byte("a: ${\n"))
	f.Add([]byte("- [1, {a: !!binary aGk=}]\n"))
	f.Add([]byte("enum: {1: a, 0x1: b, 1.0: c}\n"))
	const secret = "FUZZSECRET"
	look := func(name string) (string, bool) {
		if name == "UNSET" {
			return "", false
		}
		return secret, true
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(data, "fuzz.yaml", look)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) || len(ce.Problems) == 0 {
				t.Fatalf("error is not a *config.Error with problems: %v", err)
			}
			if strings.Contains(err.Error(), secret) && !strings.Contains(string(data), secret) {
				t.Fatalf("error reveals an environment value: %v", err)
			}
			return
		}
		if cfg == nil || cfg.Location == nil || cfg.Mapping.Key == "" || len(cfg.Mapping.Fields) == 0 {
			t.Fatalf("accepted an incomplete config: %+v", cfg)
		}
	})
}

func TestTemplatePlaceholdersAreRefused(t *testing.T) {
	_, err := Parse(Template(), "/srv/cs/checkin-sync.yaml", lookup)
	var ce *Error
	if !errors.As(err, &ce) || len(ce.Problems) != 2 {
		t.Fatalf("want the two placeholders refused, got %v", err)
	}
	for i, want := range []struct {
		key, word string
	}{{"jiandaoyun.app_id", "EDIT_ME_APP_ID"}, {"jiandaoyun.entry_id", "EDIT_ME_ENTRY_ID"}} {
		p := ce.Problems[i]
		if p.Key != want.key || p.Line == 0 || !strings.Contains(p.Msg, want.word) || p.Fix == "" {
			t.Errorf("problem %d = %+v, want %s with its line, the placeholder and a fix", i, p, want.key)
		}
	}
	// Anywhere in the file, not only in the two ids.
	_, err = Parse([]byte(lines(`wecom: {corp_id: EDIT_ME_CORP, secret: "${S}"}`, J, M)), "c.yaml", lookup)
	if err == nil || !strings.Contains(err.Error(), "c.yaml:1: wecom.corp_id: still holds the template's placeholder \"EDIT_ME_CORP\"") {
		t.Errorf("corp_id placeholder: %v", err)
	}
}

func TestWithoutSecretsNeverReadsThem(t *testing.T) {
	read := map[string]bool{}
	env := func(name string) (string, bool) {
		read[name] = true
		switch name {
		case "WECOM_CORP_ID":
			return "ww1", true
		}
		return "", false
	}
	doc := []byte(lines(`wecom: {corp_id: "${WECOM_CORP_ID}", secret: "${WECOM_SECRET}"}`,
		`jiandaoyun: {api_key: "${JDY_API_KEY}", app_id: a, entry_id: e}`,
		`alert: {wecom_webhook: "${HOOK}"}`, M))
	if _, err := Parse(doc, "c.yaml", env); err == nil {
		t.Fatal("without the option, unset secrets must be errors")
	}
	clear(read)
	cfg, err := Parse(doc, "c.yaml", env, WithoutSecrets())
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeCom.Secret != "" || cfg.Jiandaoyun.APIKey != "" || cfg.WeCom.CorpID != "ww1" {
		t.Errorf("got %+v %+v", cfg.WeCom, cfg.Jiandaoyun)
	}
	for _, v := range []string{"WECOM_SECRET", "JDY_API_KEY", "HOOK"} {
		if read[v] {
			t.Errorf("%s was read", v)
		}
	}
	// Absent secret keys are no error either; a literal secret still is.
	if _, err := Parse([]byte(lines(`wecom: {corp_id: ww1}`, `jiandaoyun: {app_id: a, entry_id: e}`, M)), "c.yaml", env, WithoutSecrets()); err != nil {
		t.Errorf("absent secrets: %v", err)
	}
	_, err = Parse([]byte(lines(`wecom: {corp_id: ww1, secret: hunter2}`, J, M)), "c.yaml", env, WithoutSecrets())
	if err == nil || !strings.Contains(err.Error(), "wecom.secret: is a secret and must not be written in the file") || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("literal secret: %v", err)
	}
}

func TestStoreTildeIsHome(t *testing.T) {
	env := func(home string) func(string) (string, bool) {
		return func(name string) (string, bool) {
			if name == "HOME" {
				return home, home != ""
			}
			return lookup(name)
		}
	}
	cfg, err := Parse([]byte(lines("store: ~/cs/x.db", W, J, M)), "/etc/cs/c.yaml", env("/home/hr"))
	if err != nil || cfg.Store != "/home/hr/cs/x.db" {
		t.Fatalf("store = %v, %v; want /home/hr/cs/x.db", cfg, err)
	}
	// A bare ~ is YAML's null: the default store.
	cfg, err = Parse([]byte(lines("store: ~", W, J, M)), "/etc/cs/c.yaml", env("/home/hr"))
	if err != nil || cfg.Store != "/etc/cs/checkin-sync.db" {
		t.Fatalf("store ~ = %v, %v", cfg, err)
	}
	for doc, want := range map[string]string{
		"store: ~hr/x.db": "c.yaml:1: store: a path starting with ~user is not supported",
		"store: ~/x.db":   "c.yaml:1: store: starts with ~ but HOME is not set",
	} {
		_, err := Parse([]byte(lines(doc, W, J, M)), "c.yaml", env(""))
		if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "Fix: ") {
			t.Errorf("%s: got %v, want %q with a fix", doc, err, want)
		}
	}
	// A ~ inside the path is an ordinary character.
	cfg, err = Parse([]byte(lines("store: ./a~b.db", W, J, M)), "/etc/cs/c.yaml", env(""))
	if err != nil || cfg.Store != "/etc/cs/a~b.db" {
		t.Errorf("store ./a~b.db = %v, %v", cfg, err)
	}
}

func TestRatesAboveDocumentedLimitsWarn(t *testing.T) {
	doc := lines(`wecom: {corp_id: ww1, secret: "${S}", rate_per_minute: 100000, list_per_minute: 20000}`,
		`jiandaoyun:`,
		`  api_key: "${K}"`,
		`  app_id: a`,
		`  entry_id: e`,
		`  rate_per_second: {create: 21, batch_create: 11, update: 25, list: 31, global: 51}`, M)
	cfg, err := Parse([]byte(doc), "c.yaml", lookup)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.WeCom.RatePerMinute != 100000 || cfg.WeCom.ListPerMinute != 20000 || cfg.Jiandaoyun.Rates.Global != 51 {
		t.Errorf("rates not kept as given: %+v %+v", cfg.WeCom, cfg.Jiandaoyun.Rates)
	}
	want := []string{
		"wecom.rate_per_minute (line 1) is 100000, above the limit of 60 calls a minute that WeCom documents for getcheckin_monthdata; above it WeCom answers 45009 and blocks the app for a minute; lower it to 60 or less",
		"wecom.list_per_minute (line 1) is 20000, above the limit of 10000 calls a minute",
		"jiandaoyun.rate_per_second.create (line 6) is 21, above the limit of 20 requests a second that Jiandaoyun documents; above it Jiandaoyun refuses requests with 8303 or 8304",
		"jiandaoyun.rate_per_second.batch_create (line 6) is 11, above the limit of 10",
		"jiandaoyun.rate_per_second.update (line 6) is 25, above the limit of 20",
		"jiandaoyun.rate_per_second.list (line 6) is 31, above the limit of 30",
		"jiandaoyun.rate_per_second.global (line 6) is 51, above the limit of 50 requests a second that Jiandaoyun documents for the whole enterprise",
	}
	if len(cfg.Warnings) != len(want) {
		t.Fatalf("warnings:\n%s", strings.Join(cfg.Warnings, "\n"))
	}
	for i, w := range want {
		if !strings.HasPrefix(cfg.Warnings[i], w) {
			t.Errorf("warning %d:\n got %s\nwant %s…", i, cfg.Warnings[i], w)
		}
	}
	// At the limits: no warning.
	doc = lines(`wecom: {corp_id: ww1, secret: "${S}", rate_per_minute: 60, list_per_minute: 10000}`,
		`jiandaoyun: {api_key: "${K}", app_id: a, entry_id: e, rate_per_second: {create: 20, batch_create: 10, update: 20, list: 30, global: 50}}`, M)
	if cfg, err := Parse([]byte(doc), "c.yaml", lookup); err != nil || len(cfg.Warnings) != 0 {
		t.Errorf("at the limits: %v %v", err, cfg.Warnings)
	}
}

func TestListPerMinute(t *testing.T) {
	cfg, err := Parse([]byte(lines(W, J, M)), "c.yaml", lookup)
	if err != nil || cfg.WeCom.ListPerMinute != DefaultListPerMinute || DefaultListPerMinute != 6000 {
		t.Fatalf("default list_per_minute = %v, %v", cfg, err)
	}
	cfg, err = Parse([]byte(lines(`wecom: {corp_id: ww1, secret: "${S}", list_per_minute: 1200}`, J, M)), "c.yaml", lookup)
	if err != nil || cfg.WeCom.ListPerMinute != 1200 {
		t.Fatalf("list_per_minute 1200 = %v, %v", cfg, err)
	}
	_, err = Parse([]byte(lines(`wecom: {corp_id: ww1, secret: "${S}", list_per_minute: 0}`, J, M)), "c.yaml", lookup)
	if err == nil || !strings.Contains(err.Error(), "c.yaml:1: wecom.list_per_minute: must be above 0 (got 0); Fix: use a positive number, or remove the key for the default 6000") {
		t.Errorf("list_per_minute 0: %v", err)
	}
}

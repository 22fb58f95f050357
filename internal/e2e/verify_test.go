package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// verifyOut is `verify --json`.
type verifyOut struct {
	Months   []string `json:"months"`
	Findings []struct {
		Kind    string   `json:"kind"`
		Key     string   `json:"key"`
		DataIDs []string `json:"data_ids"`
		Fields  []string `json:"fields"`
	} `json:"findings"`
	Counts map[string]int `json:"counts"`
	After  map[string]int `json:"after"`
}

func (e *env) verifyJSON(code int, args ...string) verifyOut {
	e.t.Helper()
	r := e.mustRun(code, append([]string{"--today", "2026-03-15", "verify", "--json"}, args...)...)
	var v verifyOut
	if err := json.Unmarshal([]byte(r.stdout), &v); err != nil {
		e.t.Fatalf("verify --json: %v\n%s", err, r)
	}
	return v
}

func wantVerifyCounts(t *testing.T, got map[string]int, missing, differ, duplicate, pending, unknown int) {
	t.Helper()
	want := map[string]int{"missing": missing, "differ": differ, "duplicate": duplicate, "pending": pending, "unknown": unknown}
	for k, n := range want {
		if got[k] != n {
			t.Fatalf("counts %v, want %v", got, want)
		}
	}
}

func copyData(data map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range data {
		out[k] = v
	}
	return out
}

// verify finds each kind of drift injected through the fake, --fix
// --dry-run writes nothing, --fix repairs each, and a second verify
// reports no drift.
func TestVerifyFindsAndFixesDrift(t *testing.T) {
	e := newEnv(t, envOptions{users: 20})
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	clean := e.mustRun(0, "--today", "2026-03-15", "verify")
	if !strings.Contains(clean.stdout, "0 missing, 0 differ, 0 duplicate, 0 pending, 0 unknown") {
		t.Fatalf("clean verify:\n%s", clean)
	}

	recs := e.srv.Records()
	missing := recs[0].Data["sync_key"].(string)
	differ := recs[1].Data["sync_key"].(string)
	dup := recs[2].Data["sync_key"].(string)
	e.srv.DeleteRecord(recs[0].ID)
	e.srv.EditRecord(recs[1].ID, "work_days", 999)
	e.srv.InsertRecordBy("hr.zhang", copyData(recs[2].Data))
	e.srv.InsertRecordBy("hr.zhang", copyData(recs[2].Data))
	e.srv.InsertRecord(map[string]any{"sync_key": "ghost|2026-02"}) // a key the store does not know
	e.srv.InsertRecord(map[string]any{"sync_key": "old hand-made row"})

	v := e.verifyJSON(1)
	wantVerifyCounts(t, v.Counts, 1, 1, 1, 0, 2)
	if len(v.Months) != 1 || v.Months[0] != "2026-02" {
		t.Fatalf("months %v", v.Months)
	}
	kinds := map[string]string{}
	for _, f := range v.Findings {
		kinds[f.Key] = f.Kind
		if f.Kind == "duplicate" && len(f.DataIDs) != 3 {
			t.Fatalf("duplicate %s: data_ids %v, want 3", f.Key, f.DataIDs)
		}
	}
	if kinds[missing] != "missing" || kinds[differ] != "differ" || kinds[dup] != "duplicate" || kinds["ghost|2026-02"] != "unknown" || kinds["old hand-made row"] != "unknown" {
		t.Fatalf("findings %+v", v.Findings)
	}
	// --deep names the field edited by hand, from the current report.
	for _, f := range e.verifyJSON(1, "--deep").Findings {
		if f.Kind == "differ" && strings.Join(f.Fields, ",") != "work_days" {
			t.Fatalf("--deep: fields %v, want [work_days]", f.Fields)
		}
	}
	// --month restricts: a month without records has nothing to report.
	wantVerifyCounts(t, e.verifyJSON(0, "--month", "2026-01").Counts, 0, 0, 0, 0, 0)

	text := e.mustRun(1, "--today", "2026-03-15", "verify")
	for _, line := range []string{"- missing   " + missing, "* differ    " + differ, "+ duplicate " + dup, "? unknown   ghost|2026-02",
		"1 missing, 1 differ, 1 duplicate, 0 pending, 2 unknown"} {
		if !strings.Contains(text.stdout, line) {
			t.Fatalf("text output lacks %q\n%s", line, text)
		}
	}

	c0, u0 := e.writes()
	d0 := e.srv.Calls("data/delete")
	dry := e.mustRun(1, "--today", "2026-03-15", "verify", "--fix", "--dry-run")
	if c, u := e.writes(); c != c0 || u != u0 || e.srv.Calls("data/delete") != d0 {
		t.Fatalf("--dry-run wrote\n%s", dry)
	}
	for _, s := range []string{"would re-create", "would rewrite", "would delete"} {
		if !strings.Contains(dry.stdout, s) {
			t.Fatalf("dry run lacks %q\n%s", s, dry)
		}
	}
	if n := strings.Count(dry.stdout, "would delete"); n != 2 {
		t.Fatalf("dry run would delete %d records, want 2\n%s", n, dry)
	}

	fix := e.mustRun(0, "--today", "2026-03-15", "verify", "--fix")
	if c, u := e.writes(); c != c0+1 || u != u0+1 {
		t.Fatalf("--fix made %d creates and %d updates, want 1 and 1\n%s", c-c0, u-u0, fix)
	}
	if n := e.srv.Calls("data/delete") - d0; n != 2 {
		t.Fatalf("--fix deleted %d records, want 2\n%s", n, fix)
	}
	if !strings.Contains(fix.stdout, "Repaired: 1 created, 1 updated, 2 deleted") {
		t.Fatalf("fix output:\n%s", fix)
	}
	runs := e.historyRuns()
	if len(runs) == 0 || runs[0].Command != "verify" || len(runs[0].Deleted) != 2 {
		t.Fatalf("history: newest run %+v, want verify with 2 deleted records", runs[0])
	}
	for _, d := range runs[0].Deleted {
		if d.Key != dup || len(d.Content) == 0 || !strings.Contains(string(d.Content), dup) {
			t.Fatalf("deleted record kept without its content: %+v", d)
		}
	}
	if dups := e.srv.Duplicates("sync_key"); len(dups) != 0 {
		t.Fatalf("duplicates left: %v", dups)
	}
	// A second verify: no drift; the unknown rows are listed, never deleted.
	after := e.verifyJSON(0)
	wantVerifyCounts(t, after.Counts, 0, 0, 0, 0, 2)
}

// rebuild after the store is lost: the next sync writes only the record
// edited by hand; a duplicate is reported and left for verify --fix.
func TestRebuildThenSyncUpdatesOnlyTheHandEdit(t *testing.T) {
	e := newEnv(t, envOptions{users: 20})
	sync := []string{"--today", "2026-03-15", "sync", "--month", "2026-02"}
	e.mustRun(0, sync...)
	recs := e.srv.Records()
	e.srv.EditRecord(recs[3].ID, "work_days", 999)
	e.srv.InsertRecordBy("hr.zhang", copyData(recs[4].Data))
	if err := os.Remove(filepath.Join(e.dir, "state.db")); err != nil {
		t.Fatal(err)
	}

	r := e.mustRun(0, "--today", "2026-03-15", "rebuild")
	for _, s := range []string{"2026-02: 20 checkpoints rebuilt from the form", "+ duplicate " + recs[4].Data["sync_key"].(string), "verify --fix"} {
		if !strings.Contains(r.stdout, s) {
			t.Fatalf("rebuild output lacks %q\n%s", s, r)
		}
	}
	st := e.statusJSON("2026-03-15")
	months := st["months"].([]any)
	found := false
	for _, m := range months {
		m := m.(map[string]any)
		if m["month"] == "2026-02" {
			found = true
			if m["synced"].(float64) != 20 || m["pending"].(float64) != 0 {
				t.Fatalf("status after rebuild: %v", m)
			}
		}
	}
	if !found {
		t.Fatalf("status lacks 2026-02: %v", st)
	}
	// The store holds what the form holds: only the duplicate is drift.
	wantVerifyCounts(t, e.verifyJSON(1).Counts, 0, 0, 1, 0, 0)

	c0, u0 := e.writes()
	e.mustRun(0, sync...)
	if c, u := e.writes(); c != c0 || u != u0+1 {
		t.Fatalf("sync after rebuild made %d creates and %d updates, want 0 and 1", c-c0, u-u0)
	}
	e.mustRun(0, "--today", "2026-03-15", "verify", "--fix")
	e.checkForm(feb)
	wantVerifyCounts(t, e.verifyJSON(0).Counts, 0, 0, 0, 0, 0)
}

// verify resolves a batch a killed sync left pending before it compares:
// its keys are adopted, never reported missing, and nothing is created
// twice.
func TestVerifySettlesPendingFirst(t *testing.T) {
	e := newEnv(t, envOptions{users: 20, consistencyDelay: 200 * time.Millisecond})
	leavePending(t, e, true, "2026-02")
	creates, _ := e.writes()
	v := e.verifyJSON(0, "--month", "2026-02")
	wantVerifyCounts(t, v.Counts, 0, 0, 0, 0, 0)
	if c, _ := e.writes(); c != creates {
		t.Fatalf("verify created %d batches while settling a batch already in the form", c-creates)
	}
	if dups := e.srv.Duplicates("sync_key"); len(dups) != 0 {
		t.Fatalf("duplicates: %v", dups)
	}
	runs := e.historyRuns()
	if len(runs) == 0 || runs[0].Command != "verify" || runs[0].Outcome != "success" {
		t.Fatalf("newest run %+v, want the verify that settled the batch", runs[0])
	}
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	e.checkForm(feb)
}

// A form large enough is read in two parts at once (4,100 records, 2,000 a
// part at least, concurrency 4): the first part reads on until it meets
// the second's start, which a data/get checked. Drift before, around and
// after the split is found exactly as a single walk finds it.
func TestVerifyReadsALargeFormInParts(t *testing.T) {
	e := newEnv(t, envOptions{users: 4100})
	e.mustRun(0, "--today", "2026-03-15", "sync", "--month", "2026-02")
	recs := e.srv.Records()
	if len(recs) != 4100 {
		t.Fatalf("%d records after the load, want 4100", len(recs))
	}
	gets, lists := e.srv.Calls("data/get"), e.srv.Calls("data/list")
	wantVerifyCounts(t, e.verifyJSON(0).Counts, 0, 0, 0, 0, 0)
	if n := e.srv.Calls("data/get") - gets; n != 1 {
		t.Fatalf("%d data/get calls, want 1: the second part's start", n)
	}
	// Wherever the second part starts, the first reads the pages up to
	// and including its start, and the second the rest of the 4,100
	// records and, when its last page is full, an empty one: 42 pages, as
	// many as one walk reads.
	if n := e.srv.Calls("data/list") - lists; n != 42 {
		t.Fatalf("%d data/list calls, want 42", n)
	}

	want := map[string]string{}
	for _, i := range []int{10, 2049, 2050, 2051, 4099} {
		e.srv.DeleteRecord(recs[i].ID)
		want[recs[i].Data["sync_key"].(string)] = "missing"
	}
	for _, i := range []int{0, 2048, 3000} {
		e.srv.EditRecord(recs[i].ID, "work_days", 999)
		want[recs[i].Data["sync_key"].(string)] = "differ"
	}
	for _, i := range []int{1, 2052} {
		e.srv.InsertRecordBy("hr.zhang", copyData(recs[i].Data))
		want[recs[i].Data["sync_key"].(string)] = "duplicate"
	}
	e.srv.InsertRecord(map[string]any{"sync_key": "ghost|2026-02"})
	want["ghost|2026-02"] = "unknown"

	v := e.verifyJSON(1)
	wantVerifyCounts(t, v.Counts, 5, 3, 2, 0, 1)
	for _, f := range v.Findings {
		if want[f.Key] != f.Kind {
			t.Fatalf("finding %s %s, want %q", f.Kind, f.Key, want[f.Key])
		}
	}
}

package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"checkin-sync/internal/fakeapi"
)

// scratchEntry is the scratch form the write probe writes to.
const scratchEntry = "fakescratch000000000001"

var probeArgs = []string{"--today", "2026-03-15", "check", "--write-probe", "--entry-id", scratchEntry, "--yes"}

// probeEnv is an env whose fake has a scratch form next to the synced one.
func probeEnv(t *testing.T, o envOptions) (*env, *fakeapi.Server) {
	t.Helper()
	e := newEnv(t, o)
	return e, e.srv.AddForm(scratchEntry)
}

// checkProbeClean fails unless the scratch form and the synced form hold
// no record.
func checkProbeClean(t *testing.T, e *env, scratch *fakeapi.Server) {
	t.Helper()
	if n := len(scratch.Records()); n != 0 {
		t.Errorf("the scratch form holds %d records after the probe, want 0", n)
	}
	if n := len(e.srv.Records()); n != 0 {
		t.Errorf("the synced form holds %d records after the probe, want 0", n)
	}
}

var worstLag = regexp.MustCompile(`list lag: worst (\d+)ms`)

// The probe tells each batch_create resend behaviour of the fake apart,
// measures the list lag, leaves both forms empty, and plain check then
// shows the date it ran.
func TestWriteProbeDetectsEverySwitch(t *testing.T) {
	t.Parallel()
	const lag = 300 * time.Millisecond
	cases := []struct {
		name string
		b    fakeapi.JDYBehaviour
		want []string
	}{
		{"dedupe", fakeapi.JDYBehaviour{TxMode: fakeapi.TxDedupe},
			[]string{"at once: answers with the first result, creates nothing", "after 2s: answers with the first result, creates nothing", "sync may resend"}},
		{"overwrite", fakeapi.JDYBehaviour{TxMode: fakeapi.TxOverwrite},
			[]string{"at once: replaces the first records with new ones", "after 2s: replaces the first records"}},
		{"ignore", fakeapi.JDYBehaviour{TxMode: fakeapi.TxIgnore},
			[]string{"at once: CREATES THE RECORDS AGAIN", "after 2s: CREATES THE RECORDS AGAIN", "sync never resends a batch under its transaction_id"}},
		{"reject-17026", fakeapi.JDYBehaviour{TxMode: fakeapi.TxReject},
			[]string{"at once: answers error 17026, creates nothing", "after 2s: answers error 17026"}},
		{"reject-4000", fakeapi.JDYBehaviour{TxMode: fakeapi.TxReject, ResendCode: 4000},
			[]string{"at once: answers error 4000, creates nothing"}},
		{"listlag", fakeapi.JDYBehaviour{TxMode: fakeapi.TxDedupe, ListLag: lag},
			[]string{"at once: answers with the first result"}},
		{"lossy-number", fakeapi.JDYBehaviour{LossyTypes: []string{"number"}},
			[]string{"round trip: does not survive: number (of datetime, number, text)", "treats fields of these types as changed"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			e, scratch := probeEnv(t, envOptions{users: 5})
			e.srv.SetJDYBehaviour(c.b)
			r := e.mustRun(0, probeArgs...)
			for _, w := range c.want {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("the probe's output lacks %q\n%s", w, r)
				}
			}
			if c.b.LossyTypes == nil && !strings.Contains(r.stdout, "round trip: every widget type survives") {
				t.Errorf("the probe's output lacks the round trip\n%s", r)
			}
			for _, w := range []string{"an update touches only the fields it is given",
				"\n5. in filter (200 values): exact, case-sensitive, misses nothing\n", "deleted ", "Saved in the store, probed on 2026-03-15"} {
				if !strings.Contains(r.stdout, w) {
					t.Errorf("the probe's output lacks %q\n%s", w, r)
				}
			}
			m := worstLag.FindStringSubmatch(r.stdout)
			if m == nil {
				t.Fatalf("no list lag in the output\n%s", r)
			}
			ms, _ := strconv.Atoi(m[1])
			if c.b.ListLag > 0 && time.Duration(ms)*time.Millisecond < c.b.ListLag-50*time.Millisecond {
				t.Errorf("worst list lag %dms, want about %s", ms, c.b.ListLag)
			}
			if c.b.ListLag == 0 && ms > 200 {
				t.Errorf("worst list lag %dms without a lag", ms)
			}
			checkProbeClean(t, e, scratch)
			plain := e.run("--today", "2026-03-15", "check")
			if !strings.Contains(plain.stdout, "write behaviour: probed on 2026-03-15") {
				t.Errorf("plain check does not show the probe\n%s", plain)
			}
			if lossy := strings.Contains(plain.stdout, "round trip: widget types that do not read back as written: number"); lossy != (c.b.LossyTypes != nil) {
				t.Errorf("plain check flags a type that does not round-trip: %v, want %v\n%s", lossy, c.b.LossyTypes != nil, plain)
			}
		})
	}
}

// The probe refuses the synced form, a missing --entry-id and, without a
// terminal, a run without --yes; plain check names the command before
// any probe.
func TestWriteProbeRefuses(t *testing.T) {
	t.Parallel()
	e, scratch := probeEnv(t, envOptions{users: 3})
	cr := e.srv.Credentials()
	cases := [][]string{
		{"check", "--write-probe", "--entry-id", cr.EntryID, "--yes"},
		{"check", "--write-probe", "--yes"},
		{"check", "--write-probe", "--entry-id", scratchEntry},
	}
	for _, args := range cases {
		r := e.run(args...)
		if r.code != 2 {
			t.Errorf("%v: exit %d, want 2\n%s", args, r.code, r)
		}
	}
	checkProbeClean(t, e, scratch)
	if n := e.srv.Calls("data/batch_create"); n != 0 {
		t.Errorf("a refused probe called batch_create %d times", n)
	}
	plain := e.run("--today", "2026-03-15", "check")
	if !strings.Contains(plain.stdout, "write behaviour: not probed") || !strings.Contains(plain.stdout, "check --write-probe --entry-id") {
		t.Errorf("plain check does not name the probe\n%s", plain)
	}
}

// A probe killed while its last batch is on its way leaves records; the
// next probe deletes them first, and verify never counts probe records.
func TestWriteProbeKilledLeftoversDeletedByNext(t *testing.T) {
	t.Parallel()
	d := newDecidesEnv(t, envOptions{users: 3}, 200*time.Millisecond)
	scratch := d.srv.AddForm(scratchEntry)
	gate := fakeapi.NewGate()
	// The probe's batch_creates: the first send, two resends, three lag
	// samples, the typical values; the eighth is the in filter's 100
	// records (its other 100 values are keys it never writes).
	steps := make([]fakeapi.Step, 7, 8)
	steps = append(steps, fakeapi.Step{After: gate})
	d.proxy.Next("data/batch_create", steps...)
	p := d.start(probeArgs...)
	p.inside("the in filter's batch", gate.Arrived())
	if r := p.kill(); r.code == 0 {
		t.Fatalf("the killed probe exited 0\n%s", r)
	}
	gate.Release()
	if n := len(scratch.Records()); n < probeInRecords {
		t.Fatalf("the killed probe left %d records, want at least %d", n, probeInRecords)
	}
	r := d.mustRun(0, probeArgs...)
	if !regexp.MustCompile(`deleted [1-9]\d* records an earlier probe left`).MatchString(r.stdout) {
		t.Errorf("the next probe does not say it deleted the leftovers\n%s", r)
	}
	checkProbeClean(t, d.env, scratch)
}

// probeInRecords is how many records the in filter's batch writes.
const probeInRecords = 100

// After a probe that found that a resend creates again and that the list
// lags, a sync whose batch answers are lost stays free of duplicates: the
// consistency delay (configured shorter than the lag) is raised to three
// times the lag, and no batch is resent under its transaction_id.
func TestSyncAfterProbeStaysDuplicateFree(t *testing.T) {
	t.Parallel()
	const lag = 250 * time.Millisecond
	d := newDecidesEnv(t, envOptions{users: 8}, 50*time.Millisecond)
	scratch := d.srv.AddForm(scratchEntry)
	d.srv.SetJDYBehaviour(fakeapi.JDYBehaviour{TxMode: fakeapi.TxIgnore, ListLag: lag})
	r := d.mustRun(0, probeArgs...)
	if !strings.Contains(r.stdout, "CREATES THE RECORDS AGAIN") {
		t.Fatalf("the probe did not find that a resend creates again\n%s", r)
	}
	checkProbeClean(t, d.env, scratch)
	d.proxy.LoseNext("data/batch_create", 2)
	s := d.mustRun(0, febArgs...)
	if !strings.Contains(s.stderr, "consistency delay raised") || !strings.Contains(s.stderr, "never resent under their transaction_id") {
		t.Errorf("sync does not log its adaptation to the probe\n%s", s)
	}
	d.checkForm(feb)
	d.rerunWritesNothing(febArgs...)
}

// Ctrl-C while the in filter's batch is on its way: the probe stops, and
// still deletes every record it wrote, the unanswered batch's too (found
// by key), before it exits.
func TestWriteProbeInterruptedCleansUp(t *testing.T) {
	t.Parallel()
	d := newDecidesEnv(t, envOptions{users: 3}, 200*time.Millisecond)
	scratch := d.srv.AddForm(scratchEntry)
	gate := fakeapi.NewGate()
	steps := make([]fakeapi.Step, 7, 8)
	steps = append(steps, fakeapi.Step{After: gate})
	d.proxy.Next("data/batch_create", steps...)
	p := d.start(probeArgs...)
	p.inside("the in filter's batch", gate.Arrived())
	if err := p.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	gate.Release()
	r := p.wait()
	if r.code != 130 || !strings.Contains(r.stderr, "interrupted") {
		t.Errorf("the interrupted probe: %s", r)
	}
	if !regexp.MustCompile(`deleted \d+ records from form`).MatchString(r.stdout) {
		t.Errorf("the interrupted probe does not say what it deleted\n%s", r)
	}
	checkProbeClean(t, d.env, scratch)
	// If the held answer never came, its keys stay listed and the next
	// probe looks them up again; either way nothing is left to delete.
	r = d.mustRun(0, probeArgs...)
	if regexp.MustCompile(`deleted [1-9]\d* records an earlier probe left`).MatchString(r.stdout) {
		t.Errorf("the next probe's cleanup of the earlier keys\n%s", r)
	}
	checkProbeClean(t, d.env, scratch)
}

// inTruncator fronts the fake and cuts every data/list in filter to its
// first `keep` values, as a form that silently honours only the first
// values of a long filter would; it records each in filter's length as
// sent.
type inTruncator struct {
	inner http.Handler
	keep  int

	mu   sync.Mutex
	sent []int
}

func (h *inTruncator) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/api/v5/app/entry/data/list" {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		var req map[string]any
		if json.Unmarshal(body, &req) == nil {
			if f, ok := req["filter"].(map[string]any); ok {
				conds, _ := f["cond"].([]any)
				for _, c := range conds {
					if c, ok := c.(map[string]any); ok && c["method"] == "in" {
						vals, _ := c["value"].([]any)
						h.mu.Lock()
						h.sent = append(h.sent, len(vals))
						h.mu.Unlock()
						if len(vals) > h.keep {
							c["value"] = vals[:h.keep]
						}
					}
				}
				if b, err := json.Marshal(req); err == nil {
					body = b
				}
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	h.inner.ServeHTTP(w, r)
}

// The in filter asks as many values as a lookup of sync sends, 200, with
// the written keys spread to its end: against a form that honours only the
// first 100 values it reports the keys missed (50 of the 98 it must find),
// and plain check repeats it.
func TestWriteProbeInFilterCatchesTruncation(t *testing.T) {
	t.Parallel()
	e, scratch := probeEnv(t, envOptions{users: 3})
	h := &inTruncator{inner: e.srv.Handler(), keep: 100}
	front := httptest.NewServer(h)
	t.Cleanup(front.Close)
	raw, err := os.ReadFile(e.config)
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(raw)
	if strings.Count(cfg, "base_url: "+e.base+"\n") != 2 {
		t.Fatalf("the harness config changed shape:\n%s", cfg)
	}
	cfg = strings.ReplaceAll(cfg, "base_url: "+e.base+"\n", "base_url: "+front.URL+"\n")
	if err := os.WriteFile(e.config, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.mustRun(0, probeArgs...)
	for _, w := range []string{
		"\n5. in filter (200 values): misses 50 of 98 records asked\n",
		"\n   → lookups by key cannot be trusted: keep verify in the schedule and report this\n",
	} {
		if !strings.Contains(r.stdout, w) {
			t.Errorf("the probe's output lacks %q\n%s", w, r)
		}
	}
	h.mu.Lock()
	sent := slices.Clone(h.sent)
	h.mu.Unlock()
	if len(sent) == 0 || slices.Max(sent) != 200 {
		t.Errorf("the in filters sent had %v values; want the longest to have 200", sent)
	}
	checkProbeClean(t, e, scratch)
	plain := e.run("--today", "2026-03-15", "check")
	if !strings.Contains(plain.stdout, "the in filter: misses 50 of 98 records asked") {
		t.Errorf("plain check does not repeat the in filter's finding\n%s", plain)
	}
}

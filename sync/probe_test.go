package sync

import (
	"encoding/json"
	"testing"
	"time"
)

func TestProbeAdaptNeverResendAndDelay(t *testing.T) {
	p := &ProbeResult{
		Resends:        []ResendResult{{Outcome: ResendDedupe, After: "0s"}, {Outcome: ResendCreates, After: "2s"}},
		ListLagWorstMS: 5000,
	}
	if !p.ResendCreatesAgain() {
		t.Fatal("a resend that created again is not reported")
	}
	opts, notes := p.Adapt(Options{ConsistencyDelay: 2 * time.Second})
	if !opts.NeverResendSameTxID || opts.ConsistencyDelay != 15*time.Second || len(notes) != 2 {
		t.Fatalf("adapted to %+v, notes %q", opts, notes)
	}
	// The default delay (zero) counts as DefaultConsistencyDelay: 3×1s is
	// under it, so it stays.
	p = &ProbeResult{Resends: []ResendResult{{Outcome: ResendError, Code: 17026}, {Outcome: ResendOverwrite}}, ListLagWorstMS: 1000}
	opts, notes = p.Adapt(Options{})
	if opts.NeverResendSameTxID || opts.ConsistencyDelay != 0 || len(notes) != 0 {
		t.Fatalf("adapted to %+v, notes %q", opts, notes)
	}
	// An outcome the probe could not tell is taken as the worst.
	p = &ProbeResult{Resends: []ResendResult{{Outcome: ResendUnclear}}}
	if opts, _ := p.Adapt(Options{}); !opts.NeverResendSameTxID {
		t.Fatal("an unclear resend does not stop resends")
	}
}

func TestParseProbeResult(t *testing.T) {
	if p, err := ParseProbeResult(nil); p != nil || err != nil {
		t.Fatalf("nil raw gives %v, %v", p, err)
	}
	if _, err := ParseProbeResult([]byte("{")); err == nil {
		t.Fatal("a broken result parses")
	}
	in := ProbeResult{Date: "2026-03-15", NotRoundTrip: []string{"datetime"}, ListLagWorstMS: 7}
	raw, _ := json.Marshal(in)
	p, err := ParseProbeResult(raw)
	if err != nil || p.Date != in.Date || p.ListLag() != 7*time.Millisecond || p.NotRoundTrip[0] != "datetime" {
		t.Fatalf("round trip gives %+v, %v", p, err)
	}
}

func TestResendableHonoursNeverResendSameTxID(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	b := &batch{items: []item{{hasData: true, hash: 1}}}
	b.p.FirstSentAt, b.p.Hashes = now, []uint64{1}
	for _, never := range []bool{false, true} {
		r := &run{e: &Engine{opts: Options{NeverResendSameTxID: never, ReplayWindow: time.Hour, Now: func() time.Time { return now }}}}
		if got := r.resendable(b); got == never {
			t.Errorf("NeverResendSameTxID %v: resendable %v", never, got)
		}
	}
}

func TestVerifySkipsProbeRecords(t *testing.T) {
	r := newMemRig(t, 5)
	r.want(r.run(), OutcomeSuccess, ExitOK)
	b, _ := json.Marshal(map[string]any{r.sink.keyField: map[string]any{"value": ProbeKeyPrefix + "x-values-001"}})
	r.sink.insert("alice", b, 0)
	if rep := r.verify(); len(rep.Findings) != 0 {
		t.Fatalf("verify counts a probe record: %+v", rep.Findings)
	}
	if !IsProbeKey(ProbeKeyPrefix+"a") || IsProbeKey("zhangsan|2026-02") {
		t.Fatal("IsProbeKey")
	}
}

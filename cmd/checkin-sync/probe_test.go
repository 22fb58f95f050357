package main

import (
	"bytes"
	"regexp"
	"strings"
	"testing"

	"checkin-sync/sync"
)

func TestProbeEmptyValues(t *testing.T) {
	for _, c := range []struct {
		raw   string
		empty bool
	}{{"", true}, {"null", true}, {`""`, true}, {"[]", true}, {"0", false}, {`"x"`, false}, {`[1]`, false}} {
		if got := isEmptyJSON([]byte(c.raw)); got != c.empty {
			t.Errorf("isEmptyJSON(%q) = %v", c.raw, got)
		}
	}
	for typ, want := range map[string]string{"text": `""`, "number": "null", "datetime": "null", "subform": "[]", "combocheck": "[]"} {
		if got := string(emptyOf(typ)); got != want {
			t.Errorf("emptyOf(%s) = %s, want %s", typ, got, want)
		}
	}
	if got := string(valueOf([]byte(`{"value":"a"}`))); got != `"a"` {
		t.Errorf("valueOf = %s", got)
	}
	if valueOf(nil) != nil {
		t.Error("valueOf(nil) is not nil")
	}
}

func TestProbeTxIDIsAUUID(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	a, b := sync.NewTxID(), sync.NewTxID()
	if !re.MatchString(a) || a == b {
		t.Fatalf("transaction ids %q, %q", a, b)
	}
}

func TestPrintProbeResult(t *testing.T) {
	p := &sync.ProbeResult{
		Resends:          []sync.ResendResult{{Outcome: sync.ResendCreates, After: "0s"}, {Outcome: sync.ResendError, Code: 17026, After: "2s"}},
		ListLagSamplesMS: []int64{100, 400}, ListLagWorstMS: 400,
		RoundTripTypes: []string{"datetime", "text"}, NotRoundTrip: []string{"datetime"},
		RoundTripDetail: []string{"month (datetime): wrote a, read back b"},
		InFilterDetail:  "misses 1 of 98 records asked",
	}
	var b bytes.Buffer
	printProbeResult(&b, p, "")
	out := b.String()
	for _, w := range []string{
		"at once: CREATES THE RECORDS AGAIN", "after 2s: answers error 17026", "sync never resends",
		"worst 400ms of 2 samples", "raised to 1.2s", "does not survive: datetime", "treats fields of these types as changed",
		"AN UPDATE CHANGED FIELDS", "in filter (100 values): misses 1 of 98",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if got := resendSummary(p); got != "creates/error 17026" {
		t.Errorf("resendSummary = %q", got)
	}
}

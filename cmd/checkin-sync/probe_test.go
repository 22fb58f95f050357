package main

import (
	"bytes"
	"fmt"
	"regexp"
	"strings"
	"testing"

	"checkin-sync/jiandaoyun"
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
		"AN UPDATE CHANGED FIELDS", "\n5. in filter (200 values): misses 1 of 98 records asked\n",
	} {
		if !strings.Contains(out, w) {
			t.Errorf("output lacks %q:\n%s", w, out)
		}
	}
	if got := resendSummary(p); got != "creates/error 17026" {
		t.Errorf("resendSummary = %q", got)
	}
}

// The in filter asks as many values as sync's lookups send: the probe's
// 100 written keys (98 as they are, one in upper case, one cut short) and
// 100 keys never written, alternating, with a written key last.
func TestProbeInFilterValues(t *testing.T) {
	if jiandaoyun.MaxKeysPerLookup != 200 || probeInRecords != 100 {
		t.Fatalf("MaxKeysPerLookup %d, probeInRecords %d: this test expects 200 and 100", jiandaoyun.MaxKeysPerLookup, probeInRecords)
	}
	written := make([]string, probeInRecords)
	for i := range written {
		written[i] = fmt.Sprintf("~probe~|run-in-%03d", i+7)
	}
	absent := make([]string, jiandaoyun.MaxKeysPerLookup-probeInRecords)
	for i := range absent {
		absent[i] = fmt.Sprintf("~probe~|run-none-%03d", i+107)
	}
	values, want := inFilterValues(written, absent)
	if len(values) != 200 || len(want) != 98 {
		t.Fatalf("%d values, %d wanted; want 200 and 98", len(values), len(want))
	}
	for i := 0; i < 100; i++ {
		if values[2*i] != absent[i] {
			t.Errorf("values[%d] = %v, want the unwritten %s", 2*i, values[2*i], absent[i])
		}
		w := any(written[i])
		switch i {
		case 0:
			w = "~PROBE~|RUN-IN-007"
		case 1:
			w = "~probe~|run-in-00"
		}
		if values[2*i+1] != w {
			t.Errorf("values[%d] = %v, want %v", 2*i+1, values[2*i+1], w)
		}
		if want[written[i]] != (i >= 2) {
			t.Errorf("want[%s] = %v", written[i], want[written[i]])
		}
	}
}

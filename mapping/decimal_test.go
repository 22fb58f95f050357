package mapping

import (
	"encoding/json"
	"errors"
	"math"
	"testing"
)

func TestParseDecCanonical(t *testing.T) {
	cases := []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"0.000", "0"},
		{"000", "0"},
		{"7", "7"},
		{"007", "7"},
		{"-12", "-12"},
		{"14400", "14400"},
		{"1.50", "1.5"},
		{"151.75", "151.75"},
		{"0.005", "0.005"},
		{"-0.5", "-0.5"},
		{"2e3", "2000"},
		{"2E+3", "2000"},
		{"1.25e-3", "0.00125"},
		{"125e-2", "1.25"},
		{"1e-7", "0.0000001"},
		{"9223372036854775807", "9223372036854775807"},
		{"92233720368547758070000", "92233720368547758070000"},
		{"100000000000000000000000000000", "100000000000000000000000000000"},
		{"0.10000000000000000000000000", "0.1"},
	}
	for _, c := range cases {
		d, err := parseDec(c.in)
		if err != nil {
			t.Errorf("parseDec(%q): %v", c.in, err)
			continue
		}
		if got := d.String(); got != c.want {
			t.Errorf("parseDec(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

func TestParseDecRejects(t *testing.T) {
	syntax := []string{"", "-", "+1", "1.", ".5", "1e", "1e+", "abc", "1,5", " 1", "1 ", "0x10", "1.2.3", "--1", "NaN", "Infinity"}
	for _, s := range syntax {
		if _, err := parseDec(s); !errors.Is(err, errNumSyntax) {
			t.Errorf("parseDec(%q): err = %v, want syntax error", s, err)
		}
	}
	ranged := []string{"9223372036854775808", "12345678901234567890123", "1e401", "1e-401", "1e999999999999"}
	for _, s := range ranged {
		if _, err := parseDec(s); !errors.Is(err, errNumRange) {
			t.Errorf("parseDec(%q): err = %v, want range error", s, err)
		}
	}
}

// Every way WeCom, the fakes or a plain decoder deliver a number gives the
// same decimal.
func TestDecOfEncodings(t *testing.T) {
	want := map[string][]any{
		"3":      {json.Number("3"), "3", 3.0, float32(3), 3, int64(3), int32(3), uint(3), uint64(3), uint8(3), json.Number("3.0"), json.Number("0.3e1")},
		"1.5":    {json.Number("1.5"), "1.50", 1.5, float32(1.5), json.Number("15e-1")},
		"0.1":    {json.Number("0.1"), 0.1, "0.1"},
		"-86400": {json.Number("-86400"), -86400.0, int64(-86400), "-86400"},
	}
	for s, vs := range want {
		for _, v := range vs {
			d, err := decOf(v)
			if err != nil {
				t.Errorf("decOf(%T %v): %v", v, v, err)
				continue
			}
			if got := d.String(); got != s {
				t.Errorf("decOf(%T %v) = %s, want %s", v, v, got, s)
			}
		}
	}
	if d, _ := decOf(1e21); d.String() != "1000000000000000000000" {
		t.Errorf("decOf(1e21) = %s", d)
	}
	if d, _ := decOf(0.30000000000000004); d.String() != "0.30000000000000004" {
		t.Errorf("decOf(0.1+0.2) = %s, want the shortest form that reads back", d)
	}
	for _, bad := range []any{"abc", true, nil, map[string]any{}, []any{}, math.NaN(), math.Inf(1), uint64(math.MaxUint64)} {
		if _, err := decOf(bad); err == nil {
			t.Errorf("decOf(%T %v): want an error", bad, bad)
		}
	}
}

func TestDivRound(t *testing.T) {
	cases := []struct {
		sec  string
		div  uint64
		want string
	}{
		{"5400", 3600, "1.5"},
		{"18", 3600, "0.01"}, // 0.005 h: the tie rounds up
		{"17", 3600, "0"},    // 0.00472 h
		{"-18", 3600, "-0.01"},
		{"-17", 3600, "0"},
		{"54", 3600, "0.02"}, // 0.015: tie away from zero
		{"-54", 3600, "-0.02"},
		{"3600", 3600, "1"},
		{"546300", 3600, "151.75"},
		{"0", 3600, "0"},
		{"86400", 86400, "1"},
		{"432", 86400, "0.01"}, // 0.005 d
		{"431", 86400, "0"},
		{"-432", 86400, "-0.01"},
		{"129600", 86400, "1.5"},
		{"1.8e1", 3600, "0.01"},
		{"0.5", 3600, "0"},
		{"1800.00000000000001", 3600, "0.5"},
		{"9000000000000000000", 3600, "2500000000000000"},
		{"9.2e300", 3600, ""}, // too many digits for int64: an error
	}
	for _, c := range cases {
		d, err := parseDec(c.sec)
		if err != nil {
			t.Fatalf("parseDec(%q): %v", c.sec, err)
		}
		got, err := d.divRound(c.div)
		if c.want == "" {
			if !errors.Is(err, errNumRange) {
				t.Errorf("divRound(%s): err = %v, want range error", c.sec, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("divRound(%s/%d): %v", c.sec, c.div, err)
			continue
		}
		if got.String() != c.want {
			t.Errorf("%s s / %d = %s, want %s", c.sec, c.div, got, c.want)
		}
	}
}

// The 64-bit fast path and the big.Int path agree.
func TestDivRoundPaths(t *testing.T) {
	for _, s := range []string{"1", "18", "54", "-54", "5400", "546300", "123456789", "0.001", "1.5e3", "9e15", "-7.25", "44444", "1e17"} {
		d, err := parseDec(s)
		if err != nil {
			t.Fatal(err)
		}
		for _, div := range []uint64{3600, 86400} {
			fast, err1 := d.divRound(div)
			slow, err2 := d.divRoundBig(div)
			if err1 != nil || err2 != nil || fast != slow {
				t.Errorf("%s/%d: fast %v (%v), big %v (%v)", s, div, fast, err1, slow, err2)
			}
		}
	}
}

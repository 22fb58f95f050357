package mapping

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	cases := []struct{ in, want string }{
		{"", `""`},
		{"abc", `"abc"`},
		{"张三", `"张三"`},
		{`a"b\c`, `"a\"b\\c"`},
		{"a\nb\rc\td\be\ff", `"a\nb\rc\td\be\ff"`},
		{"\x00\x01\x1f", `"\u0000\u0001\u001f"`},
		{"<>&'", `"<>&'"`},
		{"\x7f", "\"\x7f\""},
		{"a\u2028b\u2029c", `"a\u2028b\u2029c"`},
		{"\u2027\u202a", "\"\u2027\u202a\""},
		{"bad\xffbyte", "\"bad\ufffdbyte\""},
		{"\xe5\xbc", "\"\ufffd\ufffd\""},           // cut-short rune: one U+FFFD per byte
		{"\xed\xa0\x80", "\"\ufffd\ufffd\ufffd\""}, // surrogate
		{"\xc0\xaf", "\"\ufffd\ufffd\""},           // overlong
		{"\U0001F600 ok", "\"\U0001F600 ok\""},
		{"é\u00a0", "\"é\u00a0\""},
	}
	for _, c := range cases {
		if got := string(appendString(nil, c.in)); got != c.want {
			t.Errorf("appendString(%q) = %s, want %s", c.in, got, c.want)
		}
	}
}

// appendCanonical sorts keys at every level and writes numbers in their
// shortest form whatever their Go type.
func TestAppendCanonical(t *testing.T) {
	v := map[string]any{
		"b": []any{json.Number("1.50"), 2.0, "x", nil, true, false},
		"a": map[string]any{"z": int64(10), "y": []map[string]any{{"k2": 1, "k1": "v"}}},
		"":  uint8(0),
	}
	got, err := appendCanonical(nil, v)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"":0,"a":{"y":[{"k1":"v","k2":1}],"z":10},"b":[1.5,2,"x",null,true,false]}`
	if string(got) != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if _, err := appendCanonical(nil, struct{}{}); err == nil {
		t.Error("a struct must be refused")
	}
	if _, err := appendCanonical(nil, json.Number("1e999")); err == nil {
		t.Error("an out-of-range number must be refused")
	}
}

// slowString is the obvious escaper, decoding every rune: the reference
// for the one-pass version.
func slowString(s string) string {
	b := []byte{'"'}
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, "\ufffd"...)
		case r < 0x20 || r == '"' || r == '\\':
			b = appendEscapedASCII(b, byte(r))
		case r == '\u2028' || r == '\u2029':
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return string(append(b, '"'))
}

// FuzzCanonical checks the canonical encoding on arbitrary input: the input
// as JSON (when it is JSON) must encode to valid JSON that encodes to the
// same bytes again, and the input as text must escape to valid JSON that
// decodes back to the text (bad bytes as U+FFFD), exactly as the slow
// reference escaper does.
func FuzzCanonical(f *testing.F) {
	for _, seed := range []string{
		`{"b":1,"a":[1.50,"x",null,true]}`,
		`{"data":{"name":{"value":"张三"}},"n":1e3,"m":-0.0,"k":12345678901234567}`,
		`[0.1, 1E-7, "\u2028", "\ud800", {"":{}}]`,
		"\"bad \xff byte\"",
		`"a\"b\\c\n"`,
		`123456789012345678901234567890`,
		`{"a":1,"a":2}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// As text.
		s := string(data)
		enc := appendString(nil, s)
		if string(enc) != slowString(s) {
			t.Fatalf("fast and slow escaping differ for %q:\n%s\n%s", s, enc, slowString(s))
		}
		if !json.Valid(enc) || !utf8.Valid(enc) {
			t.Fatalf("appendString(%q) = %s is not valid JSON", s, enc)
		}
		var back string
		if err := json.Unmarshal(enc, &back); err != nil {
			t.Fatalf("decode %s: %v", enc, err)
		}
		if want := replaceBad(s); back != want {
			t.Fatalf("round trip of %q gave %q, want %q", s, back, want)
		}

		// As JSON.
		if !json.Valid(data) {
			return
		}
		v, err := decodeAny(data)
		if err != nil {
			return
		}
		out, err := appendCanonical(nil, v)
		if err != nil {
			return // a number beyond the supported range
		}
		if !json.Valid(out) {
			t.Fatalf("canonical form of %s is not valid JSON: %s", data, out)
		}
		v2, err := decodeAny(out)
		if err != nil {
			t.Fatalf("decode canonical %s: %v", out, err)
		}
		again, err := appendCanonical(nil, v2)
		if err != nil || !bytes.Equal(out, again) {
			t.Fatalf("canonical form is not stable:\n%s\n%s (%v)", out, again, err)
		}
		for _, tok := range numberTokens(out) {
			if strings.ContainsAny(tok, "eE") || tok == "-0" {
				t.Fatalf("number %s is not in shortest decimal form", tok)
			}
		}
	})
}

func decodeAny(data []byte) (any, error) {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var v any
	if err := d.Decode(&v); err != nil {
		return nil, err
	}
	return v, nil
}

// numberTokens lists the number literals of a JSON text.
func numberTokens(data []byte) []string {
	d := json.NewDecoder(bytes.NewReader(data))
	d.UseNumber()
	var out []string
	for {
		tok, err := d.Token()
		if err != nil {
			return out
		}
		if n, ok := tok.(json.Number); ok {
			out = append(out, string(n))
		}
	}
}

// replaceBad replaces each byte of invalid UTF-8 with U+FFFD.
func replaceBad(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			sb.WriteRune(utf8.RuneError)
		} else {
			sb.WriteString(s[i : i+size])
		}
		i += size
	}
	return sb.String()
}

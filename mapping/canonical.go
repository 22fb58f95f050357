package mapping

import (
	"fmt"
	"slices"
	"unicode/utf8"
)

// hashPrefix versions the canonical encoding. Changing how a payload is
// written must change this prefix, so that every stored hash differs and the
// records are rewritten once, rather than compared against bytes written by
// other rules.
const hashPrefix = "cs1\x00"

// subformHashPrefix versions the encoding hashed for Result.SubformHash: for
// each subform field, in the payload's order, its member as Map writes it
// after the comma, ,"name":{"value":[...]}. Like hashPrefix it must change
// whenever that encoding does; it differs from hashPrefix so that the two
// hashes never hash the same input.
const subformHashPrefix = "cs1sub\x00"

const hexDigits = "0123456789abcdef"

// appendString writes s as a JSON string. Only what JSON requires is escaped
// (plus U+2028 and U+2029, which some JavaScript parsers reject), and invalid
// UTF-8 becomes U+FFFD written as itself, so equal text always gives equal
// bytes and the output is always valid JSON.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	b = appendStringBody(b, s)
	return append(b, '"')
}

// appendStringBody is appendString without the quotes. It makes one pass:
// ASCII is checked byte by byte, other runes are validated by their lead
// byte without decoding them.
func appendStringBody(b []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			i++
			if c >= 0x20 && c != '"' && c != '\\' {
				continue
			}
			b = append(b, s[start:i-1]...)
			b = appendEscapedASCII(b, c)
			start = i
			continue
		}
		if c >= 0xE1 && c <= 0xEF && c != 0xED && i+2 < len(s) && s[i+1]&0xC0 == 0x80 && s[i+2]&0xC0 == 0x80 {
			// The common three-byte rune (all of CJK), checked inline. Every
			// valid U+2028 and U+2029 (E2 80 A8/A9) takes this path.
			if c == 0xE2 && s[i+1] == 0x80 && (s[i+2] == 0xA8 || s[i+2] == 0xA9) {
				b = append(b, s[start:i]...)
				b = append(b, '\\', 'u', '2', '0', '2', hexDigits[s[i+2]-0xA0])
				start = i + 3
			}
			i += 3
			continue
		}
		size := runeLen(s, i)
		if size == 0 {
			// One U+FFFD per bad byte, as utf8.DecodeRuneInString reads it.
			b = append(b, s[start:i]...)
			b = append(b, "\ufffd"...)
			size = 1
			start = i + 1
		}
		i += size
	}
	return append(b, s[start:]...)
}

// runeLen returns the length of the valid UTF-8 sequence that starts at a
// non-ASCII byte s[i], or 0 when it is not valid (overlong, surrogate, out
// of range or cut short), by the table in RFC 3629.
func runeLen(s string, i int) int {
	c := s[i]
	lo, hi := byte(0x80), byte(0xBF) // range of the second byte
	var n int
	switch {
	case c >= 0xC2 && c <= 0xDF:
		n = 2
	case c == 0xE0:
		n, lo = 3, 0xA0
	case c == 0xED:
		n, hi = 3, 0x9F
	case c >= 0xE1 && c <= 0xEF:
		n = 3
	case c == 0xF0:
		n, lo = 4, 0x90
	case c == 0xF4:
		n, hi = 4, 0x8F
	case c >= 0xF1 && c <= 0xF3:
		n = 4
	default:
		return 0
	}
	if i+n > len(s) || s[i+1] < lo || s[i+1] > hi {
		return 0
	}
	for k := 2; k < n; k++ {
		if s[i+k] < 0x80 || s[i+k] > 0xBF {
			return 0
		}
	}
	return n
}

func appendEscapedASCII(b []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(b, '\\', c)
	case '\n':
		return append(b, '\\', 'n')
	case '\r':
		return append(b, '\\', 'r')
	case '\t':
		return append(b, '\\', 't')
	case '\b':
		return append(b, '\\', 'b')
	case '\f':
		return append(b, '\\', 'f')
	}
	return append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
}

// appendCanonical writes a JSON-shaped Go value canonically: object keys
// sorted by their bytes, numbers in shortest decimal form, strings as
// appendString writes them. It serves defaults and the fingerprint; Map
// writes its payload field by field with the same primitives.
func appendCanonical(b []byte, v any) ([]byte, error) {
	switch x := v.(type) {
	case nil:
		return append(b, "null"...), nil
	case bool:
		if x {
			return append(b, "true"...), nil
		}
		return append(b, "false"...), nil
	case string:
		return appendString(b, x), nil
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		b = append(b, '{')
		for i, k := range keys {
			if i > 0 {
				b = append(b, ',')
			}
			b = appendString(b, k)
			b = append(b, ':')
			var err error
			if b, err = appendCanonical(b, x[k]); err != nil {
				return b, err
			}
		}
		return append(b, '}'), nil
	case []any:
		return appendList(b, x)
	case []map[string]any:
		return appendList(b, x)
	}
	if isNumber(v) {
		d, err := decOf(v)
		if err != nil {
			return b, err
		}
		return d.append(b), nil
	}
	return b, fmt.Errorf("cannot encode a %T", v)
}

// appendList writes a list canonically; both list types a decoded report
// may hold go through it.
func appendList[E any](b []byte, list []E) ([]byte, error) {
	b = append(b, '[')
	for i, e := range list {
		if i > 0 {
			b = append(b, ',')
		}
		var err error
		if b, err = appendCanonical(b, e); err != nil {
			return b, err
		}
	}
	return append(b, ']'), nil
}

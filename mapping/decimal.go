package mapping

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/bits"
	"strconv"
)

// dec is an exact decimal, mant × 10^-scale, kept normalized: mant has no
// trailing zeros and zero is {0, 0}. Report numbers live in this form so that
// 3 read as json.Number, as the string "3" or as an int encode to the same
// bytes, and so that no value passes through float64 unless it came as one.
type dec struct {
	mant  int64
	scale int32 // digits after the point; negative means trailing zeros
}

// maxScale bounds the digits a number may put on either side of the point:
// it is wide enough for any float64 and keeps a hostile exponent such as
// 1e999999999 from turning into a billion written zeros.
const maxScale = 400

var (
	errNumSyntax = errors.New("not a number")
	errNumRange  = errors.New("number out of range (more than 18 significant digits or an exponent beyond 400)")
)

var pow10 = [...]uint64{
	1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10,
	1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19,
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

// parseDec reads JSON number syntax (leading zeros tolerated, since numeric
// strings from WeCom are not JSON-checked) without going through float64.
func parseDec[T string | []byte](s T) (dec, error) {
	i := 0
	neg := false
	if i < len(s) && s[i] == '-' {
		neg = true
		i++
	}
	var mant uint64
	pending := 0 // zeros after the last non-zero digit, not yet in mant
	frac, n := 0, 0
	overflow, inFrac := false, false
	for ; i < len(s); i++ {
		c := s[i]
		if c == '.' && !inFrac && n > 0 {
			inFrac = true
			n = 0
			continue
		}
		if !isDigit(c) {
			break
		}
		n++
		if inFrac {
			frac++
		}
		d := uint64(c - '0')
		switch {
		case d == 0:
			if mant != 0 {
				pending++
			}
		case overflow:
		case pending+1 >= len(pow10):
			overflow = true
		default:
			hi, lo := bits.Mul64(mant, pow10[pending+1])
			if hi != 0 || lo > math.MaxInt64-d {
				overflow = true
				break
			}
			mant = lo + d
			pending = 0
		}
	}
	if n == 0 {
		return dec{}, errNumSyntax
	}
	var exp int64
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		eneg := false
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			eneg = s[i] == '-'
			i++
		}
		n = 0
		for ; i < len(s) && isDigit(s[i]); i++ {
			if exp < 1<<50 { // beyond any string's length; maxScale decides
				exp = exp*10 + int64(s[i]-'0')
			}
			n++
		}
		if n == 0 {
			return dec{}, errNumSyntax
		}
		if eneg {
			exp = -exp
		}
	}
	if i != len(s) {
		return dec{}, errNumSyntax
	}
	if overflow {
		return dec{}, errNumRange
	}
	if mant == 0 {
		return dec{}, nil
	}
	scale := int64(frac) - int64(pending) - exp
	if scale > maxScale || scale < -maxScale {
		return dec{}, errNumRange
	}
	m := int64(mant)
	if neg {
		m = -m
	}
	return dec{mant: m, scale: int32(scale)}, nil
}

func decInt(v int64) dec {
	d := dec{mant: v}
	for d.mant != 0 && d.mant%10 == 0 {
		d.mant /= 10
		d.scale--
	}
	return d
}

func decUint(v uint64) (dec, error) {
	if v > math.MaxInt64 {
		return dec{}, errNumRange
	}
	return decInt(int64(v)), nil
}

// decFloat takes the shortest decimal that reads back as f: the value a
// person would have typed, not the binary approximation's expansion.
func decFloat(f float64, bitSize int) (dec, error) {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return dec{}, errNumSyntax
	}
	var buf [32]byte
	return parseDec(strconv.AppendFloat(buf[:0], f, 'e', -1, bitSize))
}

// decOf accepts every way a report number arrives: json.Number from a
// UseNumber decoder, float64 from a plain one, Go ints from fakes and
// tests, and numeric strings, which WeCom sometimes sends.
func decOf(v any) (dec, error) {
	switch x := v.(type) {
	case json.Number:
		return parseDec(string(x))
	case string:
		return parseDec(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1<<53 {
			return decInt(int64(x)), nil // exact: what encoding/json gives for integers
		}
		return decFloat(x, 64)
	case float32:
		return decFloat(float64(x), 32)
	case int:
		return decInt(int64(x)), nil
	case int64:
		return decInt(x), nil
	case int32:
		return decInt(int64(x)), nil
	case int16:
		return decInt(int64(x)), nil
	case int8:
		return decInt(int64(x)), nil
	case uint:
		return decUint(uint64(x))
	case uint64:
		return decUint(x)
	case uint32:
		return decInt(int64(x)), nil
	case uint16:
		return decInt(int64(x)), nil
	case uint8:
		return decInt(int64(x)), nil
	}
	return dec{}, fmt.Errorf("%s is not a number", describeValue(v))
}

// isNumber reports whether v is a Go number type (not a numeric string).
func isNumber(v any) bool {
	switch v.(type) {
	case json.Number, float64, float32, int, int64, int32, int16, int8, uint, uint64, uint32, uint16, uint8:
		return true
	}
	return false
}

// append writes the shortest decimal form: no exponent, no trailing zeros,
// no leading zeros except the one before a point.
func (d dec) append(b []byte) []byte {
	if d.mant == 0 {
		return append(b, '0')
	}
	u := uint64(d.mant)
	if d.mant < 0 {
		b = append(b, '-')
		u = -u
	}
	var buf [20]byte
	ds := strconv.AppendUint(buf[:0], u, 10)
	n, s := len(ds), int(d.scale)
	switch {
	case s <= 0:
		b = append(b, ds...)
		for range -s {
			b = append(b, '0')
		}
	case n > s:
		b = append(b, ds[:n-s]...)
		b = append(b, '.')
		b = append(b, ds[n-s:]...)
	default:
		b = append(b, '0', '.')
		for range s - n {
			b = append(b, '0')
		}
		b = append(b, ds...)
	}
	return b
}

func (d dec) String() string { return string(d.append(nil)) }

// divRound returns d ÷ div rounded half away from zero to two decimals, in
// integer arithmetic so that 18 s is exactly 0.005 h and becomes 0.01.
func (d dec) divRound(div uint64) (dec, error) {
	if d.mant == 0 {
		return dec{}, nil
	}
	neg := d.mant < 0
	u := uint64(d.mant)
	if neg {
		u = -u
	}
	// hundredths = u × 100 × 10^-scale ÷ div
	if num, den, ok := fastFraction(u, int(d.scale), div); ok {
		q, r := num/den, num%den
		if r >= den-r {
			q++
		}
		if q <= math.MaxInt64 {
			return signed(q, neg), nil
		}
	}
	return d.divRoundBig(div)
}

// fastFraction spells u × 100 × 10^-scale ÷ div as num ÷ den when both fit
// in 64 bits, which covers every value WeCom sends.
func fastFraction(u uint64, scale int, div uint64) (num, den uint64, ok bool) {
	if scale >= 0 {
		if scale >= len(pow10) || u > math.MaxUint64/100 {
			return 0, 0, false
		}
		hi, lo := bits.Mul64(div, pow10[scale])
		return u * 100, lo, hi == 0
	}
	if -scale+2 >= len(pow10) {
		return 0, 0, false
	}
	hi, lo := bits.Mul64(u, pow10[-scale+2])
	return lo, div, hi == 0
}

func signed(q uint64, neg bool) dec {
	v := int64(q)
	if neg {
		v = -v
	}
	out := decInt(v)
	out.scale += 2
	return out
}

// divRoundBig is divRound for values whose intermediates exceed 64 bits.
func (d dec) divRoundBig(div uint64) (dec, error) {
	neg := d.mant < 0
	num := new(big.Int).SetInt64(d.mant)
	num.Abs(num)
	num.Mul(num, big.NewInt(100))
	den := new(big.Int).SetUint64(div)
	ten := big.NewInt(10)
	if d.scale > 0 {
		den.Mul(den, new(big.Int).Exp(ten, big.NewInt(int64(d.scale)), nil))
	} else if d.scale < 0 {
		num.Mul(num, new(big.Int).Exp(ten, big.NewInt(int64(-d.scale)), nil))
	}
	q, r := new(big.Int).QuoRem(num, den, new(big.Int))
	if r.Lsh(r, 1).Cmp(den) >= 0 {
		q.Add(q, big.NewInt(1))
	}
	if !q.IsUint64() || q.Uint64() > math.MaxInt64 {
		// Too many significant digits for int64: drop trailing zeros first.
		zeros := 0
		rem := new(big.Int)
		for q.Sign() != 0 {
			qq, m := new(big.Int).QuoRem(q, ten, rem)
			if m.Sign() != 0 {
				break
			}
			q = qq
			zeros++
		}
		if !q.IsUint64() || q.Uint64() > math.MaxInt64 || 2-zeros < -maxScale {
			return dec{}, errNumRange
		}
		out := signed(q.Uint64(), neg)
		out.scale -= int32(zeros)
		return out, nil
	}
	return signed(q.Uint64(), neg), nil
}

// describeValue names a report value's type for an error, without dumping
// whole objects into the message.
func describeValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		if len(x) > 40 {
			x = x[:40] + "…"
		}
		return strconv.Quote(x)
	case bool:
		return strconv.FormatBool(x)
	case map[string]any:
		return "an object"
	case []any, []map[string]any:
		return "a list"
	}
	if isNumber(v) {
		return fmt.Sprint(v)
	}
	return fmt.Sprintf("a %T", v)
}

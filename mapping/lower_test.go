package mapping

import (
	"math/rand/v2"
	"strings"
	"testing"
)

// appendLower is strings.ToLower without the allocation, and the key's
// string body is the lowered userid escaped as appendStringBody does it,
// for any input: mixed case, CJK, other scripts, escapes, invalid UTF-8.
func TestAppendLowerMatchesToLower(t *testing.T) {
	inputs := []string{
		"", "zhangsan", "ZhangSan", "ZHANG_SAN-01@corp.COM", "Ärger", "ΣΊΣΥΦΟΣ", "İstanbul", "张三", "ÀÉÎ",
		"a\"B", `a\B`, "A\nB", "A\u2028B\u2029", "\xff\xfeABC", "A\xe4\xb8", "ǅungla", "\u212a", // Kelvin sign lowers to k
	}
	r := rand.New(rand.NewPCG(7, 7))
	alphabet := []string{"A", "z", "Q", "0", "_", "-", "@", ".", "É", "ß", "Σ", "张", "\"", "\\", "\n", "\u2028", "\xff", "\xe2\x80", "İ"}
	for range 2000 {
		var sb strings.Builder
		for range r.IntN(12) {
			sb.WriteString(alphabet[r.IntN(len(alphabet))])
		}
		inputs = append(inputs, sb.String())
	}
	for _, s := range inputs {
		if got, want := string(appendLower(nil, s)), strings.ToLower(s); got != want {
			t.Errorf("appendLower(%q) = %q, want %q", s, got, want)
		}
		if got, want := string(appendLowerBody([]byte("x"), s)), "x"+string(appendStringBody(nil, strings.ToLower(s))); got != want {
			t.Errorf("appendLowerBody(%q) = %q, want %q", s, got, want)
		}
	}
}

// The key field holds the lowered userid; the userid source keeps the
// spelling it was given, and the key is the same for every spelling.
func TestKeyLowerCase(t *testing.T) {
	mp := mapper(t, []FieldSpec{
		{Target: "uid", Source: "userid"},
		{Target: "k", Source: "key", As: AsEnum, Enum: map[string]string{"x": "y"}},
	}, []Widget{{Name: "uid", Type: "text"}, {Name: "k", Type: "combo"}})
	var first Result
	for i, uid := range []string{"ZhangSan", "zhangsan", "ZHANGSAN"} {
		res, err := mp.Map(Input{UserID: uid, Month: june, Report: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		want := `{"k":{"value":"zhangsan|2025-06"},"sync_key":{"value":"zhangsan|2025-06"},"uid":{"value":"` + uid + `"}}`
		if string(res.Data) != want {
			t.Errorf("%s:\ngot  %s\nwant %s", uid, res.Data, want)
		}
		if mp.Key(uid, june) != "zhangsan|2025-06" {
			t.Errorf("Key(%q) = %q", uid, mp.Key(uid, june))
		}
		if i == 0 {
			first = res
		} else if res.Hash == first.Hash {
			t.Errorf("%s: the userid field differs, so the hash must", uid)
		}
	}
	// Non-ASCII and escaped userids: Key and the key field agree.
	for _, uid := range []string{"ÄrGer", `A"B`, "A\u2028B"} {
		res, err := mp.Map(Input{UserID: uid, Month: june, Report: map[string]any{}})
		if err != nil {
			t.Fatal(err)
		}
		if got := payload(t, res.Data)["sync_key"]; got != mp.Key(uid, june) || got != strings.ToLower(uid)+"|2025-06" {
			t.Errorf("%q: key field %q, Key %q", uid, got, mp.Key(uid, june))
		}
	}
}

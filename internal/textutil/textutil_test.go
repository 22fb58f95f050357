package textutil

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestTruncate(t *testing.T) {
	cjk := "应用没有调用打卡接口的权限" // 13 characters of 3 bytes each
	for _, tc := range []struct {
		s    string
		n    int
		want string
	}{
		{cjk, 100, cjk},
		{cjk, len(cjk), cjk},
		{cjk, 6, "应用"},
		{cjk, 7, "应用"}, // 7 and 8 fall inside 没: it is left out whole
		{cjk, 8, "应用"},
		{cjk, 9, "应用没"},
		{cjk, 2, ""},
		{cjk, 0, ""},
		{cjk, -1, ""},
		{"48002 api forbidden: 应用没有权限", 22, "48002 api forbidden: "},
		{"abc", 2, "ab"},
		{"", 5, ""},
	} {
		got := Truncate(tc.s, tc.n)
		if got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.want)
		}
	}
	// Every cut of a CJK string is valid UTF-8, a prefix, and within n.
	for n := 0; n <= len(cjk)+1; n++ {
		got := Truncate(cjk, n)
		if !utf8.ValidString(got) || !strings.HasPrefix(cjk, got) || len(got) > n {
			t.Errorf("Truncate(cjk, %d) = %q", n, got)
		}
	}
}

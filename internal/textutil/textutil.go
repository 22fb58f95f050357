// Package textutil holds small string helpers shared by the CLI and the
// engine.
package textutil

import "unicode/utf8"

// Truncate cuts s to at most n bytes without splitting a UTF-8 character,
// so that a cut error message (often Chinese, from WeCom or Jiandaoyun)
// stays valid UTF-8 in tables, JSON and the store. It adds no ellipsis: the
// caller knows whether one fits. n <= 0 gives "".
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	if n <= 0 {
		return ""
	}
	cut := n
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}

// Package suggest finds the name a user probably meant, for "did you mean"
// hints in configuration, mapping and usage errors.
package suggest

import "strings"

// Distance is the Levenshtein distance between a and b, in runes, ignoring
// case.
func Distance(a, b string) int {
	ra, rb := []rune(strings.ToLower(a)), []rune(strings.ToLower(b))
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}

// Limit is the largest distance from word that still looks like a typo.
func Limit(word string) int { return max(2, len([]rune(word))/3) }

// Closest returns the candidate nearest to word when it is within Limit,
// else "". Ties go to the earlier candidate.
func Closest(word string, candidates []string) string {
	best, bestD := "", -1
	for _, c := range candidates {
		if d := Distance(word, c); d <= Limit(word) && (bestD < 0 || d < bestD) {
			best, bestD = c, d
		}
	}
	return best
}

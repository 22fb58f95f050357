package suggest

import "testing"

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"", "", 0}, {"abc", "", 3}, {"rate_per_minut", "rate_per_minute", 1},
		{"Sync", "sync", 0}, {"年假", "年休假", 1}, {"kitten", "sitting", 3},
	} {
		if got := Distance(tc.a, tc.b); got != tc.want {
			t.Errorf("Distance(%q, %q) = %d, want %d", tc.a, tc.b, got, tc.want)
		}
	}
}

func TestClosest(t *testing.T) {
	names := []string{"sync", "status", "history", "reset"}
	if got := Closest("snyc", names); got != "sync" {
		t.Errorf("snyc → %q", got)
	}
	if got := Closest("statsu", names); got != "status" {
		t.Errorf("statsu → %q", got)
	}
	if got := Closest("verify", names); got != "" {
		t.Errorf("verify → %q, want no suggestion", got)
	}
}

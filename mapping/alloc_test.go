//go:build !race

package mapping

import "testing"

// Map allocates only the Data it returns: the buffer comes from the pool
// and the per-call state stays on the stack. (Under -race sync.Pool drops
// items on purpose, so this runs without it.)
func TestMapAllocations(t *testing.T) {
	mp := bindDefault(t)
	in := Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(t)[0]}
	if _, err := mp.Map(in); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = mp.Map(in) }); n > 1 {
		t.Errorf("Map allocates %.0f times per call, want 1", n)
	}
}

// Key allocates only the string it returns, whatever the userid's case;
// lowering the key inside Map allocates nothing (TestMapAllocations maps a
// mixed-case userid).
func TestKeyAllocations(t *testing.T) {
	mp := bindDefault(t)
	for _, uid := range []string{"zhangsan", "ZhangSan"} {
		if n := testing.AllocsPerRun(200, func() { _ = mp.Key(uid, june) }); n > 1 {
			t.Errorf("Key(%q) allocates %.0f times per call, want 1", uid, n)
		}
	}
	in := Input{UserID: "zhangsan", Month: june, Report: fixtureRows(t)[0]}
	if n := testing.AllocsPerRun(200, func() { _, _ = mp.Map(in) }); n > 1 {
		t.Errorf("Map allocates %.0f times per call, want 1", n)
	}
}

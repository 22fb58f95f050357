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

// The subform hash is computed as the payload is written, with a digest on
// the stack: a mapping with subforms also allocates only Data (when no
// enum code is missed).
func TestMapAllocationsSubform(t *testing.T) {
	mp := bind(t, Spec{Key: "sync_key", Fields: []FieldSpec{
		{Target: "sync_key", Source: "key"},
		{Target: "name", Source: "base_info.name"},
		{Target: "leave", Source: "sp_items", As: AsSubform, Fields: []FieldSpec{
			{Target: "n", Source: "name"}, {Target: "h", Source: "duration", As: AsHours},
		}},
		{Target: "exc", Source: "exception_infos", As: AsSubform, Fields: []FieldSpec{
			{Target: "what", Source: "exception", As: AsText}, {Target: "count", Source: "count"},
		}},
	}}, []Widget{
		{Name: "sync_key", Type: "text"}, {Name: "name", Type: "text"},
		{Name: "leave", Type: "subform", Items: []Widget{{Name: "n", Type: "text"}, {Name: "h", Type: "number"}}},
		{Name: "exc", Type: "subform", Items: []Widget{{Name: "what", Type: "text"}, {Name: "count", Type: "number"}}},
	})
	in := Input{UserID: "ZhangSan", Month: june, Report: fixtureRows(t)[0]}
	res, err := mp.Map(in)
	if err != nil || res.SubformHash == 0 || len(res.UnknownEnum) > 0 {
		t.Fatal(res.SubformHash, res.UnknownEnum, err)
	}
	if n := testing.AllocsPerRun(200, func() { _, _ = mp.Map(in) }); n > 1 {
		t.Errorf("Map with subforms allocates %.0f times per call, want 1", n)
	}
}

package sync

import (
	"bytes"
	"encoding/json"
	"testing"

	"checkin-sync/mapping"
)

// subformMapper maps the key, a number and the leave items as a subform.
func subformMapper(t *testing.T) *mapping.Mapper {
	t.Helper()
	compiled, err := mapping.Compile(mapping.Spec{Key: "sync_key", Fields: []mapping.FieldSpec{
		{Target: "sync_key", Source: "key"},
		{Target: "work_days", Source: "summary_info.work_days"},
		{Target: "leave", Source: "sp_items", As: mapping.AsSubform, Fields: []mapping.FieldSpec{
			{Target: "n", Source: "name"},
			{Target: "h", Source: "duration", As: mapping.AsHours},
		}},
	}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := compiled.Bind([]mapping.Widget{
		{Name: "sync_key", Type: "text"}, {Name: "work_days", Type: "number"},
		{Name: "leave", Type: "subform", Items: []mapping.Widget{{Name: "n", Type: "text"}, {Name: "h", Type: "number"}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func newSubformRig(t *testing.T, users int) *memRig {
	r := newMemRig(t, users)
	r.mapper = subformMapper(t)
	r.sink.keyField = r.mapper.KeyField()
	return r
}

// updatesWithSubform counts the update payloads that carry the subform.
func (r *memRig) updatesWithSubform() (with, without int) {
	r.sink.mu.Lock()
	defer r.sink.mu.Unlock()
	for _, u := range r.sink.updates {
		if bytes.Contains(u, []byte(`"leave":`)) {
			with++
		} else {
			without++
		}
	}
	return with, without
}

// An unchanged subform is left out of an update, since resending rows
// replaces their _ids; a changed one is sent whole.
func TestUnchangedSubformIsLeftOutOfAnUpdate(t *testing.T) {
	r := newSubformRig(t, 6)
	r.want(r.run(), OutcomeSuccess, ExitOK)

	// Known records, forced updates: nothing changed in the subforms.
	r.want(r.runWith(Request{Command: "test", Force: true}), OutcomeSuccess, ExitOK)
	if with, without := r.updatesWithSubform(); with != 0 || without != 6 {
		t.Fatalf("forced updates: %d with the subform, %d without; want 0 and 6", with, without)
	}

	// A lost store and a scalar edited by hand: adoption reads the
	// subforms back, finds them equal, and leaves them out.
	r.sink.mu.Lock()
	r.sink.recs[0].row["work_days"] = json.Number("99")
	r.sink.updates = nil
	r.sink.mu.Unlock()
	r.cp = newMemCheckpoints()
	r.want(r.run(), OutcomeSuccess, ExitOK)
	if with, without := r.updatesWithSubform(); with != 0 || without != 1 {
		t.Fatalf("adopted update: %d with the subform, %d without; want 0 and 1", with, without)
	}

	// A subform row edited by hand: the whole subform is sent.
	r.sink.mu.Lock()
	var edited *memRecord
	for _, rec := range r.sink.recs {
		if rows, ok := rec.row["leave"].([]any); ok && len(rows) > 0 {
			rows[0].(map[string]any)["n"] = "edited"
			edited = rec
			break
		}
	}
	r.sink.updates = nil
	r.sink.mu.Unlock()
	if edited == nil {
		t.Fatal("no record with leave rows in the sample company")
	}
	r.cp = newMemCheckpoints()
	r.want(r.run(), OutcomeSuccess, ExitOK)
	if with, without := r.updatesWithSubform(); with != 1 || without != 0 {
		t.Fatalf("edited subform: %d with the subform, %d without; want 1 and 0", with, without)
	}
	r.expectForm(memMonth)
}

package sync

import (
	"context"
	"encoding/json"

	"checkin-sync/internal/apierr"
	"checkin-sync/store"
)

// DryRunSink passes reads through and refuses every write, so a dry run
// cannot change Jiandaoyun whatever path the engine takes.
type DryRunSink struct{ Sink }

func dryRunRefusal(endpoint string) error {
	return &apierr.Error{Service: "jiandaoyun", Endpoint: endpoint, Class: apierr.Programming,
		Msg: "a dry run attempted a write; nothing was sent"}
}

// Create refuses.
func (DryRunSink) Create(context.Context, string, []json.RawMessage) (int, []string, error) {
	return 0, nil, dryRunRefusal("data/batch_create")
}

// Update refuses.
func (DryRunSink) Update(context.Context, string, json.RawMessage) error {
	return dryRunRefusal("data/update")
}

// Delete refuses.
func (DryRunSink) Delete(context.Context, string) error {
	return dryRunRefusal("data/delete")
}

// DryRunCheckpoints reads from a store opened read-only, or from nothing
// when the store does not exist yet, and drops every write.
type DryRunCheckpoints struct {
	Store *store.Store // nil: an empty store
}

// Lookup reads records; with no store nothing is found.
func (d DryRunCheckpoints) Lookup(month string, userids []string, out []store.Record, found []bool) error {
	if d.Store == nil {
		clear(found)
		return nil
	}
	return d.Store.Lookup(month, userids, out, found)
}

// Pendings lists pending batches.
func (d DryRunCheckpoints) Pendings() ([]store.Pending, error) {
	if d.Store == nil {
		return nil, nil
	}
	return d.Store.Pendings()
}

// Month reads a month's state.
func (d DryRunCheckpoints) Month(month string) (store.MonthInfo, bool, error) {
	if d.Store == nil {
		return store.MonthInfo{}, false, nil
	}
	return d.Store.Month(month)
}

// GetMeta reads app state.
func (d DryRunCheckpoints) GetMeta(key string) ([]byte, error) {
	if d.Store == nil {
		return nil, nil
	}
	return d.Store.GetMeta(key)
}

// ForEach reads a month's records; with no store there are none.
func (d DryRunCheckpoints) ForEach(month string, fn func(string, store.Record) error) error {
	if d.Store == nil {
		return nil
	}
	return d.Store.ForEach(month, fn)
}

// Months lists the store's months.
func (d DryRunCheckpoints) Months() ([]store.MonthInfo, error) {
	if d.Store == nil {
		return nil, nil
	}
	return d.Store.Months()
}

// ForgetMonth drops the write.
func (DryRunCheckpoints) ForgetMonth(string) (store.Forgotten, error) { return store.Forgotten{}, nil }

// Apply drops the write.
func (DryRunCheckpoints) Apply(*store.Write) error { return nil }

// PutRun drops the write.
func (DryRunCheckpoints) PutRun(store.Run) error { return nil }

// PutMeta drops the write.
func (DryRunCheckpoints) PutMeta(string, []byte) error { return nil }

package sync

import (
	"context"
	"encoding/json"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/store"
)

// Report is one user's month report as the source gives it.
type Report struct {
	UserID string         // as the source spells it; the key uses it in lower case
	Report map[string]any // one report; numbers are json.Number
}

// SkippedUser is a user left out of a month, with the reason.
type SkippedUser struct {
	UserID, Month, Reason string
}

// Fetched is the answer to one batch of userids for one month.
type Fetched struct {
	Reports  []Report
	Skipped  []SkippedUser // unknown, or outside the app's range; Month is left empty
	Missing  []string      // requested, but the source sent no report
	Multiple []string      // requested, but the source sent several reports
}

// Source is where month reports come from (WeCom).
type Source interface {
	// Users lists the userids to sync, once per run. It hands them to
	// found as they become known, so that fetching starts before the
	// listing ends; found is called from one goroutine at a time.
	Users(ctx context.Context, found func(userids []string)) error
	// MonthData fetches the reports of up to 100 users for start..end.
	MonthData(ctx context.Context, start, end month.Date, userids []string) (Fetched, error)
	Stats() map[string]retry.EndpointStats
}

// FormRecord is one record as the form holds it.
type FormRecord struct {
	DataID  string
	Key     string
	Row     map[string]any // the flat read shape, with the mapped fields
	Creator string         // the creator's username; "" when unknown
	Created time.Time      // zero when unknown
}

// Sink is where records go (Jiandaoyun). Every mutation passes through
// Create, Update or Delete, so a dry run only has to wrap those.
type Sink interface {
	// Lookup returns every record holding one of keys, oldest first.
	Lookup(ctx context.Context, keys []string) ([]FormRecord, error)
	// LookupCreated is Lookup right after a create of keys answered with
	// the ids created. It may leave out copies newer than all of those:
	// the writer that made them finds ours older when it looks them up.
	LookupCreated(ctx context.Context, keys []string, created []string) ([]FormRecord, error)
	// Create creates records in one batch under txID. created counts what
	// the answer says was created, and ids are the new records' _ids in no
	// promised order.
	Create(ctx context.Context, txID string, records []json.RawMessage) (created int, ids []string, err error)
	// Update replaces the given fields of one record.
	Update(ctx context.Context, dataID string, data json.RawMessage) error
	// Get reads one whole record, every field included.
	Get(ctx context.Context, dataID string) (map[string]any, error)
	// Delete removes one record.
	Delete(ctx context.Context, dataID string) error
	// Scan reads one page of up to limit records of the whole form, in
	// _id order, starting after the record whose _id is after ("" for the
	// first page). A page shorter than limit is the last. Every record
	// has its _id, since the next page starts after the last one.
	Scan(ctx context.Context, after string, limit int) ([]FormRecord, error)
	Stats() map[string]retry.EndpointStats
}

// Checkpoints is the local store of what has been written.
type Checkpoints interface {
	Lookup(month string, userids []string, out []store.Record, found []bool) error
	Pendings() ([]store.Pending, error)
	Month(month string) (store.MonthInfo, bool, error)
	Apply(w *store.Write) error
	// ForEach calls fn for every record of a month, in userid order.
	ForEach(month string, fn func(userid string, r store.Record) error) error
	// Months lists the months the store knows.
	Months() ([]store.MonthInfo, error)
	// ForgetMonth drops a month's records and watermark, keeping its
	// pending batches with their records marked pending.
	ForgetMonth(month string) (store.Forgotten, error)
	PutRun(r store.Run) error
	GetMeta(key string) ([]byte, error)
	PutMeta(key string, v []byte) error
}

package sync

import (
	"context"
	"encoding/json"

	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/jiandaoyun"
	"checkin-sync/store"
	"checkin-sync/wecom"
)

// Source is where month reports come from (WeCom).
type Source interface {
	Users(ctx context.Context, sel wecom.Selection) ([]wecom.User, error)
	MonthData(ctx context.Context, start, end month.Date, userids []string) (*wecom.MonthResult, error)
	Stats() map[string]retry.EndpointStats
}

// Sink is where records go (Jiandaoyun). Every mutation the engine makes
// passes through BatchCreate or Update, so a dry run only has to wrap those.
type Sink interface {
	FindByKeys(ctx context.Context, keyField string, keys []string) (map[string][]string, error)
	BatchCreate(ctx context.Context, transactionID string, records []json.RawMessage) (jiandaoyun.BatchResult, error)
	Update(ctx context.Context, dataID string, data json.RawMessage) error
	Stats() map[string]retry.EndpointStats
}

// Checkpoints is the local store of what has been written.
type Checkpoints interface {
	Lookup(month string, userids []string, out []store.Record, found []bool) error
	Pendings() ([]store.Pending, error)
	Month(month string) (store.MonthInfo, bool, error)
	Apply(w *store.Write) error
	PutRun(r store.Run) error
	GetMeta(key string) ([]byte, error)
	PutMeta(key string, v []byte) error
}

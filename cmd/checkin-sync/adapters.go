package main

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/jiandaoyun"
	"checkin-sync/mapping"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

// The engine speaks its own types (sync.Source, sync.Sink); these adapters
// translate the two clients into them, so that only the wiring layer knows
// both sides.

// wecomSource adapts the WeCom client to sync.Source.
type wecomSource struct {
	Client    *wecom.Client
	Selection wecom.Selection
}

var _ sync.Source = wecomSource{}

// newSource is the configured user selection over the WeCom client.
func newSource(wc *wecom.Client, cfg *config.Config) wecomSource {
	u := cfg.WeCom.Users
	return wecomSource{Client: wc, Selection: wecom.Selection{Departments: u.Departments, UserIDs: u.UserIDs, Exclude: u.Exclude}}
}

// Users lists the selected users, department by department.
func (s wecomSource) Users(ctx context.Context, found func([]string)) error {
	return s.Client.ListUsers(ctx, s.Selection, func(us []wecom.User) {
		ids := make([]string, len(us))
		for i, u := range us {
			ids[i] = u.UserID
		}
		found(ids)
	})
}

// MonthData fetches one batch of reports.
func (s wecomSource) MonthData(ctx context.Context, start, end month.Date, userids []string) (sync.Fetched, error) {
	res, err := s.Client.MonthData(ctx, start, end, userids)
	if err != nil {
		return sync.Fetched{}, err
	}
	out := sync.Fetched{Missing: res.Missing, Multiple: res.Multiple, Reports: make([]sync.Report, len(res.Rows))}
	for i, r := range res.Rows {
		out.Reports[i] = sync.Report{UserID: r.UserID, Report: r.Report}
	}
	for _, sk := range res.Skipped {
		out.Skipped = append(out.Skipped, sync.SkippedUser{UserID: sk.UserID, Reason: sk.Reason})
	}
	return out, nil
}

// Stats counts calls per endpoint.
func (s wecomSource) Stats() map[string]retry.EndpointStats { return s.Client.Stats() }

// jiandaoyunSink adapts the Jiandaoyun client to sync.Sink. Lookups ask for the
// key, the mapped fields and the two system fields the two-writer rule
// needs.
type jiandaoyunSink struct {
	Client   *jiandaoyun.Client
	KeyField string
	Fields   []string // mapped request names to read back
}

var _ sync.Sink = jiandaoyunSink{}

// newSink reads back the key and every mapped field; a dry run refuses
// every write.
func newSink(jc *jiandaoyun.Client, mapper *mapping.Mapper, dryRun bool) sync.Sink {
	var sink sync.Sink = jiandaoyunSink{Client: jc, KeyField: mapper.KeyField(), Fields: mapper.ReadFields()}
	if dryRun {
		sink = sync.DryRunSink{Sink: sink}
	}
	return sink
}

// System fields asked for with every lookup.
const (
	fieldCreator    = "creator"
	fieldCreateTime = "createTime"
)

// Lookup finds every record of keys.
func (s jiandaoyunSink) Lookup(ctx context.Context, keys []string) ([]sync.FormRecord, error) {
	fields := append(append([]string(nil), s.Fields...), fieldCreator, fieldCreateTime)
	rows, err := s.Client.FindByKeys(ctx, s.KeyField, keys, fields)
	if err != nil {
		return nil, err
	}
	return s.formRecords(rows), nil
}

// LookupCreated finds the records of keys right after their create.
func (s jiandaoyunSink) LookupCreated(ctx context.Context, keys []string, created []string) ([]sync.FormRecord, error) {
	fields := append(append([]string(nil), s.Fields...), fieldCreator, fieldCreateTime)
	rows, err := s.Client.FindCreated(ctx, s.KeyField, keys, fields, created)
	if err != nil {
		return nil, err
	}
	return s.formRecords(rows), nil
}

// Scan reads one page of the whole form with the data_id cursor, asking
// for the key, the mapped fields and the system fields of Lookup.
func (s jiandaoyunSink) Scan(ctx context.Context, after string, limit int) ([]sync.FormRecord, error) {
	fields := []string{s.KeyField}
	for _, f := range append(append([]string(nil), s.Fields...), fieldCreator, fieldCreateTime) {
		if f != "" && !slices.Contains(fields, f) {
			fields = append(fields, f)
		}
	}
	rows, err := s.Client.List(ctx, jiandaoyun.ListQuery{Fields: fields, Limit: limit, After: after})
	if err != nil {
		return nil, err
	}
	return s.formRecords(rows), nil
}

func (s jiandaoyunSink) formRecords(rows []map[string]any) []sync.FormRecord {
	out := make([]sync.FormRecord, 0, len(rows))
	for _, row := range rows {
		id, _ := row["_id"].(string)
		key, _ := row[s.KeyField].(string)
		if id == "" {
			continue
		}
		fr := sync.FormRecord{DataID: id, Key: key, Row: row}
		if c, ok := row[fieldCreator].(map[string]any); ok {
			fr.Creator, _ = c["username"].(string)
		}
		if ts, ok := row[fieldCreateTime].(string); ok {
			if t, err := time.Parse(time.RFC3339Nano, ts); err == nil {
				fr.Created = t
			}
		}
		out = append(out, fr)
	}
	return out
}

// Create sends one batch_create.
func (s jiandaoyunSink) Create(ctx context.Context, txID string, records []json.RawMessage) (int, []string, error) {
	res, err := s.Client.BatchCreate(ctx, txID, records)
	if err != nil {
		return 0, nil, err
	}
	return res.SuccessCount, res.SuccessIDs, nil
}

// Update sends one update.
func (s jiandaoyunSink) Update(ctx context.Context, dataID string, data json.RawMessage) error {
	return s.Client.Update(ctx, dataID, data)
}

// Get reads one record.
func (s jiandaoyunSink) Get(ctx context.Context, dataID string) (map[string]any, error) {
	rec, err := s.Client.Get(ctx, dataID)
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", dataID, err)
	}
	return rec, nil
}

// Delete removes one record.
func (s jiandaoyunSink) Delete(ctx context.Context, dataID string) error {
	return s.Client.Delete(ctx, dataID)
}

// Stats counts calls per endpoint.
func (s jiandaoyunSink) Stats() map[string]retry.EndpointStats { return s.Client.Stats() }

package sync

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"checkin-sync/internal/month"
	"checkin-sync/internal/retry"
	"checkin-sync/jiandaoyun"
	"checkin-sync/wecom"
)

// WeComSource adapts the WeCom client to Source.
type WeComSource struct {
	Client    *wecom.Client
	Selection wecom.Selection
}

var _ Source = WeComSource{}

// Users lists the selected users.
func (s WeComSource) Users(ctx context.Context) ([]string, error) {
	us, err := s.Client.Users(ctx, s.Selection)
	if err != nil {
		return nil, err
	}
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.UserID
	}
	return ids, nil
}

// MonthData fetches one batch of reports.
func (s WeComSource) MonthData(ctx context.Context, start, end month.Date, userids []string) (Fetched, error) {
	res, err := s.Client.MonthData(ctx, start, end, userids)
	if err != nil {
		return Fetched{}, err
	}
	out := Fetched{Missing: res.Missing, Multiple: res.Multiple, Reports: make([]Report, len(res.Rows))}
	for i, r := range res.Rows {
		out.Reports[i] = Report{UserID: r.UserID, Report: r.Report}
	}
	for _, sk := range res.Skipped {
		out.Skipped = append(out.Skipped, SkippedUser{UserID: sk.UserID, Reason: sk.Reason})
	}
	return out, nil
}

// Stats counts calls per endpoint.
func (s WeComSource) Stats() map[string]retry.EndpointStats { return s.Client.Stats() }

// JiandaoyunSink adapts the Jiandaoyun client to Sink. Lookups ask for the
// key, the mapped fields and the two system fields the two-writer rule
// needs.
type JiandaoyunSink struct {
	Client   *jiandaoyun.Client
	KeyField string
	Fields   []string // mapped request names to read back
}

var _ Sink = JiandaoyunSink{}

// System fields asked for with every lookup.
const (
	fieldCreator    = "creator"
	fieldCreateTime = "createTime"
)

// Lookup finds every record of keys.
func (s JiandaoyunSink) Lookup(ctx context.Context, keys []string) ([]FormRecord, error) {
	fields := append(append([]string(nil), s.Fields...), fieldCreator, fieldCreateTime)
	rows, err := s.Client.FindByKeys(ctx, s.KeyField, keys, fields)
	if err != nil {
		return nil, err
	}
	return s.formRecords(rows), nil
}

// Scan reads one page of the whole form with the data_id cursor, asking
// for the key, the mapped fields and the system fields of Lookup.
func (s JiandaoyunSink) Scan(ctx context.Context, after string, limit int) ([]FormRecord, error) {
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

func (s JiandaoyunSink) formRecords(rows []map[string]any) []FormRecord {
	out := make([]FormRecord, 0, len(rows))
	for _, row := range rows {
		id, _ := row["_id"].(string)
		key, _ := row[s.KeyField].(string)
		if id == "" {
			continue
		}
		fr := FormRecord{DataID: id, Key: key, Row: row}
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
func (s JiandaoyunSink) Create(ctx context.Context, txID string, records []json.RawMessage) (int, []string, error) {
	res, err := s.Client.BatchCreate(ctx, txID, records)
	if err != nil {
		return 0, nil, err
	}
	return res.SuccessCount, res.SuccessIDs, nil
}

// Update sends one update.
func (s JiandaoyunSink) Update(ctx context.Context, dataID string, data json.RawMessage) error {
	return s.Client.Update(ctx, dataID, data)
}

// Get reads one record.
func (s JiandaoyunSink) Get(ctx context.Context, dataID string) (map[string]any, error) {
	rec, err := s.Client.Get(ctx, dataID)
	if err != nil {
		return nil, fmt.Errorf("read record %s: %w", dataID, err)
	}
	return rec, nil
}

// Delete removes one record.
func (s JiandaoyunSink) Delete(ctx context.Context, dataID string) error {
	return s.Client.Delete(ctx, dataID)
}

// Stats counts calls per endpoint.
func (s JiandaoyunSink) Stats() map[string]retry.EndpointStats { return s.Client.Stats() }

package jiandaoyun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"checkin-sync/internal/apierr"
)

// Widget is one field of the form. Name is what the API reads and writes
// (the alias if one is set); WidgetName is the fixed _widget_ id.
type Widget struct {
	Name       string   `json:"name"`
	WidgetName string   `json:"widgetName"`
	Label      string   `json:"label"`
	Type       string   `json:"type"`
	Items      []Widget `json:"items,omitempty"` // sub-fields of a subform
}

// Filter is a data/list filter.
type Filter struct {
	Rel  string `json:"rel"` // "and" or "or"
	Cond []Cond `json:"cond"`
}

// Cond is one filter condition.
type Cond struct {
	Field  string `json:"field"`
	Type   string `json:"type,omitempty"`
	Method string `json:"method"`
	Value  []any  `json:"value,omitempty"`
}

// ListQuery asks for one page of data/list.
type ListQuery struct {
	Fields []string // nil: every field
	Filter *Filter
	Limit  int    // 1–100; 0 → 100
	After  string // the _id of the last record of the previous page
}

// BatchResult is the answer to batch_create. The order of SuccessIDs is not
// documented to follow the records', so callers match ids to keys by lookup.
type BatchResult struct {
	SuccessCount int      `json:"success_count"`
	SuccessIDs   []string `json:"success_ids"`
}

type formRef struct {
	AppID   string `json:"app_id"`
	EntryID string `json:"entry_id"`
}

// decodeInto decodes a JSON object leniently; numbers stay json.Number so
// that values read back compare exactly with what was written.
func decodeInto(body []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(body))
	d.UseNumber()
	return d.Decode(v)
}

// decodeObject is the decode for calls whose answer the client does not
// use: it only refuses an answer that is not a JSON object (or null).
func decodeObject(body []byte) error {
	var out map[string]any
	return decodeInto(body, &out)
}

// Widgets lists the form's fields.
func (c *Client) Widgets(ctx context.Context) ([]Widget, error) {
	var out struct {
		Widgets *[]Widget `json:"widgets"`
	}
	err := c.call(ctx, c.widgetList, c.form, func(b []byte) error {
		out.Widgets = nil
		if err := decodeInto(b, &out); err != nil {
			return err
		}
		if out.Widgets == nil {
			return errors.New(`no "widgets" in the answer`)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return *out.Widgets, nil
}

type listReq struct {
	formRef
	DataID string   `json:"data_id,omitempty"`
	Fields []string `json:"fields,omitempty"`
	Filter *Filter  `json:"filter,omitempty"`
	Limit  int      `json:"limit"`
}

// List returns one page of records, sorted by _id ascending.
func (c *Client) List(ctx context.Context, q ListQuery) ([]map[string]any, error) {
	limit := q.Limit
	if limit == 0 {
		limit = maxListLimit
	}
	if limit < 1 || limit > maxListLimit {
		return nil, c.programming(c.dataList, fmt.Sprintf("list limit %d is outside 1–%d", q.Limit, maxListLimit), nil)
	}
	req := listReq{formRef: c.form, DataID: q.After, Fields: q.Fields, Filter: q.Filter, Limit: limit}
	var rows []map[string]any
	err := c.call(ctx, c.dataList, req, func(b []byte) error {
		var out struct {
			Data *[]map[string]any `json:"data"`
		}
		if err := decodeInto(b, &out); err != nil {
			return err
		}
		if out.Data == nil {
			return errors.New(`no "data" in the answer`)
		}
		rows = *out.Data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// FindByKeys looks keys up in keyField (a text field) and returns, for each
// key found, its records' _ids in ascending order: the first is the oldest.
// Keys go in chunks of up to 100; a chunk pages on only until every key in
// it has been seen or a page comes back short, so a chunk usually costs one
// call. Keys not found are absent from the map.
func (c *Client) FindByKeys(ctx context.Context, keyField string, keys []string) (map[string][]string, error) {
	if keyField == "" {
		return nil, c.programming(c.dataList, "FindByKeys without a key field", nil)
	}
	found := make(map[string][]string)
	uniq := make([]string, 0, len(keys))
	seenKey := make(map[string]bool, len(keys))
	for _, k := range keys {
		if !seenKey[k] {
			seenKey[k] = true
			uniq = append(uniq, k)
		}
	}
	for start := 0; start < len(uniq); start += maxListLimit {
		chunk := uniq[start:min(start+maxListLimit, len(uniq))]
		if err := c.findChunk(ctx, keyField, chunk, found); err != nil {
			return nil, err
		}
	}
	return found, nil
}

func (c *Client) findChunk(ctx context.Context, keyField string, chunk []string, found map[string][]string) error {
	want := make(map[string]bool, len(chunk))
	values := make([]any, len(chunk))
	for i, k := range chunk {
		want[k] = true
		values[i] = k
	}
	filter := &Filter{Rel: "and", Cond: []Cond{{Field: keyField, Type: "text", Method: "in", Value: values}}}
	seen := 0
	after := ""
	for {
		rows, err := c.List(ctx, ListQuery{Fields: []string{keyField}, Filter: filter, Limit: maxListLimit, After: after})
		if err != nil {
			return fmt.Errorf("look up keys: %w", err)
		}
		for _, row := range rows {
			id, _ := row["_id"].(string)
			key, ok := row[keyField].(string)
			if id == "" || !ok || !want[key] {
				continue
			}
			if len(found[key]) == 0 {
				seen++
			}
			found[key] = append(found[key], id)
		}
		if len(rows) < maxListLimit || seen == len(chunk) {
			return nil
		}
		last, _ := rows[len(rows)-1]["_id"].(string)
		if last == "" || last == after {
			return &apierr.Error{Service: service, Endpoint: c.dataList.name, Class: apierr.Retry,
				Msg:  "a full page came back without a usable _id to page on",
				Hint: unreadableHint}
		}
		after = last
	}
}

type batchCreateReq struct {
	formRef
	DataList        []json.RawMessage `json:"data_list"`
	TransactionID   string            `json:"transaction_id"`
	IsStartWorkflow bool              `json:"is_start_workflow"`
}

// BatchCreate creates up to 100 records under transactionID. A lost answer
// (timeout, dropped connection, 5xx, unreadable body) and 17026 come back
// as class apierr.Unknown and are never resent here: the caller replays
// the same transactionID or resolves the batch by key.
func (c *Client) BatchCreate(ctx context.Context, transactionID string, records []json.RawMessage) (BatchResult, error) {
	switch {
	case len(records) == 0:
		return BatchResult{}, c.programming(c.batchCreate, "batch_create with no records", nil)
	case len(records) > maxBatch:
		return BatchResult{}, c.programming(c.batchCreate, fmt.Sprintf("batch_create with %d records; at most %d", len(records), maxBatch), nil)
	case transactionID == "":
		return BatchResult{}, c.programming(c.batchCreate, "batch_create without a transaction_id", nil)
	}
	req := batchCreateReq{formRef: c.form, DataList: records, TransactionID: transactionID, IsStartWorkflow: c.startWorkflow}
	var res BatchResult
	err := c.call(ctx, c.batchCreate, req, func(b []byte) error {
		res = BatchResult{}
		return decodeInto(b, &res)
	})
	if err != nil {
		return BatchResult{}, err
	}
	return res, nil
}

type updateReq struct {
	formRef
	DataID         string          `json:"data_id"`
	Data           json.RawMessage `json:"data"`
	IsStartTrigger bool            `json:"is_start_trigger"`
}

// Update replaces the given fields of one record. The payload is absolute,
// so a resend after a lost answer is harmless. A deleted record gives class
// apierr.Missing.
func (c *Client) Update(ctx context.Context, dataID string, data json.RawMessage) error {
	if dataID == "" {
		return c.programming(c.update, "update without a data_id", nil)
	}
	if len(data) == 0 {
		return c.programming(c.update, "update without data", nil)
	}
	req := updateReq{formRef: c.form, DataID: dataID, Data: data, IsStartTrigger: c.startTrigger}
	return c.call(ctx, c.update, req, decodeObject)
}

type dataIDReq struct {
	formRef
	DataID string `json:"data_id"`
}

// Get reads one record. A deleted record gives class apierr.Missing.
func (c *Client) Get(ctx context.Context, dataID string) (map[string]any, error) {
	if dataID == "" {
		return nil, c.programming(c.dataGet, "get without a data_id", nil)
	}
	var rec map[string]any
	err := c.call(ctx, c.dataGet, dataIDReq{formRef: c.form, DataID: dataID}, func(b []byte) error {
		var out struct {
			Data map[string]any `json:"data"`
		}
		if err := decodeInto(b, &out); err != nil {
			return err
		}
		if out.Data == nil {
			return errors.New(`no "data" in the answer`)
		}
		rec = out.Data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rec, nil
}

type deleteReq struct {
	formRef
	DataID         string `json:"data_id"`
	IsStartTrigger bool   `json:"is_start_trigger"`
}

// Delete removes one record. A record that is already gone gives class
// apierr.Missing, unless an earlier attempt of this call may have deleted it.
func (c *Client) Delete(ctx context.Context, dataID string) error {
	if dataID == "" {
		return c.programming(c.del, "delete without a data_id", nil)
	}
	req := deleteReq{formRef: c.form, DataID: dataID, IsStartTrigger: c.startTrigger}
	return c.call(ctx, c.del, req, decodeObject)
}

type batchDeleteReq struct {
	formRef
	DataIDs []string `json:"data_ids"`
}

// BatchDelete removes up to 100 records and returns how many went.
func (c *Client) BatchDelete(ctx context.Context, dataIDs []string) (int, error) {
	switch {
	case len(dataIDs) == 0:
		return 0, nil
	case len(dataIDs) > maxBatch:
		return 0, c.programming(c.batchDelete, fmt.Sprintf("batch_delete with %d ids; at most %d", len(dataIDs), maxBatch), nil)
	}
	var n int
	err := c.call(ctx, c.batchDelete, batchDeleteReq{formRef: c.form, DataIDs: dataIDs}, func(b []byte) error {
		var out struct {
			SuccessCount int `json:"success_count"`
		}
		if err := decodeInto(b, &out); err != nil {
			return err
		}
		n = out.SuccessCount
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

package jiandaoyun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"

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
// A SuccessCount other than the number of records sent comes with an
// apierr.Unknown error from BatchCreate.
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

// List returns one page of records, sorted by _id ascending; every one
// has a string _id, or the answer is malformed.
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
		for i, row := range *out.Data {
			// A page pages on from its last _id, and a record is known by it.
			if id, _ := row["_id"].(string); id == "" {
				return fmt.Errorf("data[%d] has no string _id", i)
			}
		}
		rows = *out.Data
		return nil
	})
	if err != nil {
		return nil, err
	}
	return rows, nil
}

// MaxKeysPerLookup is how many keys one data/list request of FindByKeys
// asks for: the most an "in" filter takes. A page that comes back short
// proves there is no other copy, and a full one is followed by the next,
// so a batch of 100 keys, with the legacy spellings of some, costs one
// call while none is in the form (before a create) and two when each is
// there once (after it).
const MaxKeysPerLookup = maxInValues

// FindByKeys returns every record whose keyField (a text field) holds one
// of keys, with the given fields, as data/list rows (the flat read shape,
// numbers as json.Number). Every row has "_id" and keyField; the rows come
// sorted by _id ascending across all keys, so the first row of a key is its
// oldest record. A key with several records has several rows; a key with
// none has no row.
//
// Keys are deduplicated and sent with an "in" filter in chunks of at most
// MaxKeysPerLookup, each with limit 100 and fields = keyField + fields. A
// chunk pages on with the data_id cursor while a page is full, so a chunk
// whose keys have one record each costs one call. Rows whose key field is
// not exactly one of the keys asked are dropped. A row without a string
// _id is a malformed answer (class Retry, from List): dropping it could
// hide a record and lead to a duplicate.
func (c *Client) FindByKeys(ctx context.Context, keyField string, keys []string, fields []string) ([]map[string]any, error) {
	return c.FindCreated(ctx, keyField, keys, fields, nil)
}

// FindCreated is FindByKeys right after a create of keys answered with the
// _ids created. When the keys fit one request and its first page is full
// of exactly those records, one per key, the lookup stops there: the page
// holds the oldest records of the keys, so every other copy is newer than
// the ones just created, and the writer that made it sees them as the
// older ones when it looks its own keys up.
func (c *Client) FindCreated(ctx context.Context, keyField string, keys []string, fields []string, created []string) ([]map[string]any, error) {
	if keyField == "" {
		return nil, c.programming(c.dataList, "FindByKeys without a key field", nil)
	}
	uniq := make([]string, 0, len(keys))
	seenKey := make(map[string]bool, len(keys))
	for _, k := range keys {
		if !seenKey[k] {
			seenKey[k] = true
			uniq = append(uniq, k)
		}
	}
	want := []string{keyField}
	for _, f := range fields {
		if f != "" && !slices.Contains(want, f) {
			want = append(want, f)
		}
	}
	var rows []map[string]any
	seenID := make(map[string]bool)
	for start := 0; start < len(uniq); start += MaxKeysPerLookup {
		chunk := uniq[start:min(start+MaxKeysPerLookup, len(uniq))]
		var err error
		var stop map[string]bool
		if len(uniq) <= MaxKeysPerLookup && len(created) > 0 {
			stop = make(map[string]bool, len(created))
			for _, id := range created {
				stop[id] = true
			}
		}
		if rows, err = c.findChunk(ctx, keyField, chunk, want, rows, seenID, stop); err != nil {
			return nil, err
		}
	}
	sort.SliceStable(rows, func(i, j int) bool { return rowID(rows[i]) < rowID(rows[j]) })
	return rows, nil
}

// exactly reports whether page holds the records ids names and no other,
// each of another key.
func exactly(page []map[string]any, keyField string, ids map[string]bool) bool {
	if len(ids) == 0 || len(page) != len(ids) {
		return false
	}
	keys := make(map[string]bool, len(page))
	for _, row := range page {
		key, _ := row[keyField].(string)
		if !ids[rowID(row)] || keys[key] {
			return false
		}
		keys[key] = true
	}
	return true
}

func rowID(row map[string]any) string {
	id, _ := row["_id"].(string)
	return id
}

// findChunk appends to rows the records of one chunk of keys.
// With stop, a first page that is exactly those _ids, one per key, ends
// the chunk.
func (c *Client) findChunk(ctx context.Context, keyField string, chunk, fields []string, rows []map[string]any, seenID map[string]bool, stop map[string]bool) ([]map[string]any, error) {
	asked := make(map[string]bool, len(chunk))
	values := make([]any, len(chunk))
	for i, k := range chunk {
		asked[k] = true
		values[i] = k
	}
	filter := &Filter{Rel: "and", Cond: []Cond{{Field: keyField, Type: "text", Method: "in", Value: values}}}
	after := ""
	for {
		page, err := c.List(ctx, ListQuery{Fields: fields, Filter: filter, Limit: maxListLimit, After: after})
		if err != nil {
			return nil, fmt.Errorf("look up keys: %w", err)
		}
		for _, row := range page {
			key, ok := row[keyField].(string)
			if !ok || !asked[key] {
				continue
			}
			id := rowID(row) // List refuses a record without one
			if seenID[id] {
				continue
			}
			seenID[id] = true
			rows = append(rows, row)
		}
		if len(page) < maxListLimit || after == "" && exactly(page, keyField, stop) {
			return rows, nil
		}
		last := rowID(page[len(page)-1])
		if last == after {
			return nil, c.malformedList("a full page ended at its own cursor: the cursor did not move")
		}
		after = last
	}
}

func (c *Client) malformedList(msg string) *apierr.Error {
	return &apierr.Error{Service: service, Endpoint: c.dataList.name, Class: apierr.Retry, Msg: msg, Hint: unreadableHint}
}

type batchCreateReq struct {
	formRef
	DataList        []json.RawMessage `json:"data_list"`
	TransactionID   string            `json:"transaction_id"`
	IsStartWorkflow bool              `json:"is_start_workflow"`
}

// BatchCreate creates up to 100 records under transactionID. Every answer
// falls in exactly one class (product.md "Crash safety"):
//
//   - success: err is nil, and SuccessCount equals len(records);
//   - not processed (8303, 8304, HTTP 429): resent here, identical and with
//     the same transactionID, after a backoff; if the retries run out, the
//     error has class apierr.Retry (nothing was written);
//   - rejected (4000, 3005, 17032, 1010): class apierr.Record;
//   - credentials, scope, app, form or plan: apierr.Fatal; a request built
//     wrong: apierr.Programming (nothing was written);
//   - anything else: class apierr.Unknown, never resent here. That covers a
//     lost answer, a timeout, a 5xx, 9004, 9007, 4012, 17026, a code the
//     client does not know, an unreadable body, and a success answer whose
//     success_count differs from len(records) (that error comes with the
//     decoded BatchResult). The caller resolves the batch by key.
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
		var out struct {
			Status       *string  `json:"status"`
			SuccessCount *int     `json:"success_count"`
			SuccessIDs   []string `json:"success_ids"`
		}
		if err := decodeInto(b, &out); err != nil {
			return err
		}
		if out.Status != nil && *out.Status != "success" {
			return fmt.Errorf("status %q, not \"success\"", *out.Status)
		}
		if out.SuccessCount == nil {
			return errors.New(`no "success_count" in the answer`)
		}
		res = BatchResult{SuccessCount: *out.SuccessCount, SuccessIDs: out.SuccessIDs}
		return nil
	})
	if err != nil {
		return BatchResult{}, err
	}
	if res.SuccessCount != len(records) {
		return res, &apierr.Error{Service: service, Endpoint: c.batchCreate.name, HTTPStatus: http.StatusOK,
			Class: apierr.Unknown,
			Msg:   fmt.Sprintf("success_count is %d for %d records sent", res.SuccessCount, len(records)),
			Hint:  "some records of the batch may not have been written: " + unknownHint}
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

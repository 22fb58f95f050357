package fakeapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"time"
)

// jdyErr is an API error answered as HTTP 400 {code, msg}.
type jdyErr struct {
	code int
	msg  string
}

func errf(code int, format string, args ...any) *jdyErr {
	return &jdyErr{code: code, msg: fmt.Sprintf(format, args...)}
}

var jdyMessages = map[int]string{
	1:     "The request is invalid.",
	2004:  "App doesn't exist.",
	3000:  "Form doesn't exist.",
	3005:  "Invalid parameter(s).",
	4000:  "Failed to submit data.",
	4001:  "Data doesn't exist.",
	1010:  "The member doesn't exist.",
	4815:  "过滤条件设置有误",
	8301:  "API key verification failed.",
	8303:  "超出请求频率限制",
	8304:  "超出接口请求频率限制",
	9004:  "Failed to create the queue task.",
	9007:  "Failed to acquire the lock, please try again later.",
	17017: "Platform API parameter error.",
	17024: "The number of records to create exceeds the limit (100).",
	17025: "transaction_id 参数格式不正确",
	17026: "The transaction_id already exists.",
	17033: "The number of records to delete exceeds the limit (100).",
}

// jdyError answers the Jiandaoyun way: HTTP 400 with code and msg. The
// message never echoes the API key.
func jdyError(w http.ResponseWriter, code int, detail string) {
	msg := jdyMessages[code]
	if msg == "" {
		msg = "error"
	}
	if detail != "" {
		msg += " " + detail
	}
	writeJSON(w, http.StatusBadRequest, map[string]any{"code": code, "msg": msg})
}

type jdyFunc func(r *http.Request, body []byte) (any, *jdyErr)

// jdyHandler runs the checks every Jiandaoyun call shares, in the order a
// gateway would: faults, method, API key, the enterprise-wide bucket, the
// interface's bucket, then the endpoint itself. A write whose answer is to
// be lost commits first and then drops the connection.
func (s *Server) jdyHandler(ep string, write bool, h jdyFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		dropAfter, ok := s.begin(w, r, ep, write)
		if !ok {
			return
		}
		if r.Method != http.MethodPost {
			jdyError(w, 1, "only POST is supported")
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+s.opts.APIKey {
			jdyError(w, 8301, "")
			return
		}
		if !s.limits.allowGlobal() {
			s.throttled.Add(1)
			jdyError(w, 8303, "")
			return
		}
		if !s.limits.allow(ep) {
			s.throttled.Add(1)
			jdyError(w, 8304, "")
			return
		}
		if !s.serviceDelay(r, ep) {
			return
		}
		body, err := readBody(r)
		if err != nil {
			jdyError(w, 1, err.Error())
			return
		}
		serve := h
		if f := s.formFor(body); f != nil && f.formHandler(ep) != nil {
			serve = f.formHandler(ep) // a form AddForm added answers for itself
		}
		resp, jerr := serve(r, body)
		if dropAfter {
			dropConnection(w)
			return
		}
		if jerr != nil {
			jdyError(w, jerr.code, jerr.msg)
			return
		}
		writeJSON(w, http.StatusOK, resp)
	}
}

// jdyBase is in every v5 body.
type jdyBase struct {
	AppID   *string `json:"app_id"`
	EntryID *string `json:"entry_id"`
}

func (s *Server) decode(body []byte, v any) *jdyErr {
	if len(bytes.TrimSpace(body)) == 0 {
		return errf(1, "empty body")
	}
	if err := decodeStrict(body, v); err != nil {
		return errf(1, "%v", err)
	}
	return nil
}

func (s *Server) checkForm(appID, entryID *string) *jdyErr {
	switch {
	case appID == nil || *appID == "":
		return errf(1, "app_id is required")
	case entryID == nil || *entryID == "":
		return errf(1, "entry_id is required")
	case *appID != s.opts.AppID:
		return errf(2004, "")
	case *entryID != s.opts.EntryID:
		return errf(3000, "")
	}
	return nil
}

func (s *Server) decodeV5(body []byte, v any, base *jdyBase) *jdyErr {
	if e := s.decode(body, v); e != nil {
		return e
	}
	return s.checkForm(base.AppID, base.EntryID)
}

func (s *Server) jdyWidgets(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct{ jdyBase }
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	st := s.jdy
	st.mu.Lock()
	modified := st.modified
	st.mu.Unlock()
	return map[string]any{"widgets": s.opts.Widgets, "sysWidgets": sysWidgets, "dataModifyTime": formatTime(modified)}, nil
}

func (s *Server) jdyList(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		DataID *string         `json:"data_id"`
		Fields []string        `json:"fields"`
		Filter json.RawMessage `json:"filter"`
		Limit  *int            `json:"limit"`
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	limit := 10
	if req.Limit != nil {
		limit = *req.Limit
	}
	if limit < 1 || limit > 100 {
		return nil, errf(17017, "limit must be 1 to 100")
	}
	f, err := s.parseFilter(req.Filter)
	if err != nil {
		return nil, errf(4815, "%v", err)
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	recs := st.query(f, deref(req.DataID), limit, func(r *jdyRecord) bool { return st.listVisible(r, now) })
	out := make([]any, len(recs))
	for i, r := range recs {
		out[i] = s.readShape(r, req.Fields)
	}
	return map[string]any{"data": out}, nil
}

// deref reads an optional string field; absent is "".
func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// enterpriseCreator is the username the fake gives the enterprise creator,
// the real default submitter of API writes.
const enterpriseCreator = "admin"

// username resolves a stored creator or updater; "" is the enterprise
// creator.
func username(u string) string {
	if u == "" {
		return enterpriseCreator
	}
	return u
}

// memberObject is a creator or updater as reads show it; "" is the
// enterprise creator.
func memberObject(user string) map[string]any {
	name := user
	if user == "" || user == enterpriseCreator {
		name, user = "管理员", enterpriseCreator
	}
	return map[string]any{"name": name, "username": user, "status": 1, "type": 0, "departments": []int{1}, "integrate_id": ""}
}

// readShape renders a record as the API reads it: flat values plus system
// fields; with fields given, only those plus _id, appId and entryId. The
// caller holds st.mu.
func (s *Server) readShape(r *jdyRecord, fields []string) map[string]any {
	st := s.jdy
	m := map[string]any{"_id": r.id, "appId": s.opts.AppID, "entryId": s.opts.EntryID}
	sys := func(name string) {
		switch name {
		case "creator":
			m[name] = memberObject(r.creator)
		case "updater":
			m[name] = memberObject(r.updater)
		case "createTime":
			m[name] = formatTime(r.created)
		case "updateTime":
			m[name] = formatTime(r.updated)
		}
	}
	if len(fields) == 0 {
		for _, n := range []string{"creator", "updater", "createTime", "updateTime"} {
			sys(n)
		}
		return s.lossy(st.addFields(m, r))
	}
	defer s.lossy(m)
	for _, name := range fields {
		switch name {
		case "_id", "appId", "entryId":
		case "creator", "updater", "createTime", "updateTime":
			sys(name)
		default:
			if slot, ok := st.slots[name]; ok {
				if v := r.get(slot); v != nil {
					m[name] = cloneValue(v)
				}
			}
		}
	}
	return m
}

func (s *Server) jdyGet(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		DataID *string `json:"data_id"`
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	if req.DataID == nil || *req.DataID == "" {
		return nil, errf(1, "data_id is required")
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	r, ok := st.byID[*req.DataID]
	if !ok {
		return nil, errf(4001, "")
	}
	return map[string]any{"data": s.readShape(r, nil)}, nil
}

// createBody is the body of data/create and of the legacy data_create.
type createBody struct {
	Data            json.RawMessage `json:"data"`
	DataCreator     *string         `json:"data_creator"`
	IsStartWorkflow *bool           `json:"is_start_workflow"`
	IsStartTrigger  *bool           `json:"is_start_trigger"`
	TransactionID   *string         `json:"transaction_id"`
}

func (s *Server) createOne(b createBody) (any, *jdyErr) {
	if !isObject(b.Data) {
		return nil, errf(1, "data must be an object")
	}
	fields, err := s.convertData(b.Data)
	if err != nil {
		return nil, dataErr(err, "")
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now() // under the lock, so times follow id order
	r := st.insert(fields, now, st.apiCreator(b.DataCreator), true)
	return map[string]any{"data": s.readShape(r, nil)}, nil
}

func (s *Server) jdyCreate(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		createBody
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	return s.createOne(req.createBody)
}

func (s *Server) jdyLegacyCreate(r *http.Request, body []byte) (any, *jdyErr) {
	app, entry := r.PathValue("app_id"), r.PathValue("entry_id")
	if e := s.checkForm(&app, &entry); e != nil {
		return nil, e
	}
	var req createBody
	if e := s.decode(body, &req); e != nil {
		return nil, e
	}
	return s.createOne(req)
}

func (s *Server) jdyBatchCreate(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		DataList        []json.RawMessage `json:"data_list"`
		DataCreator     *string           `json:"data_creator"`
		TransactionID   *string           `json:"transaction_id"`
		IsStartWorkflow *bool             `json:"is_start_workflow"`
		IsStartTrigger  *bool             `json:"is_start_trigger"`
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	if len(req.DataList) == 0 {
		return nil, errf(1, "data_list is required")
	}
	if len(req.DataList) > 100 {
		return nil, errf(17024, "")
	}
	txID := ""
	if req.TransactionID != nil {
		txID = *req.TransactionID
		if txID == "" || strings.Contains(txID, "${") || strings.Contains(txID, "$(") {
			return nil, errf(17025, "")
		}
	}
	all := make([][]fieldVal, len(req.DataList))
	for i, raw := range req.DataList {
		if !isObject(raw) {
			return nil, errf(4000, "data_list[%d] must be an object", i)
		}
		fields, err := s.convertData(raw)
		if err != nil {
			return nil, dataErr(err, fmt.Sprintf("data_list[%d]: ", i))
		}
		all[i] = fields
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	b := st.behaviour
	if b.TxMode == TxIgnore {
		txID = ""
	}
	var resent *txEntry
	if txID != "" {
		if tx, ok := st.tx[txID]; ok && now.Sub(tx.first) < txWindow {
			resent = tx
		}
	}
	if resent != nil {
		switch b.TxMode {
		case TxReject:
			code := b.ResendCode
			if code == 0 {
				code = 17026
			}
			return nil, errf(code, "")
		case TxOverwrite:
			for _, id := range resent.ids {
				st.remove(id, now)
			}
		default:
			ids := append([]string{}, resent.ids...)
			return map[string]any{"status": "success", "success_count": len(ids), "success_ids": ids}, nil
		}
	}
	partial, isPartial := st.nextPartial()
	n := len(all)
	if isPartial {
		n = partial.keep(n)
	}
	creator := st.apiCreator(req.DataCreator)
	ids := make([]string, n)
	for i, fields := range all[:n] {
		ids[i] = st.insert(fields, now, creator, true).id
	}
	switch {
	case txID == "":
	case resent != nil: // overwritten: the same transaction, still timed from its first use
		resent.ids = ids
	case !isPartial || n > 0:
		st.tx[txID] = &txEntry{first: now, ids: ids}
	}
	if isPartial && partial.Code != 0 {
		return nil, errf(partial.Code, "%d of %d records created", n, len(all))
	}
	return map[string]any{"status": "success", "success_count": len(ids), "success_ids": append([]string{}, ids...)}, nil
}

func (s *Server) jdyUpdate(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		DataID         *string         `json:"data_id"`
		Data           json.RawMessage `json:"data"`
		IsStartTrigger *bool           `json:"is_start_trigger"`
		TransactionID  *string         `json:"transaction_id"`
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	if req.DataID == nil || *req.DataID == "" {
		return nil, errf(1, "data_id is required")
	}
	if !isObject(req.Data) {
		return nil, errf(1, "data must be an object")
	}
	fields, err := s.convertData(req.Data)
	if err != nil {
		return nil, dataErr(err, "")
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	r, ok := st.byID[*req.DataID]
	if !ok {
		return nil, errf(4001, "")
	}
	st.update(r, fields, now)
	r.updater = st.behaviour.Creator
	return map[string]any{"data": s.readShape(r, nil)}, nil
}

func (s *Server) jdyDelete(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		DataID         *string `json:"data_id"`
		IsStartTrigger *bool   `json:"is_start_trigger"`
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	if req.DataID == nil || *req.DataID == "" {
		return nil, errf(1, "data_id is required")
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	if !st.remove(*req.DataID, now) {
		return nil, errf(4001, "")
	}
	return map[string]any{"status": "success"}, nil
}

func (s *Server) jdyBatchDelete(_ *http.Request, body []byte) (any, *jdyErr) {
	var req struct {
		jdyBase
		DataIDs []string `json:"data_ids"`
	}
	if e := s.decodeV5(body, &req, &req.jdyBase); e != nil {
		return nil, e
	}
	if len(req.DataIDs) == 0 {
		return nil, errf(1, "data_ids is required")
	}
	if len(req.DataIDs) > 100 {
		return nil, errf(17033, "")
	}
	st := s.jdy
	st.mu.Lock()
	defer st.mu.Unlock()
	now := s.now()
	n := 0
	for _, id := range req.DataIDs {
		if st.remove(id, now) {
			n++
		}
	}
	return map[string]any{"status": "success", "success_count": n}, nil
}

func isObject(raw json.RawMessage) bool {
	t := bytes.TrimSpace(raw)
	return len(t) > 0 && t[0] == '{'
}

var systemFields = map[string]bool{
	"_id": true, "appId": true, "entryId": true, "creator": true, "updater": true, "deleter": true,
	"createTime": true, "updateTime": true, "deleteTime": true, "flowState": true,
}

// convertData turns write shape {field: {value: v}} into stored values,
// checking each value against its widget's type. Fields the form does not
// have are stored as given: the real API skips validation on writes.
func (s *Server) convertData(raw json.RawMessage) ([]fieldVal, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("data: %w", err)
	}
	names := make([]string, 0, len(m))
	for k := range m {
		names = append(names, k)
	}
	sort.Strings(names)
	out := make([]fieldVal, 0, len(names))
	for _, name := range names {
		if systemFields[name] {
			return nil, fmt.Errorf("field %q is a system field and cannot be written", name)
		}
		v, err := s.unwrap(name, m[name], s.widgets[name])
		if err != nil {
			return nil, err
		}
		out = append(out, fieldVal{name, v})
	}
	return out, nil
}

// unwrap reads {"value": v}, decoded, and converts v for widget w (zero w:
// unknown).
func (s *Server) unwrap(name string, cell any, w Widget) (any, error) {
	wrap, ok := cell.(map[string]any)
	if !ok || wrap == nil {
		return nil, fmt.Errorf(`field %q: want {"value": ...}`, name)
	}
	val, ok := wrap["value"]
	if !ok || len(wrap) != 1 {
		return nil, fmt.Errorf(`field %q: want {"value": ...}`, name)
	}
	v, err := s.convertValue(w, val)
	if err != nil {
		return nil, fmt.Errorf("field %q: %w", name, err)
	}
	return v, nil
}

// convertValue checks and converts one decoded value (numbers as
// json.Number) for widget w.
func (s *Server) convertValue(w Widget, v any) (any, error) {
	switch w.Type {
	case "text", "textarea", "combo", "radiogroup":
		if _, ok := v.(string); !ok && v != nil {
			return nil, fmt.Errorf("%s field wants a string, got %s", w.Type, jsonKind(v))
		}
		return v, nil
	case "user", "usergroup":
		return s.memberValue(w.Type, v)
	case "number", "dept":
		if v == nil {
			return nil, nil
		}
		n, ok := v.(json.Number)
		if !ok {
			return nil, fmt.Errorf("%s field wants a JSON number, got %s", w.Type, jsonKind(v))
		}
		f, err := n.Float64()
		if err != nil {
			return nil, fmt.Errorf("number %s: %w", n, err)
		}
		return f, nil
	case "datetime":
		switch x := v.(type) {
		case nil:
			return nil, errors.New("datetime does not accept null")
		case json.Number:
			i, err := x.Int64()
			if err != nil || i < 1e11 {
				return nil, fmt.Errorf("datetime number %s must be epoch milliseconds", x)
			}
			return formatTime(time.UnixMilli(i)), nil
		case string:
			t, ok := parseTimeAny(x)
			if !ok {
				return nil, fmt.Errorf("datetime %q is not in an accepted format", x)
			}
			return formatTime(t), nil
		default:
			return nil, fmt.Errorf("datetime wants a string or epoch milliseconds, got %s", jsonKind(v))
		}
	case "checkboxgroup", "combocheck", "deptgroup":
		if _, ok := v.([]any); !ok && v != nil {
			return nil, fmt.Errorf("%s field wants an array, got %s", w.Type, jsonKind(v))
		}
		return plain(v), nil
	case "subform":
		return s.convertRows(w, v)
	}
	return plain(v), nil
}

// convertRows converts subform rows; each row gets an _id, keeping one sent
// as {"_id": {"value": id}}.
func (s *Server) convertRows(w Widget, v any) (any, error) {
	if v == nil {
		return nil, nil
	}
	rows, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("subform wants an array of rows, got %s", jsonKind(v))
	}
	items := make(map[string]Widget, len(w.Items))
	for _, it := range w.Items {
		items[it.Name] = it
	}
	out := make([]any, len(rows))
	for i, row := range rows {
		obj, ok := row.(map[string]any)
		if !ok {
			return nil, fmt.Errorf("subform row %d is not an object", i)
		}
		flat := make(map[string]any, len(obj))
		for k, cell := range obj {
			it := items[k]
			if it.Type == "subform" {
				it = Widget{}
			}
			cv, err := s.unwrap(k, cell, it)
			if err != nil {
				return nil, fmt.Errorf("subform row %d: %w", i, err)
			}
			flat[k] = cv
		}
		if id, ok := flat["_id"].(string); !ok || id == "" {
			s.jdy.mu.Lock()
			flat["_id"] = s.jdy.newRowID()
			s.jdy.mu.Unlock()
		}
		out[i] = flat
	}
	return out, nil
}

// plain replaces json.Number with float64 throughout a decoded value.
func plain(v any) any {
	switch x := v.(type) {
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return x.String()
		}
		return f
	case []any:
		for i := range x {
			x[i] = plain(x[i])
		}
		return x
	case map[string]any:
		for k := range x {
			x[k] = plain(x[k])
		}
		return x
	}
	return v
}

func jsonKind(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case json.Number:
		return "a number"
	case bool:
		return "a boolean"
	case []any:
		return "an array"
	case map[string]any:
		return "an object"
	}
	return fmt.Sprintf("%T", v)
}

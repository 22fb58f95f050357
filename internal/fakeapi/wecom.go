package fakeapi

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"checkin-sync/internal/month"
)

const tokenTTL = 7200 * time.Second

type tokenInfo struct {
	issued  time.Time
	seq     int  // issue order, decides the code an expired token answers with
	expired bool // set by ExpireTokens
}

type wecomState struct {
	mu       sync.Mutex
	tokens   map[string]*tokenInfo // never pruned, so its size is the issue count
	hidden   map[string]bool
	spell    map[string]UserIDSpelling // by the company's userid
	messages []string

	hiddenDepts map[int]bool // departments outside the visible range (HideDepartment)
}

func newWecomState() *wecomState {
	return &wecomState{tokens: make(map[string]*tokenInfo), hidden: make(map[string]bool), spell: make(map[string]UserIDSpelling)}
}

// UserIDSpelling is how the fake WeCom spells one userid. WeCom userids
// are case-insensitive, and the reference does not say that every
// interface answers in the same case, so a client must not join on the
// exact spelling. "" keeps the company's spelling.
type UserIDSpelling struct {
	Listed   string // userid as user/simplelist lists it
	Reported string // base_info.acctid in getcheckin_monthdata, whatever case was requested
}

// SpellUserID sets how userid (in any case) is spelt; UserIDSpelling{}
// restores the company's spelling. getcheckin_monthdata accepts a userid
// in any case regardless. A spelling that is not userid in another case is
// a test bug and panics.
func (s *Server) SpellUserID(userid string, sp UserIDSpelling) {
	for _, v := range []string{sp.Listed, sp.Reported} {
		if v != "" && !strings.EqualFold(v, userid) {
			panic(fmt.Sprintf("fakeapi: %q is not %q in another case", v, userid))
		}
	}
	if i, ok := s.opts.Company.lookup(userid); ok {
		userid = s.opts.Company.users[i].UserID
	}
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	if sp == (UserIDSpelling{}) {
		delete(st.spell, userid)
		return
	}
	st.spell[userid] = sp
}

func (s *Server) spelling(userid string) UserIDSpelling {
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.spell[userid]
}

// ExpireTokens makes every token issued so far invalid. On its next use a
// token answers 42001 or 40014, alternating by issue order, since the real
// service has been seen to use both for an expired token.
func (s *Server) ExpireTokens() {
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, t := range st.tokens {
		t.expired = true
	}
}

// HideUser puts userid outside the app's visible range: user/simplelist no
// longer lists it and getcheckin_monthdata rejects batches holding it.
func (s *Server) HideUser(userid string) {
	st := s.wecom
	st.mu.Lock()
	st.hidden[userid] = true
	st.mu.Unlock()
}

func (s *Server) isHidden(userid string) bool {
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	return st.hidden[userid]
}

// WebhookMessages returns the content of every robot message received.
func (s *Server) WebhookMessages() []string {
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	return append([]string(nil), st.messages...)
}

var wecomMessages = map[int]string{
	-1:     "system busy",
	40001:  "invalid credential",
	40008:  "invalid message type",
	40013:  "invalid corpid",
	40014:  "invalid access_token",
	40058:  "invalid parameter",
	41001:  "access_token missing",
	41002:  "corpid missing",
	41004:  "corpsecret missing",
	42001:  "access_token expired",
	43001:  "require GET method",
	43002:  "require POST method",
	44004:  "empty content",
	45009:  "api freq out of limit",
	47001:  "data format error",
	60003:  "department not found",
	60011:  "no privilege to access/modify contact/party/agent",
	93000:  "invalid webhook url",
	301021: "userid invalid",
	301022: "get checkin data failed",
	301023: "useridlist invalid or over limit",
	301024: "checkin time span over limit",
}

// wecomError answers the WeCom way: HTTP 200 with errcode and errmsg. The
// message never echoes credentials.
func wecomError(w http.ResponseWriter, code int, detail string) {
	msg := wecomMessages[code]
	if msg == "" {
		msg = "error"
	}
	if detail != "" {
		msg += ": " + detail
	}
	msg += fmt.Sprintf(", more info at https://open.work.weixin.qq.com/devtool/query?e=%d", code)
	writeJSON(w, http.StatusOK, map[string]any{"errcode": code, "errmsg": msg})
}

// wecomOK answers errcode 0 with the body's members after errcode and
// errmsg, in the order WeCom sends them.
func wecomOK(w http.ResponseWriter, body map[string]any) {
	b, err := json.Marshal(body)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	out := []byte(`{"errcode":0,"errmsg":"ok"`)
	if len(b) > 2 {
		out = append(append(out, ','), b[1:]...)
	} else {
		out = append(out, '}')
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(out)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newToken() string {
	b := make([]byte, 96)
	if _, err := rand.Read(b); err != nil {
		panic(fmt.Sprintf("fakeapi: crypto/rand: %v", err)) // crypto/rand does not fail on supported platforms
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func (s *Server) handleGetToken(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.begin(w, r, EndpointGetToken, false); !ok || !s.serviceDelay(r, EndpointGetToken) {
		return
	}
	if r.Method != http.MethodGet {
		wecomError(w, 43001, "")
		return
	}
	q := r.URL.Query()
	corp, secret := q.Get("corpid"), q.Get("corpsecret")
	switch {
	case corp == "":
		wecomError(w, 41002, "")
		return
	case corp != s.opts.CorpID:
		wecomError(w, 40013, "")
		return
	case secret == "":
		wecomError(w, 41004, "")
		return
	case secret != s.opts.Secret:
		wecomError(w, 40001, "")
		return
	}
	tok := newToken()
	st := s.wecom
	st.mu.Lock()
	st.tokens[tok] = &tokenInfo{issued: s.now(), seq: len(st.tokens)}
	st.mu.Unlock()
	wecomOK(w, map[string]any{"access_token": tok, "expires_in": int(tokenTTL / time.Second)})
}

// checkToken validates access_token; it returns 0 or the errcode to answer.
func (s *Server) checkToken(r *http.Request) int {
	tok := r.URL.Query().Get("access_token")
	if tok == "" {
		return 41001
	}
	st := s.wecom
	st.mu.Lock()
	defer st.mu.Unlock()
	t, ok := st.tokens[tok]
	switch {
	case !ok:
		return 40014
	case t.expired:
		if t.seq%2 == 0 {
			return 42001
		}
		return 40014
	case s.now().Sub(t.issued) >= tokenTTL:
		return 42001
	}
	return 0
}

// authorize runs the checks shared by the token-protected endpoints, all
// reads: faults, the method, the token, then the endpoint's rate limit.
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, ep, method string) bool {
	if _, ok := s.begin(w, r, ep, false); !ok {
		return false
	}
	if r.Method != method {
		if method == http.MethodGet {
			wecomError(w, 43001, "")
		} else {
			wecomError(w, 43002, "")
		}
		return false
	}
	if code := s.checkToken(r); code != 0 {
		wecomError(w, code, "")
		return false
	}
	if !s.limits.allow(ep) {
		s.throttled.Add(1)
		wecomError(w, 45009, "")
		return false
	}
	return s.serviceDelay(r, ep)
}

func (s *Server) handleDeptList(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, EndpointDeptList, http.MethodGet) {
		return
	}
	root := 1
	if v := r.URL.Query().Get("id"); v != "" {
		id, err := strconv.Atoi(v)
		if err != nil || id <= 0 {
			wecomError(w, 40058, "id must be a positive integer")
			return
		}
		root = id
	}
	if s.isDeptHidden(root) {
		wecomError(w, 60011, "")
		return
	}
	depts := s.opts.Company.subtree(root)
	if depts == nil {
		wecomError(w, 60003, "")
		return
	}
	out := make([]any, len(depts))
	for i, d := range depts {
		out[i] = map[string]any{"id": d.ID, "parentid": d.ParentID, "order": 100000000 - d.ID*1000}
	}
	wecomOK(w, map[string]any{"department_id": out})
}

func (s *Server) handleUserList(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, EndpointUserList, http.MethodGet) {
		return
	}
	v := r.URL.Query().Get("department_id")
	id, err := strconv.Atoi(v)
	if v == "" || err != nil || id <= 0 {
		wecomError(w, 40058, "department_id must be a positive integer")
		return
	}
	c := s.opts.Company
	if _, ok := c.deptIdx[id]; !ok {
		wecomError(w, 60003, "")
		return
	}
	if s.isDeptHidden(id) {
		wecomError(w, 60011, "")
		return
	}
	out := []any{}
	for _, i := range c.members[id] {
		u := c.users[i]
		if s.isHidden(u.UserID) {
			continue
		}
		id := u.UserID
		if sp := s.spelling(id).Listed; sp != "" {
			id = sp
		}
		out = append(out, map[string]any{
			"userid": id, "name": u.Name, "department": u.Departments, "open_userid": c.extra[i].openID,
		})
	}
	wecomOK(w, map[string]any{"userlist": out})
}

type monthDataRequest struct {
	StartTime  *int64   `json:"starttime"`
	EndTime    *int64   `json:"endtime"`
	UserIDList []string `json:"useridlist"`
}

// decodeStrict decodes one JSON value into v, refusing unknown fields,
// wrong types and trailing data.
func decodeStrict(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return errors.New("trailing data after the JSON body")
	}
	return nil
}

// readWecomJSON decodes the request body strictly into v, answering 47001
// when it cannot.
func readWecomJSON(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := readBody(r)
	if err == nil {
		err = decodeStrict(body, v)
	}
	if err != nil {
		wecomError(w, 47001, err.Error())
		return false
	}
	return true
}

const maxBody = 2 << 20

func readBody(r *http.Request) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxBody+1))
	if err != nil {
		return nil, fmt.Errorf("read body: %w", err)
	}
	if len(b) > maxBody {
		return nil, errors.New("request body over 2 MB")
	}
	return b, nil
}

// validSpan applies WeCom's rule for check-in report windows: both ends are
// 00:00 CST, and 0 ≤ end−start < one month, where one month ends on the same
// day of the next month (or the 1st after it, when that day does not exist).
func validSpan(start, end int64) bool {
	const day = 86400
	if start <= 0 || end <= 0 || start > math.MaxUint32 || end > math.MaxUint32 {
		return false
	}
	if (start+8*3600)%day != 0 || (end+8*3600)%day != 0 || end < start {
		return false
	}
	st := time.Unix(start, 0).In(month.CST)
	limit := time.Date(st.Year(), st.Month()+1, st.Day(), 0, 0, 0, 0, month.CST)
	if limit.Day() != st.Day() {
		limit = time.Date(st.Year(), st.Month()+2, 1, 0, 0, 0, 0, month.CST)
	}
	return time.Unix(end, 0).Before(limit)
}

func (s *Server) handleMonthData(w http.ResponseWriter, r *http.Request) {
	if !s.authorize(w, r, EndpointMonthData, http.MethodPost) {
		return
	}
	var req monthDataRequest
	if !readWecomJSON(w, r, &req) {
		return
	}
	if n := len(req.UserIDList); n == 0 || n > 100 {
		wecomError(w, 301023, fmt.Sprintf("%d userids, want 1 to 100", n))
		return
	}
	if req.StartTime == nil || req.EndTime == nil || !validSpan(*req.StartTime, *req.EndTime) {
		wecomError(w, 301024, "")
		return
	}
	c := s.opts.Company
	seen := make(map[int]bool, len(req.UserIDList))
	idx := make([]int, 0, len(req.UserIDList))
	for _, id := range req.UserIDList {
		i, ok := c.lookup(id)
		if !ok {
			wecomError(w, 301021, "")
			return
		}
		if !seen[i] {
			seen[i] = true
			idx = append(idx, i)
		}
	}
	for _, i := range idx {
		if s.isHidden(c.users[i].UserID) {
			wecomError(w, 60011, "")
			return
		}
	}
	from := month.DateIn(time.Unix(*req.StartTime, 0), month.CST)
	to := month.DateIn(time.Unix(*req.EndTime, 0), month.CST)
	m := from.Month()
	var body bytes.Buffer
	body.WriteString(`{"errcode":0,"errmsg":"ok","datas":[`)
	for k, i := range idx {
		row, err := s.monthRow(i, m, from, to)
		if err != nil {
			http.Error(w, "encode response: "+err.Error(), http.StatusInternalServerError)
			return
		}
		if k > 0 {
			body.WriteByte(',')
		}
		body.Write(row)
	}
	body.WriteString("]}")
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	_, _ = w.Write(body.Bytes())
}

type webhookRequest struct {
	MsgType string `json:"msgtype"`
	Text    *struct {
		Content             string   `json:"content"`
		MentionedList       []string `json:"mentioned_list"`
		MentionedMobileList []string `json:"mentioned_mobile_list"`
	} `json:"text"`
	Markdown *struct {
		Content string `json:"content"`
	} `json:"markdown"`
	MarkdownV2 *struct {
		Content string `json:"content"`
	} `json:"markdown_v2"`
}

func (s *Server) handleWebhook(w http.ResponseWriter, r *http.Request) {
	dropAfter, ok := s.begin(w, r, EndpointWebhook, true)
	if !ok {
		return
	}
	if r.Method != http.MethodPost {
		wecomError(w, 43002, "")
		return
	}
	if r.URL.Query().Get("key") != s.opts.WebhookKey {
		wecomError(w, 93000, "")
		return
	}
	var req webhookRequest
	if !readWecomJSON(w, r, &req) {
		return
	}
	var content string
	limit := 4096
	switch {
	case req.MsgType == "markdown" && req.Markdown != nil:
		content = req.Markdown.Content
	case req.MsgType == "markdown_v2" && req.MarkdownV2 != nil:
		content = req.MarkdownV2.Content
	case req.MsgType == "text" && req.Text != nil:
		content, limit = req.Text.Content, 2048
	default:
		wecomError(w, 40008, "")
		return
	}
	if content == "" {
		wecomError(w, 44004, "")
		return
	}
	if len(content) > limit {
		wecomError(w, 40058, fmt.Sprintf("%s.content exceed max length %d", req.MsgType, limit))
		return
	}
	st := s.wecom
	st.mu.Lock()
	st.messages = append(st.messages, content)
	st.mu.Unlock()
	if dropAfter {
		dropConnection(w)
		return
	}
	wecomOK(w, map[string]any{})
}

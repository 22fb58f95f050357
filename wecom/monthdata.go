package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
)

// MaxUsersPerCall is WeCom's limit on useridlist.
const MaxUsersPerCall = 100

// MonthResult is the outcome of one MonthData call. Every requested userid
// appears in exactly one of Rows (as Row.Requested), Skipped, Missing or
// Multiple. Rows are matched to requested userids ignoring case; Skipped,
// Missing and Multiple name userids as they were requested.
type MonthResult struct {
	Rows     []Row    // one per requested user with exactly one row, in request order
	Skipped  []Skip   // bad userids isolated by bisecting
	Missing  []string // requested, but WeCom returned no row
	Multiple []string // requested, but WeCom returned several rows (ignoring case)
}

// Row is one user's month report.
type Row struct {
	// UserID is the userid as WeCom spelled it in the row's
	// base_info.acctid. WeCom userids are case-insensitive, so it may differ
	// in case from Requested; it is what the `userid` source shows.
	UserID string
	// Requested is the userid as it was requested (listed), spelled as in
	// the request: the row answers that request.
	Requested string
	Report    map[string]any // one `datas` element; numbers are json.Number
}

// Skip is a userid WeCom refused.
type Skip struct {
	UserID string
	Reason string // ReasonUnknownUser or ReasonNotVisible
	Code   int    // 301021, 60111 or 60011
}

type monthRequest struct {
	StartTime  int64    `json:"starttime"`
	EndTime    int64    `json:"endtime"`
	UserIDList []string `json:"useridlist"`
}

// MonthData fetches the month report of up to 100 users for the days
// start..end. The timestamps are 00:00 UTC+8 of those days, whatever the
// process time zone, because that is WeCom's day boundary.
//
// A batch that WeCom refuses because of a bad userid (301021, 60111,
// 60011) is split in halves, recursively, until the bad ids are isolated;
// they come back in Skipped and the others still yield rows. Any other
// error fails the whole call.
//
// When start == end (the 2nd of the current month) and WeCom refuses the
// range with 301024, the error has class apierr.NoCompleteDay: there is
// nothing to fetch yet, and the caller skips the month with a warning.
// 301024 for any other range is a Programming error.
func (c *Client) MonthData(ctx context.Context, start, end month.Date, userids []string) (*MonthResult, error) {
	if len(userids) == 0 || len(userids) > MaxUsersPerCall {
		return nil, programming(epMonthData, "month data for %d userids; want 1 to %d", len(userids), MaxUsersPerCall)
	}
	seen := make(map[string]bool, len(userids))
	for _, id := range userids {
		k := strings.ToLower(id)
		if id == "" || len(id) > 64 {
			return nil, programming(epMonthData, "userid %q: want 1 to 64 bytes", id)
		}
		if seen[k] {
			// Rows are matched ignoring case, so such a pair could not be
			// told apart.
			return nil, programming(epMonthData, "userid %q requested twice (ignoring case)", id)
		}
		seen[k] = true
	}
	if end.Before(start) {
		return nil, programming(epMonthData, "end %s is before start %s", end, start)
	}
	res := &MonthResult{}
	if err := c.monthBatch(ctx, start, end, userids, res); err != nil {
		return nil, err
	}
	return res, nil
}

// monthBatch fetches ids, bisecting on bad-user errors.
func (c *Client) monthBatch(ctx context.Context, start, end month.Date, ids []string, res *MonthResult) error {
	datas, err := c.fetchMonth(ctx, start, end, ids)
	if err == nil {
		c.matchRows(ids, datas, res)
		return nil
	}
	e, ok := apierr.As(err)
	if !ok || e.Class != apierr.BadUser {
		return err
	}
	if len(ids) == 1 {
		reason := ReasonUnknownUser
		if e.Code == 60011 {
			reason = ReasonNotVisible
		}
		res.Skipped = append(res.Skipped, Skip{UserID: ids[0], Reason: reason, Code: e.Code})
		c.log.Debug().Str("userid", ids[0]).Int("errcode", e.Code).Str("reason", reason).Msg("wecom skipped userid")
		return nil
	}
	half := len(ids) / 2
	if err := c.monthBatch(ctx, start, end, ids[:half], res); err != nil {
		return err
	}
	return c.monthBatch(ctx, start, end, ids[half:], res)
}

// fetchMonth makes one getcheckin_monthdata request (with retries and the
// token refresh) and returns its datas.
func (c *Client) fetchMonth(ctx context.Context, start, end month.Date, ids []string) ([]map[string]any, error) {
	r := request{
		endpoint: epMonthData,
		method:   http.MethodPost,
		path:     "/cgi-bin/checkin/getcheckin_monthdata",
		body:     monthRequest{StartTime: start.CST().Unix(), EndTime: end.CST().Unix(), UserIDList: ids},
		lim:      c.monthLim,
	}
	var datas []map[string]any
	err := c.call(ctx, r, func(raw []byte) error {
		var err error
		datas, err = decodeDatas(raw)
		return err
	})
	if e, ok := apierr.As(err); ok && e.Code == codeSpanRefused && start == end {
		// The reference does not confirm that WeCom accepts a one-day
		// range (endtime = starttime); this is its refusal of one.
		e.Class = apierr.NoCompleteDay
		e.Hint = fmt.Sprintf(hintOneDay, start)
	}
	return datas, err
}

// decodeDatas reads `datas` tolerantly: numbers stay json.Number, so ints,
// floats and big values all survive, and numbers sent as strings stay
// strings for the mapping layer to convert. An absent or null datas is an
// empty answer (every user then counts as missing). datas that is not an
// array of objects is malformed: fatal, since asking again will not fix it.
func decodeDatas(raw []byte) ([]map[string]any, error) {
	// One pass: the envelope already proved the body is valid JSON, so
	// only its shape can be wrong here.
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var env struct {
		Datas []map[string]any `json:"datas"`
	}
	if err := dec.Decode(&env); err != nil {
		return nil, malformed(epMonthData, false, "datas: %v", err)
	}
	return env.Datas, nil
}

// matchRows assigns the returned rows to the requested ids. acctid is
// matched ignoring case; the Row carries both WeCom's spelling (UserID)
// and the requested one (Requested). A row without a string base_info.acctid cannot
// be assigned: it is dropped with a warning (its user then shows as
// missing) rather than failing the batch for everyone.
func (c *Client) matchRows(ids []string, datas []map[string]any, res *MonthResult) {
	byKey := make(map[string][]map[string]any, len(ids))
	requested := make(map[string]bool, len(ids))
	for _, id := range ids {
		requested[strings.ToLower(id)] = true
	}
	for i, d := range datas {
		acct, ok := acctID(d)
		if !ok {
			c.log.Warn().Str("endpoint", epMonthData).Int("row", i).Msg("wecom month data row without base_info.acctid; ignored")
			continue
		}
		k := strings.ToLower(acct)
		if !requested[k] {
			c.log.Debug().Str("endpoint", epMonthData).Str("acctid", acct).Msg("wecom month data row for a userid not requested; ignored")
			continue
		}
		byKey[k] = append(byKey[k], d)
	}
	for _, id := range ids {
		rows := byKey[strings.ToLower(id)]
		switch len(rows) {
		case 0:
			res.Missing = append(res.Missing, id)
		case 1:
			acct, _ := acctID(rows[0])
			res.Rows = append(res.Rows, Row{UserID: acct, Requested: id, Report: rows[0]})
		default:
			res.Multiple = append(res.Multiple, id)
		}
	}
}

func acctID(d map[string]any) (string, bool) {
	bi, ok := d["base_info"].(map[string]any)
	if !ok {
		return "", false
	}
	s, ok := bi["acctid"].(string)
	return s, ok && s != ""
}

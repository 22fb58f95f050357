package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
)

// plainClient is the benchmark's own client, written the way the
// published integrations are: plain net/http and encoding/json, one request
// after another, each API paced by a token bucket of burst 1 at its limit.
// It is the reference the tool is compared with, so it does nothing
// clever, and nothing slow either.
type plainClient struct {
	base  string
	creds fakeapi.Credentials
	hc    *http.Client
	token string
}

func newPlainClient(base string, creds fakeapi.Credentials) *plainClient {
	return &plainClient{base: base, creds: creds, hc: &http.Client{Timeout: time.Minute}}
}

// pacer is a token bucket of burst 1: calls start no closer than 1/rate
// apart, as the tool's own pacing does.
func pacer(perSecond float64) *rate.Limiter { return rate.NewLimiter(rate.Limit(perSecond), 1) }

// wecomCall sends one WeCom request and decodes an answer of errcode 0.
func (c *plainClient) wecomCall(ctx context.Context, method, path string, q url.Values, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path+"?"+q.Encode(), rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	raw, status, err := c.send(req)
	if err != nil {
		return err
	}
	var head struct {
		ErrCode int    `json:"errcode"`
		ErrMsg  string `json:"errmsg"`
	}
	if status != http.StatusOK || json.Unmarshal(raw, &head) != nil || head.ErrCode != 0 {
		return fmt.Errorf("%s: HTTP %d: %.200s", path, status, raw)
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers as the tool reads them
	return dec.Decode(out)
}

func (c *plainClient) send(req *http.Request) ([]byte, int, error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return raw, resp.StatusCode, err
}

func (c *plainClient) getToken(ctx context.Context) error {
	var out struct {
		AccessToken string `json:"access_token"`
	}
	q := url.Values{"corpid": {c.creds.CorpID}, "corpsecret": {c.creds.Secret}}
	if err := c.wecomCall(ctx, http.MethodGet, "/cgi-bin/gettoken", q, nil, &out); err != nil {
		return err
	}
	c.token = out.AccessToken
	return nil
}

// users lists the whole company: the department tree, then each
// department's members, deduplicated and sorted.
func (c *plainClient) users(ctx context.Context, lim *rate.Limiter) ([]string, error) {
	if err := lim.Wait(ctx); err != nil {
		return nil, err
	}
	var depts struct {
		Departments []struct {
			ID int `json:"id"`
		} `json:"department_id"`
	}
	q := url.Values{"access_token": {c.token}, "id": {"1"}}
	if err := c.wecomCall(ctx, http.MethodGet, "/cgi-bin/department/simplelist", q, nil, &depts); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var out []string
	for _, d := range depts.Departments {
		if err := lim.Wait(ctx); err != nil {
			return nil, err
		}
		var list struct {
			UserList []struct {
				UserID string `json:"userid"`
			} `json:"userlist"`
		}
		q := url.Values{"access_token": {c.token}, "department_id": {strconv.Itoa(d.ID)}}
		if err := c.wecomCall(ctx, http.MethodGet, "/cgi-bin/user/simplelist", q, nil, &list); err != nil {
			return nil, err
		}
		for _, u := range list.UserList {
			if k := strings.ToLower(u.UserID); !seen[k] {
				seen[k] = true
				out = append(out, u.UserID)
			}
		}
	}
	slices.Sort(out)
	return out, nil
}

// report is one user's month report as WeCom sends it.
type report struct {
	UserID string
	Month  month.Month
	Row    map[string]any
}

// monthData fetches the full-month reports of up to 100 users.
func (c *plainClient) monthData(ctx context.Context, m month.Month, userids []string) ([]report, error) {
	var out struct {
		Datas []map[string]any `json:"datas"`
	}
	body := map[string]any{"starttime": m.Start().Unix(), "endtime": m.LastDay().Unix(), "useridlist": userids}
	q := url.Values{"access_token": {c.token}}
	if err := c.wecomCall(ctx, http.MethodPost, "/cgi-bin/checkin/getcheckin_monthdata", q, body, &out); err != nil {
		return nil, err
	}
	reps := make([]report, 0, len(out.Datas))
	for _, row := range out.Datas {
		base, _ := row["base_info"].(map[string]any)
		uid, _ := base["acctid"].(string)
		if uid == "" {
			return nil, fmt.Errorf("month data: a row without base_info.acctid")
		}
		reps = append(reps, report{UserID: uid, Month: m, Row: row})
	}
	return reps, nil
}

// fetchAll lists the users and fetches every month's reports in batches
// of 100, one call after another at the month-data limit, handing each
// batch to each.
func (c *plainClient) fetchAll(ctx context.Context, r rates, months []month.Month, each func([]report) error) error {
	if err := c.getToken(ctx); err != nil {
		return err
	}
	users, err := c.users(ctx, pacer(r.ListPerMinute/60))
	if err != nil {
		return err
	}
	lim := pacer(r.MonthDataPerMinute / 60)
	for _, m := range months {
		for i := 0; i < len(users); i += 100 {
			if err := lim.Wait(ctx); err != nil {
				return err
			}
			reps, err := c.monthData(ctx, m, users[i:min(i+100, len(users))])
			if err != nil {
				return err
			}
			if err := each(reps); err != nil {
				return err
			}
		}
	}
	return nil
}

// legacyCreate creates one record through the legacy route the published
// integrations call: {"data": {field: {"value": v}}}.
func (c *plainClient) legacyCreate(ctx context.Context, data []byte) error {
	body := make([]byte, 0, len(data)+10)
	body = append(append(append(body, `{"data":`...), data...), '}')
	path := "/api/v2/app/" + url.PathEscape(c.creds.AppID) + "/entry/" + url.PathEscape(c.creds.EntryID) + "/data_create"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	req.Header.Set("Authorization", "Bearer "+c.creds.APIKey)
	raw, status, err := c.send(req)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("legacy data_create: HTTP %d: %.200s", status, raw)
	}
	return nil
}

// publishedApproach fetches everything, then creates the records one by
// one through the legacy route at its limit.
func publishedApproach(ctx context.Context, c *plainClient, mapper *mapping.Mapper, r rates, months []month.Month) (int, error) {
	var all []report
	if err := c.fetchAll(ctx, r, months, func(reps []report) error {
		all = append(all, reps...)
		return nil
	}); err != nil {
		return 0, err
	}
	lim := pacer(r.Legacy)
	for _, rep := range all {
		res, err := mapper.Map(mapping.Input{UserID: rep.UserID, Month: rep.Month, Report: rep.Row})
		if err != nil {
			return 0, err
		}
		if err := lim.Wait(ctx); err != nil {
			return 0, err
		}
		if err := c.legacyCreate(ctx, res.Data); err != nil {
			return 0, err
		}
	}
	return len(all), nil
}

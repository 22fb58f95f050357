// Package jiandaoyun is the client for the Jiandaoyun v5 form-data API. It
// paces requests with client-side token buckets, retries what is safe to
// retry, and classifies every failure once, so that the engine can decide
// from the class alone. A batch_create whose answer is lost is never resent
// here: its outcome is unknown and the engine resolves it.
package jiandaoyun

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptrace"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/httpx"
	"checkin-sync/internal/retry"
)

const service = "jiandaoyun"

// Limits the API documents; breaking them is a bug in the caller.
const (
	maxBatch     = 100     // records per batch_create / batch_delete
	maxListLimit = 100     // list page size
	maxInValues  = 200     // values an "in" filter takes
	maxBody      = 2 << 20 // request body, for every request
	maxResponse  = 64 << 20
	maxErrorBody = 64 << 10
)

// DefaultTimeout bounds one HTTP exchange when Config.HTTPClient is nil
// or has no timeout.
const DefaultTimeout = httpx.DefaultTimeout

// DefaultConcurrency is the number of requests in flight when
// Config.Concurrency is zero.
const DefaultConcurrency = 4

// Rates are client-side limits in requests per second, one per endpoint
// class plus one for every call. Zero takes the default.
type Rates struct {
	Create      float64 // data/create, data/delete
	BatchCreate float64 // data/batch_create, data/batch_delete
	Update      float64 // data/update
	List        float64 // data/list, data/get, widget/list
	Global      float64 // all calls; the server's 50/s is shared enterprise-wide
}

// DefaultRates stay at or under the documented per-interface limits and
// well under the enterprise-wide cap, which other integrations share.
func DefaultRates() Rates {
	return Rates{Create: 20, BatchCreate: 10, Update: 20, List: 30, Global: 20}
}

// Config configures a Client.
type Config struct {
	BaseURL       string // e.g. https://api.jiandaoyun.com, without /api
	APIKey        string
	AppID         string
	EntryID       string
	Rates         Rates
	Concurrency   int  // most requests in flight; 0 → DefaultConcurrency
	StartWorkflow bool // is_start_workflow on batch_create
	StartTrigger  bool // is_start_trigger on update and delete
	Retry         retry.Policy
	HTTPClient    *http.Client // nil → a client with DefaultTimeout; copied, redirects refused, must verify TLS
	Log           zerolog.Logger
}

// Client talks to one Jiandaoyun form. Safe for concurrent use.
type Client struct {
	key           string
	form          formRef // the app and form every request names
	startWorkflow bool
	startTrigger  bool
	policy        retry.Policy
	hc            *http.Client
	log           zerolog.Logger
	global        *rate.Limiter
	sem           chan struct{}
	counter       retry.Counter

	widgetList, dataList, dataGet, batchCreate, update, del, batchDelete *endpoint
}

// endpoint is one route with the limiter of its class.
type endpoint struct {
	name string // as in errors, logs and Stats, e.g. "data/batch_create"
	url  string
	lim  *rate.Limiter
	// unsafeResend: a write that must not be resent once it may have
	// reached the server (batch_create).
	unsafeResend bool
	// goneIsDone: a 4001 after an attempt that may have been applied
	// means the earlier attempt did the work (delete).
	goneIsDone bool
}

// New checks cfg and builds a Client.
func New(cfg Config) (*Client, error) {
	base, err := checkBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	switch {
	case cfg.APIKey == "":
		return nil, errors.New("jiandaoyun: the API key is empty")
	case cfg.AppID == "":
		return nil, errors.New("jiandaoyun: app_id is empty")
	case cfg.EntryID == "":
		return nil, errors.New("jiandaoyun: entry_id is empty")
	case cfg.Concurrency < 0:
		return nil, fmt.Errorf("jiandaoyun: concurrency %d is negative", cfg.Concurrency)
	}
	rates, err := fillRates(cfg.Rates)
	if err != nil {
		return nil, err
	}
	conc := cfg.Concurrency
	if conc == 0 {
		conc = DefaultConcurrency
	}
	policy := cfg.Retry
	if policy.MaxAttempts == 0 && policy.Base == 0 {
		policy = retry.Default()
	}
	hc, err := httpx.NewClient(cfg.HTTPClient, httpx.Options{Timeout: DefaultTimeout, MaxIdleConnsPerHost: conc})
	if err != nil {
		return nil, fmt.Errorf("jiandaoyun: %w", err)
	}
	c := &Client{
		key: cfg.APIKey, form: formRef{AppID: cfg.AppID, EntryID: cfg.EntryID},
		startWorkflow: cfg.StartWorkflow, startTrigger: cfg.StartTrigger,
		policy: policy, hc: hc, log: cfg.Log,
		global: newLimiter(rates.Global),
		sem:    make(chan struct{}, conc),
	}
	createLim := newLimiter(rates.Create)
	batchLim := newLimiter(rates.BatchCreate)
	updateLim := newLimiter(rates.Update)
	listLim := newLimiter(rates.List)
	ep := func(name string, lim *rate.Limiter) *endpoint {
		return &endpoint{name: name, url: base + "/api/v5/app/entry/" + name, lim: lim}
	}
	c.widgetList = ep("widget/list", listLim)
	c.dataList = ep("data/list", listLim)
	c.dataGet = ep("data/get", listLim)
	c.batchCreate = ep("data/batch_create", batchLim)
	c.batchCreate.unsafeResend = true
	c.update = ep("data/update", updateLim)
	c.del = ep("data/delete", createLim)
	c.del.goneIsDone = true
	c.batchDelete = ep("data/batch_delete", batchLim)
	return c, nil
}

// Stats returns calls and retries per endpoint so far.
func (c *Client) Stats() map[string]retry.EndpointStats { return c.counter.Snapshot() }

func checkBaseURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("jiandaoyun: base_url is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("jiandaoyun: base_url: %w", err)
	}
	if u.Host == "" {
		return "", fmt.Errorf("jiandaoyun: base_url %q has no host", raw)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("jiandaoyun: base_url must be scheme://host[/path] only, without user info, query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !httpx.IsLoopback(u.Hostname()) {
			return "", fmt.Errorf("jiandaoyun: base_url %s must use https (plain http is allowed only for loopback addresses)", u.Redacted())
		}
	default:
		return "", fmt.Errorf("jiandaoyun: base_url %s must use https", u.Redacted())
	}
	return strings.TrimRight(u.Scheme+"://"+u.Host+u.EscapedPath(), "/"), nil
}

func fillRates(r Rates) (Rates, error) {
	def := DefaultRates()
	fields := []struct {
		name string
		v    *float64
		def  float64
	}{
		{"create", &r.Create, def.Create},
		{"batch_create", &r.BatchCreate, def.BatchCreate},
		{"update", &r.Update, def.Update},
		{"list", &r.List, def.List},
		{"global", &r.Global, def.Global},
	}
	for _, f := range fields {
		switch {
		case *f.v < 0:
			return r, fmt.Errorf("jiandaoyun: rate %s is negative (%g)", f.name, *f.v)
		case *f.v == 0:
			*f.v = f.def
		}
	}
	return r, nil
}

// newLimiter uses burst 1: a larger burst would let the first second
// exceed the documented limit.
func newLimiter(perSecond float64) *rate.Limiter {
	return rate.NewLimiter(rate.Limit(perSecond), 1)
}

// call sends body to ep, retrying under the policy, and hands a 2xx body
// to decode. A decode error means a malformed answer.
func (c *Client) call(ctx context.Context, ep *endpoint, body any, decode func([]byte) error) error {
	payload, err := json.Marshal(body)
	if err != nil {
		return c.programming(ep, fmt.Sprintf("encode request: %v", err), err)
	}
	if len(payload) > maxBody {
		return &apierr.Error{Service: service, Endpoint: ep.name, Class: apierr.Record,
			Msg:  fmt.Sprintf("request body is %d bytes, over the 2 MB limit", len(payload)),
			Hint: "send fewer or smaller records per request"}
	}
	attempt := 0
	mayHaveApplied := false
	op := func(ctx context.Context) error {
		attempt++
		applied, err := c.attempt(ctx, ep, attempt, payload, decode)
		if err != nil && ep.goneIsDone && mayHaveApplied && apierr.ClassOf(err) == apierr.Missing {
			c.log.Debug().Str("endpoint", ep.name).Msg("jiandaoyun: record already gone after an unanswered attempt")
			return nil
		}
		mayHaveApplied = mayHaveApplied || applied
		return err
	}
	onRetry := func(err error, wait time.Duration) {
		c.counter.Retry(ep.name)
		c.log.Debug().Str("endpoint", ep.name).Int("attempt", attempt).Dur("wait", wait).
			Str("error", err.Error()).Msg("jiandaoyun: retrying")
	}
	return c.policy.Do(ctx, op, onRetry)
}

// attempt makes one HTTP exchange. mayHaveApplied reports whether the
// request reached the server without a clear refusal.
func (c *Client) attempt(ctx context.Context, ep *endpoint, n int, payload []byte, decode func([]byte) error) (mayHaveApplied bool, err error) {
	// The slot is taken before the limiters, so a token is only ever spent
	// by a request that can go out at once. Tokens taken while queued for a
	// slot would leave together, as a burst; this way the server sees at
	// most Concurrency requests beyond the rate, however late goroutines
	// are scheduled. The slot is not held while backing off between tries.
	select {
	case c.sem <- struct{}{}:
	case <-ctx.Done():
		return false, c.notSent(ep, ctx.Err())
	}
	defer func() { <-c.sem }()
	if err := ep.lim.Wait(ctx); err != nil {
		return false, c.notSent(ep, err)
	}
	if err := c.global.Wait(ctx); err != nil {
		return false, c.notSent(ep, err)
	}

	var wrote atomic.Bool
	trace := &httptrace.ClientTrace{WroteRequest: func(i httptrace.WroteRequestInfo) {
		if i.Err == nil {
			wrote.Store(true)
		}
	}}
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(ctx, trace), http.MethodPost, ep.url, bytes.NewReader(payload))
	if err != nil {
		return false, c.programming(ep, fmt.Sprintf("build request: %v", err), err)
	}
	req.Header.Set("Authorization", "Bearer "+c.key)
	req.Header.Set("Content-Type", "application/json;charset=utf-8")
	req.Header.Set("Accept", "application/json")

	c.counter.Call(ep.name)
	start := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		sent := wrote.Load()
		e := c.transportError(ctx, ep, err, sent)
		c.log.Debug().Str("endpoint", ep.name).Int("attempt", n).Dur("duration", time.Since(start)).
			Bool("sent", sent).Str("error", e.Msg).Msg("jiandaoyun request failed")
		return sent, e
	}
	defer func() { _ = resp.Body.Close() }()
	success := resp.StatusCode/100 == 2
	limit := int64(maxErrorBody)
	if success {
		limit = maxResponse
	}
	body, readErr := io.ReadAll(io.LimitReader(resp.Body, limit))
	dur := time.Since(start)

	// A 2xx was applied whatever its body says; a 5xx may have been.
	applied := success || resp.StatusCode >= 500
	var e *apierr.Error
	switch {
	case !success:
		e = c.statusError(ep, resp, body)
	case readErr != nil:
		e = c.malformed(ep, resp.StatusCode, fmt.Sprintf("reading the answer: %v", readErr), readErr)
	default:
		if derr := decode(body); derr != nil {
			e = c.malformed(ep, resp.StatusCode, fmt.Sprintf("malformed answer: %v", derr), derr)
		}
	}
	ev := c.log.Debug().Str("endpoint", ep.name).Int("attempt", n).Int("status", resp.StatusCode).Dur("duration", dur)
	if e == nil {
		ev.Msg("jiandaoyun request")
		return applied, nil
	}
	ev.Int("code", e.Code).Str("class", e.Class.String()).Msg("jiandaoyun request")
	return applied, e
}

// notSent wraps a failure that happened before anything went out, so a
// retry is always safe.
func (c *Client) notSent(ep *endpoint, err error) *apierr.Error {
	return &apierr.Error{Service: service, Endpoint: ep.name, Class: apierr.Retry,
		Msg: "not sent: " + c.redact(err.Error()), Hint: "the request was not sent", Err: err}
}

func (c *Client) programming(ep *endpoint, msg string, err error) *apierr.Error {
	return &apierr.Error{Service: service, Endpoint: ep.name, Class: apierr.Programming,
		Msg: c.redact(msg), Hint: "the request was built wrong: this is a bug in checkin-sync", Err: err}
}

// transportError classifies a failed exchange. For batch_create, once the
// request has been written the server may have applied it, whatever went
// wrong afterwards.
func (c *Client) transportError(ctx context.Context, ep *endpoint, err error, sent bool) *apierr.Error {
	e := &apierr.Error{Service: service, Endpoint: ep.name, Msg: c.redact(err.Error()), Err: err}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		e.Err = fmt.Errorf("%w (%w)", err, ctx.Err())
	}
	if sent {
		return ep.mayBeApplied(e, "the connection failed after the request was sent; it is safe to resend")
	}
	e.Class = apierr.Retry
	e.Hint = "could not reach Jiandaoyun: check jiandaoyun.base_url and the network"
	return e
}

const (
	unknownHint    = "resolve the batch by replaying its transaction_id or by looking its keys up; never resend it blindly"
	unreadableHint = "Jiandaoyun sent an answer that could not be read"
)

// mayBeApplied classes e, a failure after which the request may have been
// applied: Retry with hint where a resend is harmless, else Unknown, for
// the engine to resolve.
func (ep *endpoint) mayBeApplied(e *apierr.Error, hint string) *apierr.Error {
	if ep.unsafeResend {
		e.Class, e.Hint = apierr.Unknown, unknownHint
	} else {
		e.Class, e.Hint = apierr.Retry, hint
	}
	return e
}

func (c *Client) malformed(ep *endpoint, status int, msg string, err error) *apierr.Error {
	e := &apierr.Error{Service: service, Endpoint: ep.name, HTTPStatus: status, Msg: c.redact(msg), Err: err}
	return ep.mayBeApplied(e, unreadableHint)
}

// apiError is the documented error body.
type apiError struct {
	Code int    `json:"code"`
	Msg  string `json:"msg"`
}

func (c *Client) statusError(ep *endpoint, resp *http.Response, body []byte) *apierr.Error {
	status := resp.StatusCode
	var ae apiError
	_ = json.Unmarshal(body, &ae)
	e := &apierr.Error{Service: service, Endpoint: ep.name, HTTPStatus: status, Code: ae.Code, Msg: c.redact(ae.Msg)}
	if e.Msg == "" && ae.Code == 0 {
		e.Msg = c.redact(snippet(body, status))
	}
	switch {
	case status == http.StatusTooManyRequests:
		// A refusal: nothing was written, so even batch_create may resend.
		e.Class = apierr.Retry
		e.Hint = "Jiandaoyun's concurrency limit was hit; lower jiandaoyun.concurrency if this persists"
		e.Wait = c.rateLimitWait(resp)
		return e
	case status >= 500:
		return ep.mayBeApplied(e, "Jiandaoyun had a server or gateway error; try again later")
	case ae.Code != 0:
		if ep.unsafeResend {
			e.Class, e.Hint = classifyBatchCreateCode(ae.Code)
		} else {
			e.Class, e.Hint = classifyCode(ae.Code)
		}
		if isRateLimitCode(ae.Code) {
			e.Wait = c.rateLimitWait(resp)
		}
		return e
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		e.Class = apierr.Fatal
		e.Hint = "Jiandaoyun refused the request: check JDY_API_KEY (开放平台 → 密钥管理) and the key's scope"
	case status == http.StatusNotFound:
		e.Class = apierr.Fatal
		e.Hint = "no such route: check jiandaoyun.base_url (e.g. https://api.jiandaoyun.com)"
	case status/100 == 3:
		e.Class = apierr.Fatal
		e.Hint = "Jiandaoyun answered with a redirect to " + resp.Header.Get("Location") + ": set jiandaoyun.base_url to the final address"
	case ep.unsafeResend:
		// Not an answer this client knows: the batch may have been written.
		e.Class = apierr.Unknown
		e.Hint = "Jiandaoyun answered without an error code: " + batchUnknownHint
	default:
		e.Class = apierr.Record
		e.Hint = "Jiandaoyun rejected the request without an error code"
	}
	return e
}

// rateLimitWait is the least wait after a rate-limit answer: Retry-After
// if given, else the policy's base (the docs say to wait at least 1 s).
func (c *Client) rateLimitWait(resp *http.Response) time.Duration {
	if s := resp.Header.Get("Retry-After"); s != "" {
		if secs, err := strconv.Atoi(s); err == nil && secs > 0 {
			d := time.Duration(secs) * time.Second
			if c.policy.Cap > 0 && d > c.policy.Cap {
				d = c.policy.Cap
			}
			return d
		}
	}
	return c.policy.Base
}

// redact removes the API key from text that may reach a log or an error.
func (c *Client) redact(s string) string {
	if c.key == "" {
		return s
	}
	return strings.ReplaceAll(s, c.key, "[redacted]")
}

// snippet is a short, one-line message from an error body that carries no
// API code; an HTML page from a gateway is named by its status only.
func snippet(body []byte, status int) string {
	s := strings.Join(strings.Fields(string(body)), " ")
	if s == "" || strings.HasPrefix(s, "<") {
		return http.StatusText(status)
	}
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

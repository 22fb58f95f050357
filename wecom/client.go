// Package wecom is the client for the few WeCom (企业微信) server APIs the
// sync needs: the access token, the department and user lists, the monthly
// attendance report (getcheckin_monthdata), and the group-robot webhook.
//
// Every failure is an *apierr.Error with a class the engine acts on. The
// app secret, access tokens and the webhook key never appear in an error
// or a log line.
package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/httpx"
	"checkin-sync/internal/retry"
)

// Defaults applied when the Config leaves a value at zero.
const (
	DefaultRatePerMinute = 50  // getcheckin_monthdata; WeCom documents 60/min
	DefaultListPerMinute = 600 // department/simplelist + user/simplelist together
	DefaultTimeout       = httpx.DefaultTimeout
	maxBody              = 32 << 20 // a 100-user month report is well under 1 MB
)

// Config configures a Client.
type Config struct {
	BaseURL       string  // e.g. https://qyapi.weixin.qq.com; http only for loopback
	CorpID        string  // 企业ID
	Secret        string  // secret of the app allowed to call the checkin API
	RatePerMinute float64 // getcheckin_monthdata pace; 0 → DefaultRatePerMinute
	ListPerMinute float64 // user-listing pace; 0 → DefaultListPerMinute
	Retry         retry.Policy
	HTTPClient    *http.Client // nil → 30 s timeout; copied, redirects refused, TLS verification must stay on
	Log           zerolog.Logger
}

// Client talks to WeCom for one (corp, app secret). It is safe for
// concurrent use.
type Client struct {
	base    string // scheme://host[/prefix], no trailing slash
	corpID  string
	secret  string
	hc      *http.Client
	log     zerolog.Logger
	policy  retry.Policy
	counter retry.Counter

	monthLim *rate.Limiter
	listLim  *rate.Limiter

	tok tokenCache
}

// New validates cfg and returns a Client. It makes no request.
func New(cfg Config) (*Client, error) {
	u, err := checkURL(strings.TrimRight(cfg.BaseURL, "/"), "wecom base_url")
	if err != nil {
		return nil, err
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("wecom base_url %q: must not have a query or fragment", RedactURL(cfg.BaseURL))
	}
	if cfg.CorpID == "" {
		return nil, errors.New("wecom corp_id is empty")
	}
	if cfg.Secret == "" {
		return nil, errors.New("wecom secret is empty")
	}
	hc, err := httpx.NewClient(cfg.HTTPClient, httpx.Options{Timeout: DefaultTimeout})
	if err != nil {
		return nil, fmt.Errorf("wecom: %w", err)
	}
	perMin := cfg.RatePerMinute
	if perMin == 0 {
		perMin = DefaultRatePerMinute
	}
	listPerMin := cfg.ListPerMinute
	if listPerMin == 0 {
		listPerMin = DefaultListPerMinute
	}
	if perMin < 0 || listPerMin < 0 {
		return nil, errors.New("wecom rate limits must be positive")
	}
	c := &Client{
		base:     strings.TrimRight(u.String(), "/"),
		corpID:   cfg.CorpID,
		secret:   cfg.Secret,
		hc:       hc,
		log:      cfg.Log,
		policy:   cfg.Retry,
		monthLim: rate.NewLimiter(rate.Limit(perMin/60), 1),
		listLim:  rate.NewLimiter(rate.Limit(listPerMin/60), 1),
	}
	c.tok.now = time.Now
	return c, nil
}

// Stats returns the calls and retries per endpoint so far.
func (c *Client) Stats() map[string]retry.EndpointStats { return c.counter.Snapshot() }

// request is one API call, before the access token is added.
type request struct {
	endpoint string
	method   string
	path     string     // under the base URL, e.g. /cgi-bin/gettoken
	query    url.Values // without access_token
	body     any        // JSON-encoded when non-nil
	lim      *rate.Limiter
}

// envelope is the part every WeCom answer shares. errcode is a pointer so
// that a body without it is told apart from success.
type envelope struct {
	Errcode *int   `json:"errcode"`
	Errmsg  string `json:"errmsg"`
}

// decodeEnvelope reads the errcode and errmsg of an HTTP 200 answer. One
// that does not decode is malformed: transient when the JSON is broken (a
// cut transfer, a proxy's HTML page), fatal when it has the wrong shape. A
// JSON answer without errcode is not WeCom's (most likely a proxy or
// gateway in between), so it is given another try.
//
// WeCom writes errcode and errmsg first, so they are read as tokens and the
// rest of a large body (month data) is only checked for syntax, not decoded
// twice; bodies that put them later are decoded whole.
func decodeEnvelope(endpoint string, raw []byte) (code int, msg string, err error) {
	if !json.Valid(raw) {
		var v any
		return 0, "", malformed(endpoint, true, "%v", json.Unmarshal(raw, &v))
	}
	if env, ok := leadingEnvelope(raw); ok {
		return *env.Errcode, env.Errmsg, nil
	}
	var env envelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return 0, "", malformed(endpoint, false, "%v", err)
	}
	if env.Errcode == nil {
		return 0, "", malformed(endpoint, true, "no errcode")
	}
	return *env.Errcode, env.Errmsg, nil
}

// leadingEnvelope reads errcode and errmsg when they are the first two
// members of the object, as WeCom sends them.
func leadingEnvelope(raw []byte) (envelope, bool) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(raw))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return env, false
	}
	for range 2 {
		key, err := dec.Token()
		if err != nil {
			return env, false
		}
		switch key {
		case "errcode":
			var code int
			if dec.Decode(&code) != nil {
				return env, false
			}
			env.Errcode = &code
		case "errmsg":
			if dec.Decode(&env.Errmsg) != nil {
				return env, false
			}
		default:
			return env, false
		}
	}
	return env, env.Errcode != nil
}

// roundTrip sends r once with token (empty for gettoken) and returns the
// body of a successful (errcode 0) answer. It waits for r's limiter first,
// so every attempt, retry or bisect half is paced.
func (c *Client) roundTrip(ctx context.Context, r request, token string) ([]byte, error) {
	if r.lim != nil {
		if err := r.lim.Wait(ctx); err != nil {
			return nil, transportError(r.endpoint, fmt.Errorf("rate limiter: %w", err))
		}
	}
	q := url.Values{}
	for k, v := range r.query {
		q[k] = v
	}
	if token != "" {
		q.Set("access_token", token)
	}
	full := c.base + r.path
	if len(q) > 0 {
		full += "?" + q.Encode()
	}
	var body io.Reader
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			return nil, programming(r.endpoint, "encode request: %v", err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, full, body)
	if err != nil {
		return nil, programming(r.endpoint, "build request: %v", redactErr(err))
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json; charset=utf-8")
	}
	req.Header.Set("Accept", "application/json")

	c.counter.Call(r.endpoint)
	began := time.Now()
	resp, err := c.hc.Do(req)
	if err != nil {
		c.log.Debug().Str("endpoint", r.endpoint).Str("url", RedactURL(full)).
			Dur("duration", time.Since(began)).Str("error", redactErr(err).Error()).Msg("wecom request failed")
		return nil, transportError(r.endpoint, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	ev := c.log.Debug().Str("endpoint", r.endpoint).Str("url", RedactURL(full)).
		Int("status", resp.StatusCode).Dur("duration", time.Since(began)).Int("bytes", len(raw))
	if err != nil {
		ev.Str("error", redactErr(err).Error()).Msg("wecom request failed")
		return nil, transportError(r.endpoint, fmt.Errorf("read body: %w", err))
	}
	if resp.StatusCode != http.StatusOK {
		ev.Msg("wecom request")
		return nil, httpStatusError(r.endpoint, resp.StatusCode)
	}
	code, msg, err := decodeEnvelope(r.endpoint, raw)
	if err != nil {
		ev.Msg("wecom request")
		return nil, err
	}
	ev.Int("errcode", code).Msg("wecom request")
	if code != 0 {
		return nil, classify(r.endpoint, code, scrub(msg, c.secret, token), c.policy.BlockWait)
	}
	return raw, nil
}

// call sends an authenticated request with retries, and decodes the
// answer with decode (which may itself fail with a classified error). On
// 40014/42001 the token is dropped, a new one fetched, and the call tried
// once more; a second rejection is fatal, since refreshing again would loop.
func (c *Client) call(ctx context.Context, r request, decode func(raw []byte) error) error {
	for refreshed := false; ; refreshed = true {
		token, err := c.token(ctx)
		if err != nil {
			return err
		}
		err = c.policy.Do(ctx, func(ctx context.Context) error {
			raw, err := c.roundTrip(ctx, r, token)
			if err != nil {
				return err
			}
			return decode(raw)
		}, c.onRetry(ctx, r.endpoint))
		e, ok := apierr.As(err)
		if !ok || e.Class != apierr.TokenExpired {
			return err
		}
		c.tok.drop(token)
		if refreshed {
			e.Class, e.Hint = apierr.Fatal, hintTokenAgain
			return e
		}
		c.counter.Retry(r.endpoint)
		c.log.Debug().Str("endpoint", r.endpoint).Int("errcode", e.Code).Msg("wecom access token rejected; refreshing")
	}
}

// onRetry counts and logs each retry of endpoint.
func (c *Client) onRetry(ctx context.Context, endpoint string) func(error, time.Duration) {
	return func(err error, wait time.Duration) {
		if ctx.Err() != nil {
			return // Do is about to give up; this is not a retry
		}
		c.counter.Retry(endpoint)
		c.log.Debug().Str("endpoint", endpoint).Str("error", err.Error()).Dur("wait", wait).Msg("wecom retry")
	}
}

// tokenCache holds the one access token of this client's (corp, secret).
// Refreshes are single-flight: the first caller that finds the token
// missing or about to expire fetches it, the others wait for that fetch.
type tokenCache struct {
	mu      sync.Mutex
	token   string
	renewAt time.Time
	flight  *tokenFlight
	now     func() time.Time
}

type tokenFlight struct {
	done  chan struct{}
	token string
	err   error
}

// tokenMargin is how long before expires_in the token is renewed, so that
// a long run never sends a token in its last minutes.
const tokenMargin = 5 * time.Minute

// drop forgets token if it is still the cached one; a token another
// caller already replaced is left alone.
func (t *tokenCache) drop(token string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token == token {
		t.token = ""
	}
}

// token returns a valid access token, fetching one if needed.
func (c *Client) token(ctx context.Context) (string, error) {
	for {
		c.tok.mu.Lock()
		if c.tok.token != "" && c.tok.now().Before(c.tok.renewAt) {
			tok := c.tok.token
			c.tok.mu.Unlock()
			return tok, nil
		}
		if f := c.tok.flight; f != nil {
			c.tok.mu.Unlock()
			select {
			case <-f.done:
			case <-ctx.Done():
				return "", transportError(epToken, ctx.Err())
			}
			// The leader's own context may have ended its fetch; a caller
			// whose context is still live tries again instead of failing.
			if f.err != nil && ctx.Err() == nil && isContextErr(f.err) {
				continue
			}
			return f.token, f.err
		}
		f := &tokenFlight{done: make(chan struct{})}
		c.tok.flight = f
		c.tok.mu.Unlock()

		f.token, f.err = c.fetchToken(ctx)

		c.tok.mu.Lock()
		c.tok.flight = nil
		c.tok.mu.Unlock()
		close(f.done)
		return f.token, f.err
	}
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// CheckToken fetches a fresh access token, for `check`: it proves the corp
// id, the secret and the trusted IP in one call.
func (c *Client) CheckToken(ctx context.Context) error {
	c.tok.mu.Lock()
	c.tok.token = ""
	c.tok.mu.Unlock()
	_, err := c.token(ctx)
	return err
}

// fetchToken calls gettoken (with retries) and caches the result.
func (c *Client) fetchToken(ctx context.Context) (string, error) {
	r := request{endpoint: epToken, method: http.MethodGet, path: "/cgi-bin/gettoken",
		query: url.Values{"corpid": {c.corpID}, "corpsecret": {c.secret}}}
	var got struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	err := c.policy.Do(ctx, func(ctx context.Context) error {
		raw, err := c.roundTrip(ctx, r, "")
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, &got); err != nil {
			return malformed(epToken, false, "%v", err)
		}
		if got.AccessToken == "" {
			return malformed(epToken, false, "no access_token")
		}
		return nil
	}, c.onRetry(ctx, epToken))
	if err != nil {
		return "", err
	}
	life := time.Duration(got.ExpiresIn) * time.Second
	if life <= 0 {
		life = 7200 * time.Second // WeCom's documented usual value
	}
	// Renew tokenMargin early, but never so early that a short-lived token
	// would be refetched on every call.
	margin := min(tokenMargin, life/2)
	c.tok.mu.Lock()
	c.tok.token = got.AccessToken
	c.tok.renewAt = c.tok.now().Add(life - margin)
	c.tok.mu.Unlock()
	c.log.Debug().Dur("expires_in", life).Msg("wecom access token fetched")
	return got.AccessToken, nil
}

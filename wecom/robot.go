package wecom

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/rs/zerolog"
	"golang.org/x/time/rate"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/httpx"
	"checkin-sync/internal/retry"
)

// MaxMarkdownBytes is the robot's limit on markdown.content.
const MaxMarkdownBytes = 4096

// ellipsis marks a truncated message.
const ellipsis = "…"

// Robot posts to a WeCom group-robot webhook. The key in its URL is a
// credential: it is redacted in every log line and error.
type Robot struct {
	url    string
	urlErr error
	hc     *http.Client
	log    zerolog.Logger
	lim    *rate.Limiter
	policy retry.Policy
}

// NewRobot returns a Robot for webhookURL. The URL must be https unless it
// points at a loopback address; a bad URL, or an hc that skips TLS
// verification, is reported by SendMarkdown. hc nil → 30 s timeout; hc is
// copied and redirects are refused.
func NewRobot(webhookURL string, hc *http.Client, log zerolog.Logger) *Robot {
	_, err := checkURL(webhookURL, "webhook URL")
	client, hcErr := httpx.NewClient(hc, httpx.Options{Timeout: DefaultTimeout})
	if err == nil && hcErr != nil {
		err = fmt.Errorf("webhook client: %w", hcErr)
	}
	p := retry.Default()
	p.MaxAttempts = 3
	return &Robot{
		url:    webhookURL,
		urlErr: err,
		hc:     client,
		log:    log,
		// WeCom allows 20 messages a minute per robot.
		lim:    rate.NewLimiter(rate.Every(3*time.Second), 1),
		policy: p,
	}
}

// WithRetry sets the retry policy (base backoff, attempts, and the wait
// after 45009); tests shorten it. It returns r.
func (r *Robot) WithRetry(p retry.Policy) *Robot {
	r.policy = p
	return r
}

// SendMarkdown posts content as a markdown message, cut to 4096 bytes.
// An errcode other than 0 is an error; 45009 (over 20 messages a minute)
// is retried after the policy's block wait.
func (r *Robot) SendMarkdown(ctx context.Context, content string) error {
	if r.urlErr != nil {
		return &apierr.Error{Service: service, Endpoint: epWebhook, Msg: r.urlErr.Error(),
			Class: apierr.Fatal, Hint: "fix alert.wecom_webhook", Err: r.urlErr}
	}
	msg := map[string]any{
		"msgtype":  "markdown",
		"markdown": map[string]string{"content": TruncateUTF8(content, MaxMarkdownBytes)},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(msg); err != nil {
		return programming(epWebhook, "encode message: %v", err)
	}
	body := buf.Bytes()
	return r.policy.Do(ctx, func(ctx context.Context) error {
		return r.post(ctx, body)
	}, func(err error, wait time.Duration) {
		r.log.Debug().Str("endpoint", epWebhook).Str("error", err.Error()).Dur("wait", wait).Msg("wecom robot retry")
	})
}

func (r *Robot) post(ctx context.Context, body []byte) error {
	if err := r.lim.Wait(ctx); err != nil {
		return transportError(epWebhook, err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return programming(epWebhook, "build request: %v", redactErr(err))
	}
	req.Header.Set("Content-Type", "application/json; charset=utf-8")
	began := time.Now()
	resp, err := r.hc.Do(req)
	if err != nil {
		r.log.Debug().Str("endpoint", epWebhook).Str("url", RedactURL(r.url)).
			Dur("duration", time.Since(began)).Str("error", redactErr(err).Error()).Msg("wecom robot request failed")
		return transportError(epWebhook, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	ev := r.log.Debug().Str("endpoint", epWebhook).Str("url", RedactURL(r.url)).
		Int("status", resp.StatusCode).Dur("duration", time.Since(began))
	if err != nil {
		ev.Msg("wecom robot request failed")
		return transportError(epWebhook, err)
	}
	if resp.StatusCode != http.StatusOK {
		ev.Msg("wecom robot request")
		return httpStatusError(epWebhook, resp.StatusCode)
	}
	code, msg, err := decodeEnvelope(epWebhook, raw)
	if err != nil {
		ev.Msg("wecom robot request")
		return err
	}
	ev.Int("errcode", code).Msg("wecom robot request")
	if code != 0 {
		return classifyRobot(code, scrub(msg, webhookKey(r.url)), r.policy.BlockWait)
	}
	return nil
}

// webhookKey returns the key parameter of a webhook URL, for scrubbing.
func webhookKey(u string) string {
	_, q, ok := strings.Cut(u, "key=")
	if !ok {
		return ""
	}
	k, _, _ := strings.Cut(q, "&")
	return k
}

// TruncateUTF8 returns s cut to at most limit bytes on a rune boundary,
// with "…" appended (within the limit) when anything was cut. Invalid
// UTF-8 is replaced first, since JSON encoding would otherwise expand each
// bad byte to three.
func TruncateUTF8(s string, limit int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if len(s) <= limit {
		return s
	}
	mark := ellipsis
	if limit < len(mark) {
		mark = ""
	}
	cut := max(limit-len(mark), 0)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + mark
}

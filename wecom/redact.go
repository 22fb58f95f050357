package wecom

import (
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"

	"checkin-sync/internal/httpx"
)

// secretParam matches the query parameters that carry credentials: the
// access token, the app secret (gettoken) and the robot's webhook key. It
// works on free text too, so error strings that embed a URL are covered.
var secretParam = regexp.MustCompile(`(?i)\b(access_token|corpsecret|key)=[^&#\s"'<>]*`)

// RedactURL replaces the values of the access_token, corpsecret and key
// query parameters in s with "REDACTED". s may be a URL or any text that
// contains one. Use it for every URL that reaches a log line or an error.
func RedactURL(s string) string {
	return secretParam.ReplaceAllString(s, "${1}=REDACTED")
}

// redactErr rewrites a transport error so that no URL inside it carries a
// credential. net/http wraps failures in *url.Error whose URL is the full
// request URL, access token included.
func redactErr(err error) error {
	if err == nil {
		return nil
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return &url.Error{Op: ue.Op, URL: RedactURL(ue.URL), Err: redactErr(ue.Err)}
	}
	if msg := err.Error(); RedactURL(msg) != msg {
		// Some other wrapper quoted the URL; keep only the redacted text.
		return errors.New(RedactURL(msg))
	}
	return err
}

// scrub removes every literal occurrence of the given secrets from s, on
// top of RedactURL. It guards messages that come back from the server.
func scrub(s string, secrets ...string) string {
	s = RedactURL(s)
	for _, v := range secrets {
		if len(v) >= 4 {
			s = strings.ReplaceAll(s, v, "REDACTED")
		}
	}
	return s
}

// checkURL accepts https URLs, and http only for loopback hosts, so that
// credentials never travel in clear text over a network. The error message
// shows the URL redacted, since a webhook URL carries its key.
func checkURL(raw, what string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("%s %q: not a valid URL", what, RedactURL(raw))
	}
	if u.Host == "" {
		return nil, fmt.Errorf("%s %q: no host", what, RedactURL(raw))
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !httpx.IsLoopback(u.Hostname()) {
			return nil, fmt.Errorf("%s %q: must use https (plain http is allowed only for loopback addresses)", what, RedactURL(raw))
		}
	default:
		return nil, fmt.Errorf("%s %q: scheme must be https", what, RedactURL(raw))
	}
	return u, nil
}

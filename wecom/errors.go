package wecom

import (
	"fmt"
	"net/http"
	"time"

	"checkin-sync/internal/apierr"
)

// Endpoint names, shared with the run summary and the fakes.
const (
	epToken     = "gettoken"
	epDeptList  = "department/simplelist"
	epUserList  = "user/simplelist"
	epMonthData = "getcheckin_monthdata"
	epWebhook   = "webhook/send"
)

const service = "wecom"

// Hints name the fix in plain words; they are what `check` and the alert show.
const (
	hintSecret      = "wrong secret, or the app is disabled or its secret was reset; check WECOM_SECRET is the secret of the app allowed to call the checkin API"
	hintCorpID      = "the corp id is wrong; check WECOM_CORP_ID (admin console → 我的企业 → 企业ID)"
	hintNoSecret    = "the secret is empty; set WECOM_SECRET to the secret of the app allowed to call the checkin API"
	hintTrustedIP   = "this server's IP is not in the app's trusted IPs (企业可信IP); add it in the admin console (takes about a minute)"
	hintForbidden   = "the app may not call the checkin API; add it under 打卡 → 可调用接口的应用"
	hintVisible     = "the app's visible range does not include that department; widen it in the admin console (应用管理 → the app → 可见范围)"
	hintNoDept      = "the department does not exist; check wecom.users.departments"
	hintBug         = "the request was built wrong; this is a bug in checkin-sync, please report it"
	hintUnexpected  = "unexpected WeCom error"
	hintMalformed   = "WeCom returned a malformed response; check wecom.base_url points at the WeCom API"
	hintTokenAgain  = "WeCom rejected a freshly fetched access token; check that the secret belongs to this corp and that no other tool resets it"
	hintHTTPStatus  = "unexpected HTTP status; check wecom.base_url points at the WeCom API"
	hintBlocked     = "WeCom's rate limit was hit (blocked for a minute); lower wecom.rate_per_minute if it keeps happening"
	hintRobotURL    = "the webhook URL is invalid or the robot was removed; create a robot in the group and update alert.wecom_webhook"
	hintRobotOff    = "the robot is disabled; enable it in the group settings"
	hintRobotGroup  = "the robot is no longer in the group; add it again or update alert.wecom_webhook"
	hintRobotTooBig = "the alert message was rejected as too long or malformed"
	hintOneDay      = "nothing to fetch yet: WeCom refused the one-day range %s (endtime = starttime); the month is skipped with a warning until it has a second complete day"
)

// codeSpanRefused is getcheckin_monthdata's "checkin time span over
// limit"; for a one-day range it becomes apierr.NoCompleteDay.
const codeSpanRefused = 301024

// Reasons for skipped users, as shown in the run summary.
const (
	ReasonUnknownUser = "unknown userid"
	ReasonNotVisible  = "outside the app's visible range"
)

// classify turns a non-zero errcode into an *apierr.Error for endpoint.
// The same code can mean different things per endpoint: 60011 stops the
// run when listing users (the configured departments are not visible) but
// only marks users as bad on month data, where the batch is bisected.
func classify(endpoint string, code int, msg string, blockWait time.Duration) *apierr.Error {
	e := &apierr.Error{Service: service, Endpoint: endpoint, Code: code, HTTPStatus: http.StatusOK, Msg: msg}
	switch code {
	case -1, 45033, 301022, 301070:
		e.Class = apierr.Retry
	case 45009:
		e.Class, e.Wait, e.Hint = apierr.Retry, blockWait, hintBlocked
	case 40014, 42001:
		e.Class = apierr.TokenExpired
	case 40001:
		e.Class, e.Hint = apierr.Fatal, hintSecret
	case 40013:
		e.Class, e.Hint = apierr.Fatal, hintCorpID
	case 41004:
		e.Class, e.Hint = apierr.Fatal, hintNoSecret
	case 48002:
		e.Class, e.Hint = apierr.Fatal, hintForbidden
	case 60020:
		e.Class, e.Hint = apierr.Fatal, hintTrustedIP
	case 41001, 301023, codeSpanRefused:
		e.Class, e.Hint = apierr.Programming, hintBug
	case 301021, 60111:
		if endpoint == epMonthData {
			e.Class = apierr.BadUser
		} else {
			e.Class, e.Hint = apierr.Fatal, hintUnexpected
		}
	case 60011:
		if endpoint == epMonthData {
			e.Class = apierr.BadUser
		} else {
			e.Class, e.Hint = apierr.Fatal, hintVisible
		}
	case 60003:
		e.Class, e.Hint = apierr.Fatal, hintNoDept
	default:
		e.Class, e.Hint = apierr.Fatal, hintUnexpected
	}
	return e
}

// classifyRobot is classify for the group robot, whose codes differ.
func classifyRobot(code int, msg string, blockWait time.Duration) *apierr.Error {
	e := &apierr.Error{Service: service, Endpoint: epWebhook, Code: code, HTTPStatus: http.StatusOK, Msg: msg}
	switch code {
	case -1:
		e.Class = apierr.Retry
	case 45009:
		e.Class, e.Wait, e.Hint = apierr.Retry, blockWait, "the robot's limit of 20 messages a minute was hit; waiting before retrying"
	case 40058:
		e.Class, e.Hint = apierr.Programming, hintRobotTooBig
	case 93000:
		e.Class, e.Hint = apierr.Fatal, hintRobotURL
	case 93004:
		e.Class, e.Hint = apierr.Fatal, hintRobotOff
	case 93008:
		e.Class, e.Hint = apierr.Fatal, hintRobotGroup
	default:
		e.Class, e.Hint = apierr.Fatal, hintUnexpected
	}
	return e
}

// httpStatusError classifies a non-200 answer. WeCom answers business
// errors inside HTTP 200, so anything else is a proxy or a wrong base URL:
// 5xx and 429 are transient, the rest will not get better by retrying.
func httpStatusError(endpoint string, status int) *apierr.Error {
	e := &apierr.Error{Service: service, Endpoint: endpoint, HTTPStatus: status, Msg: http.StatusText(status)}
	if status >= 500 || status == http.StatusTooManyRequests {
		e.Class = apierr.Retry
	} else {
		e.Class, e.Hint = apierr.Fatal, hintHTTPStatus
	}
	return e
}

// transportError wraps a network failure (or a cancelled context) as a
// transient error. The cause is redacted first: *url.Error quotes the full
// request URL, token and all.
func transportError(endpoint string, err error) *apierr.Error {
	err = redactErr(err)
	return &apierr.Error{Service: service, Endpoint: endpoint, Msg: err.Error(), Class: apierr.Retry, Err: err}
}

// malformed reports a body that is not what the API documents. Syntax
// errors (a truncated transfer, an HTML page from a proxy) are transient;
// well-formed JSON of the wrong shape will not change on retry, so it is
// fatal with a hint.
func malformed(endpoint string, transient bool, format string, args ...any) *apierr.Error {
	e := &apierr.Error{Service: service, Endpoint: endpoint, HTTPStatus: http.StatusOK,
		Msg: "malformed response: " + fmt.Sprintf(format, args...)}
	if transient {
		e.Class = apierr.Retry
	} else {
		e.Class, e.Hint = apierr.Fatal, hintMalformed
	}
	return e
}

// programming reports a request this client refuses to send.
func programming(endpoint, format string, args ...any) *apierr.Error {
	return &apierr.Error{Service: service, Endpoint: endpoint, Msg: fmt.Sprintf(format, args...),
		Class: apierr.Programming, Hint: hintBug}
}

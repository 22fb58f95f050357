package main

import (
	"fmt"
	"net/http"

	"checkin-sync/internal/apierr"
)

// codeNoPermission is Jiandaoyun's "no permission for this API". The
// reference says the standard plan (标准版) has no API, but not which code
// or HTTP status a call under it gets; the tool assumes 8302 (or an HTTP
// 403 without a code), README "Assumptions".
const codeNoPermission = 8302

// planLimitCodes are Jiandaoyun's plan and usage limits (reference §5.3,
// from a third-party copy of the error table).
var planLimitCodes = map[int]string{
	7212: "the monthly data quota is used up",
	7221: "data created through the API is over the plan's limit",
	7103: "the system is paused for over-use",
	7206: "the system is paused for over-use",
}

const fixNoAPI = "the Jiandaoyun plan may have no API access: the standard plan (标准版) has none, the Enterprise plan (企业版) and above do; " +
	"ask the Jiandaoyun admin which plan the enterprise has and upgrade it. " +
	"Otherwise the API key lacks permission for this interface: check its scope (开放平台 → 密钥管理). " +
	"(Jiandaoyun does not document which code a plan without API answers; this tool takes 8302 or HTTP 403 for it)"

// checkJiandaoyunPlan fails the "jiandaoyun plan" item when err, the
// answer to the first Jiandaoyun call, says the plan blocks the API, and
// reports whether it did. Other errors are left to the caller.
func checkJiandaoyunPlan(l *checklist, err error) bool {
	e, ok := apierr.As(err)
	if !ok || e.Service != "jiandaoyun" {
		return false
	}
	switch {
	case planLimitCodes[e.Code] != "":
		l.fail("jiandaoyun plan", fmt.Errorf("the plan blocks API calls (code %d): %w", e.Code, err),
			planLimitCodes[e.Code]+": ask the Jiandaoyun admin to wait for the quota to renew or to upgrade the plan", exitFatal)
	case e.Code == codeNoPermission:
		l.fail("jiandaoyun plan", fmt.Errorf("no API access (code %d): %w", e.Code, err), fixNoAPI, exitFatal)
	case e.Code == 0 && e.HTTPStatus == http.StatusForbidden:
		l.fail("jiandaoyun plan", fmt.Errorf("no API access (HTTP 403, no code): %w", err), fixNoAPI, exitFatal)
	default:
		return false
	}
	return true
}

package main

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

// codeNotVisible is WeCom's "指定的成员/部门/标签参数无权限": the member or
// department is outside the calling app's visible range (可见范围).
const codeNotVisible = 60011

// codeAPIForbidden is WeCom's "API接口无权限调用"; for the checkin API it
// means the app is not under 打卡 → 可调用接口的应用.
const codeAPIForbidden = 48002

const fixVisibleRange = "add them to the app's visible range (应用管理 → the app → 可见范围), " +
	"or remove them from wecom.users"

// fixSystemApp names the two causes of 48002 on the checkin API. WeCom
// does not document the code it answers for a system app's secret; the
// tool assumes 48002 (README "Assumptions").
const fixSystemApp = "the app whose secret WECOM_SECRET holds may not call the checkin API. " +
	"If it is a self-built app (自建应用), add it under 打卡 → 可调用接口的应用. " +
	"If it is the secret of the 打卡 system app: corps created since 2023-12-01 may no longer call the API with a system app's secret; " +
	"create a self-built app, add it under 打卡 → 可调用接口的应用, give it a visible range covering wecom.users, and set WECOM_SECRET to its secret " +
	"(WeCom does not document which code it answers for a system app's secret; 48002 is the one it gives for an app not allowed to call the checkin API)"

// hintSystemAppMaybe is added to an undocumented WeCom code answered to
// the month report, since the answer to a system app's secret is not
// documented either.
const hintSystemAppMaybe = "if WECOM_SECRET is the secret of the 打卡 system app, that is no longer accepted for corps created since 2023-12-01 " +
	"(WeCom does not document the code it answers then): use a self-built app added under 打卡 → 可调用接口的应用"

// wecomCodesWithFix are the codes the WeCom client gives a hint of their
// own to; any other code refused on the month report may be the answer to
// a system app's secret.
var wecomCodesWithFix = map[int]bool{
	40001: true, 40013: true, 41004: true, 41001: true, 60020: true, 60003: true,
	codeNotVisible: true, 60111: true, 301021: true, 301023: true, 301024: true,
}

// checkVisibleRange asks WeCom about every configured department (the
// whole company, department 1, when none is configured) or, when userids
// are configured, every userid not excluded, and fails one item naming all
// of those answered with 60011. It returns false when it failed that item:
// the listing checks would then only repeat the first of them. Any other
// answer is left to the listing checks, which report it.
func checkVisibleRange(ctx context.Context, l *checklist, wc *wecom.Client, sel wecom.Selection, today month.Date) bool {
	var depts []string
	var users []string
	seen := map[int]bool{}
	if len(sel.UserIDs) == 0 {
		roots := sel.Departments
		if len(roots) == 0 {
			roots = []int{1} // as wecom.Client.Users walks it
		}
		for _, d := range roots {
			if seen[d] {
				continue
			}
			seen[d] = true
			_, err := wc.Departments(ctx, d)
			switch {
			case err == nil:
			case isWeComCode(err, codeNotVisible) && d == 1:
				depts = append(depts, "1 (the whole company)")
			case isWeComCode(err, codeNotVisible):
				depts = append(depts, strconv.Itoa(d))
			default:
				return true
			}
		}
	} else {
		ids := selectedUserIDs(sel)
		start, end, _ := today.Month().Prev().Span(today)
		for i := 0; i < len(ids); i += wecom.MaxUsersPerCall {
			res, err := wc.MonthData(ctx, start, end, ids[i:min(i+wecom.MaxUsersPerCall, len(ids))])
			if err != nil {
				return true
			}
			for _, s := range res.Skipped {
				if s.Code == codeNotVisible {
					users = append(users, s.UserID)
				}
			}
		}
	}
	if len(depts) == 0 && len(users) == 0 {
		return true
	}
	var what []string
	if len(depts) > 0 {
		what = append(what, countWord(len(depts), "department ", "departments ")+strings.Join(depts, ", "))
	}
	if len(users) > 0 {
		what = append(what, countWord(len(users), "userid ", "userids ")+strings.Join(users, ", "))
	}
	fix := fixVisibleRange
	if len(users) == 0 && len(depts) == len(seen) {
		fix += "; when the app sees none of them, check too that WECOM_SECRET is not a system app's secret (such as 打卡's): " +
			"corps created since 2023-12-01 must use a self-built app added under 打卡 → 可调用接口的应用"
	}
	l.fail("wecom visible range", fmt.Errorf("outside the app's visible range (WeCom %d): %s", codeNotVisible, strings.Join(what, "; ")), fix, exitFatal)
	return false
}

// failMonthReport fails the month report item, naming the fix for an app
// not allowed to call the checkin API, and for a system app's secret.
func failMonthReport(l *checklist, err error) {
	const item = "wecom month report"
	e, ok := apierr.As(err)
	switch {
	case !ok || e.Code == 0 || sync.Unreachable(err):
		l.failAPI(item, err)
	case e.Code == codeAPIForbidden:
		l.fail(item, err, fixSystemApp, exitFatal)
	case e.Class == apierr.Fatal && !wecomCodesWithFix[e.Code]:
		fix := hintSystemAppMaybe
		if e.Hint != "" {
			fix = e.Hint + "; " + fix
		}
		l.fail(item, err, fix, sync.ErrorExitCode(err))
	default:
		l.failAPI(item, err)
	}
}

func isWeComCode(err error, code int) bool {
	e, ok := apierr.As(err)
	return ok && e.Service == "wecom" && e.Code == code
}

// selectedUserIDs is sel.UserIDs without the excluded ones and without
// repeats (ignoring case, as WeCom does).
func selectedUserIDs(sel wecom.Selection) []string {
	skip := map[string]bool{}
	for _, id := range sel.Exclude {
		skip[strings.ToLower(id)] = true
	}
	var out []string
	for _, id := range sel.UserIDs {
		id = strings.TrimSpace(id)
		k := strings.ToLower(id)
		if id == "" || skip[k] {
			continue
		}
		skip[k] = true
		out = append(out, id)
	}
	return out
}

package e2e

import (
	"fmt"
	"strings"
	"testing"
)

// The deeper `check` of issue 11: departments and userids outside the
// app's visible range, an app (or a system app's secret) not allowed to
// call the checkin API, and a Jiandaoyun plan without API access.

// wantLines fails unless each line is a whole line of check's stdout.
func wantLines(t *testing.T, r result, lines ...string) {
	t.Helper()
	have := map[string]bool{}
	for _, l := range strings.Split(r.stdout, "\n") {
		have[l] = true
	}
	for _, l := range lines {
		if !have[l] {
			t.Errorf("check output lacks the line\n%s\n(all: %s)", l, r)
		}
	}
}

// noLinePrefix fails if a line of check's stdout starts with prefix.
func noLinePrefix(t *testing.T, r result, prefix string) {
	t.Helper()
	for _, l := range strings.Split(r.stdout, "\n") {
		if strings.HasPrefix(l, prefix) {
			t.Errorf("check output has the line %q\n(all: %s)", l, r)
		}
	}
}

const (
	fixVisible   = "    fix: add them to the app's visible range (应用管理 → the app → 可见范围), or remove them from wecom.users"
	fixSystemApp = "    fix: the app whose secret WECOM_SECRET holds may not call the checkin API. " +
		"If it is a self-built app (自建应用), add it under 打卡 → 可调用接口的应用. " +
		"If it is the secret of the 打卡 system app: corps created since 2023-12-01 may no longer call the API with a system app's secret; " +
		"create a self-built app, add it under 打卡 → 可调用接口的应用, give it a visible range covering wecom.users, and set WECOM_SECRET to its secret " +
		"(WeCom does not document which code it answers for a system app's secret; 48002 is the one it gives for an app not allowed to call the checkin API)"
	fixNoAPI = "    fix: the Jiandaoyun plan may have no API access: the standard plan (标准版) has none, the Enterprise plan (企业版) and above do; " +
		"ask the Jiandaoyun admin which plan the enterprise has and upgrade it. " +
		"Otherwise the API key lacks permission for this interface: check its scope (开放平台 → 密钥管理). " +
		"(Jiandaoyun does not document which code a plan without API answers; this tool takes 8302 or HTTP 403 for it)"
)

func TestCheckNamesEveryDepartmentOutsideVisibleRange(t *testing.T) {
	e := newEnv(t, envOptions{users: 6})
	e.srv.HideDepartment(2)
	e.srv.HideDepartment(6)
	e.edit("  secret: ${E2E_SECRET}\n", "  secret: ${E2E_SECRET}\n  users: {departments: [2, 3, 6]}\n")
	r := e.run("--today", "2026-03-15", "check")
	wantLines(t, r,
		"✓ wecom token: corp wwfakecorp",
		"✗ wecom visible range: outside the app's visible range (WeCom 60011): departments 2, 6",
		fixVisible,
	)
	// The listing items would only repeat the first department.
	noLinePrefix(t, r, "✗ wecom departments")
	noLinePrefix(t, r, "✓ wecom users")
	wantLast(t, r, 4, "Error: 1 check failed: wecom visible range: outside the app's visible range (WeCom 60011): departments 2, 6; fix: add them to the app's visible range")
}

func TestCheckWholeCompanyOutsideVisibleRangeSuggestsSystemApp(t *testing.T) {
	e := newEnv(t, envOptions{users: 6})
	e.srv.HideDepartment(1)
	r := e.run("--today", "2026-03-15", "check")
	wantLines(t, r,
		"✗ wecom visible range: outside the app's visible range (WeCom 60011): department 1 (the whole company)",
		fixVisible+"; when the app sees none of them, check too that WECOM_SECRET is not a system app's secret (such as 打卡's): "+
			"corps created since 2023-12-01 must use a self-built app added under 打卡 → 可调用接口的应用",
	)
	wantLast(t, r, 4, "Error: 1 check failed: wecom visible range:", "department 1 (the whole company")
}

func TestCheckNamesEveryUserIDOutsideVisibleRange(t *testing.T) {
	e := newEnv(t, envOptions{users: 6})
	us := e.company.Users()
	ids := make([]string, len(us))
	for i, u := range us {
		ids[i] = u.UserID
	}
	// Hidden: 1, 3 (named) and 5 (excluded, so not named).
	e.srv.HideUser(ids[1])
	e.srv.HideUser(ids[3])
	e.srv.HideUser(ids[5])
	e.edit("  secret: ${E2E_SECRET}\n", fmt.Sprintf("  secret: ${E2E_SECRET}\n  users: {userids: [%s], exclude: [%s]}\n", strings.Join(ids, ", "), ids[5]))
	r := e.run("--today", "2026-03-15", "check")
	line := fmt.Sprintf("✗ wecom visible range: outside the app's visible range (WeCom 60011): userids %s, %s", ids[1], ids[3])
	wantLines(t, r, line, fixVisible)
	noLinePrefix(t, r, "✓ wecom month report")
	wantLast(t, r, 4, "Error: 1 check failed: "+strings.TrimPrefix(line, "✗ ")+"; fix: add them")

	// All visible again: the item is silent and check passes.
	e2 := newEnv(t, envOptions{users: 6})
	e2.edit("  secret: ${E2E_SECRET}\n", fmt.Sprintf("  secret: ${E2E_SECRET}\n  users: {userids: [%s]}\n", strings.Join(ids, ", ")))
	r = e2.mustRun(0, "--today", "2026-03-15", "check")
	noLinePrefix(t, r, "✗")
	wantLines(t, r, "✓ wecom users: 6 visible", "All checks passed. Next: checkin-sync sync")
}

func TestCheckNamesTheFixForAnAppNotAllowedToCallCheckin(t *testing.T) {
	const failed = "✗ wecom month report: wecom getcheckin_monthdata: code 48002 (error, more info at https://open.work.weixin.qq.com/devtool/query?e=48002): " +
		"the app may not call the checkin API; add it under 打卡 → 可调用接口的应用"
	t.Run("departments", func(t *testing.T) {
		e := newEnv(t, envOptions{users: 6})
		e.srv.FailNext("getcheckin_monthdata", 48002, 1)
		r := e.run("--today", "2026-03-15", "check")
		wantLines(t, r, "✓ wecom users: 6 visible", failed, fixSystemApp,
			"✓ jiandaoyun form: app fakeapp0000000000000001, form fakeentry00000000000001: 17 fields")
		wantLast(t, r, 4, "Error: 1 check failed: wecom month report: wecom getcheckin_monthdata: code 48002",
			"; fix: the app whose secret WECOM_SECRET holds may not call the checkin API.")
	})
	t.Run("userids", func(t *testing.T) {
		// The visible-range item asks the checkin API first; a real WeCom
		// answers both calls alike.
		e := newEnv(t, envOptions{users: 6})
		e.edit("  secret: ${E2E_SECRET}\n", fmt.Sprintf("  secret: ${E2E_SECRET}\n  users: {userids: [%s]}\n", e.company.Users()[0].UserID))
		e.srv.FailNext("getcheckin_monthdata", 48002, 2)
		r := e.run("--today", "2026-03-15", "check")
		wantLines(t, r, failed, fixSystemApp)
		noLinePrefix(t, r, "✗ wecom visible range")
		wantLast(t, r, 4, "Error: 1 check failed: wecom month report:")
	})
	t.Run("undocumented code", func(t *testing.T) {
		e := newEnv(t, envOptions{users: 6})
		e.srv.FailNext("getcheckin_monthdata", 12345, 1)
		r := e.run("--today", "2026-03-15", "check")
		wantLines(t, r,
			"✗ wecom month report: wecom getcheckin_monthdata: code 12345 (error, more info at https://open.work.weixin.qq.com/devtool/query?e=12345): unexpected WeCom error",
			"    fix: unexpected WeCom error; if WECOM_SECRET is the secret of the 打卡 system app, that is no longer accepted for corps created since 2023-12-01 "+
				"(WeCom does not document the code it answers then): use a self-built app added under 打卡 → 可调用接口的应用")
		wantLast(t, r, 4, "Error: 1 check failed: wecom month report:", "code 12345")
	})
}

func TestCheckReportsAPlanWithoutAPIAccess(t *testing.T) {
	t.Run("8302", func(t *testing.T) {
		e := newEnv(t, envOptions{users: 6})
		e.srv.FailNext("widget/list", 8302, 1)
		r := e.run("--today", "2026-03-15", "check")
		wantLines(t, r,
			"✓ wecom month report: 2026-02 for "+e.company.Users()[0].UserID,
			"✗ jiandaoyun plan: no API access (code 8302): jiandaoyun widget/list: code 8302 (error): this API key has no permission for this API: check its permissions (开放平台 → 密钥管理)",
			fixNoAPI)
		noLinePrefix(t, r, "✗ jiandaoyun form")
		noLinePrefix(t, r, "✓ form fields")
		wantLast(t, r, 4, "Error: 1 check failed: jiandaoyun plan: no API access (code 8302):", "the standard plan (标准版) has none")
	})
	for _, c := range []struct {
		code int
		what string
	}{
		{7221, "data created through the API is over the plan's limit"},
		{7212, "the monthly data quota is used up"},
		{7103, "the system is paused for over-use"},
	} {
		t.Run(fmt.Sprint(c.code), func(t *testing.T) {
			e := newEnv(t, envOptions{users: 6})
			e.srv.FailNext("widget/list", c.code, 1)
			r := e.run("--today", "2026-03-15", "check")
			prefix := fmt.Sprintf("✗ jiandaoyun plan: the plan blocks API calls (code %d): jiandaoyun widget/list: code %d (error): %s; ", c.code, c.code, c.what)
			wantLines(t, r, "    fix: "+c.what+": ask the Jiandaoyun admin to wait for the quota to renew or to upgrade the plan")
			if !strings.Contains(r.stdout, "\n"+prefix) {
				t.Errorf("check output lacks a line starting %q\n%s", prefix, r)
			}
			wantLast(t, r, 4, fmt.Sprintf("Error: 1 check failed: jiandaoyun plan: the plan blocks API calls (code %d)", c.code))
		})
	}
}

func TestCheckDeepFailuresAddUp(t *testing.T) {
	e := newEnv(t, envOptions{users: 6})
	e.srv.HideDepartment(3)
	e.srv.FailNext("widget/list", 8302, 1)
	e.edit("  secret: ${E2E_SECRET}\n", "  secret: ${E2E_SECRET}\n  users: {departments: [2, 3]}\n")
	r := e.run("--today", "2026-03-15", "check")
	wantLines(t, r, "✗ wecom visible range: outside the app's visible range (WeCom 60011): department 3", fixVisible, fixNoAPI)
	wantLast(t, r, 4, "Error: 2 checks failed (see the checklist above); the first: wecom visible range:")
	// A form error (2) beside it: 4 outranks 2. (The 8302 was answered once.)
	e.srv.HideDepartment(2)
	e.edit("    name: {source: base_info.name}\n", "    name: {source: base_info.name}\n    late_count: {source: \"exception_infos[exception=1].count\"}\n")
	r = e.run("--today", "2026-03-15", "check")
	wantLines(t, r, "✗ wecom visible range: outside the app's visible range (WeCom 60011): departments 2, 3")
	if !strings.Contains(r.stdout, "\n✗ form fields: bad mapping: mapping.fields.late_count") {
		t.Errorf("want the form fields failure: %s", r)
	}
	wantLast(t, r, 4, "Error: 2 checks failed (see the checklist above); the first: wecom visible range:")
}

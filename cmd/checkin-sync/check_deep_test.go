package main

import (
	"bytes"
	"errors"
	"slices"
	"testing"

	"checkin-sync/internal/apierr"
)

func TestCheckJiandaoyunPlanTakesHTTP403WithoutCodeForNoAPI(t *testing.T) {
	var out bytes.Buffer
	l := &checklist{w: &out}
	err := &apierr.Error{Service: "jiandaoyun", Endpoint: "widget/list", HTTPStatus: 403, Msg: "Forbidden", Class: apierr.Fatal}
	if !checkJiandaoyunPlan(l, err) {
		t.Fatal("HTTP 403 without a code not reported as the plan")
	}
	want := "✗ jiandaoyun plan: no API access (HTTP 403, no code): jiandaoyun widget/list: HTTP 403 (Forbidden)\n    fix: " + fixNoAPI + "\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if !slices.Equal(l.codes, []int{exitFatal}) {
		t.Errorf("codes %v, want [4]", l.codes)
	}
}

func TestCheckJiandaoyunPlanLeavesOtherErrorsToTheFormItem(t *testing.T) {
	for _, err := range []error{
		&apierr.Error{Service: "jiandaoyun", Endpoint: "widget/list", Code: 8301, Class: apierr.Fatal},
		&apierr.Error{Service: "jiandaoyun", Endpoint: "widget/list", HTTPStatus: 401, Class: apierr.Fatal},
		&apierr.Error{Service: "wecom", Endpoint: "gettoken", Code: 7221, Class: apierr.Fatal},
		errors.New("plain"),
	} {
		var out bytes.Buffer
		l := &checklist{w: &out}
		if checkJiandaoyunPlan(l, err) || out.Len() != 0 || len(l.codes) != 0 {
			t.Errorf("%v: reported as the plan: %q", err, out.String())
		}
	}
}

func TestFailMonthReportKeepsTheClientsFixForKnownCodes(t *testing.T) {
	var out bytes.Buffer
	l := &checklist{w: &out}
	err := &apierr.Error{Service: "wecom", Endpoint: "getcheckin_monthdata", Code: 60020, Class: apierr.Fatal, Hint: "add the IP"}
	failMonthReport(l, err)
	want := "✗ wecom month report: wecom getcheckin_monthdata: code 60020: add the IP\n    fix: add the IP\n"
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
	if !slices.Equal(l.codes, []int{exitFatal}) {
		t.Errorf("codes %v, want [4]", l.codes)
	}
}

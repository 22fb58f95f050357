package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/month"
	"checkin-sync/mapping"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

func checkCommand() *cli.Command {
	return &cli.Command{
		Name:  "check",
		Usage: "check the configuration, credentials, permissions, form and mapping",
		Description: "Prints a checklist; each failed item says how to fix it.\n\n" +
			"Exit codes: 0 every check passed; 1 a check could not complete (an API stayed unreachable\n" +
			"after its retries: network, proxy or outage); 2 configuration, mapping or form;\n" +
			"4 credentials, permission or plan.",
		Flags:  probeFlags(),
		Action: runCheck,
	}
}

func failed(codes []int) int {
	n := 0
	for _, c := range codes {
		if c != exitOK {
			n++
		}
	}
	return n
}

// checklist prints one line per item, with a fix under each failed one.
type checklist struct {
	w     io.Writer
	codes []int
	first string // the first failed item, its error and fix, for the last line
}

func (l *checklist) ok(item, detail string) {
	fmt.Fprintf(l.w, "✓ %s: %s\n", item, detail)
}

func (l *checklist) warn(item, detail, fix string) {
	fmt.Fprintf(l.w, "! %s: %s\n", item, detail)
	if fix != "" {
		fmt.Fprintf(l.w, "    fix: %s\n", fix)
	}
}

// fail records a failed item; API errors carry their own hint.
func (l *checklist) fail(item string, err error, fix string, code int) {
	fmt.Fprintf(l.w, "✗ %s: %v\n", item, err)
	if e, ok := apierr.As(err); ok && fix == "" {
		fix = e.Hint
	}
	if fix != "" {
		fmt.Fprintf(l.w, "    fix: %s\n", fix)
	}
	l.codes = append(l.codes, code)
	if l.first == "" {
		l.first = oneLine(item + ": " + err.Error())
		if fix != "" && !strings.Contains(err.Error(), fix) {
			l.first += "; fix: " + oneLine(fix)
		}
	}
}

// failAPI records a failed item whose check could not complete or was
// refused by an API: 1 when the API stayed unreachable after its retries
// (a network problem; a later check may pass), else 4.
func (l *checklist) failAPI(item string, err error) {
	code := sync.ErrorExitCode(err)
	fix := ""
	if sync.Unreachable(err) {
		fix = unreachableFix(err)
	}
	l.fail(item, err, fix, code)
}

// result is the error check ends with: its message names the first failed
// item, its cause and its fix, so that the last line says what failed and
// what to do.
func (l *checklist) result() error {
	code := worst(l.codes...)
	if code == exitOK {
		return nil
	}
	n := failed(l.codes)
	msg := fmt.Sprintf("%d %s failed: %s", n, countWord(n, "check", "checks"), l.first)
	if n > 1 {
		msg = fmt.Sprintf("%d %s failed (see the checklist above); the first: %s", n, countWord(n, "check", "checks"), l.first)
	}
	return &exitError{code: code, err: errors.New(msg)}
}

func countWord(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}

func runCheck(c *cli.Context) error {
	s, err := startSession(c)
	if err != nil {
		return err
	}
	if c.Bool(flagWriteProbe) {
		return runWriteProbe(c, s)
	}
	cfg, log := s.cfg, s.log
	ctx, cancel := context.WithTimeout(c.Context, 2*time.Minute)
	defer cancel()
	l := &checklist{w: c.App.Writer}
	l.ok("config", cfg.File)

	if _, off := time.Now().In(cfg.Location).Zone(); off != 8*3600 {
		l.warn("timezone", fmt.Sprintf("%s is not UTC+8", cfg.Timezone),
			"WeCom's days and months start at 00:00 UTC+8 whatever this says, and so does \"today\"; it only changes how times are shown")
	} else {
		l.ok("timezone", cfg.Timezone)
	}

	compiled, mapErr := compileMapping(cfg)
	if mapErr != nil {
		l.fail("mapping", mapErr, "", exitUsage)
	} else {
		l.ok("mapping", fmt.Sprintf("%d fields, key %s", len(cfg.Mapping.Fields), cfg.Mapping.Key))
	}

	wc, jc, err := clients(cfg, log)
	if err != nil {
		return err
	}

	// WeCom: token, then what the app can see, then one report.
	if err := wc.CheckToken(ctx); err != nil {
		l.failAPI("wecom token", err)
	} else {
		l.ok("wecom token", "corp "+cfg.WeCom.CorpID)
		sel := wecom.Selection{
			Departments: cfg.WeCom.Users.Departments, UserIDs: cfg.WeCom.Users.UserIDs, Exclude: cfg.WeCom.Users.Exclude,
		}
		if checkVisibleRange(ctx, l, wc, sel, s.today) {
			sample := checkWeCom(ctx, l, wc, cfg.WeCom.Users.Departments, sel, s.today)
			if compiled != nil && sample != nil {
				checkLeaveUnits(l, compiled, sample)
			}
		}
	}

	// Jiandaoyun: the form's fields, then the mapping against them.
	ws, err := jc.Widgets(ctx)
	switch {
	case err != nil:
		if !checkJiandaoyunPlan(l, err) {
			l.failAPI("jiandaoyun form", err)
		}
	default:
		l.ok("jiandaoyun form", fmt.Sprintf("app %s, form %s: %d fields", cfg.Jiandaoyun.AppID, cfg.Jiandaoyun.EntryID, len(ws)))
		if compiled != nil {
			if _, err := compiled.Bind(formWidgets(ws)); err != nil {
				l.fail("form fields", err, "add the missing fields to the form (or fix their types), or change the mapping", exitUsage)
			} else {
				l.ok("form fields", fmt.Sprintf("every mapped field exists with a fitting type; %s is a text field", cfg.Mapping.Key))
			}
		}
	}

	checkWriteBehaviour(l, cfg)

	if err := l.result(); err != nil {
		return err
	}
	fmt.Fprintln(c.App.Writer, "\nAll checks passed. Next: checkin-sync sync")
	return nil
}

// checkWeCom checks what the app can see and returns the one report row it
// samples, or nil.
func checkWeCom(ctx context.Context, l *checklist, wc *wecom.Client, depts []int, sel wecom.Selection, today month.Date) map[string]any {
	if len(sel.UserIDs) == 0 {
		n := 0
		for _, d := range depts {
			ds, err := wc.Departments(ctx, d)
			if err != nil {
				l.failAPI("wecom departments", err)
				return nil
			}
			n += len(ds)
		}
		l.ok("wecom departments", fmt.Sprintf("%d visible", n))
	}
	users, err := wc.Users(ctx, sel)
	if err != nil {
		l.failAPI("wecom users", err)
		return nil
	}
	if len(users) == 0 {
		l.fail("wecom users", fmt.Errorf("the app sees no users"), "widen the app's visible range (可见范围) or fix wecom.users", exitFatal)
		return nil
	}
	l.ok("wecom users", fmt.Sprintf("%d visible", len(users)))
	prev := today.Month().Prev()
	start, end, _ := prev.Span(today)
	res, err := wc.MonthData(ctx, start, end, []string{users[0].UserID})
	switch {
	case err != nil:
		failMonthReport(l, err)
	case len(res.Rows) == 1:
		l.ok("wecom month report", fmt.Sprintf("%s for %s", prev, users[0].UserID))
		return res.Rows[0].Report
	case len(res.Skipped) > 0:
		l.warn("wecom month report", fmt.Sprintf("%s for %s: %s", prev, users[0].UserID, res.Skipped[0].Reason), "check the app's visible range")
	default:
		l.warn("wecom month report", fmt.Sprintf("%s for %s: no row returned", prev, users[0].UserID), "the user may have no attendance rule; other users may still have data")
	}
	return nil
}

// checkLeaveUnits warns about each field that writes an sp_items duration
// with as: days while the sampled report's entry counts in hours
// (time_type 1), or with as: hours while it counts in days: the number
// would not be in the unit WeCom shows for that leave. as: leave follows
// the entry's unit.
func checkLeaveUnits(l *checklist, compiled *mapping.Mapping, report map[string]any) {
	units := compiled.LeaveUnits(report)
	if len(units) == 0 {
		return
	}
	lines := make([]string, len(units))
	for i, u := range units {
		lines[i] = u.String()
		if u.Line > 0 {
			lines[i] = fmt.Sprintf("%s (line %d)", lines[i], u.Line)
		}
	}
	l.warn("leave units", "in the sampled report:\n    "+strings.Join(lines, "\n    "),
		"write these fields with as: leave, which takes each entry's own unit (days for time_type 0, hours for 1), or switch between as: days and as: hours")
}

package fakeapi

import (
	"strconv"
	"strings"
	"time"

	"github.com/cespare/xxhash/v2"

	"checkin-sync/internal/month"
)

// rule is a checkin rule (打卡规则) as it appears in base_info.
type rule struct {
	recordType int
	groupID    int
	groupName  string
}

var rules = []rule{
	{1, 3, "总部固定班 09:00-18:00"},
	{1, 5, "分部固定班 08:30-17:30"},
	{3, 11, "客服排班"},
	{3, 12, "生产倒班"},
	{4, 21, "自由签到"},
	{7, 0, ""},
}

const (
	freeRule   = 4 // index of the free check-in rule
	noRuleType = 7
)

// pickRule maps a percentile to a rule index: mostly fixed hours, some
// shifts, some free check-in, a few users with no rule.
func pickRule(p int) int {
	switch {
	case p < 45:
		return 0
	case p < 60:
		return 1
	case p < 72:
		return 2
	case p < 80:
		return 3
	case p < 92:
		return 4
	default:
		return 5
	}
}

// stream is a splitmix64 generator: tiny, fast and fully determined by its
// seed, so a report can be rebuilt at any time instead of being stored.
type stream struct{ s uint64 }

func newStream(seed int64, userid string, m month.Month, version int) *stream {
	var b strings.Builder
	b.WriteString(strconv.FormatInt(seed, 10))
	b.WriteByte('|')
	b.WriteString(userid)
	b.WriteByte('|')
	b.WriteString(m.String())
	b.WriteByte('|')
	b.WriteString(strconv.Itoa(version))
	return &stream{s: xxhash.Sum64String(b.String())}
}

func (r *stream) next() uint64 {
	r.s += 0x9e3779b97f4a7c15
	z := r.s
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

func (r *stream) intn(n int) int { return int(r.next() % uint64(n)) }
func (r *stream) pct() int       { return r.intn(100) }

const hour = 3600

// report builds user i's row for the window from..to (inclusive CST days);
// m is the month the window is attributed to. Counts are drawn for a whole
// month and scaled to the share of the month the window covers.
func (c *Company) report(i int, m month.Month, from, to month.Date) map[string]any {
	u, x := c.users[i], c.extra[i]
	ver := c.version(u.UserID, m)
	r := newStream(c.seed, u.UserID, m, ver)
	ru := rules[x.ruleIdx]
	if ru.recordType == noRuleType && ver%2 == 1 {
		// A no-rule row is all zeros; a bump must still change it.
		ru = rules[freeRule]
	}

	paths := make([]string, len(u.Departments))
	for k, d := range u.Departments {
		paths[k] = c.deptPath(d)
	}
	base := map[string]any{
		"record_type":  ru.recordType,
		"name":         u.Name,
		"name_ex":      x.nameEx,
		"departs_name": strings.Join(paths, ";"),
		"acctid":       u.UserID,
		"rule_info":    map[string]any{"groupid": ru.groupID, "groupname": ru.groupName},
	}
	if ru.recordType == noRuleType {
		return map[string]any{
			"base_info": base,
			"summary_info": map[string]any{
				"work_days": 0, "regular_days": 0, "except_days": 0, "rest_days": 0,
				"regular_work_sec": 0, "standard_work_sec": 0,
			},
			"exception_infos": []any{},
			"sp_items":        []any{},
			"overwork_info":   map[string]any{},
		}
	}

	covered, weekdays := 0, 0
	for d := from; !to.Before(d); d = d.AddDays(1) {
		covered++
		if wd := d.CST().Weekday(); wd != time.Saturday && wd != time.Sunday {
			weekdays++
		}
	}
	monthDays := m.Days()
	scale := func(n int) int { return n * covered / monthDays }

	workDays := weekdays
	if ru.recordType == 3 { // shifts: about five days in seven, not tied to weekends
		workDays = max(0, min(covered, covered*5/7+r.intn(3)-1))
	}
	restDays := covered - workDays

	annual, personalH, compH := 0, 0, 0
	if r.pct() < 25 {
		annual = min(scale(1+r.intn(3)), workDays)
	}
	if r.pct() < 20 {
		personalH = scale(1 + r.intn(8))
	}
	if r.pct() < 15 {
		compH = scale(2 + r.intn(7))
	}
	late, lateDur, early, earlyDur := 0, 0, 0, 0
	if ru.recordType != 4 { // free check-in has no fixed start or end
		if r.pct() < 40 {
			late = scale(1 + r.intn(4))
			lateDur = late * (300 + r.intn(1500))
		}
		if r.pct() < 15 {
			early = scale(1 + r.intn(2))
			earlyDur = early * (600 + r.intn(3000))
		}
	}
	missing, absent, location := 0, 0, 0
	if r.pct() < 20 {
		missing = scale(1 + r.intn(2))
	}
	if r.pct() < 5 {
		absent = scale(1)
	}
	if r.pct() < 10 {
		location = scale(1 + r.intn(3))
	}
	exceptDays := max(0, min(late+early+missing+absent, workDays-annual))
	regularDays := workDays - annual - exceptDays
	standard := workDays * 8 * hour
	jitter := (r.intn(1801) - 600) * workDays / 4
	regular := max(0, standard-annual*8*hour-(personalH+compH)*hour-lateDur-earlyDur-absent*8*hour+jitter)

	summary := map[string]any{
		"work_days":         workDays,
		"regular_days":      regularDays,
		"except_days":       exceptDays,
		"rest_days":         restDays,
		"regular_work_sec":  regular,
		"standard_work_sec": standard,
	}

	exceptions := []any{}
	for _, e := range [][3]int{
		{1, late, lateDur}, {2, early, earlyDur}, {3, missing, 0}, {4, absent, absent * 8 * hour}, {5, location, 0},
	} {
		if e[1] > 0 {
			exceptions = append(exceptions, map[string]any{"exception": e[0], "count": e[1], "duration": e[2]})
		}
	}

	fix, trip, out, field := 0, 0, 0, 0
	if missing > 0 {
		fix = r.intn(missing + 1)
	}
	if r.pct() < 5 {
		trip = scale(1 + r.intn(3))
	}
	if r.pct() < 10 {
		out = scale(1 + r.intn(3))
	}
	if r.pct() < 10 {
		field = scale(1 + r.intn(6))
	}
	once := func(n int) int { return min(n, 1) }
	type sp struct {
		typ, vacation, count, duration, timeType int
		name                                     string
	}
	items := []sp{
		{1, 1, once(annual), annual * 86400, 0, "年假"},
		{1, 3, once(personalH), personalH * hour, 1, "事假"},
		{1, 5, once(compH), compH * hour, 1, "调休假"},
		{2, 0, fix, 0, 0, "补卡次数"},
		{3, 0, once(trip), trip * 86400, 0, "出差"},
		{4, 0, out, out * 2 * hour, 1, "外出"},
		{100, 0, field, 0, 0, "外勤次数"},
	}
	if ru.recordType == 3 { // shift rules in this company count fewer items
		items = []sp{items[1], items[2], items[6]}
	}

	// Quirks seen in real responses, drawn in a fixed order.
	stringy := r.pct() < 15
	omitRegular := r.pct() < 10
	omitRest := r.pct() < 15
	emptyOverwork := r.pct() < 10
	omitHolidays := r.pct() < 20

	num := func(n int) any {
		if stringy {
			return strconv.Itoa(n)
		}
		return n
	}
	spItems := make([]any, len(items))
	for k, it := range items {
		spItems[k] = map[string]any{
			"type": it.typ, "vacation_id": num(it.vacation), "count": num(it.count),
			"duration": num(it.duration), "time_type": it.timeType, "name": it.name,
		}
	}

	overwork := map[string]any{}
	if !emptyOverwork {
		wd, rd, hd := 0, 0, 0
		if r.pct() < 40 {
			wd = scale(1+r.intn(20)) * hour
		}
		if r.pct() < 25 {
			rd = scale(4+r.intn(13)) * hour
		}
		if r.pct() < 8 {
			hd = 8 * hour
		}
		overwork = map[string]any{
			"workday_over_sec":          wd,
			"holidays_over_sec":         hd,
			"restdays_over_sec":         rd,
			"workdays_over_as_vacation": 0,
			"workdays_over_as_money":    wd,
			"restdays_over_as_vacation": rd,
			"restdays_over_as_money":    0,
			"holidays_over_as_vacation": 0,
			"holidays_over_as_money":    hd,
		}
		if omitHolidays && hd == 0 {
			delete(overwork, "holidays_over_sec")
		}
	}
	if omitRegular {
		delete(summary, "regular_days")
	}
	if omitRest {
		delete(summary, "rest_days")
	}

	return map[string]any{
		"base_info":       base,
		"summary_info":    summary,
		"exception_infos": exceptions,
		"sp_items":        spItems,
		"overwork_info":   overwork,
	}
}

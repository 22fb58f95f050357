package mapping

import "fmt"

// LeaveUnit is a field that writes an sp_items entry's duration with
// as: days while the entry counts in hours (time_type 1), or with as: hours
// while it counts in days (time_type 0): the number written is not in the
// unit people read for that leave type in WeCom.
type LeaveUnit struct {
	Key      string // config key, e.g. mapping.fields.annual_leave
	Target   string // config target; parent.child in a subform
	Source   string // source as written
	Line     int    // config line; 0 when unknown
	As       string // AsDays or AsHours
	Entry    string // the sp_items entry's name, "" when it has none
	TimeType int    // the entry's time_type: 0 days, 1 hours
}

func (u LeaveUnit) String() string {
	unit := "days"
	if u.TimeType == 1 {
		unit = "hours"
	}
	entry := "the sp_items entry"
	if u.Entry != "" {
		entry = fmt.Sprintf("sp_items entry %q", u.Entry)
	}
	return fmt.Sprintf("%s: %s counts in %s (time_type %d), and source %q is written with as: %s",
		u.Key, entry, unit, u.TimeType, u.Source, u.As)
}

// LeaveUnits compares the mapping with one sampled report row: every field
// that writes an sp_items duration with as: days or as: hours, whose entry
// in the report counts in the other unit (wecom-api.md: time_type 0 = days,
// 1 = hours), is listed once per entry. as: leave follows time_type and is
// never listed. A report without such entries lists nothing.
func (m *Mapping) LeaveUnits(report map[string]any) []LeaveUnit {
	var out []LeaveUnit
	for _, f := range m.fields {
		switch {
		case isLeaveDuration(f):
			holder := report
			for i := 0; holder != nil && i < len(f.src.steps)-1; i++ {
				v, _ := f.src.steps[i].apply(holder)
				holder, _ = v.(map[string]any)
			}
			if holder != nil {
				out = appendLeaveUnit(out, f, f.label, holder)
			}
		case f.as == AsSubform && f.src != nil && f.src.kind == kindArray:
			rows, _ := f.src.lookup(report)
			for _, sub := range f.sub {
				if !isLeaveDuration(sub) {
					continue
				}
				forEachRow(rows, func(row map[string]any) {
					out = appendLeaveUnit(out, sub, sub.label, row)
				})
			}
		}
	}
	return out
}

// isLeaveDuration: f writes an sp_items duration with as: days or hours.
func isLeaveDuration(f *cfield) bool {
	return (f.as == AsDays || f.as == AsHours) && f.src != nil && f.src.kind == kindNumber &&
		f.src.path[len(f.src.path)-1].name == "duration" && f.src.holder != nil && f.src.holder.fields["time_type"] != nil
}

func forEachRow(v any, fn func(map[string]any)) {
	switch l := v.(type) {
	case []any:
		for _, e := range l {
			if row, ok := e.(map[string]any); ok {
				fn(row)
			}
		}
	case []map[string]any:
		for _, row := range l {
			if row != nil {
				fn(row)
			}
		}
	}
}

func appendLeaveUnit(out []LeaveUnit, f *cfield, label string, entry map[string]any) []LeaveUnit {
	d, err := decOf(entry["time_type"])
	if entry["time_type"] == nil || err != nil {
		return out
	}
	tt := -1
	switch d {
	case dec{}:
		tt = 0
	case dec{mant: 1}:
		tt = 1
	}
	if !(tt == 1 && f.as == AsDays || tt == 0 && f.as == AsHours) {
		return out
	}
	name, _ := entry["name"].(string)
	for _, u := range out {
		if u.Key == f.key && u.Entry == name {
			return out
		}
	}
	return append(out, LeaveUnit{Key: f.key, Target: label, Source: f.src.text, Line: f.line, As: f.as, Entry: name, TimeType: tt})
}

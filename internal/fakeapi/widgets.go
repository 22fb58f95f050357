package fakeapi

import "fmt"

// Widget is one form field as widget/list reports it. Name is what requests
// use (the alias when one is set), WidgetName the fixed _widget_ id.
type Widget struct {
	Name       string   `json:"name"`
	WidgetName string   `json:"widgetName"`
	Label      string   `json:"label"`
	Type       string   `json:"type"`
	Items      []Widget `json:"items,omitempty"`
}

// DefaultWidgets is a form that fits the default mapping: every target is
// an alias, the key is a text field, and the month a datetime.
func DefaultWidgets() []Widget {
	fields := []struct{ name, label, typ string }{
		{"sync_key", "同步键", "text"},
		{"month", "月份", "datetime"},
		{"record_type", "打卡规则类型", "number"},
		{"name", "姓名", "text"},
		{"name_ex", "别名", "text"},
		{"departs_name", "所在部门", "text"},
		{"acctid", "企业微信账号", "text"},
		{"groupid", "打卡规则ID", "number"},
		{"groupname", "打卡规则名称", "text"},
		{"work_days", "应打卡天数", "number"},
		{"regular_days", "正常天数", "number"},
		{"except_days", "异常天数", "number"},
		{"regular_work_sec", "实际工作时长(秒)", "number"},
		{"standard_work_sec", "标准工作时长(秒)", "number"},
		{"workday_over_sec", "工作日加班时长(秒)", "number"},
		{"holidays_over_sec", "节假日加班时长(秒)", "number"},
		{"restdays_over_sec", "休息日加班时长(秒)", "number"},
	}
	out := make([]Widget, len(fields))
	for i, f := range fields {
		out[i] = Widget{
			Name:       f.name,
			WidgetName: fmt.Sprintf("_widget_17580771187%02d", i+1),
			Label:      f.label,
			Type:       f.typ,
		}
	}
	return out
}

// sysWidgets are the system fields widget/list reports besides the form's.
var sysWidgets = []map[string]string{
	{"name": "creator", "label": "提交人", "type": "user"},
	{"name": "updater", "label": "修改人", "type": "user"},
	{"name": "createTime", "label": "提交时间", "type": "datetime"},
	{"name": "updateTime", "label": "更新时间", "type": "datetime"},
	{"name": "ext", "label": "扩展字段", "type": "text"},
}

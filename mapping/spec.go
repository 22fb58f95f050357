// Package mapping turns one WeCom month-report row into a Jiandaoyun write
// payload, and hashes that payload canonically so that a rerun can tell
// unchanged records from changed ones without asking Jiandaoyun.
package mapping

import "slices"

// Spec is the mapping section of the configuration, as written by the user.
type Spec struct {
	Key    string      // mapping.key: the target field that holds "<userid>|<YYYY-MM>"
	Fields []FieldSpec // in the order of the configuration file
	Line   int         // line of the `mapping:` key, for errors
}

// FieldSpec maps one target field from one source.
type FieldSpec struct {
	Target     string            // alias or _widget_ id of the target field
	Source     string            // see the mapping language in the README
	As         string            // converter; "" means none
	Enum       map[string]string // code -> label, for As == "enum"
	Default    any               // value written when the source is missing (string, int64, float64 or bool)
	HasDefault bool              // Default was given (it may be the zero value)
	Fields     []FieldSpec       // row mapping, for As == "subform"
	Line       int               // line of the field in the configuration file
}

// Converter names accepted in `as:`.
const (
	AsNone     = ""
	AsText     = "text"
	AsNumber   = "number"
	AsHours    = "hours"
	AsDays     = "days"
	AsDatetime = "datetime"
	AsEnum     = "enum"
	AsSubform  = "subform"
	// AsMember writes the value (usually source: userid) as a Jiandaoyun
	// member username; it fits user (成员单选) fields.
	AsMember = "member"
	// AsLeave writes an sp_items entry's duration in the entry's own unit:
	// days when its time_type is 0, hours when it is 1.
	AsLeave = "leave"
)

// Converters lists every known converter name except AsNone.
var Converters = []string{AsText, AsNumber, AsHours, AsDays, AsDatetime, AsEnum, AsSubform, AsMember, AsLeave}

// IsConverter reports whether name is a known converter ("" included).
func IsConverter(name string) bool {
	return name == AsNone || slices.Contains(Converters, name)
}

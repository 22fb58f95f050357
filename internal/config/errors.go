package config

import (
	"sort"
	"strconv"
	"strings"
)

// Problem is one thing wrong with the configuration, located so that the
// user can go straight to the line and fix it.
type Problem struct {
	Line int    // 1-based line in the file; 0 when the key is absent altogether
	Key  string // dotted key path, e.g. "wecom.rate_per_minute"; "" for the whole file
	Msg  string // what is wrong, never quoting a secret
	Fix  string // what to do about it; may be empty
}

func (p Problem) format(file string) string {
	var b strings.Builder
	b.WriteString(file)
	if p.Line > 0 {
		b.WriteByte(':')
		b.WriteString(strconv.Itoa(p.Line))
	}
	b.WriteString(": ")
	if p.Key != "" {
		b.WriteString(p.Key)
		b.WriteString(": ")
	}
	b.WriteString(p.Msg)
	if p.Fix != "" {
		b.WriteString("; Fix: ")
		b.WriteString(p.Fix)
	}
	return b.String()
}

// Error lists every problem found in one configuration file, so that one
// edit can fix them all instead of one per run.
type Error struct {
	File     string // the path as given, for messages
	Problems []Problem
	Err      error // underlying cause (for example fs.ErrNotExist), if any
}

// Error prints one line per problem: "file:line: key: message; Fix: ...".
func (e *Error) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.format(e.File)
	}
	return strings.Join(lines, "\n")
}

func (e *Error) Unwrap() error { return e.Err }

// sortProblems orders problems by line, keeping the discovery order of
// problems on the same line.
func sortProblems(ps []Problem) {
	sort.SliceStable(ps, func(i, j int) bool { return ps[i].Line < ps[j].Line })
}

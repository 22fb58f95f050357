package main

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"checkin-sync/internal/config"
	"checkin-sync/internal/fakeapi"
)

// toolSettings are what a scenario changes in the template `init` writes.
type toolSettings struct {
	BaseURL     string // the fakes, for both APIs
	Creds       fakeapi.Credentials
	Store       string
	Rates       rates
	Concurrency int
}

// retryBase keeps a retry from costing a second; a measured run should
// need none, and if it does the throttled count says so.
const retryBase = "50ms"

// toolYAML fills the template the way a user would: the form's ids where
// the placeholders are, and the values of the keys the benchmark sets.
// Secrets stay ${VAR} references to the child's environment.
func toolYAML(template []byte, s toolSettings) ([]byte, error) {
	filled := strings.NewReplacer("EDIT_ME_APP_ID", s.Creds.AppID, "EDIT_ME_ENTRY_ID", s.Creds.EntryID).Replace(string(template))
	r := s.Rates
	return setYAMLKeys(filled, []yamlKey{
		{"store", yamlString(s.Store)},
		{"wecom.base_url", yamlString(s.BaseURL)},
		{"wecom.rate_per_minute", num(r.MonthDataPerMinute)},
		{"wecom.list_per_minute", num(r.ListPerMinute)},
		{"jiandaoyun.base_url", yamlString(s.BaseURL)},
		{"jiandaoyun.concurrency", strconv.Itoa(s.Concurrency)},
		{"jiandaoyun.rate_per_second.create", num(r.Create)},
		{"jiandaoyun.rate_per_second.batch_create", num(r.BatchCreate)},
		{"jiandaoyun.rate_per_second.update", num(r.Update)},
		{"jiandaoyun.rate_per_second.list", num(r.List)},
		{"jiandaoyun.rate_per_second.global", num(r.Global)},
		{"retry.base", retryBase},
		{"retry.block_wait", "1s"},
	})
}

// toolEnv holds the secrets the template names, for the child only.
func toolEnv(c fakeapi.Credentials) map[string]string {
	return map[string]string{"WECOM_CORP_ID": c.CorpID, "WECOM_SECRET": c.Secret, "JDY_API_KEY": c.APIKey}
}

// loadToolConfig checks that the file loads as the tool will load it.
func loadToolConfig(path string, env map[string]string) (*config.Config, error) {
	return config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
}

type yamlKey struct {
	path  string // dotted, e.g. jiandaoyun.rate_per_second.list
	value string // YAML scalar text
}

var yamlKeyLine = regexp.MustCompile(`^( *)([A-Za-z_][A-Za-z0-9_]*):(.*)$`)

// setYAMLKeys replaces the values of block-style keys in text, keeping
// the rest of the file and its comments. A key the text lacks is added
// after the last line of its parent's block, which must exist.
func setYAMLKeys(text string, keys []yamlKey) ([]byte, error) {
	want := make(map[string]string, len(keys))
	for _, k := range keys {
		want[k.path] = k.value
	}
	lines := strings.Split(text, "\n")
	type open struct {
		indent int
		key    string
	}
	var stack []open
	set := map[string]bool{}
	lastLine := map[string]int{}    // parent path -> index of the last line in its block
	childIndent := map[string]int{} // parent path -> indentation of its keys
	for i, line := range lines {
		m := yamlKeyLine.FindStringSubmatch(line)
		if m == nil {
			continue // comments, blank lines, list items
		}
		indent := len(m[1])
		for len(stack) > 0 && stack[len(stack)-1].indent >= indent {
			stack = stack[:len(stack)-1]
		}
		parents := make([]string, len(stack))
		for j, o := range stack {
			parents[j] = o.key
		}
		for j := range parents {
			lastLine[strings.Join(parents[:j+1], ".")] = i
		}
		parent := strings.Join(parents, ".")
		childIndent[parent] = indent
		path := joinPath(parent, m[2])
		if v, ok := want[path]; ok {
			lines[i] = m[1] + m[2] + ": " + v
			set[path] = true
		}
		stack = append(stack, open{indent, m[2]})
	}
	type insert struct {
		after int
		line  string
	}
	var inserts []insert
	for _, k := range keys {
		if set[k.path] {
			continue
		}
		parent, name := splitPath(k.path)
		at, ok := lastLine[parent]
		if !ok {
			return nil, fmt.Errorf("configuration template: no %q section to add %s to", parent, k.path)
		}
		inserts = append(inserts, insert{at, strings.Repeat(" ", childIndent[parent]) + name + ": " + k.value})
	}
	// From the bottom up, so earlier indexes stay valid; keys added to one
	// parent keep their order.
	slices.SortStableFunc(inserts, func(a, b insert) int { return a.after - b.after })
	for i := len(inserts) - 1; i >= 0; i-- {
		in := inserts[i]
		lines = append(lines[:in.after+1], append([]string{in.line}, lines[in.after+1:]...)...)
	}
	return []byte(strings.Join(lines, "\n")), nil
}

func joinPath(parent, key string) string {
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func splitPath(p string) (parent, key string) {
	i := strings.LastIndexByte(p, '.')
	if i < 0 {
		return "", p
	}
	return p[:i], p[i+1:]
}

var plainScalar = regexp.MustCompile(`^[A-Za-z0-9/._:-]+$`)

// yamlString writes s plain when it is safe, else double-quoted (a JSON
// string is a valid YAML double-quoted scalar).
func yamlString(s string) string {
	if plainScalar.MatchString(s) && !strings.Contains(s, ": ") {
		return s
	}
	b, _ := json.Marshal(s)
	return string(b)
}

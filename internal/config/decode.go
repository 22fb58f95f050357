package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"

	"checkin-sync/internal/httpx"
	"checkin-sync/internal/suggest"
	"checkin-sync/mapping"
)

// Known keys per section. The decoder refuses any other key, so a typo is
// reported instead of silently leaving a default in force.
var (
	rootKeys   = []string{"timezone", "store", "wecom", "jiandaoyun", "sync", "retry", "alert", "mapping"}
	wecomKeys  = []string{"base_url", "corp_id", "secret", "users", "rate_per_minute", "list_per_minute"}
	usersKeys  = []string{"departments", "userids", "exclude"}
	jdyKeys    = []string{"base_url", "api_key", "app_id", "entry_id", "start_workflow", "start_trigger", "concurrency", "rate_per_second", "consistency_delay"}
	ratesKeys  = []string{"create", "batch_create", "update", "list", "global"}
	syncKeys   = []string{"months", "settle_days"}
	retryKeys  = []string{"base", "max_attempts", "block_wait"}
	alertKeys  = []string{"wecom_webhook", "on"}
	mapKeys    = []string{"key", "fields"}
	fieldKeys  = []string{"source", "as", "enum", "default", "fields"}
	alertKinds = []string{"failure", "recovery"}
)

// sections names the key list of every section, to suggest the right
// section for a key written in the wrong one.
var sections = []struct {
	path string
	keys []string
}{
	{"", rootKeys}, {"wecom", wecomKeys}, {"wecom.users", usersKeys}, {"jiandaoyun", jdyKeys},
	{"jiandaoyun.rate_per_second", ratesKeys}, {"sync", syncKeys}, {"retry", retryKeys},
	{"alert", alertKeys}, {"mapping", mapKeys},
}

type decoder struct {
	lookup func(string) (string, bool)
	// noSecrets leaves the secret keys unread (status, history, reset):
	// their ${VAR} form is still checked, but the variables are never
	// looked up and an absent secret is not an error.
	noSecrets bool
	skipped   map[string]bool // secret key paths left unread because of noSecrets
	problems  []Problem
	failed    map[string]bool   // key paths that already have a problem: no follow-on complaints
	env       map[string]string // key path -> the value as written, when it came from ${VAR}
	warnings  []string
}

func newDecoder(lookup func(string) (string, bool)) *decoder {
	return &decoder{lookup: lookup, failed: map[string]bool{}, env: map[string]string{}, skipped: map[string]bool{}}
}

func (d *decoder) problem(line int, key, msg, fix string) {
	d.problems = append(d.problems, Problem{Line: line, Key: key, Msg: msg, Fix: fix})
	d.failed[key] = true
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

// resolve follows aliases to the anchored node; nil for a dangling chain.
func resolve(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode; i++ {
		if i == 16 {
			return nil
		}
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool { return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null" }

// describe says what a node holds, for "got ..." in messages.
func describe(n *yaml.Node) string {
	switch {
	case n == nil:
		return "nothing"
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case isNull(n):
		return "null"
	default:
		return strconv.Quote(truncate(n.Value, 60))
	}
}

// section is one YAML mapping being decoded against its known keys.
type section struct {
	d     *decoder
	path  string // dotted path of this mapping; "" for the top level
	line  int    // line of the key that opened it; 0 when absent
	given bool   // the mapping is in the file (possibly empty)
	keys  map[string]*yaml.Node
	vals  map[string]*yaml.Node
	order []string
}

// open reads node as a mapping. known == nil accepts any key (mapping
// targets); otherwise unknown keys are reported with a suggestion.
func (d *decoder) open(path string, line int, node *yaml.Node, known []string) *section {
	s := &section{d: d, path: path, line: line, keys: map[string]*yaml.Node{}, vals: map[string]*yaml.Node{}}
	node = resolve(node)
	if node == nil || isNull(node) {
		return s
	}
	if node.Kind != yaml.MappingNode {
		if path == "" {
			d.problem(node.Line, "", "the file must be a YAML mapping of keys such as wecom:, jiandaoyun: and mapping: (got "+describe(node)+")",
				"run `checkin-sync init --force` to write a fresh template")
		} else {
			d.problem(line, path, "must be a mapping of keys (got "+describe(node)+")", "indent its keys under "+lastKey(path)+":")
		}
		return s
	}
	s.given = true
	for i := 0; i+1 < len(node.Content); i += 2 {
		k, v := resolve(node.Content[i]), node.Content[i+1]
		if k == nil || k.Kind != yaml.ScalarNode {
			kl := line
			if k != nil {
				kl = k.Line
			}
			d.problem(kl, path, "keys must be plain names (got "+describe(k)+")", "")
			continue
		}
		name := k.Value
		kpath := join(path, truncate(name, 60))
		if k.ShortTag() == "!!merge" {
			d.problem(k.Line, kpath, "merge keys (<<) are not supported", "write the keys out in full")
			continue
		}
		if prev, dup := s.keys[name]; dup {
			d.problem(k.Line, kpath, fmt.Sprintf("given twice (first on line %d)", prev.Line), "keep only one of them")
			continue
		}
		if known != nil && !slices.Contains(known, name) {
			d.unknown(k.Line, path, name, known)
			continue
		}
		s.keys[name], s.vals[name] = k, v
		s.order = append(s.order, name)
	}
	return s
}

func lastKey(path string) string {
	if i := strings.LastIndexByte(path, '.'); i >= 0 {
		return path[i+1:]
	}
	return path
}

// unknown reports a key that is not in known, suggesting the nearest known
// key, or the section where a key of that name belongs.
func (d *decoder) unknown(line int, path, name string, known []string) {
	kpath := join(path, truncate(name, 60))
	near := suggest.Closest(name, known)
	var elsewhere string
	if !strings.HasPrefix(path, "mapping.fields") {
		for _, sec := range sections {
			if sec.path != path && slices.Contains(sec.keys, name) {
				elsewhere = join(sec.path, name)
				break
			}
		}
	}
	var fix string
	switch {
	case near != "" && suggest.Distance(near, name) <= 1:
		fix = "did you mean " + join(path, near) + "?"
	case elsewhere != "":
		fix = "did you mean " + elsewhere + "? Move it there"
	case near != "":
		fix = "did you mean " + join(path, near) + "?"
	default:
		fix = "known keys here: " + strings.Join(known, ", ")
	}
	d.problem(line, kpath, "unknown key", fix)
}

// sub opens the mapping under key. An absent section is empty and carries
// the line of its parent, so that "required" problems point somewhere.
func (s *section) sub(key string, known []string) *section {
	line := s.line
	if k := s.keys[key]; k != nil {
		line = k.Line
	}
	return s.d.open(join(s.path, key), line, s.vals[key], known)
}

// value returns the value under key and the key's line. ok is false when the
// key is absent or null; line is then the key's line or the section's.
func (s *section) value(key string) (n *yaml.Node, line int, ok bool) {
	k, present := s.keys[key]
	if !present {
		return nil, s.line, false
	}
	v := resolve(s.vals[key])
	if v == nil || isNull(v) {
		return nil, k.Line, false
	}
	return v, k.Line, true
}

// scalarVal is one scalar after ${VAR} expansion.
type scalarVal struct {
	text    string // the value, expanded
	tag     string // YAML tag of text (re-resolved after expansion)
	raw     string // the value as written
	fromEnv bool   // text came (partly) from environment variables
}

// shown quotes a value for a message; fromEnv marks one written as ${VAR}.
func shown(s string, fromEnv bool) string {
	q := strconv.Quote(truncate(s, 60))
	if fromEnv {
		q += ", from the environment"
	}
	return q
}

// show renders the value for "got ..." without revealing what an
// environment variable holds.
func (v scalarVal) show() string { return shown(v.raw, v.fromEnv) }

// quote renders a decoded string for a message. A value that came from
// the environment is shown as written (${VAR}), never as expanded.
func (d *decoder) quote(path, val string) string {
	if raw, ok := d.env[path]; ok {
		return shown(raw, true)
	}
	return shown(val, false)
}

// scalar reads n as a scalar and expands ${VAR} in string values.
func (d *decoder) scalar(path string, line int, n *yaml.Node, want string) (scalarVal, bool) {
	if n.Kind != yaml.ScalarNode {
		d.problem(line, path, fmt.Sprintf("must be %s (got %s)", want, describe(n)), "")
		return scalarVal{}, false
	}
	tag := n.ShortTag()
	switch tag {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp", "!!null":
	default:
		d.problem(line, path, fmt.Sprintf("must be %s (got a value tagged %s)", want, truncate(tag, 40)), "remove the tag")
		return scalarVal{}, false
	}
	v := scalarVal{text: n.Value, tag: tag, raw: n.Value}
	if tag == "!!str" && strings.Contains(n.Value, placeholder) {
		d.problem(line, path, "still holds the template's placeholder "+shown(placeholderIn(n.Value), false), placeholderFix(path))
		return scalarVal{}, false
	}
	if tag == "!!str" && strings.Contains(n.Value, "$") {
		out, used, err := expand(n.Value, d.lookup)
		if err != nil {
			fix := "write $$ for a literal $"
			if len(used) > 0 {
				fix = "export the variable before running checkin-sync (cron and systemd need it in their own environment), or write $$ for a literal $"
			}
			d.problem(line, path, err.Error(), fix)
			return scalarVal{}, false
		}
		v.text = out
		if len(used) > 0 {
			v.fromEnv = true
			d.env[path] = n.Value
			v.tag = plainTag(out)
		}
	}
	return v, true
}

// text decodes any non-null scalar as a string.
func (d *decoder) text(path string, line int, n *yaml.Node) (string, bool) {
	v, ok := d.scalar(path, line, n, "a string")
	return v.text, ok
}

// decode decodes the (expanded) value as its tag says, into out.
func (v scalarVal) decode(out any) error {
	return (&yaml.Node{Kind: yaml.ScalarNode, Tag: v.tag, Value: v.text}).Decode(out)
}

// scalarAt reads the scalar under key, with the path and line its problems
// are reported at. ok is false when the key is absent or null, or when a
// problem was reported: either way the caller keeps its default.
func (s *section) scalarAt(key, want string) (v scalarVal, path string, line int, ok bool) {
	n, line, ok := s.value(key)
	if !ok {
		return scalarVal{}, "", line, false
	}
	path = join(s.path, key)
	v, ok = s.d.scalar(path, line, n, want)
	return v, path, line, ok
}

func (s *section) str(key, def string) string {
	v, _, _, ok := s.scalarAt(key, "a string")
	if !ok {
		return def
	}
	return v.text
}

// require reports key as missing when val is empty and nothing else was
// reported for it yet.
func (s *section) require(key, val, fix string) {
	path := join(s.path, key)
	if val != "" || s.d.failed[path] || s.d.skipped[path] {
		return
	}
	line := s.line
	msg := "is required"
	if k := s.keys[key]; k != nil {
		line = k.Line
		msg = "is required but empty"
		if raw, ok := s.d.env[path]; ok {
			msg = fmt.Sprintf("is required but %s expands to an empty value", truncate(raw, 60))
		}
	}
	s.d.problem(line, path, msg, fix)
}

func (s *section) integer(key string, def int) int {
	v, path, line, ok := s.scalarAt(key, "a whole number")
	if !ok {
		return def
	}
	if i, ok := s.d.intOf(path, line, v); ok {
		return i
	}
	return def
}

func (d *decoder) intOf(path string, line int, v scalarVal) (int, bool) {
	if v.tag != "!!int" {
		d.problem(line, path, "must be a whole number (got "+v.show()+")", unquoteFix(v, "!!int"))
		return 0, false
	}
	var i int
	if err := v.decode(&i); err != nil {
		d.problem(line, path, "is out of range (got "+v.show()+")", "")
		return 0, false
	}
	return i, true
}

func (s *section) number(key string, def float64) float64 {
	v, path, line, ok := s.scalarAt(key, "a number")
	if !ok {
		return def
	}
	if v.tag != "!!int" && v.tag != "!!float" {
		s.d.problem(line, path, "must be a number (got "+v.show()+")", unquoteFix(v, "!!int", "!!float"))
		return def
	}
	if f, ok := s.d.floatOf(path, line, v); ok {
		return f
	}
	return def
}

// floatOf decodes an !!int or !!float value, refusing NaN and infinities.
func (d *decoder) floatOf(path string, line int, v scalarVal) (float64, bool) {
	var f float64
	if err := v.decode(&f); err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.problem(line, path, "must be a finite number (got "+v.show()+")", "")
		return 0, false
	}
	return f, true
}

func (s *section) boolean(key string, def bool) bool {
	v, path, line, ok := s.scalarAt(key, "true or false")
	if !ok {
		return def
	}
	var b bool
	if v.tag != "!!bool" || v.decode(&b) != nil {
		s.d.problem(line, path, "must be true or false (got "+v.show()+")", unquoteFix(v, "!!bool"))
		return def
	}
	return b
}

func (s *section) duration(key string, def time.Duration) time.Duration {
	v, path, line, ok := s.scalarAt(key, "a duration such as 1s or 200ms")
	if !ok {
		return def
	}
	dur, err := time.ParseDuration(v.text)
	if err != nil {
		s.d.problem(line, path, "must be a duration such as 1s or 200ms (got "+v.show()+")", "write a number with a unit: ms, s, m or h")
		return def
	}
	if dur < 0 {
		s.d.problem(line, path, "must not be negative (got "+v.show()+")", "")
		return def
	}
	return dur
}

// list returns the items of a sequence; given reports that the key is set.
func (s *section) list(key string) (items []*yaml.Node, line int, given bool) {
	n, line, ok := s.value(key)
	if !ok {
		return nil, line, s.keys[key] != nil
	}
	if n.Kind != yaml.SequenceNode {
		s.d.problem(line, join(s.path, key), "must be a list such as [a, b] (got "+describe(n)+")", "")
		return nil, line, true
	}
	out := make([]*yaml.Node, 0, len(n.Content))
	for _, it := range n.Content {
		out = append(out, resolve(it))
	}
	return out, line, true
}

// unquoteFix suggests removing quotes from a value that would have the
// wanted type without them.
func unquoteFix(v scalarVal, want ...string) string {
	if v.fromEnv || v.tag != "!!str" {
		return ""
	}
	if slices.Contains(want, plainTag(v.text)) {
		return "write it without quotes"
	}
	return ""
}

// plainTag is the tag YAML gives s written without quotes.
func plainTag(s string) string { return (&yaml.Node{Kind: yaml.ScalarNode, Value: s}).ShortTag() }

func itemPath(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

func itemLine(it *yaml.Node, def int) int {
	if it != nil && it.Line > 0 {
		return it.Line
	}
	return def
}

func (s *section) strList(key string) (vals []string, lines []int, given bool) {
	items, line, given := s.list(key)
	path := join(s.path, key)
	for i, it := range items {
		ip, il := itemPath(path, i), itemLine(it, line)
		if it == nil || isNull(it) {
			s.d.problem(il, ip, "is empty", "remove the empty list item")
			continue
		}
		t, ok := s.d.text(ip, il, it)
		if !ok {
			continue
		}
		if t == "" {
			s.d.problem(il, ip, "is empty", "remove the empty list item")
			continue
		}
		vals = append(vals, t)
		lines = append(lines, il)
	}
	return vals, lines, given
}

func (s *section) intList(key string, def []int) (vals, lines []int, given bool) {
	items, line, given := s.list(key)
	if !given {
		return def, nil, false
	}
	path := join(s.path, key)
	vals = []int{}
	for i, it := range items {
		ip, il := itemPath(path, i), itemLine(it, line)
		if it == nil || isNull(it) {
			s.d.problem(il, ip, "is empty", "remove the empty list item")
			continue
		}
		v, ok := s.d.scalar(ip, il, it, "a whole number")
		if !ok {
			continue
		}
		if n, ok := s.d.intOf(ip, il, v); ok {
			vals = append(vals, n)
			lines = append(lines, il)
		}
	}
	return vals, lines, true
}

// secret reads a key that must be written as exactly ${VAR}. Neither the
// literal (if one was written) nor the variable's value is ever quoted.
func (s *section) secret(key, envVar string) string {
	path := join(s.path, key)
	if s.d.noSecrets {
		s.d.skipped[path] = true
	}
	n, line, ok := s.value(key)
	if !ok {
		return ""
	}
	move := fmt.Sprintf("move the value to an environment variable and write `%s: ${%s}`", key, envVar)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		s.d.problem(line, path, "must be given as ${VAR}, naming an environment variable", move)
		return ""
	}
	name, ok := secretRef(n.Value)
	if !ok {
		s.d.problem(line, path, "is a secret and must not be written in the file; it must be exactly ${VAR}", move)
		return ""
	}
	if s.d.noSecrets {
		return ""
	}
	val, ok := s.d.lookup(name)
	if !ok {
		s.d.problem(line, path, "environment variable "+name+" is not set",
			"export "+name+" before running checkin-sync (cron and systemd need it in their own environment)")
		return ""
	}
	if val == "" {
		s.d.problem(line, path, "environment variable "+name+" is empty", "set "+name+" to the secret")
		return ""
	}
	return val
}

// checkURL validates a base or webhook URL: http(s) with a host, and https
// unless the host is a loopback address. A secret URL is never quoted.
func (d *decoder) checkURL(path string, line int, raw string, secret, base bool) {
	got := ""
	if !secret {
		got = " (got " + d.quote(path, raw) + ")"
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		d.problem(line, path, "must be a URL such as https://host"+got, "")
		return
	}
	if u.Scheme == "http" && !httpx.IsLoopback(u.Hostname()) {
		d.problem(line, path, "must use https; plain http is allowed only for loopback addresses"+got,
			"use https://, or 127.0.0.1 / localhost for a local test server")
		return
	}
	if base && (u.RawQuery != "" || u.Fragment != "" || u.User != nil) {
		d.problem(line, path, "must be a plain base URL without user, query or fragment"+got, "")
	}
}

var yamlLine = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parseYAML parses one YAML document into a node tree. Parser failures are
// turned into a located problem.
func parseYAML(data []byte) (doc *yaml.Node, p *Problem) {
	defer func() {
		if r := recover(); r != nil {
			doc, p = nil, &Problem{Msg: "the file is not valid YAML", Fix: "check indentation and quoting"}
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var n yaml.Node
	if err := dec.Decode(&n); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, nil
		}
		return nil, yamlProblem(err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err == nil {
		return nil, &Problem{Line: extra.Line, Msg: "a second YAML document (---) is not allowed", Fix: "keep one document per file"}
	} else if !errors.Is(err, io.EOF) {
		return nil, yamlProblem(err)
	}
	return &n, nil
}

func yamlProblem(err error) *Problem {
	msg := strings.TrimSpace(err.Error())
	fix := `check the indentation and quoting near this line; a value holding ": " or " #" needs quotes`
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		return &Problem{Line: line, Msg: "invalid YAML: " + m[2], Fix: fix}
	}
	return &Problem{Msg: "invalid YAML: " + strings.TrimPrefix(msg, "yaml: "), Fix: fix}
}

// decode walks the document and fills a Config, recording every problem.
func (d *decoder) decode(doc *yaml.Node) *Config {
	var root *yaml.Node
	if doc != nil && doc.Kind == yaml.DocumentNode && len(doc.Content) > 0 {
		root = doc.Content[0]
	}
	top := d.open("", 0, root, rootKeys)
	cfg := &Config{}
	if !top.given && root != nil && !isNull(root) {
		return cfg // not a mapping: already reported, and nothing else can be read
	}

	cfg.Timezone = top.str("timezone", DefaultTimezone)
	d.timezone(top, cfg)
	cfg.Store = top.str("store", DefaultStore)
	top.require("store", cfg.Store, "give a file path such as ./checkin-sync.db")
	cfg.Store = d.storePath(top, cfg.Store)

	d.wecom(top.sub("wecom", wecomKeys), cfg)
	d.jiandaoyun(top.sub("jiandaoyun", jdyKeys), cfg)

	sy := top.sub("sync", syncKeys)
	cfg.Sync = Sync{Months: sy.integer("months", 2), SettleDays: sy.integer("settle_days", 5)}
	sy.atLeast("months", int64(cfg.Sync.Months), 1, 2)
	sy.atLeast("settle_days", int64(cfg.Sync.SettleDays), 0, 5)

	rt := top.sub("retry", retryKeys)
	cfg.Retry = Retry{
		Base:        rt.duration("base", time.Second),
		MaxAttempts: rt.integer("max_attempts", 6),
		BlockWait:   rt.duration("block_wait", 60*time.Second),
	}
	rt.atLeast("max_attempts", int64(cfg.Retry.MaxAttempts), 1, 6)

	if _, _, ok := top.value("alert"); ok {
		cfg.Alert = d.alert(top.sub("alert", alertKeys))
	}
	cfg.Mapping = d.mapping(top.sub("mapping", mapKeys))
	cfg.Warnings = d.warnings
	return cfg
}

// placeholder marks the values `init` writes for the user to edit.
const placeholder = "EDIT_ME"

// placeholderIn returns the placeholder word inside s, e.g. EDIT_ME_APP_ID.
func placeholderIn(s string) string {
	i := strings.Index(s, placeholder)
	j := i
	for j < len(s) && (s[j] == '_' || s[j] >= 'A' && s[j] <= 'Z' || s[j] >= '0' && s[j] <= '9') {
		j++
	}
	return s[i:j]
}

func placeholderFix(path string) string {
	switch path {
	case "jiandaoyun.app_id":
		return "write the id of the Jiandaoyun app that holds the form: the part after /app/ in the form's address"
	case "jiandaoyun.entry_id":
		return "write the id of the form: the part after /entry/ (or /form/) in the form's address"
	}
	return "replace it with the real value"
}

// storePath expands a leading ~ or ~/ in store: to the home directory
// ($HOME), so that `store: ~/x.db` never creates a directory named "~".
// ~user is refused: its home cannot be found without a user database.
func (d *decoder) storePath(top *section, p string) string {
	if !strings.HasPrefix(p, "~") || d.failed["store"] {
		return p
	}
	_, line, _ := top.value("store")
	rest := p[1:]
	if rest != "" && rest[0] != '/' {
		d.problem(line, "store", "a path starting with ~user is not supported (got "+d.quote("store", p)+")",
			"write the full path of the file, or ~/… for a file in your own home directory")
		return p
	}
	home, ok := d.lookup("HOME")
	if !ok || home == "" || !strings.HasPrefix(home, "/") {
		d.problem(line, "store", "starts with ~ but HOME is not set to an absolute path, so it cannot be expanded",
			"write an absolute path, or a path relative to the configuration file such as ./checkin-sync.db")
		return p
	}
	return home + rest
}

func (d *decoder) timezone(top *section, cfg *Config) {
	path := "timezone"
	if d.failed[path] {
		return
	}
	_, line, _ := top.value("timezone")
	if cfg.Timezone == "" {
		top.require("timezone", "", "name an IANA time zone such as Asia/Shanghai")
		return
	}
	loc, err := time.LoadLocation(cfg.Timezone)
	if err != nil {
		d.problem(line, path, "unknown time zone "+d.quote(path, cfg.Timezone), "name an IANA time zone such as Asia/Shanghai")
		return
	}
	cfg.Location = loc
}

// atLeast reports an integer below min, naming the value and the default.
func (s *section) atLeast(key string, v, min, def int64) {
	path := join(s.path, key)
	if v >= min || s.d.failed[path] {
		return
	}
	_, line, _ := s.value(key)
	what := "must be above 0"
	if min == 0 {
		what = "must not be negative"
	}
	s.d.problem(line, path, fmt.Sprintf("%s (got %d)", what, v), fmt.Sprintf("use a number of %d or more, or remove the key for the default %d", min, def))
}

// above warns about a rate over a documented server limit. It is accepted
// (the limit may be raised for a corp), but the warning names the limit and
// the block that follows.
func (s *section) above(key string, v, limit float64, unit, what string) {
	path := join(s.path, key)
	if v <= limit || s.d.failed[path] {
		return
	}
	_, line, _ := s.value(key)
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	s.d.warnings = append(s.d.warnings, fmt.Sprintf("%s (line %d) is %s, above the limit of %s %s that %s; lower it to %s or less",
		path, line, f(v), f(limit), unit, what, f(limit)))
}

// positive reports a rate that is not above 0.
func (s *section) positive(key string, v, def float64) {
	path := join(s.path, key)
	if v > 0 || s.d.failed[path] {
		return
	}
	_, line, _ := s.value(key)
	s.d.problem(line, path, fmt.Sprintf("must be above 0 (got %s)", strconv.FormatFloat(v, 'g', -1, 64)),
		fmt.Sprintf("use a positive number, or remove the key for the default %s", strconv.FormatFloat(def, 'g', -1, 64)))
}

// durationWithin reports a duration that is not above 0 or is above max.
// Zero is refused too: for a delay that guards against a race, "no wait"
// is a mistake, not a setting.
func (s *section) durationWithin(key string, v, max, def time.Duration) {
	path := join(s.path, key)
	if (v > 0 && v <= max) || s.d.failed[path] {
		return
	}
	n, line, ok := s.value(key)
	got := shortDuration(v)
	if ok {
		got = s.d.quote(path, n.Value)
	}
	what := "must be above 0"
	if v > max {
		what = "must be at most " + shortDuration(max)
	}
	s.d.problem(line, path, fmt.Sprintf("%s (got %s)", what, got),
		fmt.Sprintf("use a duration above 0 and up to %s, or remove the key for the default %s", shortDuration(max), shortDuration(def)))
}

// shortDuration writes d as a user would: 10m rather than 10m0s.
func shortDuration(d time.Duration) string {
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

func trimBase(u string) string { return strings.TrimRight(u, "/") }

func (d *decoder) baseURL(s *section, def string) string {
	u := s.str("base_url", def)
	path := join(s.path, "base_url")
	if d.failed[path] {
		return u
	}
	_, line, _ := s.value("base_url")
	if u == "" {
		s.require("base_url", "", "remove the key to use "+def)
		return u
	}
	d.checkURL(path, line, u, false, true)
	return trimBase(u)
}

func (d *decoder) wecom(s *section, cfg *Config) {
	w := &cfg.WeCom
	w.BaseURL = d.baseURL(s, DefaultWeComURL)
	w.CorpID = s.str("corp_id", "")
	s.require("corp_id", w.CorpID, "write `corp_id: ${WECOM_CORP_ID}` and export WECOM_CORP_ID (企业ID, under 我的企业 → 企业信息)")
	w.Secret = s.secret("secret", "WECOM_SECRET")
	s.require("secret", w.Secret, "write `secret: ${WECOM_SECRET}` and export WECOM_SECRET (the secret of the app allowed to call the checkin API)")
	w.RatePerMinute = s.number("rate_per_minute", DefaultMonthPerMinute)
	s.positive("rate_per_minute", w.RatePerMinute, DefaultMonthPerMinute)
	s.above("rate_per_minute", w.RatePerMinute, WeComMonthLimit, "calls a minute",
		"WeCom documents for getcheckin_monthdata; above it WeCom answers 45009 and blocks the app for a minute")
	w.ListPerMinute = s.number("list_per_minute", DefaultListPerMinute)
	s.positive("list_per_minute", w.ListPerMinute, DefaultListPerMinute)
	s.above("list_per_minute", w.ListPerMinute, WeComListLimit, "calls a minute",
		"WeCom documents per corp for department/simplelist and user/simplelist, shared with the corp's other integrations; above it WeCom answers 45009 and blocks for a minute")

	u := s.sub("users", usersKeys)
	deps, depLines, depsGiven := u.intList("departments", []int{1})
	for i, id := range deps {
		if id < 1 {
			d.problem(depLines[i], "wecom.users.departments", fmt.Sprintf("must list department ids of 1 or more (got %d)", id), "1 is the whole company")
		}
	}
	w.Users.UserIDs, _, _ = u.strList("userids")
	w.Users.Exclude, _, _ = u.strList("exclude")
	w.Users.Departments = deps
	if len(w.Users.UserIDs) > 0 {
		if depsGiven && len(deps) > 0 {
			d.warnings = append(d.warnings, "wecom.users.userids is set, so wecom.users.departments is ignored")
		}
		w.Users.Departments = nil
	} else if len(deps) == 0 && !d.failed["wecom.users.departments"] && !d.failed["wecom.users.userids"] {
		_, line, _ := u.value("departments")
		d.problem(line, "wecom.users.departments", "is empty and no userids are given, so there is nobody to sync",
			"list department ids (1 is the whole company) or userids")
	}
}

func (d *decoder) jiandaoyun(s *section, cfg *Config) {
	j := &cfg.Jiandaoyun
	j.BaseURL = d.baseURL(s, DefaultJiandaoyunURL)
	if !d.failed["jiandaoyun.base_url"] {
		j.BaseURL = trimBase(strings.TrimSuffix(j.BaseURL, "/api"))
	}
	j.APIKey = s.secret("api_key", "JDY_API_KEY")
	s.require("api_key", j.APIKey, "write `api_key: ${JDY_API_KEY}` and export JDY_API_KEY (开放平台 → 密钥管理)")
	j.AppID = s.str("app_id", "")
	s.require("app_id", j.AppID, "write the id of the app that holds the form")
	j.EntryID = s.str("entry_id", "")
	s.require("entry_id", j.EntryID, "write the id of the form (entry)")
	j.StartWorkflow = s.boolean("start_workflow", false)
	j.StartTrigger = s.boolean("start_trigger", false)
	j.Concurrency = s.integer("concurrency", 4)
	s.atLeast("concurrency", int64(j.Concurrency), 1, 4)

	r := s.sub("rate_per_second", ratesKeys)
	j.Rates = Rates{
		Create:      r.number("create", 20),
		BatchCreate: r.number("batch_create", 10),
		Update:      r.number("update", 20),
		List:        r.number("list", 30),
		Global:      r.number("global", 20),
	}
	r.positive("create", j.Rates.Create, 20)
	r.positive("batch_create", j.Rates.BatchCreate, 10)
	r.positive("update", j.Rates.Update, 20)
	r.positive("list", j.Rates.List, 30)
	r.positive("global", j.Rates.Global, 20)
	const jdyBlock = "Jiandaoyun documents; above it Jiandaoyun refuses requests with 8303 or 8304 and every call waits and retries"
	r.above("create", j.Rates.Create, JDYCreateLimit, "requests a second", jdyBlock)
	r.above("batch_create", j.Rates.BatchCreate, JDYBatchCreateLimit, "requests a second", jdyBlock)
	r.above("update", j.Rates.Update, JDYUpdateLimit, "requests a second", jdyBlock)
	r.above("list", j.Rates.List, JDYListLimit, "requests a second", jdyBlock)
	r.above("global", j.Rates.Global, JDYGlobalLimit, "requests a second",
		"Jiandaoyun documents for the whole enterprise, shared with its other integrations; above it Jiandaoyun refuses requests with 8303 and every call waits and retries")

	j.ConsistencyDelay = s.duration("consistency_delay", DefaultConsistencyDelay)
	s.durationWithin("consistency_delay", j.ConsistencyDelay, MaxConsistencyDelay, DefaultConsistencyDelay)
}

func (d *decoder) alert(s *section) *Alert {
	a := &Alert{}
	a.WeComWebhook = s.secret("wecom_webhook", "WECOM_ROBOT_WEBHOOK")
	s.require("wecom_webhook", a.WeComWebhook, "write `wecom_webhook: ${WECOM_ROBOT_WEBHOOK}` and export the robot's webhook URL, or remove the alert section")
	if a.WeComWebhook != "" {
		_, line, _ := s.value("wecom_webhook")
		d.checkURL("alert.wecom_webhook", line, a.WeComWebhook, true, false)
	}
	on, lines, given := s.strList("on")
	if !given {
		on = append([]string(nil), alertKinds...)
	}
	seen := map[string]bool{}
	for i, kind := range on {
		if !slices.Contains(alertKinds, kind) {
			fix := "use failure and/or recovery"
			if c := suggest.Closest(kind, alertKinds); c != "" {
				fix = "did you mean " + c + "?"
			}
			d.problem(lines[i], "alert.on", "unknown alert kind "+d.quote(itemPath("alert.on", i), kind), fix)
			continue
		}
		if !seen[kind] {
			seen[kind] = true
			a.On = append(a.On, kind)
		}
	}
	if given && len(on) == 0 && !d.failed["alert.on"] {
		_, line, _ := s.value("on")
		d.problem(line, "alert.on", "is empty, so no alert would ever be sent", "list failure and/or recovery, or remove the alert section")
	}
	return a
}

func (d *decoder) mapping(s *section) mapping.Spec {
	spec := mapping.Spec{Line: s.line}
	spec.Key = s.str("key", "")
	s.require("key", spec.Key, "name the target field that holds \"<userid>|<YYYY-MM>\", e.g. key: sync_key")
	fn, line, given := s.value("fields")
	switch {
	case given:
		spec.Fields = d.fields("mapping.fields", line, fn, false)
		if len(spec.Fields) == 0 && !d.failed["mapping.fields"] {
			d.problem(line, "mapping.fields", "is empty", "map at least the key field, e.g. sync_key: {source: key}")
		}
	default:
		s.require("fields", "", "list the target fields, e.g. sync_key: {source: key}; run `checkin-sync init` in another directory to see the default mapping")
	}
	if spec.Key == "" || len(spec.Fields) == 0 {
		return spec
	}
	_, keyLine, _ := s.value("key")
	for _, f := range spec.Fields {
		if f.Target != spec.Key {
			continue
		}
		srcPath := "mapping.fields." + f.Target + ".source"
		if f.Source != "key" && f.Source != "" && !d.failed[srcPath] {
			d.problem(f.Line, srcPath, "the key field must be mapped from source: key (got "+d.quote(srcPath, f.Source)+")",
				fmt.Sprintf("write `%s: {source: key}`", f.Target))
		}
		return spec
	}
	fix := "name the field that is mapped from source: key"
	if _, fromEnv := d.env["mapping.key"]; !fromEnv {
		fix = fmt.Sprintf("add `%s: {source: key}` under mapping.fields, or ", truncate(spec.Key, 60)) + fix
	}
	d.problem(keyLine, "mapping.key", d.quote("mapping.key", spec.Key)+" is not one of mapping.fields", fix)
	return spec
}

// fields decodes target -> field spec pairs in file order.
func (d *decoder) fields(path string, line int, n *yaml.Node, inSubform bool) []mapping.FieldSpec {
	s := d.open(path, line, n, nil)
	var out []mapping.FieldSpec
	for _, target := range s.order {
		k := s.keys[target]
		if strings.TrimSpace(target) == "" {
			d.problem(k.Line, path, "a target field name is empty", "write the field's alias or _widget_ id")
			continue
		}
		out = append(out, d.field(join(path, target), k.Line, s.vals[target], target, inSubform))
	}
	return out
}

func (d *decoder) field(path string, line int, n *yaml.Node, target string, inSubform bool) mapping.FieldSpec {
	spec := mapping.FieldSpec{Target: target, Line: line}
	v := resolve(n)
	if v == nil || v.Kind != yaml.MappingNode {
		d.problem(line, path, "must be a mapping such as {source: base_info.name} (got "+describe(v)+")", "")
		return spec
	}
	s := d.open(path, line, v, fieldKeys)
	spec.Source = s.str("source", "")
	s.require("source", spec.Source, "name the report value to copy, e.g. source: base_info.name")
	spec.As = s.str("as", "")
	asPath := join(path, "as")
	if !mapping.IsConverter(spec.As) {
		_, l, _ := s.value("as")
		fix := "use one of " + strings.Join(mapping.Converters, ", ")
		if c := suggest.Closest(spec.As, mapping.Converters); c != "" {
			fix = "did you mean " + c + "? (" + fix + ")"
		}
		d.problem(l, asPath, "unknown converter "+d.quote(asPath, spec.As), fix)
	}
	if inSubform && spec.As == mapping.AsSubform {
		_, l, _ := s.value("as")
		d.problem(l, asPath, "a subform row cannot hold another subform", "")
	}

	enumPath := join(path, "enum")
	if en, l, ok := s.value("enum"); ok {
		if spec.As != mapping.AsEnum {
			d.problem(l, enumPath, "is only used with as: enum", "add as: enum, or remove the enum table")
		} else {
			spec.Enum = d.enum(enumPath, l, en)
		}
	} else if _, present := s.keys["enum"]; present && spec.As != mapping.AsEnum {
		d.problem(l, enumPath, "is only used with as: enum", "remove it")
	}
	if spec.As == mapping.AsEnum && len(spec.Enum) == 0 && !d.failed[enumPath] {
		_, l, _ := s.value("enum")
		d.problem(l, enumPath, "as: enum needs a table of codes and labels", "add e.g. enum: {1: 固定上下班, 3: 按班次上下班}")
	}

	if _, present := s.keys["default"]; present {
		spec.Default, spec.HasDefault = d.defaultValue(join(path, "default"), s.keys["default"].Line, s.vals["default"])
	}

	subPath := join(path, "fields")
	if fn, l, ok := s.value("fields"); ok || s.keys["fields"] != nil {
		switch {
		case spec.As != mapping.AsSubform:
			d.problem(l, subPath, "is only used with as: subform", "add as: subform, or remove the fields")
		case inSubform:
			// already reported on `as`
		default:
			spec.Fields = d.fields(subPath, l, fn, true)
		}
	}
	if spec.As == mapping.AsSubform && !inSubform && len(spec.Fields) == 0 && !d.failed[subPath] {
		_, l, _ := s.value("fields")
		d.problem(l, subPath, "as: subform needs fields: mapping each row's columns", "add e.g. fields: {day: {source: date, as: datetime}}")
	}
	return spec
}

// enum decodes a code -> label table. Codes are normalised to strings, so a
// YAML integer key 1 and a string key "1" are the same code.
func (d *decoder) enum(path string, line int, n *yaml.Node) map[string]string {
	if n.Kind != yaml.MappingNode {
		d.problem(line, path, "must be a mapping of code: label (got "+describe(n)+")", "")
		return nil
	}
	out := map[string]string{}
	first := map[string]int{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := resolve(n.Content[i]), resolve(n.Content[i+1])
		if k == nil || k.Kind != yaml.ScalarNode || isNull(k) {
			d.problem(itemLine(k, line), path, "codes must be numbers or strings (got "+describe(k)+")", "")
			continue
		}
		code := enumCode(k)
		cpath := join(path, truncate(code, 40))
		if l, dup := first[code]; dup {
			d.problem(k.Line, cpath, fmt.Sprintf("code given twice (first on line %d)", l), "keep only one")
			continue
		}
		first[code] = k.Line
		if v == nil || isNull(v) {
			d.problem(k.Line, cpath, "needs a label", "")
			continue
		}
		label, ok := d.text(cpath, k.Line, v)
		if ok {
			out[code] = label
		}
	}
	return out
}

func enumCode(k *yaml.Node) string {
	switch k.ShortTag() {
	case "!!int":
		var i int64
		if k.Decode(&i) == nil {
			return strconv.FormatInt(i, 10)
		}
	case "!!float":
		var f float64
		if k.Decode(&f) == nil && !math.IsNaN(f) && !math.IsInf(f, 0) {
			return strconv.FormatFloat(f, 'f', -1, 64)
		}
	}
	return k.Value
}

// defaultValue decodes `default:` to string, int64, float64 or bool.
func (d *decoder) defaultValue(path string, line int, n *yaml.Node) (any, bool) {
	v := resolve(n)
	if v == nil || isNull(v) {
		d.problem(line, path, "needs a value: a string, a number or true/false", "remove default: if no default is wanted")
		return nil, false
	}
	sv, ok := d.scalar(path, line, v, "a string, a number or true/false")
	if !ok {
		return nil, false
	}
	if sv.fromEnv && sv.text == "" {
		return "", true
	}
	switch sv.tag {
	case "!!int":
		var i int64
		if sv.decode(&i) != nil {
			d.problem(line, path, "is out of range (got "+sv.show()+")", "")
			return nil, false
		}
		return i, true
	case "!!float":
		f, ok := d.floatOf(path, line, sv)
		if !ok {
			return nil, false
		}
		return f, true
	case "!!bool":
		var b bool
		if sv.decode(&b) != nil {
			d.problem(line, path, "must be true or false (got "+sv.show()+")", "")
			return nil, false
		}
		return b, true
	default:
		return sv.text, true
	}
}

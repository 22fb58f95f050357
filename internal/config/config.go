// Package config reads checkin-sync.yaml. It decodes the YAML node tree
// itself so that every unknown key, wrong type and missing value is reported
// at once, with its line, and so that ${VAR} is expanded inside parsed values
// only: a secret holding ": " or "#" can never change the document.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	// Embedded so that `timezone:` works on hosts without a zoneinfo database.
	_ "time/tzdata"

	"checkin-sync/internal/retry"
	"checkin-sync/mapping"
)

// Where the configuration is found, and the documented defaults.
const (
	DefaultFile          = "./checkin-sync.yaml"
	EnvFile              = "CHECKIN_SYNC_CONFIG"
	DefaultTimezone      = "Asia/Shanghai"
	DefaultStore         = "./checkin-sync.db"
	DefaultWeComURL      = "https://qyapi.weixin.qq.com"
	DefaultJiandaoyunURL = "https://api.jiandaoyun.com"

	// DefaultConsistencyDelay and MaxConsistencyDelay bound
	// jiandaoyun.consistency_delay. The cap keeps a typo (10h for 10s)
	// from stalling every run that has a pending batch.
	// DefaultMonthPerMinute and DefaultListPerMinute pace WeCom's
	// getcheckin_monthdata and the user listing. The listing default keeps
	// headroom under WeCom's 10,000 a minute per corp, which the corp's
	// other integrations share.
	DefaultMonthPerMinute = 50
	DefaultListPerMinute  = 6000

	// Documented server limits. A configured rate above one is accepted
	// with a warning naming the limit and the block that follows.
	WeComMonthLimit     = 60    // getcheckin_monthdata calls a minute (45009 above)
	WeComListLimit      = 10000 // listing calls a minute per corp (45009 above)
	JDYCreateLimit      = 20    // data/create, data/delete a second (8304 above)
	JDYBatchCreateLimit = 10    // data/batch_create, data/batch_delete a second
	JDYUpdateLimit      = 20    // data/update a second
	JDYListLimit        = 30    // data/list, data/get, widget/list a second
	JDYGlobalLimit      = 50    // all calls of the enterprise a second (8303 above)

	DefaultConsistencyDelay = 10 * time.Second
	MaxConsistencyDelay     = 10 * time.Minute
)

// maxSize bounds what Load reads; a real configuration is a few KiB.
const maxSize = 1 << 20

// Config is a loaded and validated configuration.
type Config struct {
	File     string // absolute path of the configuration file
	Dir      string // its directory; relative paths resolve against it
	Timezone string
	Location *time.Location // for showing times only; "today" and months are CST (month.TodayCST)
	Store    string         // absolute path of the bbolt store

	WeCom      WeCom
	Jiandaoyun Jiandaoyun
	Sync       Sync
	Retry      Retry
	Alert      *Alert // nil when the file has no alert section
	Mapping    mapping.Spec

	// Warnings are harmless oddities the CLI should log (e.g. departments
	// ignored because userids are given).
	Warnings []string
}

// WeCom is the `wecom:` section.
type WeCom struct {
	BaseURL       string // without a trailing "/"
	CorpID        string
	Secret        string // from the environment; never log it
	Users         Users
	RatePerMinute float64 // getcheckin_monthdata calls per minute
	ListPerMinute float64 // department/simplelist + user/simplelist calls per minute, together
}

// Users selects whom to sync. When UserIDs is set, Departments is nil.
type Users struct {
	Departments []int
	UserIDs     []string
	Exclude     []string
}

// Jiandaoyun is the `jiandaoyun:` section.
type Jiandaoyun struct {
	BaseURL       string // host only: no trailing "/" or "/api"; the client appends /api/v5/...
	APIKey        string // from the environment; never log it
	AppID         string
	EntryID       string
	StartWorkflow bool
	StartTrigger  bool
	Concurrency   int
	Rates         Rates
	// ConsistencyDelay is how long after its last send a batch whose
	// outcome is unknown waits before it is looked up by key: a write that
	// did land may not be visible to data/list at once, and looking too
	// early would create the record a second time.
	ConsistencyDelay time.Duration
}

// Rates are client-side request limits per second (`rate_per_second:`).
type Rates struct {
	Create, BatchCreate, Update, List, Global float64
}

// Sync is the `sync:` section.
type Sync struct {
	Months     int // how many months the default window looks back, the current one included
	SettleDays int // days after a month ends during which it is still re-synced
}

// Retry is the `retry:` section.
type Retry struct {
	Base        time.Duration
	MaxAttempts int
	BlockWait   time.Duration
}

// Policy converts the section for the retry package.
func (r Retry) Policy() retry.Policy {
	return retry.Policy{Base: r.Base, MaxAttempts: r.MaxAttempts, BlockWait: r.BlockWait}
}

// Alert is the optional `alert:` section.
type Alert struct {
	WeComWebhook string   // full robot URL; its key is a secret
	On           []string // "failure", "recovery"
}

// Locate picks the configuration file: the --config flag, else the
// CHECKIN_SYNC_CONFIG environment variable, else ./checkin-sync.yaml.
// A nil getenv means os.Getenv.
func Locate(flag string, getenv func(string) string) string {
	if flag != "" {
		return flag
	}
	if getenv == nil {
		getenv = os.Getenv
	}
	if v := getenv(EnvFile); v != "" {
		return v
	}
	return DefaultFile
}

// Option changes how Load and Parse read a configuration.
type Option func(*options)

type options struct{ noSecrets bool }

// WithoutSecrets is for the commands that only touch the store (status,
// history, reset): the secret keys (wecom.secret, jiandaoyun.api_key,
// alert.wecom_webhook) are still checked to be written as ${VAR}, but their
// environment variables are never read, and an unset one is no error. The
// returned Config holds empty secrets.
func WithoutSecrets() Option { return func(o *options) { o.noSecrets = true } }

// Load reads and validates the configuration at path. lookupEnv resolves
// ${VAR} (nil means os.LookupEnv). Every problem found is returned in one
// *Error.
func Load(path string, lookupEnv func(string) (string, bool), opts ...Option) (*Config, error) {
	shown := filepath.Clean(path)
	fail := func(msg, fix string, err error) error {
		return &Error{File: shown, Problems: []Problem{{Msg: msg, Fix: fix}}, Err: err}
	}
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fail("configuration file not found",
			"run `checkin-sync init` to write one, or pass --config FILE (or set "+EnvFile+")", err)
	}
	if err != nil {
		return nil, fail(fmt.Sprintf("cannot open the configuration file: %v", errors.Unwrap(err)), "check the path and its permissions", err)
	}
	defer f.Close()
	if st, err := f.Stat(); err == nil && st.IsDir() {
		return nil, fail("is a directory, not a configuration file", "pass --config with the path of the YAML file", nil)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxSize+1))
	if err != nil {
		return nil, fail(fmt.Sprintf("cannot read the configuration file: %v", errors.Unwrap(err)), "", err)
	}
	if len(data) > maxSize {
		return nil, fail(fmt.Sprintf("is larger than %d bytes; that is not a configuration file", maxSize), "pass --config with the path of the YAML file", nil)
	}
	return Parse(data, path, lookupEnv, opts...)
}

// Parse validates configuration text as if it had been read from path
// (used for messages and to resolve relative paths).
func Parse(data []byte, path string, lookupEnv func(string) (string, bool), opts ...Option) (*Config, error) {
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	if path == "" {
		path = DefaultFile
	}
	if lookupEnv == nil {
		lookupEnv = os.LookupEnv
	}
	shown := filepath.Clean(path)
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("config %s: resolve path: %w", shown, err)
	}

	doc, p := parseYAML(data)
	if p != nil {
		return nil, &Error{File: shown, Problems: []Problem{*p}}
	}
	if doc == nil || len(doc.Content) == 0 {
		return nil, &Error{File: shown, Problems: []Problem{{Msg: "the file is empty",
			Fix: "run `checkin-sync init --force` to write the commented template"}}}
	}
	d := newDecoder(lookupEnv)
	d.noSecrets = o.noSecrets
	cfg := d.decode(doc)
	if len(d.problems) > 0 {
		sortProblems(d.problems)
		return nil, &Error{File: shown, Problems: d.problems}
	}
	cfg.File, cfg.Dir = abs, filepath.Dir(abs)
	if !filepath.IsAbs(cfg.Store) {
		cfg.Store = filepath.Join(cfg.Dir, cfg.Store)
	}
	cfg.Store = filepath.Clean(cfg.Store)
	return cfg, nil
}

//go:embed template.yaml
var template []byte

// Template is the commented configuration that `checkin-sync init` writes.
func Template() []byte { return append([]byte(nil), template...) }

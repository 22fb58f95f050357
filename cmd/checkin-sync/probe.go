package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/apierr"
	"checkin-sync/internal/config"
	"checkin-sync/jiandaoyun"
	"checkin-sync/mapping"
	"checkin-sync/store"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

// Flags of check's write probe.
const (
	flagWriteProbe = "write-probe"
	flagEntryID    = "entry-id"
	flagYes        = "yes"
)

// The probe's pace: how long it waits before the second resend, how many
// list-lag samples it takes, and the longest it waits for one.
const (
	probeResendWait = 2 * time.Second
	probeLagSamples = 3
	probeLagMax     = 60 * time.Second
	probePoll       = 25 * time.Millisecond
	probeInRecords  = 100 // records the in filter's check writes: one batch_create
	probeCleanupMax = 2 * time.Minute
)

func probeFlags() []cli.Flag {
	return []cli.Flag{
		&cli.BoolFlag{Name: flagWriteProbe, Usage: "write test records to a scratch form (--entry-id) to measure how Jiandaoyun treats this tool's writes; sync adapts to the result"},
		&cli.StringFlag{Name: flagEntryID, Usage: "the scratch form of --write-probe: a form in the same app with the same fields, never the synced form"},
		&cli.BoolFlag{Name: flagYes, Usage: "do not ask before --write-probe writes"},
	}
}

// prober is one run of the write probe.
type prober struct {
	cfg     *config.Config
	log     zerolog.Logger
	out     io.Writer
	st      *store.Store
	jc      *jiandaoyun.Client // the scratch form
	mapper  *mapping.Mapper    // bound to the scratch form
	types   map[string]string  // request name → widget type
	run     string             // this probe's part of its keys
	n       int                // keys made so far
	recs    sync.ProbeRecords
	wrote   int
	res     sync.ProbeResult
	created []string // ids of records created, in order
}

// runWriteProbe is `check --write-probe --entry-id ID [--yes]`.
func runWriteProbe(c *cli.Context, s session) error {
	cfg, log := s.cfg, s.log
	entry := strings.TrimSpace(c.String(flagEntryID))
	switch {
	case entry == "":
		return usageErr("create a scratch form in the same app with the same fields (copy the synced form), then pass its entry_id with --entry-id",
			"--write-probe needs --entry-id: the probe writes test records and must not write them to the synced form")
	case entry == cfg.Jiandaoyun.EntryID:
		return usageErr("copy the form into a scratch form in the same app and pass that one's entry_id",
			"--entry-id %s is the synced form: the probe's records would reach its notifications, aggregate tables and reports, and count against the plan's quota", entry)
	}
	compiled, err := compileMapping(cfg)
	if err != nil {
		return err
	}
	if !c.Bool(flagYes) {
		if !isTerminal(os.Stdin) || !isTerminal(os.Stderr) {
			return usageErr("run it from a terminal to confirm, or pass --yes",
				"--write-probe writes to form %s and asks first, but there is no terminal to ask on", entry)
		}
		ok, err := askYes(os.Stdin, c.App.ErrWriter, fmt.Sprintf(
			"The write probe writes about %d test records (keys starting with %s) to form %s of app %s, without workflows or triggers, and deletes them at the end",
			probeInRecords+10, sync.ProbeKeyPrefix, entry, cfg.Jiandaoyun.AppID))
		if err != nil {
			return err
		}
		if !ok {
			return usageErr("pass --yes to run it without asking", "not started: the write probe was not confirmed; nothing was written")
		}
	}
	wc, _, err := clients(cfg, log)
	if err != nil {
		return err
	}
	jc, err := scratchClient(cfg, entry, log)
	if err != nil {
		return err
	}
	st, err := openStore(cfg, "check", log)
	if err != nil {
		return err
	}
	defer st.Close()

	// Ctrl-C or SIGTERM stops the measurements; the cleanup still runs.
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	p := &prober{cfg: cfg, log: log, out: c.App.Writer, st: st, jc: jc, run: strconv.FormatInt(time.Now().UnixMilli(), 36)}
	p.res = sync.ProbeResult{Date: s.today.String(), At: time.Now().UTC(), EntryID: entry}
	out := p.out
	fmt.Fprintf(out, "Write probe on scratch form %s of app %s (the synced form %s is not touched)\n", entry, cfg.Jiandaoyun.AppID, cfg.Jiandaoyun.EntryID)
	if err := p.cleanLeftovers(ctx); err != nil {
		return err
	}
	ws, err := jc.Widgets(ctx)
	if err != nil {
		return &exitError{code: sync.ErrorExitCode(err), err: fmt.Errorf("read the scratch form's fields: %w", err)}
	}
	if p.mapper, err = compiled.Bind(formWidgets(ws)); err != nil {
		return usageErr("give the scratch form the same fields as the synced form (copy the form)", "the mapping does not fit the scratch form %s:\n%w", entry, err)
	}
	p.types = map[string]string{}
	for _, w := range ws {
		p.types[w.Name] = w.Type
		if w.WidgetName != "" {
			if _, ok := p.types[w.WidgetName]; !ok {
				p.types[w.WidgetName] = w.Type
			}
		}
	}
	sample, err := sampleReport(ctx, wc, cfg, s)
	if err != nil {
		return &exitError{code: sync.ErrorExitCode(err), err: fmt.Errorf("read a WeCom report to write typical values from: %w", err)}
	}

	merr := p.measure(ctx, sample)
	cerr := p.cleanup()
	if merr != nil {
		if ctx.Err() != nil {
			msg := "write probe interrupted; its records were deleted as printed above; nothing was saved"
			if cerr != nil {
				msg = fmt.Sprintf("write probe interrupted; its records could not all be deleted (%v): the next `check --write-probe` deletes them; nothing was saved", cerr)
			}
			return &exitError{code: exitInterrupted, err: errors.New(msg)}
		}
		code := sync.ErrorExitCode(merr)
		if code == exitOK {
			code = exitFatal
		}
		return &exitError{code: code, err: fmt.Errorf("write probe stopped: %w; nothing was saved; fix the cause and run it again", merr)}
	}
	if cerr != nil {
		return &exitError{code: sync.ErrorExitCode(cerr), err: fmt.Errorf("the probe's records could not all be deleted: %w; the next `check --write-probe` deletes them", cerr)}
	}
	raw, err := json.Marshal(p.res)
	if err != nil {
		return err
	}
	if err := st.PutMeta(sync.MetaWriteProbe, raw); err != nil {
		return storeError(err)
	}
	p.report()
	return nil
}

// scratchClient is a Jiandaoyun client for the scratch form: the synced
// form's settings, with workflows and triggers off whatever they say.
func scratchClient(cfg *config.Config, entry string, log zerolog.Logger) (*jiandaoyun.Client, error) {
	j := cfg.Jiandaoyun
	jc, err := jiandaoyun.New(jiandaoyun.Config{
		BaseURL: j.BaseURL, APIKey: j.APIKey, AppID: j.AppID, EntryID: entry,
		Rates: jiandaoyun.Rates{
			Create: j.Rates.Create, BatchCreate: j.Rates.BatchCreate, Update: j.Rates.Update,
			List: j.Rates.List, Global: j.Rates.Global,
		},
		Concurrency:   j.Concurrency,
		StartWorkflow: false,
		StartTrigger:  false,
		Retry:         cfg.Retry.Policy(),
		Log:           log,
	})
	if err != nil {
		return nil, usageErr("check --entry-id and the jiandaoyun section of the configuration", "jiandaoyun: %w", err)
	}
	return jc, nil
}

// sampleReport reads one user's report of last month, to write values
// typical of the mapping.
func sampleReport(ctx context.Context, wc *wecom.Client, cfg *config.Config, s session) (mapping.Input, error) {
	ids := cfg.WeCom.Users.UserIDs
	if len(ids) == 0 {
		users, err := wc.Users(ctx, wecom.Selection{Departments: cfg.WeCom.Users.Departments, Exclude: cfg.WeCom.Users.Exclude})
		if err != nil {
			return mapping.Input{}, err
		}
		for _, u := range users {
			ids = append(ids, u.UserID)
		}
	}
	prev := s.today.Month().Prev()
	start, end, _ := prev.Span(s.today)
	for i := 0; i < len(ids) && i < 5; i++ {
		res, err := wc.MonthData(ctx, start, end, ids[i:i+1])
		if err != nil {
			return mapping.Input{}, err
		}
		if len(res.Rows) == 1 {
			return mapping.Input{UserID: res.Rows[0].UserID, Month: prev, Report: res.Rows[0].Report}, nil
		}
	}
	return mapping.Input{}, fmt.Errorf("none of the first users has a report for %s", prev)
}

// key returns a new reserved key.
func (p *prober) key(what string) string {
	p.n++
	return fmt.Sprintf("%s%s-%s-%03d", sync.ProbeKeyPrefix, p.run, what, p.n)
}

// saveRecords saves what the probe wrote or is about to write.
func (p *prober) saveRecords() error {
	p.recs.EntryID = p.res.EntryID
	raw, err := json.Marshal(p.recs)
	if err != nil {
		return err
	}
	if err := p.st.PutMeta(sync.MetaProbeRecords, raw); err != nil {
		return storeError(err)
	}
	return nil
}

// create sends one batch_create; the transaction_id and keys are saved
// before, the ids after.
func (p *prober) create(ctx context.Context, tx string, keys []string, data []json.RawMessage) (jiandaoyun.BatchResult, error) {
	if !slices.Contains(p.recs.TxIDs, tx) {
		p.recs.TxIDs = append(p.recs.TxIDs, tx)
	}
	for _, k := range keys {
		if !slices.Contains(p.recs.Keys, k) {
			p.recs.Keys = append(p.recs.Keys, k)
		}
	}
	p.recs.Unanswered++
	if err := p.saveRecords(); err != nil {
		return jiandaoyun.BatchResult{}, err
	}
	res, err := p.jc.BatchCreate(ctx, tx, data)
	for _, id := range res.SuccessIDs {
		if !slices.Contains(p.recs.IDs, id) {
			p.recs.IDs = append(p.recs.IDs, id)
			p.created = append(p.created, id)
			p.wrote++
		}
	}
	if _, ok := apierr.As(err); err == nil || ok && apierr.ClassOf(err) != apierr.Unknown {
		p.recs.Unanswered-- // an answer came: nothing unknown was written
	}
	if serr := p.saveRecords(); serr != nil {
		return res, serr
	}
	return res, err
}

// payload is Map's data for in with the key field set to key.
func (p *prober) payload(in mapping.Input, key string) (json.RawMessage, error) {
	res, err := p.mapper.Map(in)
	if err != nil {
		return nil, err
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal(res.Data, &m); err != nil {
		return nil, err
	}
	m[p.mapper.KeyField()] = json.RawMessage(`{"value":` + strconv.Quote(key) + `}`)
	return json.Marshal(m)
}

func keyOnly(field, key string) json.RawMessage {
	b, _ := json.Marshal(map[string]any{field: map[string]any{"value": key}})
	return b
}

// measure takes the five measurements.
func (p *prober) measure(ctx context.Context, sample mapping.Input) error {
	kf := p.mapper.KeyField()
	out := p.out

	// 1. Resend under the same transaction_id, at once and after a wait.
	keys := []string{p.key("resend"), p.key("resend")}
	data := []json.RawMessage{keyOnly(kf, keys[0]), keyOnly(kf, keys[1])}
	tx := sync.NewTxID()
	first, err := p.create(ctx, tx, keys, data)
	if err != nil {
		return fmt.Errorf("batch_create: %w", err)
	}
	last := first.SuccessIDs
	for _, wait := range []time.Duration{0, probeResendWait} {
		if wait > 0 {
			if err := sleepCtx(ctx, wait); err != nil {
				return err
			}
		}
		r, ids, err := p.resend(ctx, tx, keys, data, last, wait)
		if err != nil {
			return err
		}
		last = ids
		p.res.Resends = append(p.res.Resends, r)
	}

	// 2. List lag.
	for i := 0; i < probeLagSamples; i++ {
		k := p.key("lag")
		if _, err := p.create(ctx, sync.NewTxID(), []string{k}, []json.RawMessage{keyOnly(kf, k)}); err != nil {
			return fmt.Errorf("batch_create: %w", err)
		}
		t0 := time.Now()
		for {
			rows, err := p.jc.FindByKeys(ctx, kf, []string{k}, nil)
			if err != nil {
				return err
			}
			if len(rows) > 0 {
				break
			}
			if time.Since(t0) > probeLagMax {
				return fmt.Errorf("data/list did not show a created record within %s", probeLagMax)
			}
			if err := sleepCtx(ctx, probePoll); err != nil {
				return err
			}
		}
		ms := time.Since(t0).Milliseconds()
		p.res.ListLagSamplesMS = append(p.res.ListLagSamplesMS, ms)
		p.res.ListLagWorstMS = max(p.res.ListLagWorstMS, ms)
	}

	// 3. Round trip, then 4. clearing, on one record of typical values.
	if err := p.roundTrip(ctx, sample); err != nil {
		return err
	}

	// 5. The in filter.
	if err := p.inFilter(ctx); err != nil {
		return err
	}
	fmt.Fprintf(out, "wrote %d records, keys %s%s-*\n", p.wrote, sync.ProbeKeyPrefix, p.run)
	return nil
}

// resend sends the identical batch again under tx and tells what the
// form did, from the answer and whether the previous answer's records
// still exist (data/get, which does not lag).
func (p *prober) resend(ctx context.Context, tx string, keys []string, data []json.RawMessage, prev []string, after time.Duration) (sync.ResendResult, []string, error) {
	r := sync.ResendResult{After: after.String()}
	res, err := p.create(ctx, tx, keys, data)
	if err != nil {
		if ctx.Err() != nil {
			return r, nil, ctx.Err()
		}
		e, ok := apierr.As(err)
		if !ok || e.Code == 0 || len(res.SuccessIDs) > 0 {
			r.Outcome, r.Detail = sync.ResendUnclear, oneLine(err.Error())
			return r, prev, nil
		}
		r.Outcome, r.Code, r.Detail = sync.ResendError, e.Code, oneLine(e.Msg)
		return r, prev, nil
	}
	now := slices.Clone(res.SuccessIDs)
	was := slices.Clone(prev)
	slices.Sort(now)
	slices.Sort(was)
	if slices.Equal(now, was) {
		r.Outcome = sync.ResendDedupe
		return r, prev, nil
	}
	gone := 0
	for _, id := range prev {
		if _, err := p.jc.Get(ctx, id); err != nil {
			if !apierr.IsMissing(err) {
				return r, nil, err
			}
			gone++
		}
	}
	switch {
	case gone == len(prev):
		r.Outcome = sync.ResendOverwrite
		return r, res.SuccessIDs, nil
	case gone == 0:
		r.Outcome = sync.ResendCreates
	default:
		r.Outcome, r.Detail = sync.ResendUnclear, fmt.Sprintf("%d of %d earlier records gone", gone, len(prev))
	}
	return r, res.SuccessIDs, nil
}

// fieldsOf splits a payload or read-back into its fields.
func fieldsOf(b []byte) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	err := json.Unmarshal(b, &m)
	return m, err
}

// readBack reads one record through the mapping's read-back.
func (p *prober) readBack(ctx context.Context, id string) (map[string]json.RawMessage, mapping.ReadBackResult, error) {
	row, err := p.jc.Get(ctx, id)
	if err != nil {
		return nil, mapping.ReadBackResult{}, err
	}
	rb, err := p.mapper.ReadBack(row)
	if err != nil {
		return nil, rb, err
	}
	m, err := fieldsOf(rb.Data)
	return m, rb, err
}

// typeOf is a field's widget type; a subform's child counts as its
// subform.
func (p *prober) typeOf(name string) string {
	if i := strings.IndexByte(name, '.'); i > 0 {
		name = name[:i]
	}
	if t := p.types[name]; t != "" {
		return t
	}
	return "unknown"
}

func (p *prober) roundTrip(ctx context.Context, sample mapping.Input) error {
	k := p.key("values")
	data, err := p.payload(sample, k)
	if err != nil {
		return fmt.Errorf("map the sample report: %w", err)
	}
	res, err := p.create(ctx, sync.NewTxID(), []string{k}, []json.RawMessage{data})
	if err != nil {
		return fmt.Errorf("batch_create: %w", err)
	}
	if len(res.SuccessIDs) != 1 {
		return errors.New("batch_create did not name the created record")
	}
	id := res.SuccessIDs[0]
	wrote, err := fieldsOf(data)
	if err != nil {
		return err
	}
	got, rb, err := p.readBack(ctx, id)
	if err != nil {
		return err
	}
	bad := map[string]bool{}
	seen := map[string]bool{}
	for name, w := range wrote {
		typ := p.typeOf(name)
		seen[typ] = true
		if !bytes.Equal(w, got[name]) {
			bad[typ] = true
			p.res.RoundTripDetail = append(p.res.RoundTripDetail, fmt.Sprintf("%s (%s): wrote %s, read back %s", name, typ, w, orNone(got[name])))
		}
	}
	for _, name := range rb.Inexact {
		typ := p.typeOf(name)
		if !bad[typ] {
			bad[typ] = true
			p.res.RoundTripDetail = append(p.res.RoundTripDetail, fmt.Sprintf("%s (%s): read back not exactly", name, typ))
		}
	}
	p.res.RoundTripTypes = sortedKeys(seen)
	p.res.NotRoundTrip = sortedKeys(bad)
	sort.Strings(p.res.RoundTripDetail)

	// 4a. An update of one field.
	p.res.UpdateTouchesOnlyGiven = true
	kf := p.mapper.KeyField()
	target, val := "", ""
	for _, name := range sortedKeys(wrote) {
		switch p.types[name] {
		case "text", "textarea":
			target, val = name, `{"value":"probe update"}`
		case "number":
			target, val = name, `{"value":424242}`
		}
		if target != "" && name != kf {
			break
		}
		target = ""
	}
	if target != "" {
		before := got
		if err := p.jc.Update(ctx, id, json.RawMessage(`{"`+target+`":`+val+`}`)); err != nil {
			return fmt.Errorf("data/update: %w", err)
		}
		after, _, err := p.readBack(ctx, id)
		if err != nil {
			return err
		}
		for name := range wrote {
			if name != target && !bytes.Equal(before[name], after[name]) {
				p.res.UpdateTouchesOnlyGiven = false
				p.res.UpdateDetail = append(p.res.UpdateDetail, fmt.Sprintf("%s changed from %s to %s", name, orNone(before[name]), orNone(after[name])))
			}
		}
		sort.Strings(p.res.UpdateDetail)
		got = after
	}

	// 4b. Each type's empty value, one update per widget type, so that a
	// type whose empty value is refused does not hide the others.
	byType := map[string]map[string]json.RawMessage{}
	for name := range wrote {
		if name == kf || isEmptyJSON(valueOf(got[name])) {
			continue // nothing to clear
		}
		typ := p.types[name]
		if byType[typ] == nil {
			byType[typ] = map[string]json.RawMessage{}
		}
		byType[typ][name] = json.RawMessage(`{"value":` + string(emptyOf(typ)) + `}`)
	}
	for _, typ := range sortedKeys(byType) {
		body, err := json.Marshal(byType[typ])
		if err != nil {
			return err
		}
		if err := p.jc.Update(ctx, id, body); err != nil {
			if apierr.ClassOf(err) != apierr.Record {
				return fmt.Errorf("data/update with empty values: %w", err)
			}
			p.res.NotCleared = append(p.res.NotCleared, typ)
			p.res.ClearDetail = append(p.res.ClearDetail, fmt.Sprintf("%s: writing %s is refused: %s", typ, emptyOf(typ), oneLine(err.Error())))
			continue
		}
		row, err := p.jc.Get(ctx, id)
		if err != nil {
			return err
		}
		ok := true
		for name := range byType[typ] {
			raw, _ := json.Marshal(row[name])
			if !isEmptyJSON(raw) {
				ok = false
				p.res.ClearDetail = append(p.res.ClearDetail, fmt.Sprintf("%s (%s): writing %s left %s", name, typ, emptyOf(typ), raw))
			}
		}
		if ok {
			p.res.Cleared = append(p.res.Cleared, typ)
		} else {
			p.res.NotCleared = append(p.res.NotCleared, typ)
		}
	}
	sort.Strings(p.res.ClearDetail)
	return nil
}

// emptyOf is the value written to clear a field of a widget type.
func emptyOf(typ string) []byte {
	switch typ {
	case "text", "textarea", "combo", "radiogroup":
		return []byte(`""`)
	case "checkboxgroup", "combocheck", "usergroup", "subform":
		return []byte("[]")
	}
	return []byte("null")
}

// valueOf is v of a {"value":v} field; nil when absent.
func valueOf(f json.RawMessage) json.RawMessage {
	if len(f) == 0 {
		return nil
	}
	var w struct {
		Value json.RawMessage `json:"value"`
	}
	if json.Unmarshal(f, &w) != nil {
		return f
	}
	return w.Value
}

// isEmptyJSON reports an absent, null, "" or [] value.
func isEmptyJSON(b []byte) bool {
	switch strings.TrimSpace(string(b)) {
	case "", "null", `""`, "[]", "{}":
		return true
	}
	return false
}

func orNone(b []byte) string {
	if len(b) == 0 {
		return "nothing"
	}
	return string(b)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// inFilter asks data/list with an in filter of as many values as sync
// sends in one lookup (jiandaoyun.MaxKeysPerLookup). It writes
// probeInRecords records, one batch, and fills the rest of the filter with
// keys never written, rather than writing a second batch: the check costs
// no more writes or deletes than before. The values are inFilterValues':
// the written keys but two exact, one in upper case and one cut short, and
// the unwritten keys between them. The answer must be exactly the exact
// ones.
func (p *prober) inFilter(ctx context.Context) error {
	kf := p.mapper.KeyField()
	keys := make([]string, probeInRecords)
	data := make([]json.RawMessage, probeInRecords)
	for i := range keys {
		keys[i] = p.key("in")
		data[i] = keyOnly(kf, keys[i])
	}
	if _, err := p.create(ctx, sync.NewTxID(), keys, data); err != nil {
		return fmt.Errorf("batch_create: %w", err)
	}
	absent := make([]string, jiandaoyun.MaxKeysPerLookup-probeInRecords)
	for i := range absent {
		absent[i] = p.key("none")
	}
	values, want := inFilterValues(keys, absent)
	filter := &jiandaoyun.Filter{Rel: "and", Cond: []jiandaoyun.Cond{{Field: kf, Type: "text", Method: "in", Value: values}}}
	deadline := time.Now().Add(3*time.Duration(p.res.ListLagWorstMS)*time.Millisecond + 2*time.Second)
	var rows []map[string]any
	for {
		var err error
		rows, err = p.jc.List(ctx, jiandaoyun.ListQuery{Fields: []string{kf}, Filter: filter, Limit: 100})
		if err != nil {
			return fmt.Errorf("data/list with an in filter: %w", err)
		}
		if len(rows) >= len(want) || time.Now().After(deadline) {
			break
		}
		if err := sleepCtx(ctx, 4*probePoll); err != nil {
			return err
		}
	}
	got := map[string]bool{}
	var problems []string
	for _, row := range rows {
		k, _ := row[kf].(string)
		got[k] = true
		switch {
		case want[k]:
		case k == keys[0]:
			problems = append(problems, "matches a value in another case (not case-sensitive)")
		case k == keys[1]:
			problems = append(problems, "matches a value that is only the start of a key (not exact)")
		default:
			problems = append(problems, fmt.Sprintf("returns %q, which was not asked", k))
		}
	}
	missed := 0
	for k := range want {
		if !got[k] {
			missed++
		}
	}
	if missed > 0 {
		problems = append(problems, fmt.Sprintf("misses %d of %d records asked", missed, len(want)))
	}
	p.res.InFilterExact = len(problems) == 0
	p.res.InFilterDetail = strings.Join(problems, "; ")
	return nil
}

// inFilterValues is the in filter's values for the written keys and the
// keys never written, and the keys it must find: written[0] in upper case,
// written[1] cut short by one character, the other written keys as they
// are. Written and unwritten values alternate, from the end of the list
// back, so that the last value is a written key: a form that honours only
// the first values of a long filter misses some.
func inFilterValues(written, absent []string) ([]any, map[string]bool) {
	present := make([]any, len(written))
	want := make(map[string]bool, len(written))
	for i, k := range written {
		switch i {
		case 0:
			present[i] = strings.ToUpper(k)
		case 1:
			present[i] = k[:len(k)-1]
		default:
			present[i] = k
			want[k] = true
		}
	}
	values := make([]any, len(written)+len(absent))
	pi, ai := len(present), len(absent)
	for pos := len(values) - 1; pos >= 0; pos-- {
		if pi > 0 && (ai == 0 || (len(values)-1-pos)%2 == 0) {
			pi--
			values[pos] = present[pi]
		} else {
			ai--
			values[pos] = absent[ai]
		}
	}
	return values, want
}

// cleanup deletes every record this probe wrote: by the ids learned, then
// by key, for any whose answer did not come. It runs on its own context,
// so it runs after Ctrl-C too. The records are forgotten in the store only
// once none is left.
func (p *prober) cleanup() error {
	ctx, cancel := context.WithTimeout(context.Background(), probeCleanupMax)
	defer cancel()
	kf := p.cfg.Mapping.Key
	if p.mapper != nil {
		kf = p.mapper.KeyField()
	}
	n, err := deleteProbeRecords(ctx, p.jc, kf, &p.recs, p.st)
	gone := ""
	if n < p.wrote {
		gone = fmt.Sprintf(" (%d of the %d written were already gone: a resend replaced them)", p.wrote-n, p.wrote)
	}
	fmt.Fprintf(p.out, "deleted %d records from form %s%s\n", n, p.res.EntryID, gone)
	return err
}

// cleanLeftovers deletes what an earlier, killed probe left.
func (p *prober) cleanLeftovers(ctx context.Context) error {
	raw, err := p.st.GetMeta(sync.MetaProbeRecords)
	if err != nil {
		return storeError(err)
	}
	if len(raw) == 0 {
		return nil
	}
	var old sync.ProbeRecords
	if err := json.Unmarshal(raw, &old); err != nil {
		return fmt.Errorf("the store's list of probe records is unreadable: %w", err)
	}
	jc := p.jc
	if old.EntryID != "" && old.EntryID != p.res.EntryID {
		if jc, err = scratchClient(p.cfg, old.EntryID, p.log); err != nil {
			return err
		}
	}
	ws, err := jc.Widgets(ctx)
	if err != nil {
		return fmt.Errorf("read form %s to delete an earlier probe's records: %w", old.EntryID, err)
	}
	kf := keyFieldIn(p.cfg, ws)
	n, err := deleteProbeRecords(ctx, jc, kf, &old, p.st)
	fmt.Fprintf(p.out, "deleted %d records an earlier probe left in form %s\n", n, old.EntryID)
	if err != nil {
		return fmt.Errorf("delete an earlier probe's records: %w", err)
	}
	return nil
}

// keyFieldIn is the request name of the configured key field in a form.
func keyFieldIn(cfg *config.Config, ws []jiandaoyun.Widget) string {
	for _, w := range ws {
		if w.Name == cfg.Mapping.Key || w.WidgetName == cfg.Mapping.Key || w.Label == cfg.Mapping.Key {
			return w.Name
		}
	}
	return cfg.Mapping.Key
}

// deleteProbeRecords deletes recs' records (ids, then whatever its keys
// still find) and forgets them in the store once the form shows none.
func deleteProbeRecords(ctx context.Context, jc *jiandaoyun.Client, keyField string, recs *sync.ProbeRecords, st *store.Store) (int, error) {
	deleted := 0
	del := func(ids []string) error {
		for start := 0; start < len(ids); start += 100 {
			n, err := jc.BatchDelete(ctx, ids[start:min(start+100, len(ids))])
			deleted += n
			if err != nil {
				return err
			}
		}
		return nil
	}
	if err := del(recs.IDs); err != nil {
		return deleted, err
	}
	var left []string
	if len(recs.Keys) > 0 {
		rows, err := jc.FindByKeys(ctx, keyField, recs.Keys, nil)
		if err != nil {
			return deleted, err
		}
		for _, r := range rows {
			if id, _ := r["_id"].(string); id != "" && sync.IsProbeKey(fmt.Sprint(r[keyField])) {
				left = append(left, id)
			}
		}
	}
	if err := del(left); err != nil {
		return deleted, err
	}
	if recs.Unanswered > 0 {
		// A batch whose answer was lost may not show yet: keep its keys
		// for the next probe, which looks them up again.
		recs.IDs = nil
		raw, _ := json.Marshal(recs)
		return deleted, storeError(st.PutMeta(sync.MetaProbeRecords, raw))
	}
	return deleted, storeError(st.PutMeta(sync.MetaProbeRecords, nil))
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// report prints the measurements, what each means and what sync does.
func (p *prober) report() {
	printProbeResult(p.out, &p.res, "")
	fmt.Fprintf(p.out, "\nSaved in the store, probed on %s. `checkin-sync check` shows it; sync adapts to it from its next run.\n", p.res.Date)
}

// resendLine is one resend's outcome in words.
func resendLine(r sync.ResendResult) string {
	switch r.Outcome {
	case sync.ResendDedupe:
		return "answers with the first result, creates nothing"
	case sync.ResendOverwrite:
		return "replaces the first records with new ones (new _ids)"
	case sync.ResendCreates:
		return "CREATES THE RECORDS AGAIN"
	case sync.ResendError:
		return fmt.Sprintf("answers error %d, creates nothing", r.Code)
	}
	return "unclear (" + r.Detail + ")"
}

// printProbeResult prints a stored probe result, each line indented.
func printProbeResult(w io.Writer, p *sync.ProbeResult, indent string) {
	line := func(format string, args ...any) { fmt.Fprintf(w, indent+format+"\n", args...) }
	line("1. resend under the same transaction_id:")
	for _, r := range p.Resends {
		when := "at once"
		if r.After != "0s" {
			when = "after " + r.After
		}
		line("     %s: %s", when, resendLine(r))
	}
	if p.ResendCreatesAgain() {
		line("   → sync never resends a batch under its transaction_id: it looks the keys up, then sends the missing ones under a new one")
	} else {
		line("   → sync may resend an unsettled batch under its transaction_id, after looking its keys up")
	}
	line("2. list lag: worst %dms of %d samples %v", p.ListLagWorstMS, len(p.ListLagSamplesMS), p.ListLagSamplesMS)
	line("   → sync looks up a batch whose answer did not settle it no sooner than jiandaoyun.consistency_delay, raised to %s (3× the worst) if shorter", p.MinConsistencyDelay())
	if len(p.NotRoundTrip) == 0 {
		line("3. round trip: every widget type survives (%s)", strings.Join(p.RoundTripTypes, ", "))
	} else {
		line("3. round trip: does not survive: %s (of %s)", strings.Join(p.NotRoundTrip, ", "), strings.Join(p.RoundTripTypes, ", "))
		for _, d := range p.RoundTripDetail {
			line("     %s", d)
		}
		line("   → sync treats fields of these types as changed when it adopts a record: it updates rather than skips")
	}
	if p.UpdateTouchesOnlyGiven {
		line("4. clearing: an update touches only the fields it is given")
	} else {
		line("4. clearing: AN UPDATE CHANGED FIELDS IT WAS NOT GIVEN: %s", strings.Join(p.UpdateDetail, "; "))
	}
	if len(p.Cleared) > 0 {
		line("     the empty value clears: %s", strings.Join(p.Cleared, ", "))
	}
	if len(p.NotCleared) > 0 {
		line("     the empty value does NOT clear: %s", strings.Join(p.NotCleared, ", "))
		for _, d := range p.ClearDetail {
			line("       %s", d)
		}
		line("   → a value gone from WeCom cannot be cleared in these fields: give their mapping a default, or accept a stale value")
	}
	if p.InFilterExact {
		line("5. in filter (%d values): exact, case-sensitive, misses nothing", jiandaoyun.MaxKeysPerLookup)
	} else {
		line("5. in filter (%d values): %s", jiandaoyun.MaxKeysPerLookup, p.InFilterDetail)
		line("   → lookups by key cannot be trusted: keep verify in the schedule and report this")
	}
}

// checkWriteBehaviour is plain check's line on the write probe: when it
// ran, or the command to run it; and the widget types it found not to
// round-trip.
func checkWriteBehaviour(l *checklist, cfg *config.Config) {
	const item = "write behaviour"
	run := "checkin-sync check --write-probe --entry-id SCRATCH_FORM_ID (a copy of the form in the same app)"
	st, err := openStoreReadOnly(cfg, time.Second)
	if err != nil {
		l.warn(item, "unknown: the store could not be read: "+oneLine(err.Error()), "")
		return
	}
	var raw []byte
	if st != nil {
		raw, err = st.GetMeta(sync.MetaWriteProbe)
		st.Close()
	}
	p, perr := sync.ParseProbeResult(raw)
	switch {
	case err != nil || perr != nil:
		l.warn(item, "the stored probe result is unreadable", "run "+run)
		return
	case p == nil:
		l.warn(item, "not probed: sync assumes Jiandaoyun's documented write semantics", "run "+run)
		return
	}
	detail := fmt.Sprintf("probed on %s (form %s): resend %s; worst list lag %dms", p.Date, p.EntryID, resendSummary(p), p.ListLagWorstMS)
	l.ok(item, detail)
	if len(p.NotRoundTrip) > 0 {
		l.warn("round trip", "widget types that do not read back as written: "+strings.Join(p.NotRoundTrip, ", "),
			"sync updates records holding them on adoption instead of skipping them; run "+run+" again after changing the form")
	}
	var found []string
	if !p.UpdateTouchesOnlyGiven {
		found = append(found, "an update changed fields it was not given: "+strings.Join(p.UpdateDetail, "; "))
	}
	if len(p.NotCleared) > 0 {
		found = append(found, "the empty value does not clear "+strings.Join(p.NotCleared, ", ")+": such a field keeps its old value when WeCom drops it, unless its mapping has a default")
	}
	if !p.InFilterExact {
		found = append(found, "the in filter: "+p.InFilterDetail)
	}
	if len(found) > 0 {
		l.warn("write semantics", strings.Join(found, "\n    "), "")
	}
}

func resendSummary(p *sync.ProbeResult) string {
	outs := make([]string, len(p.Resends))
	for i, r := range p.Resends {
		outs[i] = r.Outcome
		if r.Outcome == sync.ResendError {
			outs[i] += " " + strconv.Itoa(r.Code)
		}
	}
	return strings.Join(outs, "/")
}

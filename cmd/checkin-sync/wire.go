package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"time"

	"github.com/rs/zerolog"

	"checkin-sync/internal/config"
	"checkin-sync/jiandaoyun"
	"checkin-sync/mapping"
	"checkin-sync/store"
	"checkin-sync/sync"
	"checkin-sync/wecom"
)

// clients builds the two API clients from the configuration.
func clients(cfg *config.Config, log zerolog.Logger) (*wecom.Client, *jiandaoyun.Client, error) {
	policy := cfg.Retry.Policy()
	wc, err := wecom.New(wecom.Config{
		BaseURL:       cfg.WeCom.BaseURL,
		CorpID:        cfg.WeCom.CorpID,
		Secret:        cfg.WeCom.Secret,
		RatePerMinute: cfg.WeCom.RatePerMinute,
		ListPerMinute: cfg.WeCom.ListPerMinute,
		Retry:         policy,
		Log:           log,
	})
	if err != nil {
		return nil, nil, usageErr("check the wecom section of the configuration", "wecom: %w", err)
	}
	j := cfg.Jiandaoyun
	jc, err := jiandaoyun.New(jiandaoyun.Config{
		BaseURL: j.BaseURL, APIKey: j.APIKey, AppID: j.AppID, EntryID: j.EntryID,
		Rates: jiandaoyun.Rates{
			Create: j.Rates.Create, BatchCreate: j.Rates.BatchCreate, Update: j.Rates.Update,
			List: j.Rates.List, Global: j.Rates.Global,
		},
		Concurrency:   j.Concurrency,
		StartWorkflow: j.StartWorkflow,
		StartTrigger:  j.StartTrigger,
		Retry:         policy,
		Log:           log,
	})
	if err != nil {
		return nil, nil, usageErr("check the jiandaoyun section of the configuration", "jiandaoyun: %w", err)
	}
	return wc, jc, nil
}

// compileMapping validates the mapping on its own (exit 2 when bad).
func compileMapping(cfg *config.Config) (*mapping.Mapping, error) {
	m, err := mapping.Compile(cfg.Mapping)
	if err != nil {
		return nil, usageErr("fix the mapping section; `checkin-sync check` lists every problem", "%s: bad mapping:\n%w", cfg.File, err)
	}
	return m, nil
}

// bindMapping reads the form's fields and checks every mapped target
// against them, before any write.
func bindMapping(ctx context.Context, cfg *config.Config, jc *jiandaoyun.Client) (*mapping.Mapper, error) {
	compiled, err := compileMapping(cfg)
	if err != nil {
		return nil, err
	}
	ws, err := jc.Widgets(ctx)
	if err != nil {
		err = fmt.Errorf("read the form's fields: %w", err)
		return nil, &exitError{code: sync.ErrorExitCode(err), err: errors.New(stoppedLine(err, ""))}
	}
	mapper, err := compiled.Bind(formWidgets(ws))
	if err != nil {
		return nil, usageErr("add the missing fields to the form, or change the mapping; `checkin-sync check` lists every problem", "the mapping does not fit form %s:\n%w", cfg.Jiandaoyun.EntryID, err)
	}
	return mapper, nil
}

func formWidgets(ws []jiandaoyun.Widget) []mapping.Widget {
	out := make([]mapping.Widget, len(ws))
	for i, w := range ws {
		out[i] = mapping.Widget{Name: w.Name, WidgetName: w.WidgetName, Label: w.Label, Type: w.Type, Items: formWidgets(w.Items)}
	}
	return out
}

func identity(cfg *config.Config) store.Identity {
	return store.Identity{CorpID: cfg.WeCom.CorpID, AppID: cfg.Jiandaoyun.AppID, EntryID: cfg.Jiandaoyun.EntryID}
}

// openStore opens the checkpoint store for writing and binds it to this
// corp and form. A store of another corp or form is refused.
func openStore(cfg *config.Config, command string, log zerolog.Logger) (*store.Store, error) {
	s, err := openStoreUnbound(cfg, command, log)
	if err != nil {
		return nil, err
	}
	if err := bindStore(s, cfg); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// bindStore ties the store to this corp, app and form, or refuses a store of
// another. sync calls it only after the form's widgets were read, so that a
// configuration that cannot reach its form never binds a store.
func bindStore(s *store.Store, cfg *config.Config) error {
	return storeError(s.Bind(identity(cfg)))
}

// openStoreUnbound opens the checkpoint store for writing, without binding
// it; the caller binds it with bindStore before any write.
func openStoreUnbound(cfg *config.Config, command string, log zerolog.Logger) (*store.Store, error) {
	s, err := store.Open(cfg.Store, store.Options{Timeout: time.Second, Command: command})
	if err != nil {
		return nil, storeError(err)
	}
	if stale := s.StaleLockInfo(); stale != nil {
		log.Warn().Int("pid", stale.PID).Time("started", stale.Started).
			Msg("a lock-info file was left by a process that is gone; it was replaced")
	}
	if mig := s.Migration(); mig != nil {
		log.Info().Int("from", mig.From).Int("to", mig.To).Str("backup", mig.Backup).
			Msg("the store was upgraded to this release's layout; the copy from before is kept")
		for _, d := range mig.Dropped {
			log.Warn().Str("month", d.Month).Str("userid", d.UserID).Str("kept", d.Kept).Str("data_id", d.Record.DataID).
				Msg("two spellings of one userid held records; one was kept, the other stays only in the backup")
		}
	}
	return s, nil
}

// openStoreReadOnly opens the store without writing anything. A missing
// store gives (nil, nil): an empty store.
func openStoreReadOnly(cfg *config.Config, timeout time.Duration) (*store.Store, error) {
	s, err := store.Open(cfg.Store, store.Options{ReadOnly: true, Timeout: timeout})
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, storeError(err)
	}
	if err := s.Bind(identity(cfg)); err != nil {
		s.Close()
		return nil, storeError(err)
	}
	return s, nil
}

// adaptToProbe reads the last write probe's result from the store's meta
// (`check --write-probe`) and adapts the engine to it: no resend under a
// transaction_id the form creates again on, a consistency delay of at
// least three times the worst list lag, and widget types that do not
// round-trip always treated as changed on adoption. Without a store or a
// result, opts stay as they are.
func adaptToProbe(st *store.Store, mapper *mapping.Mapper, log zerolog.Logger, opts sync.Options) sync.Options {
	if st == nil {
		return opts
	}
	raw, err := st.GetMeta(sync.MetaWriteProbe)
	if err != nil {
		log.Warn().Err(err).Msg("could not read the write probe's result; syncing with the defaults")
		return opts
	}
	p, err := sync.ParseProbeResult(raw)
	if err != nil {
		log.Warn().Err(err).Msg("syncing with the defaults; run `checkin-sync check --write-probe` again")
		return opts
	}
	if p == nil {
		return opts
	}
	opts, notes := p.Adapt(opts)
	for _, n := range notes {
		log.Info().Str("probed", p.Date).Msg(n)
	}
	if len(p.NotRoundTrip) > 0 {
		mapper.TreatAsChanged(p.NotRoundTrip)
		log.Info().Str("probed", p.Date).Strs("widget_types", p.NotRoundTrip).
			Msg("these widget types do not read back as written: records holding them are always updated on adoption")
	}
	return opts
}

// fetchInFlight is how many month-data requests may be in flight at once:
// enough to cover a second of latency at the configured pace (the client's
// limiter still paces them), and no more than the batches the engine plans
// at once (half of jiandaoyun.concurrency), since more would only wait,
// decoded, in memory.
func fetchInFlight(cfg *config.Config) int {
	n := int(math.Ceil(cfg.WeCom.RatePerMinute/60)) + 1
	return max(1, min(n, max(2, cfg.Jiandaoyun.Concurrency/2)))
}

package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/store"
)

// Scenario names, for -only.
const (
	scFetchBound = "fetch-bound"
	scLegacy     = "legacy"
	scWriteBound = "write-bound"
	scLatency    = "latency"
	scRerun      = "rerun"
	scLocal      = "local"
	scMemory     = "memory"
	scStore      = "store"
	scVerify     = "verify"
)

type scenario struct {
	name  string
	about string
	run   func(b *bench, ctx context.Context) error
}

// scenarios in the order they run. The published approach follows the
// fetch-bound load it is compared with.
var scenarios = []scenario{
	{scFetchBound, "initial load, every limit × scale: WeCom's month-data limit binds", (*bench).fetchBoundLoad},
	{scLegacy, "the published approach: fetch everything, then one legacy data_create per record", (*bench).publishedApproach},
	{scWriteBound, "initial load where batch_create binds, then the store figures", (*bench).writeBoundLoad},
	{scLatency, "write-bound initial load with the APIs answering at realistic latency", (*bench).latencyLoad},
	{scRerun, "unchanged rerun of 2 months, then the same after losing the store", (*bench).rerunAndLostStore},
	{scLocal, "local cost per record of an unchanged rerun, in process", (*bench).localCost},
	{scStore, "store size after a large initial load, limits off", (*bench).storeSize},
	{scVerify, "verify of a large form at the documented limits, Jiandaoyun answering at realistic latency", (*bench).verifyUnderLatency},
	{scMemory, "memory of a large load, then verify under the limits", (*bench).memory},
}

func scenarioNames() []string {
	out := make([]string, len(scenarios))
	for i, s := range scenarios {
		out[i] = s.name
	}
	return out
}

func defaultScenarios() []string {
	var out []string
	for _, s := range scenarios {
		if s.name != scMemory {
			out = append(out, s.name)
		}
	}
	return out
}

func scenarioByName(name string) scenario {
	for _, s := range scenarios {
		if s.name == name {
			return s
		}
	}
	panic("unknown scenario " + name)
}

// Realistic latencies: WeCom's month report is the slower API.
var (
	wecomLatency = fakeapi.LatencyRange{Min: 100 * time.Millisecond, Max: 200 * time.Millisecond}
	jdyLatency   = fakeapi.LatencyRange{Min: 60 * time.Millisecond, Max: 100 * time.Millisecond}
)

// env is one scenario's fakes process and the tool's files for it.
type env struct {
	fakes *fakesProcess
	store string
}

// startEnv starts a scenario's fakes, with the reports of the months it
// times prepared.
func (b *bench) startEnv(ctx context.Context, label string, users int, timed []month.Month) (*env, error) {
	b.progress("%s: starting the fakes (%d users)", label, users)
	profile := ""
	if b.profileDir != "" {
		profile = filepath.Join(b.profileDir, label+".fakes.cpu.pprof")
	}
	f, err := startFakes(ctx, users, b.seed, b.burst, profile, filepath.Join(b.dir, label+".fakes.log"))
	if err != nil {
		return nil, err
	}
	if err := f.Prepare(ctx, timed); err != nil {
		f.Stop()
		return nil, err
	}
	return &env{fakes: f, store: filepath.Join(b.dir, label+".db")}, nil
}

// config writes the configuration of one tool run against the env.
func (b *bench) config(e *env, label string, r rates, concurrency int) (string, map[string]string, error) {
	_, path, vars, err := b.writeConfig(label, e.fakes.Base, e.fakes.Creds, r, concurrency, e.store)
	return path, vars, err
}

// syncRun is one run of the tool and what the fakes counted during it.
type syncRun struct {
	res       toolResult
	calls     counts // every request, refused ones included
	refused   counts // refused for a rate limit
	global    int    // of them, by Jiandaoyun's enterprise-wide bucket
	throttled int    // the fakes' own total of refusals
}

// answered are the requests the fakes did not refuse. Only they took a
// token from a bucket, so they are what the floors count.
func (r syncRun) answered() counts { return r.calls.minus(r.refused) }

// refusedText says how many requests were refused, and where.
func (r syncRun) refusedText() string {
	if r.throttled == 0 {
		return "throttled 0"
	}
	return fmt.Sprintf("throttled %d (%s; %d of them by the global limit)", r.throttled, r.refused, r.global)
}

func syncArgs(months []month.Month) []string {
	args := []string{"sync"}
	for _, m := range months {
		args = append(args, "--month", m.String())
	}
	return append(args, "--yes")
}

// runChecked runs the tool and fails the scenario unless it exits 0 and
// leaves the form with exactly wantRecords records and no key held twice:
// a benchmark of a broken run measures nothing.
func (b *bench) runChecked(ctx context.Context, e *env, label, cfgPath string, vars map[string]string, wantRecords int, args ...string) (syncRun, error) {
	before, err := e.fakes.State(ctx)
	if err != nil {
		return syncRun{}, err
	}
	b.progress("%s: %s", label, argsText(args))
	res, err := b.runTool(ctx, label, cfgPath, vars, args...)
	if err != nil {
		return syncRun{}, err
	}
	after, err := e.fakes.State(ctx)
	if err != nil {
		return syncRun{}, err
	}
	run := syncRun{
		res:       res,
		calls:     after.Calls.minus(before.Calls),
		refused:   after.Refused.minus(before.Refused),
		global:    after.Global - before.Global,
		throttled: after.Throttled - before.Throttled,
	}
	// CPU times show whether the two processes had the cores to keep up.
	b.note("%s: %s; %s; wall %s, CPU tool %s, fakes %s", label, run.calls, run.refusedText(),
		secs(res.Wall), secs(res.CPU), secs(after.CPU-before.CPU))
	b.progress("%s: exit %d in %s", label, res.ExitCode, secs(res.Wall))
	if res.ExitCode != 0 {
		return run, failuref("%s: the tool exited with %d after %s; its output: %s", label, res.ExitCode, secs(res.Wall), res.Log)
	}
	if after.Records != wantRecords {
		return run, failuref("%s: the form holds %d records, want %d; tool output: %s", label, after.Records, wantRecords, res.Log)
	}
	dups, err := e.fakes.Duplicates(ctx, b.keyField)
	if err != nil {
		return run, err
	}
	if dups != 0 {
		return run, failuref("%s: %d keys are held by more than one record; tool output: %s", label, dups, res.Log)
	}
	return run, nil
}

func argsText(args []string) string { return "checkin-sync " + strings.Join(args, " ") }

// initialLoad loads users × 1 month into a fresh form and store under r,
// and adds the wall ÷ floor figure.
func (b *bench) initialLoad(ctx context.Context, e *env, label, figure string, users int, r rates, fillDrain time.Duration) (syncRun, error) {
	if err := e.fakes.SetLimits(ctx, r.fakeLimits()); err != nil {
		return syncRun{}, err
	}
	cfg, vars, err := b.config(e, label, r, b.concurrency())
	if err != nil {
		return syncRun{}, err
	}
	months := b.lastMonths(1)
	run, err := b.runChecked(ctx, e, label, cfg, vars, users*len(months), syncArgs(months)...)
	if err != nil {
		return run, err
	}
	fl := computeFloor(run.answered(), r, fillDrain)
	b.check(fmt.Sprintf("initial load, %s: wall ÷ floor (%d×1)", figure, users), run.res.Wall.Seconds()/fl.Total.Seconds(), "", 2,
		target{"<=", 1.10}, fmt.Sprintf("wall %s, floor %s (%s); %s", secs(run.res.Wall), secs(fl.Total), fl, run.refusedText()))
	return run, nil
}

// writeBoundRates lift the month-data limit to 4× the batch_create call
// rate, so that fetching keeps ahead and batch_create binds.
func (b *bench) writeBoundRates() rates {
	r := b.scaled()
	r.MonthDataPerMinute = 4 * r.BatchCreate * 60
	return r
}

func (b *bench) fetchBoundLoad(ctx context.Context) error {
	users := b.sizes.FetchUsers
	e, err := b.startEnv(ctx, scFetchBound, users, b.lastMonths(1))
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	run, err := b.initialLoad(ctx, e, scFetchBound, "fetch-bound", users, b.scaled(), 0)
	if err != nil {
		return err
	}
	b.fetchBound.wall, b.fetchBound.users = run.res.Wall, users
	return nil
}

func (b *bench) publishedApproach(ctx context.Context) error {
	users := b.sizes.FetchUsers
	if b.fetchBound.wall == 0 || b.fetchBound.users != users {
		return failuref("no fetch-bound load of %d users to compare with", users)
	}
	e, err := b.startEnv(ctx, scLegacy, users, b.lastMonths(1))
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	r := b.scaled()
	if err := e.fakes.SetLimits(ctx, r.fakeLimits()); err != nil {
		return err
	}
	mapper, err := boundMapper(b.spec)
	if err != nil {
		return err
	}
	months := b.lastMonths(1)
	b.progress("%s: fetching %d users, then %d legacy creates at %s/s (about %s)", scLegacy, users, users*len(months),
		num(r.Legacy), secs(time.Duration(float64(users*len(months))/r.Legacy*float64(time.Second))))
	start := time.Now()
	n, err := publishedApproach(ctx, newPlainClient(e.fakes.Base, e.fakes.Creds), mapper, r, months)
	wall := time.Since(start)
	if err != nil {
		return failuref("the published approach failed: %v", err)
	}
	st, err := e.fakes.State(ctx)
	if err != nil {
		return err
	}
	b.note("%s: %s; throttled %d; wall %s", scLegacy, st.Calls, st.Throttled, secs(wall))
	if want := users * len(months); n != want || st.Records != want {
		return failuref("the published approach created %d records (the form holds %d), want %d", n, st.Records, want)
	}
	b.check(fmt.Sprintf("published approach ÷ ours (%d records)", n), wall.Seconds()/b.fetchBound.wall.Seconds(), "×", 1,
		target{">=", 19}, fmt.Sprintf("published %s (fetch, then legacy data_create at %s/s), ours %s (fetch-bound run)", secs(wall), num(r.Legacy), secs(b.fetchBound.wall)))
	return nil
}

func (b *bench) writeBoundLoad(ctx context.Context) error {
	users := b.sizes.WriteUsers
	e, err := b.startEnv(ctx, scWriteBound, users, b.lastMonths(2))
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	r := b.writeBoundRates()
	load, err := b.initialLoad(ctx, e, scWriteBound, "write-bound", users, r, 0)
	if err != nil {
		return err
	}
	// An unchanged rerun writes the transactions every run writes; a
	// load's excess over it is its create batches'.
	months := b.lastMonths(1)
	cfg, vars, err := b.config(e, scWriteBound+"-rerun", r, b.concurrency())
	if err != nil {
		return err
	}
	txRerun, rerun, err := b.countTxs(ctx, e, scWriteBound+"-rerun", cfg, vars, users*len(months), syncArgs(months)...)
	if err != nil {
		return err
	}
	if load.answered()[epBatchCreate] == 0 {
		return failuref("the write-bound load sent no batch_create")
	}
	if w := rerun.calls.writes(); w != 0 {
		return failuref("the unchanged rerun after the write-bound load sent %d writes", w)
	}

	// Every report changed: one update group per fetched batch of 100.
	// Timing does not matter here, so the limits are lifted.
	if err := e.fakes.Bump(ctx, months); err != nil {
		return err
	}
	if err := e.fakes.SetLimits(ctx, unlimitedFakes()); err != nil {
		return err
	}
	cfg, vars, err = b.config(e, scWriteBound+"-update", unthrottledTool(), setupConcurrency)
	if err != nil {
		return err
	}
	txUpdate, upd, err := b.countTxs(ctx, e, scWriteBound+"-update", cfg, vars, users*len(months), syncArgs(months)...)
	if err != nil {
		return err
	}
	changed, err := changedByBump(b.seed, users, months, b.spec)
	if err != nil {
		return err
	}
	if upd.calls[epUpdate] != changed {
		return failuref("after every report was bumped, the tool sent %d updates; %d mapped records changed", upd.calls[epUpdate], changed)
	}
	groups := (users + 99) / 100 * len(months)
	b.check("store: write transactions per update group", float64(txUpdate-txRerun)/float64(groups), "", 2, target{"<=", 1},
		fmt.Sprintf("(%d update run − %d unchanged rerun) ÷ %d groups of 100; %d records updated", txUpdate, txRerun, groups, changed))

	// Creates are counted on a load of the month before: the first load
	// also made the store's one-time writes (its binding to the form, the
	// mapping's fingerprint, the API identity), which are not per batch.
	earlier := b.lastMonths(2)[:1]
	txCreate, second, err := b.countTxs(ctx, e, scWriteBound+"-second-load", cfg, vars, users*2, syncArgs(earlier)...)
	if err != nil {
		return err
	}
	batches := second.answered()[epBatchCreate]
	if batches == 0 {
		return failuref("the load of %s sent no batch_create", earlier[0])
	}
	b.check("store: write transactions per create batch", float64(txCreate-txRerun)/float64(batches), "", 2, target{"<=", 2},
		fmt.Sprintf("(%d load of %s − %d unchanged rerun) ÷ %d batch_create answered", txCreate, earlier[0], txRerun, batches))
	return nil
}

// runUnthrottled runs the tool with every limit lifted, in the fakes and
// in the tool: for loads that are not timed, or that measure something
// other than pacing.
func (b *bench) runUnthrottled(ctx context.Context, e *env, label string, wantRecords int, args ...string) (syncRun, error) {
	if err := e.fakes.SetLimits(ctx, unlimitedFakes()); err != nil {
		return syncRun{}, err
	}
	cfg, vars, err := b.config(e, label, unthrottledTool(), setupConcurrency)
	if err != nil {
		return syncRun{}, err
	}
	return b.runChecked(ctx, e, label, cfg, vars, wantRecords, args...)
}

// countTxs runs the tool and returns the bbolt write transactions it
// committed.
func (b *bench) countTxs(ctx context.Context, e *env, label, cfg string, vars map[string]string, wantRecords int, args ...string) (int, syncRun, error) {
	before, err := lastTxID(e.store)
	if err != nil {
		return 0, syncRun{}, err
	}
	run, err := b.runChecked(ctx, e, label, cfg, vars, wantRecords, args...)
	if err != nil {
		return 0, run, err
	}
	after, err := lastTxID(e.store)
	return after - before, run, err
}

func (b *bench) latencyLoad(ctx context.Context) error {
	users := b.sizes.WriteUsers
	e, err := b.startEnv(ctx, scLatency, users, b.lastMonths(1))
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	if err := e.fakes.SetLatency(ctx, wecomLatency, jdyLatency); err != nil {
		return err
	}
	figure := fmt.Sprintf("write-bound, latency WeCom %s–%s, JDY %s–%s", wecomLatency.Min, wecomLatency.Max, jdyLatency.Min, jdyLatency.Max)
	fill := fillAndDrain(wecomLatency, jdyLatency)
	run, err := b.initialLoad(ctx, e, scLatency, figure, users, b.writeBoundRates(), fill)
	if err != nil {
		return err
	}
	// The fill the issue first defined starts at the first fetch; see
	// fillAndDrain for why no run reaches 1.10 of that floor.
	chain := listingChain(wecomLatency)
	fl := computeFloor(run.answered(), b.writeBoundRates(), fetchFillAndDrain(wecomLatency, jdyLatency))
	perfect := perfectRun(run.answered()[epBatchCreate], b.writeBoundRates(), wecomLatency, jdyLatency)
	b.info("  the same, the fill from the first fetch on", fmt.Sprintf("%.2f", run.res.Wall.Seconds()/fl.Total.Seconds()),
		fmt.Sprintf("floor %s, without gettoken and user/simplelist at mean latency (%s); a perfect run (%s) would be %.2f",
			secs(fl.Total), secs(chain), secs(perfect), perfect.Seconds()/fl.Total.Seconds()))
	return nil
}

func (b *bench) rerunAndLostStore(ctx context.Context) error {
	users := b.sizes.RerunUsers
	months := b.lastMonths(2)
	want := users * len(months)
	e, err := b.startEnv(ctx, scRerun, users, months)
	if err != nil {
		return err
	}
	defer e.fakes.Stop()

	// Setup: load the months with the limits lifted; not measured.
	if _, err := b.runUnthrottled(ctx, e, scRerun+"-setup", want, syncArgs(months)...); err != nil {
		return err
	}

	r := b.scaled()
	if err := e.fakes.SetLimits(ctx, r.fakeLimits()); err != nil {
		return err
	}
	cfg, vars, err := b.config(e, scRerun, r, b.concurrency())
	if err != nil {
		return err
	}
	rerun, err := b.runChecked(ctx, e, scRerun, cfg, vars, want, syncArgs(months)...)
	if err != nil {
		return err
	}
	b.progress("%s: fetch-only baseline", scRerun)
	start := time.Now()
	err = newPlainClient(e.fakes.Base, e.fakes.Creds).fetchAll(ctx, r, months, func([]report) error { return nil })
	baseline := time.Since(start)
	if err != nil {
		return failuref("the fetch-only baseline failed: %v", err)
	}
	figure := fmt.Sprintf("unchanged rerun (%d×%d)", users, len(months))
	b.check(figure+": wall ÷ fetch-only", rerun.res.Wall.Seconds()/baseline.Seconds(), "", 2, target{"<=", 1.05},
		fmt.Sprintf("wall %s, fetch-only baseline %s (list, then month data at %s/min, burst 1)", secs(rerun.res.Wall), secs(baseline), num(r.MonthDataPerMinute)))
	b.check(figure+": Jiandaoyun writes", float64(rerun.calls.writes()), "", 0, target{"=", 0}, "batch_create + create + update + delete + batch_delete")

	// Lost store: the same sync must adopt every record by key.
	for _, p := range []string{e.store, store.LockInfoPath(e.store), store.LivePath(e.store), store.BackupPath(e.store)} {
		if err := os.Remove(p); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	lost, err := b.runChecked(ctx, e, scRerun+"-lost-store", cfg, vars, want, syncArgs(months)...)
	if err != nil {
		return err
	}
	floor, how := rerunFloor(lost.answered(), r)
	figure = fmt.Sprintf("lost store (%d×%d)", users, len(months))
	b.check(figure+": Jiandaoyun writes", float64(lost.calls.writes()), "", 0, target{"=", 0}, "every record adopted by key")
	b.check(figure+": wall ÷ (lookups + fetch)", lost.res.Wall.Seconds()/floor.Seconds(), "", 2, target{"<=", 1.10},
		fmt.Sprintf("wall %s, reference %s (%s)", secs(lost.res.Wall), secs(floor), how))
	return nil
}

func (b *bench) localCost(context.Context) error {
	users := max(b.sizes.RerunUsers, localBatch)
	us, err := localCostPerRecord(b.dir, b.seed, b.spec, users, b.lastMonths(1)[0])
	if err != nil {
		return err
	}
	b.check("unchanged rerun: local cost per record", us, " µs", 2, target{"<", 5},
		fmt.Sprintf("mapping + hash + store lookup in batches of 100, %d records in the store; testing.Benchmark in process", users))
	return nil
}

func (b *bench) memory(ctx context.Context) error {
	users, nMonths := b.sizes.MemoryUsers, b.sizes.MemoryMonths
	months := b.lastMonths(nMonths)
	want := users * nMonths
	e, err := b.startEnv(ctx, scMemory, users, nil)
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	load, err := b.runUnthrottled(ctx, e, scMemory+"-load", want, syncArgs(months)...)
	if err != nil {
		return err
	}
	figure := fmt.Sprintf("memory (%d×%d, limits off)", users, nMonths)
	b.check(figure+": peak RssAnon", float64(load.res.PeakRssAnon)/(1<<20), " MB", 1, target{"<", 60},
		fmt.Sprintf("sampled every %s (%d samples); wall %s", rssSampleEvery, load.res.SampledTimes, secs(load.res.Wall)))
	b.info(figure+": ru_maxrss", fmt.Sprintf("%.1f MB", float64(load.res.MaxRSS)/(1<<20)), "resident peak, mapped store pages included")

	r := b.scaled()
	if err := e.fakes.SetLimits(ctx, r.fakeLimits()); err != nil {
		return err
	}
	cfg, vars, err := b.config(e, scMemory+"-verify", r, b.concurrency())
	if err != nil {
		return err
	}
	ver, err := b.runChecked(ctx, e, scMemory+"-verify", cfg, vars, want, "verify")
	if err != nil {
		return err
	}
	floor := verifyFloor(want, r)
	b.check("verify "+strconv.Itoa(want)+" records: wall ÷ floor", ver.res.Wall.Seconds()/floor.Seconds(), "", 2, target{"<=", 1.2},
		fmt.Sprintf("wall %s, floor %s (%d records ÷ 100 ÷ %s/s); data/list calls %d", secs(ver.res.Wall), secs(floor), want, num(r.List), ver.calls[epList]))
	return nil
}

// storeSize loads StoreUsers × 1 month with the limits off and reports the
// store's size per record. It needs a large load: below a few MiB, bbolt
// grows its file in powers of two, which says nothing about the records.
func (b *bench) storeSize(ctx context.Context) error {
	users := b.sizes.StoreUsers
	e, err := b.startEnv(ctx, scStore, users, nil)
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	if _, err := b.runUnthrottled(ctx, e, scStore, users, syncArgs(b.lastMonths(1))...); err != nil {
		return err
	}
	fi, err := os.Stat(e.store)
	if err != nil {
		return err
	}
	b.check("store: file size ÷ records", float64(fi.Size())/float64(users), " B", 1, target{"<", 120},
		fmt.Sprintf("%d bytes for %d records after an initial load of %d users × 1 month", fi.Size(), users, users))
	return nil
}

// verifyUnderLatency measures verify as it runs in production: at the
// documented limits, unscaled, with the template's concurrency, and
// Jiandaoyun answering at realistic latency. A walk through the form by
// cursor has one request in flight, so latency, not the list rate, would
// bound it; and scaled limits would shrink the floor to where the fixed
// start of a run, not the scan, is measured.
func (b *bench) verifyUnderLatency(ctx context.Context) error {
	users := b.sizes.VerifyUsers
	months := b.lastMonths(1)
	e, err := b.startEnv(ctx, scVerify, users, nil)
	if err != nil {
		return err
	}
	defer e.fakes.Stop()
	if _, err := b.runUnthrottled(ctx, e, scVerify+"-load", users, syncArgs(months)...); err != nil {
		return err
	}
	r := documentedRates()
	if err := e.fakes.SetLimits(ctx, r.fakeLimits()); err != nil {
		return err
	}
	if err := e.fakes.SetLatency(ctx, fakeapi.LatencyRange{}, jdyLatency); err != nil {
		return err
	}
	cfg, vars, err := b.config(e, scVerify, r, templateConcurrency)
	if err != nil {
		return err
	}
	ver, err := b.runChecked(ctx, e, scVerify, cfg, vars, users, "verify")
	if err != nil {
		return err
	}
	floor := verifyFloor(users, r)
	b.check(fmt.Sprintf("verify %d records, documented limits, JDY %s–%s: wall ÷ floor", users, jdyLatency.Min, jdyLatency.Max),
		ver.res.Wall.Seconds()/floor.Seconds(), "", 2, target{"<=", 1.2},
		fmt.Sprintf("wall %s, floor %s (%d records ÷ 100 ÷ %s/s); concurrency %d; data/list calls %d, data/get %d",
			secs(ver.res.Wall), secs(floor), users, num(r.List), templateConcurrency, ver.calls[epList], ver.calls[epGet]))
	return nil
}

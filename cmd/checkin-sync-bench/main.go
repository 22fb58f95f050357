// Command checkin-sync-bench measures the checkin-sync binary end to end
// against the fakes, run in a second process, under every documented rate
// limit multiplied by -scale, and checks each figure against the
// performance targets of the product document. It prints a table and
// exits 1 when a target is missed, 2 when the benchmark itself could not
// be set up.
//
//	checkin-sync-bench -tool bin/checkin-sync            # make bench
//	checkin-sync-bench -tool bin/checkin-sync -memory    # make bench-memory
//	checkin-sync-bench -tool bin/checkin-sync -quick -only write-bound
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == fakesCommand {
		os.Exit(runFakes(os.Args[2:]))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Exit codes.
const (
	exitPass  = 0
	exitFail  = 1 // a target was missed, or a measured run failed
	exitSetup = 2 // the benchmark could not run
)

// sizes are the data set of each scenario.
type sizes struct {
	WriteUsers   int // write-bound initial loads, with and without latency
	FetchUsers   int // fetch-bound initial load, and the published approach
	RerunUsers   int // unchanged rerun and lost store, over rerunMonths
	MemoryUsers  int
	MemoryMonths int
	StoreUsers   int // the initial load whose store size is measured
	VerifyUsers  int // the form verify reads under latency (1 month)
}

func defaultSizes() sizes {
	return sizes{WriteUsers: 20000, FetchUsers: 10000, RerunUsers: 10000, MemoryUsers: 50000, MemoryMonths: 12, StoreUsers: 100000, VerifyUsers: 50000}
}

func (s sizes) dividedBy(k int) sizes {
	return sizes{WriteUsers: s.WriteUsers / k, FetchUsers: s.FetchUsers / k, RerunUsers: s.RerunUsers / k,
		MemoryUsers: s.MemoryUsers / k, MemoryMonths: s.MemoryMonths, StoreUsers: s.StoreUsers / k, VerifyUsers: s.VerifyUsers / k}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("checkin-sync-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	d := defaultSizes()
	tool := fs.String("tool", "bin/checkin-sync", "the checkin-sync binary to measure")
	scale := fs.Float64("scale", 10, "multiply every documented rate limit by this")
	seed := fs.Int64("seed", 1, "seed of the sample companies")
	quick := fs.Bool("quick", false, "divide every size by 10, for a quick look")
	memory := fs.Bool("memory", false, "run the memory scenario (make bench-memory) instead of the others")
	only := fs.String("only", "", "run only these scenarios, comma-separated: "+strings.Join(scenarioNames(), ", "))
	profile := fs.String("profile", "", "pass --cpuprofile DIR/<run>.cpu.pprof to every tool run; the fakes write DIR/<scenario>.fakes.cpu.pprof")
	burst := fs.Int("burst", 0, "token-bucket burst of the fakes' rate limits (0: their default of 3, times -scale)")
	keep := fs.Bool("keep", false, "keep the work directory (configurations, stores, logs)")
	logLevel := fs.String("tool-log-level", "info", "the tool's --log-level in the runs' logs (debug logs every request)")
	fs.IntVar(&d.WriteUsers, "write-users", d.WriteUsers, "users of the write-bound loads (1 month)")
	fs.IntVar(&d.FetchUsers, "fetch-users", d.FetchUsers, "users of the fetch-bound load and of the published approach (1 month)")
	fs.IntVar(&d.RerunUsers, "rerun-users", d.RerunUsers, "users of the unchanged rerun and the lost store (2 months)")
	fs.IntVar(&d.MemoryUsers, "memory-users", d.MemoryUsers, "users of the memory scenario")
	fs.IntVar(&d.MemoryMonths, "memory-months", d.MemoryMonths, "months of the memory scenario")
	fs.IntVar(&d.StoreUsers, "store-users", d.StoreUsers, "users of the load whose store size is measured (1 month)")
	fs.IntVar(&d.VerifyUsers, "verify-users", d.VerifyUsers, "users of the form verify reads under latency (1 month)")
	if err := fs.Parse(args); err != nil {
		return exitSetup
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "checkin-sync-bench: unexpected arguments %q\n", fs.Args())
		return exitSetup
	}
	if *quick {
		d = d.dividedBy(10)
	}
	names, err := selectScenarios(*only, *memory)
	if err != nil {
		fmt.Fprintln(stderr, "checkin-sync-bench:", err)
		return exitSetup
	}
	if *scale <= 0 {
		fmt.Fprintln(stderr, "checkin-sync-bench: -scale must be above 0")
		return exitSetup
	}
	b, err := newBench(*tool, *scale, *seed, d, *profile, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "checkin-sync-bench:", err)
		return exitSetup
	}
	// A bucket of rate r and burst n forgives n/r seconds of jitter in
	// arrivals. Scaling the rates keeps that window only if the burst
	// scales too; otherwise the bench would measure the scheduler of a
	// loaded machine, not the pacing.
	b.burst, b.toolLogLevel = *burst, *logLevel
	if b.burst == 0 {
		b.burst = int(math.Ceil(fakesBurst * *scale))
	}
	code := b.run(ctx, names)
	b.printReport(stdout)
	if code == exitSetup {
		fmt.Fprintln(stdout, "\nSETUP ERROR:", b.setupErr)
	}
	if *keep || code != exitPass {
		fmt.Fprintln(stdout, "\nwork directory kept:", b.dir)
	} else {
		_ = os.RemoveAll(b.dir)
	}
	fmt.Fprintf(stdout, "\ntotal %s\n", time.Since(b.start).Round(time.Second))
	return code
}

// selectScenarios resolves -only and -memory into the scenarios to run, in
// their order. The published approach is compared with the fetch-bound
// load of the same users, so it brings that scenario along.
func selectScenarios(only string, memory bool) ([]string, error) {
	if memory {
		if only != "" && only != scMemory {
			return nil, errors.New("-memory runs the memory scenario only; drop -only")
		}
		return []string{scMemory}, nil
	}
	if only == "" {
		return defaultScenarios(), nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		if !slices.Contains(scenarioNames(), n) {
			return nil, fmt.Errorf("unknown scenario %q; known: %s", n, strings.Join(scenarioNames(), ", "))
		}
		want[n] = true
	}
	if want[scLegacy] {
		want[scFetchBound] = true
	}
	var out []string
	for _, n := range scenarioNames() {
		if want[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// absPath resolves p now, since the tool runs with its own configuration
// directory and the bench's working directory matters only here.
func absPath(p string) (string, error) {
	if p == "" {
		return "", nil
	}
	return filepath.Abs(p)
}

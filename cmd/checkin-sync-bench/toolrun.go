package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// toolResult is one run of the tool.
type toolResult struct {
	Wall         time.Duration // from starting the process to its exit
	ExitCode     int
	PeakRssAnon  int64 // bytes, the largest RssAnon sampled
	MaxRSS       int64 // bytes, ru_maxrss
	CPU          time.Duration
	Log          string
	SampledTimes int
}

// rssSampleEvery is how often the tool's memory is read while it runs.
const rssSampleEvery = 10 * time.Millisecond

// runTool runs the tool with the configuration and arguments, its secrets
// in its environment only, and its output in a log file of the run.
func (b *bench) runTool(ctx context.Context, label, configPath string, env map[string]string, args ...string) (toolResult, error) {
	argv := []string{"--config", configPath, "--log-format", "json", "--log-level", b.toolLogLevel}
	if b.profileDir != "" {
		argv = append(argv, "--cpuprofile", filepath.Join(b.profileDir, label+".cpu.pprof"))
	}
	argv = append(argv, args...)
	res := toolResult{Log: filepath.Join(b.dir, label+".log")}
	logf, err := os.Create(res.Log)
	if err != nil {
		return res, err
	}
	defer logf.Close()
	fmt.Fprintf(logf, "$ %s %s\n", b.tool, strings.Join(argv, " "))
	cmd := exec.CommandContext(ctx, b.tool, argv...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = childEnv(os.Environ(), env)
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return res, fmt.Errorf("start the tool: %w", err)
	}
	stop := make(chan struct{})
	sampled := make(chan struct{})
	go func() {
		defer close(sampled)
		res.PeakRssAnon, res.SampledTimes = sampleRssAnon(cmd.Process.Pid, stop)
	}()
	waitErr := cmd.Wait()
	res.Wall = time.Since(start)
	close(stop)
	<-sampled
	res.MaxRSS = maxRSS(cmd.ProcessState)
	res.CPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	res.ExitCode = cmd.ProcessState.ExitCode()
	var exitErr *exec.ExitError
	if waitErr != nil && !errors.As(waitErr, &exitErr) {
		return res, fmt.Errorf("run the tool: %w", waitErr)
	}
	return res, nil
}

// childEnv is the environment without any value of the variables the tool
// reads, plus the run's own.
func childEnv(base []string, env map[string]string) []string {
	out := make([]string, 0, len(base)+len(env))
	for _, kv := range base {
		k, _, _ := strings.Cut(kv, "=")
		if _, ours := env[k]; ours || k == "CHECKIN_SYNC_CONFIG" {
			continue
		}
		out = append(out, kv)
	}
	for k, v := range env {
		out = append(out, k+"="+v)
	}
	return out
}

// sampleRssAnon reads the process's RssAnon until stop closes and returns
// the peak in bytes and the number of samples read.
func sampleRssAnon(pid int, stop <-chan struct{}) (peak int64, samples int) {
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	t := time.NewTicker(rssSampleEvery)
	defer t.Stop()
	for {
		if b, err := os.ReadFile(path); err == nil {
			if v, ok := parseRssAnon(b); ok {
				samples++
				peak = max(peak, v)
			}
		}
		select {
		case <-stop:
			return peak, samples
		case <-t.C:
		}
	}
}

// parseRssAnon reads the RssAnon line of /proc/<pid>/status, in bytes.
func parseRssAnon(status []byte) (int64, bool) {
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "RssAnon:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, false
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil || kb < 0 {
			return 0, false
		}
		return kb * 1024, true
	}
	return 0, false
}

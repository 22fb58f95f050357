package store

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// The cross-process tests re-run this test binary as a helper that holds
// or crashes while holding the store.
const (
	helperEnv     = "CHECKIN_STORE_TEST_HELPER"
	helperPathEnv = "CHECKIN_STORE_TEST_PATH"
	hangGuard     = 60 * time.Second
	// quickRaceExit skips the race detector's one-second pause at exit.
	quickRaceExit = "GORACE=atexit_sleep_ms=0"
)

func batch(m, prefix string, n, seed int) []KeyedRecord {
	out := make([]KeyedRecord, n)
	for i := range out {
		out[i] = synced(m, fmt.Sprintf("%s%04d", prefix, i), seed+i)
	}
	return out
}

// TestHelperProcess is not a test: it is the helper process body.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv(helperEnv)
	if mode == "" {
		t.Skip("helper for the cross-process tests")
	}
	// Never outlive a parent that forgot to stop us.
	time.AfterFunc(hangGuard, func() { os.Exit(3) })
	fail := func(err error) {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(2)
	}
	s, err := Open(os.Getenv(helperPathEnv), Options{Command: "sync"})
	if err != nil {
		fail(err)
	}
	switch mode {
	case "hold":
		fmt.Println("ready")
		_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes stdin
		if err := s.Close(); err != nil {
			fail(err)
		}
	case "crash-in-apply":
		if err := s.Apply(&Write{Records: batch("2026-03", "first", 100, 0)}); err != nil {
			fail(err)
		}
		s.testHookApply = func() {
			fmt.Println("in-txn")
			select {} // the parent kills us here, inside the write transaction
		}
		err := s.Apply(&Write{
			Records:       batch("2026-03", "second", 100, 1000),
			PutPending:    []Pending{{TxID: "tx-2", Month: "2026-03", UserIDs: []string{"x"}, Hashes: []uint64{1}, FirstSentAt: t0}},
			DeletePending: []string{"tx-1"},
		})
		fail(fmt.Errorf("apply returned: %v", err))
	case "crash-between":
		if err := s.Apply(&Write{
			Records:    batch("2026-03", "first", 100, 0),
			PutPending: []Pending{{TxID: "tx-1", Month: "2026-03", UserIDs: []string{"y"}, Hashes: []uint64{2}, FirstSentAt: t0}},
		}); err != nil {
			fail(err)
		}
		fmt.Println("committed")
		select {}
	default:
		fail(fmt.Errorf("unknown mode %q", mode))
	}
	os.Exit(0)
}

type helper struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

func startHelper(t *testing.T, mode, path string) *helper {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$")
	cmd.Env = append(os.Environ(), helperEnv+"="+mode, helperPathEnv+"="+path, quickRaceExit)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h := &helper{cmd: cmd, stdin: stdin, lines: make(chan string, 16)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			h.lines <- sc.Text()
		}
		close(h.lines)
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	return h
}

func (h *helper) waitFor(t *testing.T, want string) {
	t.Helper()
	timeout := time.After(hangGuard)
	for {
		select {
		case line, ok := <-h.lines:
			if !ok {
				t.Fatalf("helper exited before %q", want)
			}
			if strings.TrimSpace(line) == want {
				return
			}
		case <-timeout:
			t.Fatalf("helper never said %q", want)
		}
	}
}

func (h *helper) kill(t *testing.T) {
	t.Helper()
	if err := h.cmd.Process.Kill(); err != nil { // SIGKILL: no deferred cleanup runs
		t.Fatal(err)
	}
	_ = h.cmd.Wait()
}

// deadPID returns the pid of a process that has exited.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), quickRaceExit)
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

func TestLockAcrossProcesses(t *testing.T) {
	path := tempPath(t)
	h := startHelper(t, "hold", path)
	h.waitFor(t, "ready")

	_, err := Open(path, Options{Timeout: 100 * time.Millisecond})
	var le *LockedError
	if !errors.As(err, &le) {
		t.Fatalf("err = %v, want *LockedError", err)
	}
	if le.Info == nil || le.Info.PID != h.cmd.Process.Pid || le.Info.Command != "sync" || le.Info.Started.IsZero() {
		t.Fatalf("Info = %+v, want the helper (pid %d)", le.Info, h.cmd.Process.Pid)
	}
	if !strings.Contains(le.Error(), fmt.Sprintf("pid %d", h.cmd.Process.Pid)) {
		t.Errorf("message %q lacks the pid", le.Error())
	}
	if _, err := Open(path, Options{Timeout: 100 * time.Millisecond, ReadOnly: true}); !errors.As(err, &le) {
		t.Errorf("read-only open while a writer holds: %v, want *LockedError", err)
	}

	// A clean exit removes the lock-info: nothing stale for the next run.
	_ = h.stdin.Close()
	if err := h.cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	s := mustOpen(t, path, Options{})
	if s.StaleLockInfo() != nil {
		t.Errorf("StaleLockInfo = %+v after a clean exit", s.StaleLockInfo())
	}
}

func TestKilledMidTransactionKeepsPreviousState(t *testing.T) {
	path := tempPath(t)
	h := startHelper(t, "crash-in-apply", path)
	h.waitFor(t, "in-txn")
	pid := h.cmd.Process.Pid
	h.kill(t)

	s := mustOpen(t, path, Options{})
	stale := s.StaleLockInfo()
	if stale == nil || stale.PID != pid || stale.Command != "sync" {
		t.Errorf("StaleLockInfo = %+v, want the killed helper (pid %d)", stale, pid)
	}
	sy, pe, fa, err := s.Count("2026-03")
	if err != nil || sy != 100 || pe+fa != 0 {
		t.Fatalf("Count = %d %d %d %v, want only the first batch", sy, pe, fa, err)
	}
	if ps, _ := s.Pendings(); len(ps) != 0 {
		t.Errorf("pending from the killed transaction: %+v", ps)
	}
	if mi, _, _ := s.Month("2026-03"); mi.Synced != 100 {
		t.Errorf("month counts = %+v", mi)
	}
}

func TestKilledBetweenAppliesKeepsFirst(t *testing.T) {
	path := tempPath(t)
	h := startHelper(t, "crash-between", path)
	h.waitFor(t, "committed")
	h.kill(t)

	s := mustOpen(t, path, Options{})
	if s.StaleLockInfo() == nil {
		t.Errorf("no stale lock-info reported after a kill")
	}
	uids := []string{"first0000", "first0099"}
	out := make([]Record, 2)
	found := make([]bool, 2)
	if err := s.Lookup("2026-03", uids, out, found); err != nil || !found[0] || !found[1] {
		t.Fatalf("committed records lost: %v %v", found, err)
	}
	if ps, _ := s.Pendings(); len(ps) != 1 || ps[0].TxID != "tx-1" {
		t.Errorf("committed pending lost: %+v", ps)
	}
}

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"time"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
)

// fakesCommand is the hidden subcommand that serves the fakes. They run in
// a process of their own so that their CPU and garbage collection are not
// charged to the tool, nor the tool's to them, beyond sharing the cores.
const fakesCommand = "fakes"

// fakesGCPercent trades the fakes' memory for CPU.
const fakesGCPercent = 400

// controlPrefix is where the fakes process answers the orchestrator.
const controlPrefix = "/_bench/"

// fakesState is a snapshot of the fakes' counters.
type fakesState struct {
	Calls     counts        `json:"calls"`
	Throttled int           `json:"throttled"`
	Records   int           `json:"records"`
	Refused   counts        `json:"refused"`        // rate-limit refusals per endpoint
	Global    int           `json:"refused_global"` // of them, by Jiandaoyun's enterprise-wide bucket
	CPU       time.Duration `json:"cpu"`            // used by the fakes process so far
}

type latencyRequest struct {
	WeCom fakeapi.LatencyRange `json:"wecom"`
	JDY   fakeapi.LatencyRange `json:"jdy"`
}

// monthsRequest names the months a bump or a preparation is for.
type monthsRequest struct {
	Months []string `json:"months"`
}

func parseMonths(names []string) ([]month.Month, error) {
	out := make([]month.Month, len(names))
	for i, ms := range names {
		m, err := month.Parse(ms)
		if err != nil {
			return nil, err
		}
		out[i] = m
	}
	return out, nil
}

// runFakes serves the fakes on loopback until its stdin closes, which it
// does when the orchestrator exits, however it exits.
func runFakes(args []string) int {
	fs := flag.NewFlagSet(fakesCommand, flag.ContinueOnError)
	users := fs.Int("users", 300, "employees in the sample company")
	seed := fs.Int64("seed", 1, "seed of the sample company")
	burst := fs.Int("burst", 0, "token-bucket burst of the rate limits (0: the fakes' default)")
	cpuProfile := fs.String("cpuprofile", "", "write the fakes' CPU profile to this file")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			fmt.Fprintln(os.Stderr, "fakes:", err)
			return 2
		}
		defer stop()
	}
	// The fakes share the cores with the tool they serve; collecting less
	// often leaves the tool more of them. Their live heap is the form.
	debug.SetGCPercent(fakesGCPercent)
	srv := fakeapi.New(fakeapi.Options{Company: fakeapi.NewCompany(*seed, *users), Burst: *burst})
	srv.SetLimits(unlimitedFakes()) // the orchestrator sets the run's limits
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakes:", err)
		return 2
	}
	refused := &refusals{}
	mux := http.NewServeMux()
	mux.Handle(controlPrefix, controlHandler(srv, refused))
	mux.Handle("/", refused.wrap(srv.Handler()))
	hs := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = hs.Serve(ln) }()
	fmt.Println("http://" + ln.Addr().String())
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = hs.Close()
	return 0
}

// controlHandler serves the orchestrator's routes; loopback callers only.
func controlHandler(srv *fakeapi.Server, refused *refusals) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+controlPrefix+"state", func(w http.ResponseWriter, _ *http.Request) {
		byEndpoint, global := refused.snapshot()
		reply(w, fakesState{Calls: srv.CallCounts(), Throttled: srv.Throttled(), Records: srv.RecordCount(),
			Refused: byEndpoint, Global: global, CPU: selfCPU()})
	})
	mux.HandleFunc("GET "+controlPrefix+"credentials", func(w http.ResponseWriter, _ *http.Request) {
		reply(w, srv.Credentials())
	})
	mux.HandleFunc("GET "+controlPrefix+"duplicates", func(w http.ResponseWriter, r *http.Request) {
		reply(w, map[string]int{"duplicates": len(srv.Duplicates(r.URL.Query().Get("key")))})
	})
	mux.HandleFunc("POST "+controlPrefix+"limits", func(w http.ResponseWriter, r *http.Request) {
		var l fakeapi.Limits
		if decodeBody(w, r, &l) {
			srv.SetLimits(l)
			reply(w, srv.Limits())
		}
	})
	mux.HandleFunc("POST "+controlPrefix+"latency", func(w http.ResponseWriter, r *http.Request) {
		var l latencyRequest
		if decodeBody(w, r, &l) {
			srv.SetLatency(l.WeCom, l.JDY)
			reply(w, l)
		}
	})
	mux.HandleFunc("POST "+controlPrefix+"bump", func(w http.ResponseWriter, r *http.Request) {
		var b monthsRequest
		if !decodeBody(w, r, &b) {
			return
		}
		months, err := parseMonths(b.Months)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		n := 0
		for _, m := range months {
			for _, u := range srv.Company().Users() {
				srv.Company().Bump(u.UserID, m)
				n++
			}
		}
		reply(w, map[string]int{"bumped": n})
	})
	mux.HandleFunc("POST "+controlPrefix+"prepare", func(w http.ResponseWriter, r *http.Request) {
		var b monthsRequest
		if !decodeBody(w, r, &b) {
			return
		}
		months, err := parseMonths(b.Months)
		if err == nil {
			err = srv.PrepareReports(months)
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		reply(w, b)
	})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			http.Error(w, "loopback only", http.StatusForbidden)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// startCPUProfile profiles this process into path until stop is called.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func decodeBody(w http.ResponseWriter, r *http.Request, v any) bool {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

// fakesProcess is the orchestrator's handle on a fakes process.
type fakesProcess struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	done  chan error
	Base  string
	Creds fakeapi.Credentials
	hc    *http.Client
}

// startFakes starts a fakes process for a sample company of users and
// waits for its address.
func startFakes(ctx context.Context, users int, seed int64, burst int, cpuProfile, logPath string) (*fakesProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find this program to start the fakes: %w", err)
	}
	logf, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer logf.Close() // the child holds its own descriptor
	cmd := exec.Command(self, fakesCommand, "-users", strconv.Itoa(users), "-seed", strconv.FormatInt(seed, 10),
		"-burst", strconv.Itoa(burst), "-cpuprofile", cpuProfile)
	cmd.Stderr = logf
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start the fakes: %w", err)
	}
	p := &fakesProcess{cmd: cmd, stdin: stdin, done: make(chan error, 1), hc: &http.Client{Timeout: 5 * time.Minute}}
	first := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		line := ""
		if sc.Scan() {
			line = sc.Text()
		}
		first <- line
		_, _ = io.Copy(io.Discard, stdout)
		p.done <- cmd.Wait()
	}()
	select {
	case line := <-first:
		if !strings.HasPrefix(line, "http://127.0.0.1:") {
			p.Stop()
			return nil, fmt.Errorf("the fakes did not start (see %s)", logPath)
		}
		p.Base = line
	case <-time.After(2 * time.Minute):
		p.Stop()
		return nil, errors.New("the fakes did not print their address within 2 minutes")
	case <-ctx.Done():
		p.Stop()
		return nil, ctx.Err()
	}
	if err := p.get(ctx, "credentials", &p.Creds); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// Stop closes the fakes' stdin, which ends them, and kills them if they
// have not gone after a while.
func (p *fakesProcess) Stop() {
	_ = p.stdin.Close()
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func (p *fakesProcess) State(ctx context.Context) (fakesState, error) {
	var s fakesState
	err := p.get(ctx, "state", &s)
	return s, err
}

func (p *fakesProcess) Duplicates(ctx context.Context, keyField string) (int, error) {
	var out struct{ Duplicates int }
	err := p.get(ctx, "duplicates?key="+keyField, &out)
	return out.Duplicates, err
}

func (p *fakesProcess) SetLimits(ctx context.Context, l fakeapi.Limits) error {
	return p.post(ctx, "limits", l)
}

func (p *fakesProcess) SetLatency(ctx context.Context, wecom, jdy fakeapi.LatencyRange) error {
	return p.post(ctx, "latency", latencyRequest{WeCom: wecom, JDY: jdy})
}

// Bump changes every user's report of the months.
func (p *fakesProcess) Bump(ctx context.Context, months []month.Month) error {
	return p.post(ctx, "bump", newMonthsRequest(months))
}

// Prepare has the fakes encode every user's report of the months before a
// timed run: a real WeCom builds its answers on its own machines, not on
// the cores the tool is measured on.
func (p *fakesProcess) Prepare(ctx context.Context, months []month.Month) error {
	return p.post(ctx, "prepare", newMonthsRequest(months))
}

func newMonthsRequest(months []month.Month) monthsRequest {
	b := monthsRequest{Months: []string{}}
	for _, m := range months {
		b.Months = append(b.Months, m.String())
	}
	return b
}

func (p *fakesProcess) get(ctx context.Context, route string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, p.Base+controlPrefix+route, nil)
	if err != nil {
		return err
	}
	return p.do(req, out)
}

func (p *fakesProcess) post(ctx context.Context, route string, body any) error {
	b, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.Base+controlPrefix+route, strings.NewReader(string(b)))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	return p.do(req, nil)
}

func (p *fakesProcess) do(req *http.Request, out any) error {
	resp, err := p.hc.Do(req)
	if err != nil {
		return fmt.Errorf("fakes control %s: %w", req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("fakes control %s: %w", req.URL.Path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("fakes control %s: HTTP %d: %s", req.URL.Path, resp.StatusCode, strings.TrimSpace(string(b)))
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("fakes control %s: %w", req.URL.Path, err)
	}
	return nil
}

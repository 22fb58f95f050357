package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/httpx"
)

func fakeServersCommand() *cli.Command {
	return &cli.Command{
		Name:  "fake-servers",
		Usage: "serve the fake WeCom and fake Jiandaoyun on loopback, for trying the tool without an account",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "listen", Value: "127.0.0.1:8700", Usage: "loopback address to listen on"},
			&cli.IntFlag{Name: "users", Value: 300, Usage: "employees in the sample company"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the sample company"},
			&cli.StringFlag{Name: "scratch-form", Usage: "also serve a scratch form with this entry_id, for `check --write-probe`"},
			&cli.StringFlag{Name: "tx-mode", Value: "dedupe", Usage: "how batch_create treats a known transaction_id: dedupe, overwrite, ignore or reject"},
			&cli.IntFlag{Name: "resend-code", Value: 17026, Usage: "with --tx-mode reject: the code a resend gets"},
			&cli.DurationFlag{Name: "list-lag", Usage: "how long a new record stays out of data/list"},
		},
		Action: runFakeServers,
	}
}

func runFakeServers(c *cli.Context) error {
	addr := c.String("listen")
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return usageErr("give host:port, for example 127.0.0.1:8700", "--listen %q: %w", addr, err)
	}
	if !httpx.IsLoopback(host) {
		return usageErr("the fakes serve loopback only: use 127.0.0.1:PORT", "--listen %q is not a loopback address", addr)
	}
	modes := map[string]fakeapi.TxMode{"dedupe": fakeapi.TxDedupe, "overwrite": fakeapi.TxOverwrite, "ignore": fakeapi.TxIgnore, "reject": fakeapi.TxReject}
	mode, ok := modes[c.String("tx-mode")]
	if !ok {
		return usageErr("use dedupe, overwrite, ignore or reject", "--tx-mode %q is not a mode", c.String("tx-mode"))
	}
	srv := fakeapi.New(fakeapi.Options{Company: fakeapi.NewCompany(c.Int64("seed"), c.Int("users"))})
	defer srv.Close()
	if id := c.String("scratch-form"); id != "" {
		srv.AddForm(id)
	}
	srv.SetJDYBehaviour(fakeapi.JDYBehaviour{TxMode: mode, ResendCode: c.Int("resend-code"), ListLag: c.Duration("list-lag")})
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
	base := "http://" + ln.Addr().String()
	cr := srv.Credentials()
	w := c.App.Writer
	fmt.Fprintf(w, "Fake WeCom and fake Jiandaoyun are serving %d employees on %s\n\n", c.Int("users"), base)
	printFakeSetup(w, base, cr)
	if id := c.String("scratch-form"); id != "" {
		fmt.Fprintf(w, "\nA scratch form for the write probe: checkin-sync check --write-probe --entry-id %s --yes\n", id)
	}

	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	select {
	case <-ctx.Done():
	case err := <-errc:
		if !errors.Is(err, http.ErrServerClosed) {
			return err
		}
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return hs.Shutdown(sctx)
}

// printFakeSetup tells how to point the template `init` writes at the
// fakes: the plain values to edit in the file, and the environment
// variables its ${VAR} placeholders read.
func printFakeSetup(w io.Writer, base string, cr fakeapi.Credentials) {
	fmt.Fprintf(w, "In the checkin-sync.yaml that `checkin-sync init` writes, set:\n\n"+
		"  wecom:\n    base_url: %s\n"+
		"  jiandaoyun:\n    base_url: %s\n    app_id: %s\n    entry_id: %s\n\n", base, base, cr.AppID, cr.EntryID)
	fmt.Fprintf(w, "and export the variables it reads:\n\n"+
		"  export WECOM_CORP_ID=%s\n  export WECOM_SECRET=%s\n  export JDY_API_KEY=%s\n\n",
		cr.CorpID, cr.Secret, cr.APIKey)
	fmt.Fprintf(w, "For alerts, uncomment the alert section and:\n\n  export WECOM_ROBOT_WEBHOOK='%s/cgi-bin/webhook/send?key=%s'\n\nCtrl-C stops.\n",
		base, cr.WebhookKey)
}

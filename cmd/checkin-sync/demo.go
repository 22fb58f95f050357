package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/fakeapi"
	"checkin-sync/internal/month"
	"checkin-sync/store"
)

func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "sync a sample company between built-in fake servers on loopback (no network, no credentials)",
		Flags: []cli.Flag{
			&cli.IntFlag{Name: "users", Value: 300, Usage: "employees in the sample company"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the sample company"},
		},
		Action: runDemo,
	}
}

func runDemo(c *cli.Context) error {
	log, err := peopleLogger(c)
	if err != nil {
		return err
	}
	out := c.App.Writer
	srv := fakeapi.New(fakeapi.Options{Company: fakeapi.NewCompany(c.Int64("seed"), c.Int("users"))})
	base, err := srv.Start()
	if err != nil {
		return fmt.Errorf("start the fake servers: %w", err)
	}
	defer srv.Close()
	dir, err := os.MkdirTemp("", "checkin-sync-demo-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	// The demo runs on the same template `init` writes, pointed at the
	// fakes: the values a user edits are filled in as a user would, and
	// the secrets come from the variables the template names.
	cr := srv.Credentials()
	path := filepath.Join(dir, "checkin-sync.yaml")
	filled := strings.NewReplacer("EDIT_ME_APP_ID", cr.AppID, "EDIT_ME_ENTRY_ID", cr.EntryID).Replace(string(config.Template()))
	if err := os.WriteFile(path, []byte(filled), 0o600); err != nil {
		return err
	}
	env := map[string]string{"WECOM_CORP_ID": cr.CorpID, "WECOM_SECRET": cr.Secret, "JDY_API_KEY": cr.APIKey}
	cfg, err := config.Load(path, func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	cfg.WeCom.BaseURL, cfg.Jiandaoyun.BaseURL = base, base
	cfg.Jiandaoyun.AppID, cfg.Jiandaoyun.EntryID = cr.AppID, cr.EntryID

	today := month.TodayCST(time.Now())
	cur := today.Month()
	months := []month.Month{cur.Prev(), cur}
	if today.Day == 1 { // the current month has no complete day yet
		months = []month.Month{cur.Prev().Prev(), cur.Prev()}
	}
	fmt.Fprintf(out, "checkin-sync demo: fake WeCom and Jiandaoyun on %s, %d employees, months %s and %s\n\n",
		base, c.Int("users"), months[0], months[1])

	hard, cancel := drainContext(c.Context)
	defer cancel()
	stop := c.Context
	job := syncJob{cfg: cfg, log: log, today: today, months: months, out: out, progress: isTerminal(os.Stderr)}
	writes := func() int {
		return srv.Calls("data/batch_create") + srv.Calls("data/update") + srv.Calls("data/create")
	}

	fmt.Fprintln(out, "== First sync: everything is new")
	code, err := runSync(hard, stop, job)
	if err != nil {
		return err
	}
	if code != exitOK {
		return runError(code)
	}
	if err := demoStatus(c, cfg, today); err != nil {
		return err
	}

	fmt.Fprintln(out, "\n== Second sync: nothing changed, so nothing is written")
	before := writes()
	code, err = runSync(hard, stop, job)
	if err != nil {
		return err
	}
	if code != exitOK {
		return runError(code)
	}
	if n := writes() - before; n != 0 {
		return fmt.Errorf("demo: the unchanged rerun sent %d writes to Jiandaoyun; expected none", n)
	}
	fmt.Fprintf(out, "\nThe rerun sent 0 writes to Jiandaoyun. Records in the fake form: %d, duplicate keys: %d.\n",
		len(srv.Records()), len(srv.Duplicates(cfg.Mapping.Key)))
	if err := demoStatus(c, cfg, today); err != nil {
		return err
	}

	fmt.Fprintf(out, "\n$ checkin-sync verify --month %s --month %s\n", months[0], months[1])
	rep, err := runVerify(hard, stop, verifyJob{cfg: cfg, log: log, today: today, months: months, out: out, errOut: c.App.ErrWriter})
	if err != nil {
		return err
	}
	if rep.Drift() || len(rep.Findings) > 0 {
		return fmt.Errorf("demo: verify found %d findings in a form the demo just synced; expected none", len(rep.Findings))
	}
	return nil
}

func demoStatus(c *cli.Context, cfg *config.Config, today month.Date) error {
	fmt.Fprintln(c.App.Writer, "\n$ checkin-sync status")
	st, err := readStatus(cfg.Store, windowOf(cfg, today), cfg.Location, func() (*store.Store, error) {
		return openStoreReadOnly(cfg, time.Second)
	})
	if err != nil {
		return err
	}
	return printStatus(c.App.Writer, st, false)
}

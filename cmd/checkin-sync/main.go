// Command checkin-sync copies WeCom monthly attendance reports into a
// Jiandaoyun form, incrementally and without duplicates.
//
// Each subcommand lives in its own file and is registered in commands();
// newApp gives every one of them the global flags, so that they work before
// and after the command name, and refuses stray positional arguments.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
	"time"

	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
	"checkin-sync/internal/month"
	"checkin-sync/internal/suggest"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// Names of the global flags.
const (
	flagConfig    = "config"
	flagLogLevel  = "log-level"
	flagLogFormat = "log-format"
	flagToday     = "today"
)

// commands lists the subcommands. Each is built by a function in its own
// file; adding a command means adding one line here.
func commands() []*cli.Command {
	return []*cli.Command{
		initCommand(),
		checkCommand(),
		syncCommand(),
		statusCommand(),
		historyCommand(),
		resetCommand(),
		verifyCommand(),
		rebuildCommand(),
		serveCommand(),
		demoCommand(),
		fakeServersCommand(),
	}
}

func main() {
	ctx, stop := withSignals(context.Background(), os.Stderr)
	code := run(ctx, os.Args, os.Stdout, os.Stderr, commands())
	stop()
	os.Exit(code)
}

// run executes one command line and returns the exit code, after printing
// any error as "Error: ... / Try: ...".
func run(ctx context.Context, args []string, stdout, stderr io.Writer, cmds []*cli.Command) int {
	err := newApp(stdout, stderr, cmds).RunContext(ctx, args)
	code := exitCode(err)
	if err != nil {
		if ie, ok := context.Cause(ctx).(*interruptError); ok && ctx.Err() != nil {
			// Whatever the command returned, it was cut short by the signal.
			code = worst(code, ie.ExitCode())
		}
		printError(stderr, err)
	}
	return code
}

// withSignals cancels ctx on the first SIGINT or SIGTERM, so that running
// work can commit its checkpoints and stop; a second signal exits at once.
func withSignals(parent context.Context, stderr io.Writer) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 2)
	signal.Notify(ch, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case sig := <-ch:
			cancel(&interruptError{sig: sig})
		case <-done:
			return
		}
		select {
		case <-ch:
			fmt.Fprintln(stderr, "Error: interrupted twice; exiting now")
			os.Exit(exitInterrupted)
		case <-done:
		}
	}()
	return ctx, func() {
		signal.Stop(ch)
		close(done)
		cancel(nil)
	}
}

// globalFlags returns fresh definitions of the global flags. The app and
// every subcommand get their own copies: urfave/cli keeps state in flag
// values, so one definition must not be shared.
func globalFlags() []cli.Flag {
	return append([]cli.Flag{
		&cli.StringFlag{Name: flagConfig, Usage: "configuration `FILE` (default: $" + config.EnvFile + ", else " + config.DefaultFile + ")"},
		&cli.StringFlag{Name: flagLogLevel, Value: "info", Usage: "how much to log: debug, info, warn or error"},
		&cli.StringFlag{Name: flagLogFormat, Value: "auto", Usage: "log format: auto (console on a terminal, JSON elsewhere), console or json"},
		&cli.StringFlag{Name: flagToday, Usage: "act as if today were `YYYY-MM-DD` (for replays and tests)"},
	}, profileFlags()...)
}

// global reads a global flag wherever it was given: after the command name
// (nearest) or before it. Unset, it is the flag's default.
func global(c *cli.Context, name string) string {
	for _, cc := range c.Lineage() {
		if cc.IsSet(name) {
			return cc.String(name)
		}
	}
	return c.String(name)
}

func newApp(stdout, stderr io.Writer, cmds []*cli.Command) *cli.App {
	// -v is sync's --verbose, so --version gets no short alias.
	cli.VersionFlag = &cli.BoolFlag{Name: "version", Usage: "print the version", DisableDefaultText: true}
	for _, cmd := range cmds {
		prepare(cmd)
	}
	return &cli.App{
		Name:           "checkin-sync",
		Usage:          "copy WeCom monthly attendance reports into a Jiandaoyun form",
		Version:        buildVersion(),
		Writer:         stdout,
		ErrWriter:      stderr,
		Flags:          globalFlags(),
		Commands:       cmds,
		OnUsageError:   onUsageError,
		ExitErrHandler: func(*cli.Context, error) {}, // run prints errors and picks the exit code
		Action:         rootAction,
	}
}

// prepare gives a subcommand the global flags, usage errors with exit 2,
// and a check that refuses positional arguments. Commands should not mark
// flags Required (urfave/cli reports that as a plain error, exit 1, after
// printing the help); check them in the action and return usageErr.
func prepare(cmd *cli.Command) {
	cmd.Flags = append(cmd.Flags, globalFlags()...)
	cmd.HideHelpCommand = true // otherwise "cmd help" would be taken as a subcommand, not a stray argument
	cmd.OnUsageError = onUsageError
	own, ownAfter := cmd.Before, cmd.After
	cmd.After = func(c *cli.Context) error {
		stopProfiles(c)
		if ownAfter != nil {
			return ownAfter(c)
		}
		return nil
	}
	cmd.Before = func(c *cli.Context) error {
		if c.NArg() > 0 {
			return usageErr(fmt.Sprintf("`checkin-sync %s` takes flags only; see `checkin-sync %s --help`", cmd.Name, cmd.Name),
				"unexpected argument %q", c.Args().First())
		}
		if err := checkLogFlags(c); err != nil {
			return err
		}
		if s := global(c, flagToday); s != "" {
			if _, err := parseToday(s); err != nil {
				return err
			}
		}
		if err := startProfiles(c); err != nil {
			return err
		}
		if own != nil {
			return own(c)
		}
		return nil
	}
}

func onUsageError(c *cli.Context, err error, isSubcommand bool) error {
	try := "run `checkin-sync --help`"
	if isSubcommand && c.Command != nil {
		try = fmt.Sprintf("run `checkin-sync %s --help`", c.Command.Name)
	}
	return &exitError{code: exitUsage, err: err, try: try}
}

// rootAction runs when no subcommand matched: help without arguments, a
// usage error for an unknown command.
func rootAction(c *cli.Context) error {
	if c.NArg() == 0 {
		return cli.ShowAppHelp(c)
	}
	name := c.Args().First()
	var names []string
	for _, cmd := range c.App.VisibleCommands() {
		names = append(names, cmd.Name)
	}
	try := "run `checkin-sync --help` to list the commands"
	if near := suggest.Closest(name, names); near != "" {
		try = fmt.Sprintf("did you mean `checkin-sync %s`?", near)
	}
	return usageErr(try, "unknown command %q", name)
}

func buildVersion() string {
	if version != "" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "dev"
}

// storeOnly names the commands that read or change only the store. They
// load the configuration with config.WithoutSecrets: they work without
// WECOM_SECRET and JDY_API_KEY, and never read them.
var storeOnly = map[string]bool{"status": true, "history": true, "reset": true}

// loadConfig finds and loads the configuration (--config, then
// $CHECKIN_SYNC_CONFIG, then ./checkin-sync.yaml) and logs its warnings.
// For the store-only commands the secrets are left unread.
func loadConfig(c *cli.Context) (*config.Config, error) {
	path := config.Locate(global(c, flagConfig), os.Getenv)
	var opts []config.Option
	if c.Command != nil && storeOnly[c.Command.Name] {
		opts = append(opts, config.WithoutSecrets())
	}
	cfg, err := config.Load(path, os.LookupEnv, opts...)
	if err != nil {
		return nil, err
	}
	log, err := newLogger(c)
	if err != nil {
		return nil, err
	}
	for _, w := range cfg.Warnings {
		log.Warn().Str("config", path).Msg(w)
	}
	return cfg, nil
}

// session is what most commands start from.
type session struct {
	cfg   *config.Config
	log   zerolog.Logger
	today month.Date
}

// startSession loads the configuration and builds the logger and today's
// date from the global flags.
func startSession(c *cli.Context) (session, error) {
	cfg, err := loadConfig(c)
	if err != nil {
		return session{}, err
	}
	log, err := newLogger(c)
	if err != nil {
		return session{}, err
	}
	d, err := today(c)
	if err != nil {
		return session{}, err
	}
	return session{cfg: cfg, log: log, today: d}, nil
}

// today is --today, or the real date on WeCom's calendar (UTC+8). The
// configured timezone is deliberately not used: it only changes how times
// are shown, while the days and months to sync are WeCom's.
func today(c *cli.Context) (month.Date, error) {
	if s := global(c, flagToday); s != "" {
		return parseToday(s)
	}
	return month.TodayCST(time.Now()), nil
}

func parseToday(s string) (month.Date, error) {
	d, err := month.ParseDate(s)
	if err != nil {
		return month.Date{}, &exitError{code: exitUsage, err: fmt.Errorf("--today: %w", err), try: "write the date as YYYY-MM-DD, for example --today 2026-03-05"}
	}
	return d, nil
}

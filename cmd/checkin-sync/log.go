package main

import (
	"io"
	"os"

	"github.com/mattn/go-isatty"
	"github.com/rs/zerolog"
	"github.com/urfave/cli/v2"
)

// newLogger builds the logger that the global flags ask for. Logs go to
// stderr; stdout is kept for summaries, tables and JSON.
func newLogger(c *cli.Context) (zerolog.Logger, error) {
	return buildLogger(c.App.ErrWriter, global(c, flagLogLevel), global(c, flagLogFormat))
}

// peopleLogger is newLogger for commands whose output is read by a person
// (demo): console lines even when stderr is not a terminal, unless
// --log-format was given. JSON lines between the summary tables help nobody.
func peopleLogger(c *cli.Context) (zerolog.Logger, error) {
	format := "console"
	if logFormatGiven(c) {
		format = global(c, flagLogFormat)
	}
	return buildLogger(c.App.ErrWriter, global(c, flagLogLevel), format)
}

// logFormatGiven reports whether --log-format was given, before or after
// the command name.
func logFormatGiven(c *cli.Context) bool {
	for _, cc := range c.Lineage() {
		if cc.IsSet(flagLogFormat) {
			return true
		}
	}
	return false
}

// buildLogger writes human-readable lines on a terminal and JSON lines
// elsewhere (cron, systemd, log shippers), unless format forces one.
func buildLogger(w io.Writer, level, format string) (zerolog.Logger, error) {
	var lv zerolog.Level
	switch level {
	case "debug":
		lv = zerolog.DebugLevel
	case "info":
		lv = zerolog.InfoLevel
	case "warn":
		lv = zerolog.WarnLevel
	case "error":
		lv = zerolog.ErrorLevel
	default:
		return zerolog.Nop(), usageErr("use --log-level debug, info, warn or error", "--log-level %q is not a log level", level)
	}
	tty := isTerminal(w)
	var out io.Writer
	switch format {
	case "auto":
		out = w
		if tty {
			out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05"}
		}
	case "console":
		out = zerolog.ConsoleWriter{Out: w, TimeFormat: "15:04:05", NoColor: !tty}
	case "json":
		out = w
	default:
		return zerolog.Nop(), usageErr("use --log-format auto, console or json", "--log-format %q is not a log format", format)
	}
	return zerolog.New(out).Level(lv).With().Timestamp().Logger(), nil
}

func init() {
	// Milliseconds: a run makes many requests a second, and the order of
	// a run's lines is only readable at that precision.
	zerolog.TimeFieldFormat = "2006-01-02T15:04:05.000Z07:00"
}

// isTerminal reports whether w is a terminal (progress bars and colour
// only make sense there).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	return isatty.IsTerminal(f.Fd()) || isatty.IsCygwinTerminal(f.Fd())
}

// checkLogFlags validates the logging flags early, so that a typo exits 2
// before any work starts.
func checkLogFlags(c *cli.Context) error {
	_, err := buildLogger(io.Discard, global(c, flagLogLevel), global(c, flagLogFormat))
	return err
}

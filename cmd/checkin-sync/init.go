package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/urfave/cli/v2"

	"checkin-sync/internal/config"
)

func initCommand() *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "write a commented configuration template",
		Description: "Writes the configuration template to --config (or $" + config.EnvFile + ", or " + config.DefaultFile + ").\n" +
			"The file is created with mode 0600. An existing file is left alone unless --force is given.",
		Flags: []cli.Flag{
			&cli.BoolFlag{Name: "force", Usage: "overwrite an existing file"},
		},
		Action: runInit,
	}
}

func runInit(c *cli.Context) error {
	flagPath := global(c, flagConfig)
	path := config.Locate(flagPath, os.Getenv)
	if err := writeTemplate(path, c.Bool("force")); err != nil {
		return err
	}
	checkCmd := "checkin-sync check"
	if flagPath != "" {
		checkCmd = "checkin-sync check --config " + path
	}
	printNextSteps(c.App.Writer, path, checkCmd)
	return nil
}

func printNextSteps(w io.Writer, path, checkCmd string) {
	fmt.Fprintf(w, "Wrote %s (mode 0600).\n\n", path)
	fmt.Fprintf(w, "Next steps:\n")
	fmt.Fprintf(w, "  1. Set the environment variables the file reads (also for cron or systemd):\n")
	fmt.Fprintf(w, "       export WECOM_CORP_ID=...   # 企业ID\n")
	fmt.Fprintf(w, "       export WECOM_SECRET=...    # secret of the app allowed to call the checkin API\n")
	fmt.Fprintf(w, "       export JDY_API_KEY=...     # Jiandaoyun API key\n")
	fmt.Fprintf(w, "  2. Edit jiandaoyun.app_id and jiandaoyun.entry_id in %s.\n", path)
	fmt.Fprintf(w, "  3. Check credentials, permissions, form and mapping:\n")
	fmt.Fprintf(w, "       %s\n", checkCmd)
}

// writeTemplate writes the template with mode 0600. Without force an
// existing file is never touched; with force the file is replaced
// atomically, so an interrupted write cannot leave half a configuration.
func writeTemplate(path string, force bool) error {
	data := config.Template()
	dir := filepath.Dir(path)
	if fi, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
		return usageErr(fmt.Sprintf("create the directory first (mkdir -p %s), or pass --config with a path in a directory that exists", dir),
			"cannot write %s: the directory %s does not exist", path, dir)
	} else if err == nil && !fi.IsDir() {
		return usageErr("pass --config with a path in a directory", "cannot write %s: %s is not a directory", path, dir)
	}
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return usageErr("pass --config with the path of the file to write, for example --config "+filepath.Join(path, "checkin-sync.yaml"),
			"cannot write %s: it is a directory", path)
	}
	if !force {
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			return usageErr("pass --force to overwrite it, or --config FILE to write another file",
				"%s already exists; it was left unchanged", path)
		}
		if err != nil {
			return fmt.Errorf("write config template: %w", err)
		}
		_, werr := f.Write(data)
		serr := f.Sync()
		cerr := f.Close()
		if err := errors.Join(werr, serr, cerr); err != nil {
			_ = os.Remove(path)
			return fmt.Errorf("write config template %s: %w", path, err)
		}
		return nil
	}

	tmp, err := os.CreateTemp(filepath.Dir(path), ".checkin-sync-*.yaml.tmp")
	if err != nil {
		return fmt.Errorf("write config template: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op once renamed
	_, werr := tmp.Write(data)
	merr := tmp.Chmod(0o600)
	serr := tmp.Sync()
	cerr := tmp.Close()
	if err := errors.Join(werr, merr, serr, cerr); err != nil {
		return fmt.Errorf("write config template %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("write config template: %w", err)
	}
	return nil
}

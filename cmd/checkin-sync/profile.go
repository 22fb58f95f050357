package main

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"

	"github.com/urfave/cli/v2"
)

// Hidden global flags for the benchmark (make bench -profile): they write
// pprof profiles of one command.
const (
	flagCPUProfile = "cpuprofile"
	flagMemProfile = "memprofile"
)

func profileFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: flagCPUProfile, Hidden: true, Usage: "write a CPU profile to `FILE`"},
		&cli.StringFlag{Name: flagMemProfile, Hidden: true, Usage: "write a heap profile to `FILE` at exit"},
	}
}

const metaStopProfiles = "stop-profiles"

// startProfiles starts the CPU profile the flags ask for; stopProfiles,
// run after the command, finishes both profiles.
func startProfiles(c *cli.Context) error {
	stop, err := profiles(c)
	if c.App.Metadata == nil {
		c.App.Metadata = map[string]any{}
	}
	c.App.Metadata[metaStopProfiles] = stop
	return err
}

func stopProfiles(c *cli.Context) {
	if stop, ok := c.App.Metadata[metaStopProfiles].(func()); ok {
		stop()
		delete(c.App.Metadata, metaStopProfiles)
	}
}

func profiles(c *cli.Context) (stop func(), err error) {
	stop = func() {}
	if path := global(c, flagCPUProfile); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return stop, usageErr("give a writable file", "--%s: %w", flagCPUProfile, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return stop, fmt.Errorf("start the CPU profile: %w", err)
		}
		stop = func() { pprof.StopCPUProfile(); f.Close() }
	}
	if path := global(c, flagMemProfile); path != "" {
		cpu := stop
		stop = func() {
			cpu()
			f, err := os.Create(path)
			if err != nil {
				fmt.Fprintf(c.App.ErrWriter, "Error: --%s: %v\n", flagMemProfile, err)
				return
			}
			defer f.Close()
			runtime.GC()
			if err := pprof.WriteHeapProfile(f); err != nil {
				fmt.Fprintf(c.App.ErrWriter, "Error: --%s: %v\n", flagMemProfile, err)
			}
		}
	}
	return stop, nil
}

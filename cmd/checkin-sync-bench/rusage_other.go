//go:build !unix

package main

import (
	"os"
	"time"
)

// maxRSS is unknown where there is no getrusage.
func maxRSS(*os.ProcessState) int64 { return 0 }

// selfCPU is unknown where there is no getrusage.
func selfCPU() time.Duration { return 0 }

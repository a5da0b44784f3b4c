package imap

import (
	"time"

	"github.com/mailyard/mailyard/internal/cputime"
)

// processCPU is the CPU time the process has used so far, for cpuTimer
// (internal/cputime).
func processCPU() (time.Duration, bool) { return cputime.Process() }

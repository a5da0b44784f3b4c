package cputime

import (
	"runtime"
	"testing"
	"time"
)

// TestProcessGrows: a goroutine that spins adds CPU time, which Process sees
// within seconds even on a loaded machine.
func TestProcessGrows(t *testing.T) {
	before, ok := Process()
	if !ok {
		t.Skip("no CPU time on " + runtime.GOOS)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if now, _ := Process(); now-before >= 20*time.Millisecond {
			return
		}
	}
	now, _ := Process()
	t.Errorf("CPU time went from %v to %v over 10 s of spinning", before, now)
}

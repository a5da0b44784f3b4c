package proccpu

import (
	"runtime"
	"testing"
	"time"
)

// TestUsedGrows: a goroutine that spins adds CPU time, which Used sees
// within seconds even on a loaded machine.
func TestUsedGrows(t *testing.T) {
	before, ok := Used()
	if !ok {
		t.Skip("no CPU time on " + runtime.GOOS)
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if now, _ := Used(); now-before >= 20*time.Millisecond {
			return
		}
	}
	now, _ := Used()
	t.Errorf("CPU time went from %v to %v over 10 s of spinning", before, now)
}

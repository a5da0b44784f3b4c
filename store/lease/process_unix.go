//go:build unix

package lease

import (
	"errors"
	"syscall"
)

// processAlive reports whether a process of this host with that pid
// exists. Signal 0 checks that it exists (EPERM: it exists but is not
// ours to signal).
func processAlive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

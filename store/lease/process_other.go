//go:build !unix

package lease

// processAlive cannot look at other processes here, so a lease of this
// host is taken to be held until it expires (never taken over early).
func processAlive(pid int) bool { return true }

// Package testpeer finds, starts and waits for the outside programs that
// Mailyard's tests run against (swaks, smtp-source, Dovecot, slapd, ...).
//
// A test that needs a peer calls [Require]: when the program is missing the
// test is skipped with the reason, unless MAILYARD_REQUIRE_PEERS=1 is set
// (as .ci/run does), in which case it fails. CI therefore can never pass by
// skipping.
package testpeer

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// RequirePeersEnv is the environment variable that turns a missing peer
// from a skip into a failure.
const RequirePeersEnv = "MAILYARD_REQUIRE_PEERS"

// Required reports whether missing peers are failures.
func Required() bool { return os.Getenv(RequirePeersEnv) == "1" }

// Require returns the path of program, or skips (fails under
// MAILYARD_REQUIRE_PEERS=1) when it is not installed. pkg names the Debian
// package that provides it, for the message.
func Require(t testing.TB, program, pkg string) string {
	t.Helper()
	path, err := exec.LookPath(program)
	if err == nil {
		return path
	}
	msg := fmt.Sprintf("peer %s not installed (Debian package %s; .ci/peers.sh installs it)", program, pkg)
	if Required() {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
//
// The port comes from below the kernel's ephemeral range
// (net.ipv4.ip_local_port_range), from 10000 up: a port the kernel handed
// out for port 0 could be handed out again, to another test's listener or
// to any outgoing connection, before the caller binds it (CI once saw
// `bind: address already in use` that way). Below the range only other
// callers of FreePort pick ports; each process walks the range from its
// own starting point and never returns a port twice. Where the range
// cannot be read (not Linux), the kernel picks, as before.
func FreePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	lo, hi := 10000, ephemeralLow()
	if hi-lo < 1000 {
		return kernelPort(t)
	}
	if portNext == 0 {
		portNext = lo + (os.Getpid()*7919)%(hi-lo)
	}
	for range hi - lo {
		p := portNext
		if portNext++; portNext >= hi {
			portNext = lo
		}
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p))
		if err != nil {
			continue
		}
		l.Close()
		return p
	}
	t.Fatalf("free port: none free in %d-%d", lo, hi-1)
	return 0
}

var (
	portMu   sync.Mutex
	portNext int // the next port FreePort tries; 0 before the first call
)

// ephemeralLow is the first port of the kernel's ephemeral range, or 0
// when it cannot be read.
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return 0
	}
	return n
}

// kernelPort is a port the kernel picks for port 0.
func kernelPort(t testing.TB) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WaitPort waits until addr accepts TCP connections or timeout passes.
func WaitPort(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("nothing listens on %s after %v: %w", addr, timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

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
func FreePort(t testing.TB) int {
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

package imap

import (
	"bufio"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/authtest"
)

// testClock is a clock the test moves by hand.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *testClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *testClock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// rawTLSFrom dials the implicit-TLS listener from source, a loopback
// address ("" for any).
func (e *env) rawTLSFrom(source string) *raw {
	e.t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second}
	if source != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(source)}
	}
	c, err := tls.DialWithDialer(d, "tcp", e.tlsAddr, e.client)
	if err != nil {
		e.t.Fatal(err)
	}
	return e.greeted(c)
}

// greeted wraps a new connection and reads the server's greeting.
func (e *env) greeted(c net.Conn) *raw {
	e.t.Helper()
	r := &raw{t: e.t, conn: c, r: bufio.NewReader(c)}
	e.t.Cleanup(func() { c.Close() })
	if g := r.line(); !strings.HasPrefix(g, "* OK") {
		e.t.Fatalf("greeting %q", g)
	}
	return r
}

const bobLogin = "LOGIN bob@example.com \"battery staple\""

// TestBruteForceDoesNotLockOutVictim: many wrong passwords for a login
// from one address neither stop its owner logging in from where they
// usually do nor from a new address, however slowly the guessing goes on.
func TestBruteForceDoesNotLockOutVictim(t *testing.T) {
	clk := newTestClock()
	lim := authtest.Limiter(clk.now)
	e := newEnv(t, func(o *Options) { o.AuthLimiter = lim })
	e.rawTLSFrom("127.0.0.2").expectOK(bobLogin)

	attacker := e.rawTLSFrom("127.0.0.3")
	failed := 0
	for range 12 {
		clk.add(2 * time.Second)
		_, st := attacker.cmd("LOGIN bob@example.com guess")
		switch {
		case strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]"):
			failed++
		case strings.HasPrefix(st, "NO [UNAVAILABLE]"):
		default:
			t.Fatalf("guess: %q", st)
		}
	}
	if failed < 10 {
		t.Fatalf("only %d guesses were checked; the attack did not reach a block", failed)
	}
	e.rawTLSFrom("127.0.0.2").expectOK(bobLogin)
	e.rawTLSFrom("127.0.0.4").expectOK(bobLogin)
	// One guess every 15 minutes keeps nobody else out either.
	for i := range 6 {
		clk.add(15*time.Minute + time.Second)
		attacker.cmd("LOGIN bob@example.com guess-" + strconv.Itoa(i))
		if _, st := e.rawTLSFrom("127.0.0.2").cmd(bobLogin); !strings.HasPrefix(st, "OK") {
			t.Fatalf("after %d slow guesses the owner got %q", i+1, st)
		}
	}
}

// TestConcurrentGuessesBounded: twenty wrong passwords sent at once from
// one client reach the directory at most as often as the limits allow.
func TestConcurrentGuessesBounded(t *testing.T) {
	const n = 20
	clk := newTestClock()
	lim := authtest.Limiter(clk.now)
	gate := authtest.NewGate(n)
	e := newEnv(t, func(o *Options) {
		o.AuthLimiter = lim
		o.Auth = gate.Wrap(o.Auth)
	})
	conns := make([]*raw, n)
	for i := range conns {
		conns[i] = e.rawTLSFrom("127.0.0.3")
	}
	status := make(chan string, n)
	for _, c := range conns {
		c.send("a LOGIN bob@example.com guess\r\n")
		go func() {
			for {
				l, err := c.r.ReadString('\n')
				if err != nil || strings.HasPrefix(l, "a ") {
					status <- strings.TrimSpace(strings.TrimPrefix(l, "a "))
					return
				}
			}
		}()
	}
	got, calls, err := authtest.Settle(gate, lim, n, status, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, st := range got {
		switch {
		case strings.HasPrefix(st, "NO [UNAVAILABLE]"):
			refused++
		case strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]"):
		default:
			t.Fatalf("status %q", st)
		}
	}
	if refused != n-calls {
		t.Fatalf("%d refused, %d checked, of %d", refused, calls, n)
	}
}

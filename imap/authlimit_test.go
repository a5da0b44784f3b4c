package imap

import (
	"bufio"
	"context"
	"crypto/tls"
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
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
// address.
func (e *env) rawTLSFrom(source string) *raw {
	e.t.Helper()
	d := &net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(source)}}
	c, err := tls.DialWithDialer(d, "tcp", e.tlsAddr, e.client)
	if err != nil {
		e.t.Fatal(err)
	}
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
	lim := testLimiter(clk.now)
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

// gateAuth holds every password check until the test releases it, and
// counts them.
type gateAuth struct {
	Authenticator
	mu      sync.Mutex
	calls   int
	arrived chan struct{}
	release chan struct{}
}

func (g *gateAuth) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	g.mu.Lock()
	g.calls++
	g.mu.Unlock()
	g.arrived <- struct{}{}
	<-g.release
	return g.Authenticator.Authenticate(ctx, login, password, p)
}

// TestConcurrentGuessesBounded: twenty wrong passwords sent at once from
// one client reach the directory at most as often as the limits allow.
func TestConcurrentGuessesBounded(t *testing.T) {
	const n = 20
	clk := newTestClock()
	lim := testLimiter(clk.now)
	g := &gateAuth{arrived: make(chan struct{}, n), release: make(chan struct{})}
	e := newEnv(t, func(o *Options) {
		o.AuthLimiter = lim
		g.Authenticator = o.Auth
		o.Auth = g
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
	var got []string
	for checks := 0; checks+len(got) < n; {
		select {
		case <-g.arrived:
			checks++
		case st := <-status:
			got = append(got, st)
		case <-time.After(10 * time.Second):
			t.Fatalf("%d checks and %d replies after 10s", checks, len(got))
		}
	}
	close(g.release)
	for len(got) < n {
		got = append(got, <-status)
	}
	g.mu.Lock()
	calls := g.calls
	g.mu.Unlock()
	if limit := testLimiterMaxChecks(lim); calls > limit {
		t.Fatalf("%d concurrent guesses ran %d password checks, limit %d", n, calls, limit)
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

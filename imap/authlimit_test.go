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
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/internal/authtest"
	"github.com/mailyard/mailyard/internal/testclock"
)

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
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	lim := authtest.Limiter(clk.Now)
	e := newEnv(t, func(o *Options) { o.AuthLimiter = lim })
	e.rawTLSFrom("127.0.0.2").expectOK(bobLogin)

	attacker := e.rawTLSFrom("127.0.0.3")
	failed := 0
	for range 12 {
		clk.Add(2 * time.Second)
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
		clk.Add(15*time.Minute + time.Second)
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
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	lim := authtest.Limiter(clk.Now)
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
		// No read deadline: greeted set one 10 seconds after each
		// greeting, and dialing twenty TLS connections under -race on a
		// loaded machine can take longer than that, so the first
		// connections' replies would read as timeouts. Settle's timeout
		// bounds the wait instead, and the cleanup's Close ends a read
		// that never gets its reply.
		_ = c.conn.SetReadDeadline(time.Time{})
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
	got, calls, err := authtest.Settle(gate, lim, n, status, time.Minute)
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

// countingAuth counts the password checks that reach the directory.
type countingAuth struct {
	Authenticator
	mu     sync.Mutex
	checks map[string]int // by password
}

func (c *countingAuth) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	c.mu.Lock()
	c.checks[password]++
	c.mu.Unlock()
	return c.Authenticator.Authenticate(ctx, login, password, p)
}

// TestBruteForceTwentyAddressesFiveMinutes is the must-show on the
// wire, on the default policy and a test clock: 20 attackers (127.0.0.2
// to .21) guess bob's password every 5 seconds for 5 minutes while bob
// logs in from his usual address every 10 seconds. Bob is never refused,
// and the guesses that reach the directory stay within the bound the
// policy states (the stranger budget plus one per address).
func TestBruteForceTwentyAddressesFiveMinutes(t *testing.T) {
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	lim := authlimit.New(authlimit.Policy{Now: clk.Now})
	counter := &countingAuth{checks: map[string]int{}}
	e := newEnv(t, func(o *Options) {
		o.AuthLimiter = lim
		counter.Authenticator = o.Auth
		o.Auth = counter
	})
	e.rawTLSFrom("127.0.0.1").expectOK(bobLogin) // his usual address
	attackers := make([]*raw, 20)
	for i := range attackers {
		attackers[i] = e.rawTLSFrom("127.0.0." + strconv.Itoa(i+2))
	}
	refused := 0
	start := clk.Now()
	for step := 0; clk.Now().Sub(start) < 5*time.Minute; step++ {
		for i, a := range attackers {
			_, st := a.cmd("LOGIN bob@example.com guess-" + strconv.Itoa(i) + "-" + strconv.Itoa(step))
			switch {
			case strings.HasPrefix(st, "NO [UNAVAILABLE]"):
				refused++
			case !strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]"):
				t.Fatalf("guess: %q", st)
			}
		}
		if step%2 == 0 {
			bob := e.rawTLSFrom("127.0.0.1")
			if _, st := bob.cmd(bobLogin); !strings.HasPrefix(st, "OK") {
				t.Fatalf("after %v of attack bob got %q", clk.Now().Sub(start), st)
			}
			bob.conn.Close() // within the per-address connection limit
		}
		clk.Add(5 * time.Second)
	}
	counter.mu.Lock()
	guesses := 0
	for pw, n := range counter.checks {
		if pw != bobPW {
			guesses += n
		}
	}
	counter.mu.Unlock()
	bound := lim.Policy().StrangerChecks + len(attackers)
	t.Logf("%d guesses checked (bound %d), %d refused; stats %v", guesses, bound, refused, lim.Stats())
	if guesses > bound {
		t.Fatalf("%d guesses reached the directory, bound %d", guesses, bound)
	}
	if guesses <= len(attackers) || refused == 0 {
		t.Fatalf("the attack did not exercise the limits: %d checked, %d refused", guesses, refused)
	}
}

// TestAliasSharesStrangerBudget: a user's alias is another login for the
// same account; once strangers have spent the account's budget through
// one login, guessing through the alias is refused without a check too
// (the limiter is keyed by directory.LoginKeyer).
func TestAliasSharesStrangerBudget(t *testing.T) {
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	fast := authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	lim := authlimit.New(authlimit.Policy{StrangerChecks: 2, Client: fast, Pair: fast, Now: clk.Now})
	e := newEnv(t, func(o *Options) { o.AuthLimiter = lim })
	attacker := e.rawTLSFrom("127.0.0.3")
	guess := func(login string) string {
		t.Helper()
		clk.Add(time.Second)
		_, st := attacker.cmd("LOGIN " + login + " guess")
		return st
	}
	// One Fresh check, then the two of the stranger budget.
	for i := range 3 {
		if st := guess(alice); !strings.HasPrefix(st, "NO [AUTHENTICATIONFAILED]") {
			t.Fatalf("guess %d: %q", i+1, st)
		}
	}
	for _, login := range []string{alice, "al@example.com", "AL@Example.COM"} {
		if st := guess(login); !strings.HasPrefix(st, "NO [UNAVAILABLE]") {
			t.Fatalf("guess as %s after the budget was spent: %q", login, st)
		}
	}
	if got := lim.Stats().Checks[authlimit.Stranger]; got != 2 {
		t.Fatalf("%d stranger checks, budget 2", got)
	}
	e.rawTLSFrom("127.0.0.4").expectOK("LOGIN al@example.com \"correct horse\"")
}

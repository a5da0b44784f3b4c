package smtp

import (
	"context"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/internal/authtest"
	"github.com/mailyard/mailyard/internal/testclock"
)

// TestAuthBruteForceDoesNotLockOutVictim: many wrong passwords for a login
// from one address neither stop its owner logging in from where they
// usually do nor from a new address.
func TestAuthBruteForceDoesNotLockOutVictim(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, AuthLimiter: authtest.Limiter(clk.Now)})
	// The owner's usual address.
	ts.rawTLS(t, clientTLS, "127.0.0.2").expect(authPlain("alice@example.test", "alice-pw"), 235)

	attacker := ts.rawTLS(t, clientTLS, "127.0.0.3")
	failed := 0
	for range 12 {
		clk.Add(2 * time.Second) // past any delay: every guess is checked until a block
		code, text := attacker.cmd(authPlain("alice@example.test", "guess"))
		switch {
		case code == 535 && strings.HasPrefix(text, "5.7.8"):
			failed++
		case code == 454 && strings.HasPrefix(text, "4.7.0"):
		default:
			t.Fatalf("guess: %d %s, want 535 5.7.8 or 454 4.7.0", code, text)
		}
	}
	if failed < 10 {
		t.Fatalf("only %d guesses were checked; the attack did not reach a block", failed)
	}
	ts.rawTLS(t, clientTLS, "127.0.0.2").expect(authPlain("alice@example.test", "alice-pw"), 235)
	ts.rawTLS(t, clientTLS, "127.0.0.4").expect(authPlain("alice@example.test", "alice-pw"), 235)
}

// TestAuthSlowGuessingDoesNotLockOutVictim: one guess every 15 minutes,
// after a burst that blocks the guesser, keeps nobody else out.
func TestAuthSlowGuessingDoesNotLockOutVictim(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, AuthLimiter: authtest.Limiter(clk.Now)})
	ts.rawTLS(t, clientTLS, "127.0.0.2").expect(authPlain("bob@example.test", "bob-pw"), 235)
	attacker := ts.rawTLS(t, clientTLS, "127.0.0.3")
	for range 10 {
		clk.Add(2 * time.Second)
		attacker.cmd(authPlain("bob@example.test", "guess"))
	}
	for i := range 8 {
		clk.Add(15*time.Minute + time.Second)
		attacker.cmd(authPlain("bob@example.test", "guess-"+strconv.Itoa(i)))
		if code, text := ts.rawTLS(t, clientTLS, "127.0.0.2").cmd(authPlain("bob@example.test", "bob-pw")); code != 235 {
			t.Fatalf("after %d slow guesses the owner got %d %s, want 235", i+1, code, text)
		}
	}
}

// gateAuth holds every password check in a gate.
type gateAuth struct {
	*testAuth
	gated authtest.Authenticator
}

func (g gateAuth) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	return g.gated.Authenticate(ctx, login, password, p)
}

// TestAuthConcurrentGuessesBounded: twenty wrong passwords sent at once
// from one client reach the directory at most as often as the limits
// allow: the attempt is reserved before the password is checked.
func TestAuthConcurrentGuessesBounded(t *testing.T) {
	const n = 20
	serverTLS, clientTLS := testTLS(t)
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	lim := authtest.Limiter(clk.Now)
	gate := authtest.NewGate(n)
	auth := newTestAuth()
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, AuthLimiter: lim, Auth: gateAuth{auth, gate.Wrap(auth)}})
	conns := make([]*rawClient, n)
	for i := range conns {
		conns[i] = ts.rawTLS(t, clientTLS, "127.0.0.3")
	}
	codes := make(chan int, n)
	for _, c := range conns {
		// No read deadline: reply set one 10 seconds after each EHLO,
		// and setting up twenty TLS sessions under -race on a loaded
		// machine can take longer than that. Settle's timeout bounds the
		// wait instead, and the cleanup's Close ends a read that never
		// gets its reply.
		_ = c.conn.SetReadDeadline(time.Time{})
		c.write(authPlain("alice@example.test", "guess") + "\r\n")
		go func() {
			line, _ := c.r.ReadString('\n')
			code, _ := strconv.Atoi(line[:min(3, len(line))])
			codes <- code
		}()
	}
	got, calls, err := authtest.Settle(gate, lim, n, codes, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	refused := 0
	for _, code := range got {
		switch code {
		case 454:
			refused++
		case 535:
		default:
			t.Fatalf("reply %d, want 535 or 454", code)
		}
	}
	if refused != n-calls {
		t.Fatalf("%d refused, %d checked, of %d", refused, calls, n)
	}
}

// aliasAuth is testAuth where some logins are aliases of others, and
// says so as the directory does (directory.LoginKeyer).
type aliasAuth struct {
	*testAuth
	aliases map[string]string // alias -> primary login
}

func (a aliasAuth) LoginKey(_ context.Context, login string) string {
	if k, ok := a.aliases[strings.ToLower(login)]; ok {
		return k
	}
	return login
}

func (a aliasAuth) Authenticate(ctx context.Context, login, password string, p directory.Protocol) (directory.User, error) {
	return a.testAuth.Authenticate(ctx, a.LoginKey(ctx, login), password, p)
}

// TestAuthAliasSharesLoginBudget: an alias is another login for the same
// account, not another budget: strangers who spent the account's budget
// through its address are refused through its alias too.
func TestAuthAliasSharesLoginBudget(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	fast := authlimit.Backoff{BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}
	lim := authlimit.New(authlimit.Policy{StrangerChecks: 2, Client: fast, Pair: fast})
	auth := aliasAuth{newTestAuth(), map[string]string{"c@example.test": "carol@example.test"}}
	auth.users["carol@example.test"] = testUser{password: "carol-pw", user: directory.User{ID: "carol", Address: "carol@example.test"}}
	ts := startServer(t, Options{Mode: ModeSubmission, TLSConfig: serverTLS, AuthLimiter: lim, Auth: auth})
	a := ts.rawTLS(t, clientTLS, "127.0.0.3")
	a.expect(authPlain("carol@example.test", "wrong"), 535) // fresh
	a.expect(authPlain("carol@example.test", "wrong"), 535) // budget 1 of 2
	a.expect(authPlain("c@example.test", "wrong"), 535)     // budget 2 of 2
	a.expect(authPlain("C@example.test", "wrong"), 454)
	a.expect(authPlain("carol@example.test", "wrong"), 454)
	// The owner, from an address without failures, logs in by the alias.
	ts.rawTLS(t, clientTLS, "127.0.0.6").expect(authPlain("c@example.test", "carol-pw"), 235)
	if st := lim.Stats(); st.Checks[authlimit.Stranger] != 2 {
		t.Fatalf("stats %+v: want 2 stranger checks", st)
	}
}

package authlimit

import (
	"net/netip"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testclock"
)

// conn is one attacker connection in the simulation: it waits until
// ready, then begins a check that takes hashTime, or is refused and
// hammers again a tick later.
type conn struct {
	ip      netip.Addr
	ready   time.Time
	attempt *Attempt
	doneAt  time.Time
}

// TestBruteForceFromTwentyAddresses is the must-show: a brute
// force from 20 addresses (5 connections each, hammering on every
// refusal) against one login for 5 minutes, on the default policy, never
// stops that user logging in from their usual address (every 10 seconds)
// or from a new one, and the password checks the attackers cause stay
// within the bound the policy states: StrangerChecks per StrangerWindow
// plus one per address without failures.
func TestBruteForceFromTwentyAddresses(t *testing.T) {
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	bruteForce(t, clk, 5*time.Minute, New(Policy{Now: clk.Now}))
}

// TestBruteForceOverTwoNodes is the same attack spread over two nodes
// (two limiters sharing one Policy.Shared), each connection on either,
// the user's logins alternating between them: the user is never
// refused, the stranger checks stay within one budget for both, and
// each address's failure-free check happens at most once per node.
func TestBruteForceOverTwoNodes(t *testing.T) {
	clk := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	sh := newMemShared()
	a, b := New(Policy{Now: clk.Now, Shared: sh}), New(Policy{Now: clk.Now, Shared: sh})
	// Shorter than the one-node run: every step costs JSON here, and
	// the bounds do not depend on the length while it stays within
	// Window and StrangerWindow.
	bruteForce(t, clk, 2*time.Minute, a, b)
	if sh.len() == 0 {
		t.Fatal("nothing was shared")
	}
}

// bruteForce runs the attack for the given time against the nodes: connection i and the
// user's login n go to node i (n) modulo their number.
func bruteForce(t *testing.T, clk *testclock.Clock, attack time.Duration, nodes ...*Limiter) {
	const (
		addresses = 20
		perAddr   = 5
		tick      = 100 * time.Millisecond
		hashTime  = 300 * time.Millisecond
		victim    = "alice@example.com"
	)
	p := nodes[0].Policy()
	usual := netip.MustParseAddr("127.0.0.1")

	// The user's usual address: they logged in there yesterday.
	if a, err := nodes[0].Begin(noWait(), usual, victim); err != nil {
		t.Fatal(err)
	} else {
		a.Succeeded()
	}
	clk.Add(24 * time.Hour)
	start := clk.Now()

	var conns []*conn
	for i := range addresses {
		ip := netip.AddrFrom4([4]byte{127, 0, 0, byte(2 + i)})
		for range perAddr {
			conns = append(conns, &conn{ip: ip, ready: start})
		}
	}
	var attackerChecks, refusals, victimLogins int
	nextVictim := start
	for now := start; now.Sub(start) < attack; now = clk.Now() {
		for i, c := range conns {
			if c.attempt != nil && !now.Before(c.doneAt) {
				// A wrong password; the server waits the delay before it
				// answers, then the attacker sends the next guess.
				c.ready = now.Add(c.attempt.Failed())
				c.attempt = nil
			}
			if c.attempt == nil && !now.Before(c.ready) {
				a, err := nodes[i%len(nodes)].Begin(noWait(), c.ip, victim)
				if err != nil {
					refusals++
					c.ready = now.Add(tick)
					continue
				}
				attackerChecks++
				c.attempt, c.doneAt = a, now.Add(hashTime)
			}
		}
		if !now.Before(nextVictim) {
			from := usual
			if victimLogins == 6 {
				from = netip.MustParseAddr("192.0.2.77") // travelling: a new address
			}
			a, err := nodes[victimLogins%len(nodes)].Begin(noWait(), from, victim)
			if err != nil {
				t.Fatalf("after %v of attack the user was refused from %s: %v", now.Sub(start), from, err)
			}
			a.Succeeded()
			victimLogins++
			nextVictim = now.Add(10 * time.Second)
		}
		clk.Add(tick)
	}
	// The attack is shorter than StrangerWindow and Window.
	bound := p.StrangerChecks + addresses*len(nodes)
	var stranger, untrusted uint64
	for _, l := range nodes {
		st := l.Stats()
		stranger += st.Checks[Stranger]
		untrusted += st.Checks[Fresh] + st.Checks[Stranger]
		if st.SharedErrors != 0 {
			t.Fatalf("%d failed calls to the shared state", st.SharedErrors)
		}
	}
	t.Logf("%v over %d node(s): %d attacker checks (bound %d), %d refusals without a check, %d user logins; %d stranger checks",
		attack, len(nodes), attackerChecks, bound, refusals, victimLogins, stranger)
	if attackerChecks > bound {
		t.Fatalf("attackers caused %d password checks, bound %d", attackerChecks, bound)
	}
	if stranger > uint64(p.StrangerChecks) {
		t.Fatalf("%d stranger checks, budget %d", stranger, p.StrangerChecks)
	}
	if untrusted != uint64(attackerChecks)+2 {
		t.Fatalf("stats count %d untrusted checks, the simulation %d (+2 for the user's fresh logins)", untrusted, attackerChecks)
	}
	if attackerChecks <= addresses || refusals == 0 || victimLogins < int(attack/(10*time.Second)) {
		t.Fatalf("the simulation did not exercise the limits: %d checks, %d refusals, %d logins", attackerChecks, refusals, victimLogins)
	}
}

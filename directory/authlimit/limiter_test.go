package authlimit

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/internal/testclock"
)

var (
	victimIP   = netip.MustParseAddr("192.0.2.1")
	attackerIP = netip.MustParseAddr("198.51.100.1")
)

func testPolicy(c *testclock.Clock) Policy {
	b := Backoff{Free: 2, BaseDelay: time.Second, MaxDelay: 4 * time.Second, BlockFor: 10 * time.Minute}
	client, pair := b, b
	client.BlockAfter, pair.BlockAfter = 8, 5
	return Policy{Client: client, Pair: pair, Window: time.Hour, StrangerChecks: 4, StrangerWindow: time.Hour, Now: c.Now}
}

// refusal returns Begin's refusal reason, or 0 if it allowed (and then
// abandons the attempt).
func refusal(t *testing.T, l *Limiter, ip netip.Addr, login string) Reason {
	t.Helper()
	a, err := l.Begin(noWait(), ip, login)
	if err == nil {
		a.Abandon()
		return 0
	}
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	require.ErrorIs(t, err, ErrRefused)
	return re.Reason
}

// fail runs one wrong password and returns the delay.
func fail(t *testing.T, l *Limiter, ip netip.Addr, login string) time.Duration {
	t.Helper()
	a, err := l.Begin(noWait(), ip, login)
	require.NoError(t, err)
	return a.Failed()
}

func succeed(t *testing.T, l *Limiter, ip netip.Addr, login string) Class {
	t.Helper()
	a, err := l.Begin(noWait(), ip, login)
	require.NoError(t, err)
	a.Succeeded()
	return a.Class()
}

func TestDefaults(t *testing.T) {
	p := New(Policy{}).Policy()
	assert.Equal(t, Backoff{Free: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second, BlockAfter: 20, BlockFor: 15 * time.Minute}, p.Client)
	assert.Equal(t, Backoff{Free: 3, BaseDelay: time.Second, MaxDelay: 8 * time.Second, BlockAfter: 10, BlockFor: 15 * time.Minute}, p.Pair)
	assert.Equal(t, time.Hour, p.Window)
	assert.Equal(t, 10, p.StrangerChecks)
	assert.Equal(t, time.Hour, p.StrangerWindow)
	assert.Equal(t, 30*24*time.Hour, p.TrustFor)
	assert.Equal(t, 100000, p.MaxEntries)
	assert.NotNil(t, p.Now)
}

// TestPairDelaysThenBlock: a client's failures for one login are free,
// then delayed (doubling, capped), then blocked; the first failure after
// the block blocks again until Window passes.
func TestPairDelaysThenBlock(t *testing.T) {
	c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	p := testPolicy(c)
	p.StrangerChecks = 100
	l := New(p)
	var delays []time.Duration
	for i := range 4 {
		d := fail(t, l, attackerIP, "victim")
		delays = append(delays, d)
		if d > 0 {
			assert.Equal(t, ReasonTooSoon, refusal(t, l, attackerIP, "victim"), "failure %d: before the delay passed", i+1)
		}
		c.Add(d)
	}
	assert.Equal(t, []time.Duration{0, 0, time.Second, 2 * time.Second}, delays)
	assert.Equal(t, 4*time.Second, fail(t, l, attackerIP, "victim"))
	c.Add(4 * time.Second)
	assert.Equal(t, ReasonPairBlocked, refusal(t, l, attackerIP, "victim"), "fifth failure blocks")
	assert.Equal(t, Reason(0), refusal(t, l, attackerIP, "other"), "another login from the same client")
	c.Add(10 * time.Minute)
	fail(t, l, attackerIP, "victim")
	assert.Equal(t, ReasonPairBlocked, refusal(t, l, attackerIP, "victim"), "first failure after a block blocks again")
	c.Add(10*time.Minute + time.Hour + time.Second)
	fail(t, l, attackerIP, "victim")
	assert.Equal(t, Reason(0), refusal(t, l, attackerIP, "victim"), "failures are forgotten after Window")
}

// TestClientBlockAcrossLogins: a client failing for many logins is
// blocked for all, but not for a login it logged in to recently.
func TestClientBlockAcrossLogins(t *testing.T) {
	c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	p := testPolicy(c)
	p.StrangerChecks = 100
	l := New(p)
	assert.Equal(t, Fresh, succeed(t, l, attackerIP, "own"))
	for i := range 8 {
		fail(t, l, attackerIP, fmt.Sprintf("user%d", i))
		c.Add(5 * time.Second)
	}
	assert.Equal(t, ReasonClientBlocked, refusal(t, l, attackerIP, "user9"))
	assert.Equal(t, Trusted, succeed(t, l, attackerIP, "own"), "a trusted pair skips the client's block")
	assert.Equal(t, Fresh, succeed(t, l, victimIP, "user1"), "other clients are not affected")
	c.Add(10 * time.Minute)
	assert.Equal(t, Reason(0), refusal(t, l, attackerIP, "user9"))
}

// TestStrangerBudget: clients with failures share one budget per login;
// trusted and fresh clients never touch it; slots come back one by one as
// the window slides.
func TestStrangerBudget(t *testing.T) {
	c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(testPolicy(c))
	assert.Equal(t, Fresh, succeed(t, l, victimIP, "Victim"))
	var attackers []netip.Addr
	for i := range 4 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(10 + i)})
		attackers = append(attackers, ip)
		a, err := l.Begin(noWait(), ip, "victim")
		require.NoError(t, err)
		assert.Equal(t, Fresh, a.Class())
		a.Failed()
	}
	for i := range 4 {
		c.Add(time.Minute)
		a, err := l.Begin(noWait(), attackers[i], "victim")
		require.NoError(t, err)
		assert.Equal(t, Stranger, a.Class())
		a.Failed()
	}
	for _, ip := range attackers {
		assert.Equal(t, ReasonLoginThrottled, refusal(t, l, ip, "VICTIM "))
	}
	_, err := l.Begin(noWait(), attackers[0], "victim")
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 57*time.Minute, re.RetryAfter, "the oldest slot frees up an hour after it was taken")

	assert.Equal(t, Trusted, succeed(t, l, victimIP, "victim"))
	assert.Equal(t, Fresh, succeed(t, l, netip.MustParseAddr("203.0.113.9"), "victim"), "a new address without failures")
	assert.Equal(t, Reason(0), refusal(t, l, attackers[0], "someone-else"), "budgets are per login")

	c.Add(57 * time.Minute)
	a, err := l.Begin(noWait(), attackers[0], "victim")
	require.NoError(t, err, "one slot freed")
	a.Failed()
	assert.Equal(t, ReasonLoginThrottled, refusal(t, l, attackers[1], "victim"))

	st := l.Stats()
	assert.Equal(t, uint64(5+1), st.Checks[Stranger], "5 for victim, 1 for someone-else")
	assert.Equal(t, uint64(6), st.Refused[ReasonLoginThrottled])
}

// TestSuccessForgetsPairNotClient: owning one account does not reset a
// guesser's count for the client, but the user's own typos are forgiven.
func TestSuccessForgetsPairNotClient(t *testing.T) {
	c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(testPolicy(c))
	for range 4 {
		c.Add(fail(t, l, victimIP, "victim"))
	}
	assert.Equal(t, Stranger, succeed(t, l, victimIP, "victim"))
	c.Add(time.Minute)
	assert.Equal(t, Trusted, succeed(t, l, victimIP, "victim"))
	for range 4 {
		c.Add(fail(t, l, victimIP, "victim"))
	}
	assert.Equal(t, Reason(0), refusal(t, l, victimIP, "victim"), "pair count restarted after the success")
	l.mu.Lock()
	n := l.clients[netip.PrefixFrom(victimIP, 32)].count
	l.mu.Unlock()
	assert.Equal(t, 4, n, "client failures before the success stay; trusted failures do not add to them")
}

// TestConcurrentBeginsReserve: parallel wrong guesses from one address
// wait for each other's verdicts, so no more checks run than the pair may
// fail plus the one Fresh check, and none slips past a limit.
func TestConcurrentBeginsReserve(t *testing.T) {
	c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	l := New(testPolicy(c))
	const n = 50
	var wg sync.WaitGroup
	var mu sync.Mutex
	checks := 0
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			if a, err := l.Begin(t.Context(), attackerIP, "victim"); err == nil {
				mu.Lock()
				checks++
				mu.Unlock()
				a.Failed()
				a.Failed() // a second verdict is ignored
			}
		})
	}
	close(start)
	wg.Wait()
	p := l.Policy()
	assert.LessOrEqual(t, checks, 1+p.StrangerChecks, "one Fresh check, then the login's stranger budget")
	assert.NotEqual(t, Reason(0), refusal(t, l, attackerIP, "victim"))
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Equal(t, 0, l.pairs[pairKey{netip.PrefixFrom(attackerIP, 32), "victim"}].pending)
	assert.Equal(t, 0, l.clients[netip.PrefixFrom(attackerIP, 32)].pending)
}

// TestParallelLoginsWait: a client opening many connections at once with
// the right password (a mail client, a webmail front end) is never
// refused for being parallel, trusted or not.
func TestParallelLoginsWait(t *testing.T) {
	for _, trusted := range []bool{false, true} {
		l := New(testPolicy(testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))))
		if trusted {
			succeed(t, l, victimIP, "victim")
		}
		const n = 50
		var wg sync.WaitGroup
		errs := make(chan error, n)
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				a, err := l.Begin(t.Context(), victimIP, "victim")
				if err != nil {
					errs <- err
					return
				}
				a.Succeeded()
			})
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("trusted=%v: a parallel login with the right password was refused: %v", trusted, err)
		}
	}
}

// TestBeginWaitEndsWithContext: a Begin waiting for another check's
// verdict gives up when its context ends, refused as too soon.
func TestBeginWaitEndsWithContext(t *testing.T) {
	l := New(testPolicy(testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))))
	a, err := l.Begin(t.Context(), attackerIP, "x")
	require.NoError(t, err)
	assert.Equal(t, Fresh, a.Class())
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = l.Begin(ctx, attackerIP, "y")
	var re *RefusedError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, ReasonTooSoon, re.Reason)
	a.Failed()
	b, err := l.Begin(t.Context(), attackerIP, "y")
	require.NoError(t, err)
	assert.Equal(t, Stranger, b.Class(), "after the first check failed")
	b.Abandon()
}

func TestKeys(t *testing.T) {
	l := New(testPolicy(testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))))
	a := netip.MustParseAddr
	succeed(t, l, a("2001:db8:1:2::1"), " Bob@Example.COM")
	assert.Equal(t, Trusted, succeed(t, l, a("2001:db8:1:2:ffff::9"), "bob@example.com"), "same /64, same login")
	assert.Equal(t, Fresh, succeed(t, l, a("2001:db8:1:3::1"), "bob@example.com"), "another /64")
	succeed(t, l, a("192.0.2.7"), "carol")
	assert.Equal(t, Trusted, succeed(t, l, a("::ffff:192.0.2.7"), "carol"), "IPv4-mapped is IPv4")

	long := strings.Repeat("x", 10000)
	k := loginKey(long)
	assert.LessOrEqual(t, len(k), 80, "a long login is kept as its hash")
	assert.Equal(t, k, loginKey(strings.ToUpper(long)))
	assert.NotEqual(t, k, loginKey(long+"y"))
}

func TestRefusedErrorText(t *testing.T) {
	err := error(&RefusedError{Reason: ReasonLoginThrottled, RetryAfter: 90 * time.Second})
	assert.Equal(t, "authlimit: authentication refused (login-throttled), retry after 1m30s", err.Error())
	assert.True(t, errors.Is(err, ErrRefused))
	assert.Equal(t, "login-blocked-for-client", ReasonPairBlocked.String())
	assert.Equal(t, "stranger", Stranger.String())
}

// TestBoundedMemory: whatever the sequence of attempts, every table stays
// within MaxEntries, and a trusted pair stays trusted unless the trusted
// table overflows.
func TestBoundedMemory(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
		p := testPolicy(c)
		p.MaxEntries = rapid.IntRange(1, 20).Draw(rt, "max")
		l := New(p)
		var open []*Attempt
		for range rapid.IntRange(0, 400).Draw(rt, "ops") {
			ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(rapid.IntRange(0, 40).Draw(rt, "ip"))})
			login := fmt.Sprintf("u%d", rapid.IntRange(0, 40).Draw(rt, "login"))
			switch rapid.IntRange(0, 5).Draw(rt, "op") {
			case 0, 1:
				if a, err := l.Begin(noWait(), ip, login); err == nil {
					open = append(open, a)
				}
			case 2:
				if len(open) > 0 {
					open[0].Failed()
					open = open[1:]
				}
			case 3:
				if len(open) > 0 {
					open[0].Succeeded()
					open = open[1:]
				}
			case 4:
				c.Add(time.Duration(rapid.IntRange(0, 120).Draw(rt, "minutes")) * time.Minute)
			case 5:
				if len(open) > 0 {
					open[0].Abandon()
					open = open[1:]
				}
			}
			l.mu.Lock()
			sizes := []int{len(l.clients), len(l.pairs), len(l.budgets), len(l.trusted)}
			l.mu.Unlock()
			for _, n := range sizes {
				if n > p.MaxEntries {
					rt.Fatalf("tables %v, cap %d", sizes, p.MaxEntries)
				}
			}
		}
	})
}

// TestSweep: entries with nothing left to remember go on the next sweep.
func TestSweep(t *testing.T) {
	c := testclock.New(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC))
	p := testPolicy(c)
	p.StrangerChecks = 100
	l := New(p)
	for i := range 50 {
		ip := netip.AddrFrom4([4]byte{198, 51, 100, byte(i)})
		fail(t, l, ip, "victim")
		fail(t, l, ip, "victim")
	}
	succeed(t, l, victimIP, "victim")
	c.Add(2 * time.Hour)
	refusal(t, l, victimIP, "victim")
	l.mu.Lock()
	defer l.mu.Unlock()
	assert.Empty(t, l.clients)
	assert.Empty(t, l.pairs)
	assert.Empty(t, l.budgets)
	assert.Len(t, l.trusted, 1, "trust lasts TrustFor")
}

// noWait is a context that has ended: Begin then refuses (ReasonTooSoon)
// where it would wait for another check's verdict, so single-threaded
// tests and simulations never block. One ended context serves every
// call: the brute-force simulations make 300,000, and a new one each
// was a quarter of their CPU.
func noWait() context.Context { return ended }

var ended = func() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}()

package limits

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"pgregory.net/rapid"
)

func TestClientKey(t *testing.T) {
	a := netip.MustParseAddr
	assert.Equal(t, netip.MustParsePrefix("192.0.2.7/32"), ClientKey(a("192.0.2.7")))
	assert.Equal(t, ClientKey(a("192.0.2.7")), ClientKey(a("::ffff:192.0.2.7")), "IPv4-mapped is IPv4")
	assert.Equal(t, ClientKey(a("2001:db8:1:2::1")), ClientKey(a("2001:db8:1:2:ffff::9")), "same /64")
	assert.NotEqual(t, ClientKey(a("2001:db8:1:2::1")), ClientKey(a("2001:db8:1:3::1")))
	assert.Equal(t, ClientKey(a("fe80::1%eth0")), ClientKey(a("fe80::1")), "zone ignored")
	assert.Equal(t, netip.Prefix{}, ClientKey(netip.Addr{}))

	assert.Equal(t, a("192.0.2.1"), AddrOf(&net.TCPAddr{IP: net.ParseIP("192.0.2.1"), Port: 25}))
	assert.Equal(t, a("2001:db8::1"), AddrOf(&net.TCPAddr{IP: net.ParseIP("2001:db8::1")}))
	assert.False(t, AddrOf(&net.UnixAddr{Name: "/tmp/x"}).IsValid())
	assert.False(t, AddrOf(nil).IsValid())
}

func TestConnLimiterPerClient(t *testing.T) {
	l := NewConnLimiter(2, 0)
	ip := netip.MustParseAddr("192.0.2.1")
	r1, err := l.Acquire(ip)
	require.NoError(t, err)
	r2, err := l.Acquire(ip)
	require.NoError(t, err)
	_, err = l.Acquire(ip)
	require.ErrorIs(t, err, ErrClientConnLimit, "third connection from one client")

	_, err = l.Acquire(netip.MustParseAddr("192.0.2.2"))
	require.NoError(t, err, "another client is not affected")

	r1()
	r1() // a second release must not free a second slot
	r3, err := l.Acquire(ip)
	require.NoError(t, err, "slot freed by release")
	_, err = l.Acquire(ip)
	require.ErrorIs(t, err, ErrClientConnLimit, "double release freed two slots")
	r2()
	r3()
	n, total := l.Open(ip)
	assert.Equal(t, 0, n)
	assert.Equal(t, 1, total)
	assert.Len(t, l.count, 1, "released clients are forgotten")
}

func TestConnLimiterIPv6Prefix(t *testing.T) {
	l := NewConnLimiter(1, 0)
	_, err := l.Acquire(netip.MustParseAddr("2001:db8::1"))
	require.NoError(t, err)
	_, err = l.Acquire(netip.MustParseAddr("2001:db8::2"))
	require.ErrorIs(t, err, ErrClientConnLimit, "same /64 is one client")
}

func TestConnLimiterTotal(t *testing.T) {
	l := NewConnLimiter(0, 3)
	for i := range 3 {
		_, err := l.Acquire(netip.AddrFrom4([4]byte{192, 0, 2, byte(i)}))
		require.NoError(t, err)
	}
	_, err := l.Acquire(netip.MustParseAddr("198.51.100.1"))
	require.ErrorIs(t, err, ErrConnLimit)
}

func TestConnLimiterConcurrent(t *testing.T) {
	l := NewConnLimiter(5, 0)
	ip := netip.MustParseAddr("192.0.2.1")
	var mu sync.Mutex
	held, peak := 0, 0
	var wg sync.WaitGroup
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 100 {
				release, err := l.Acquire(ip)
				if err != nil {
					continue
				}
				mu.Lock()
				held++
				peak = max(peak, held)
				mu.Unlock()
				mu.Lock()
				held--
				mu.Unlock()
				release()
			}
		}()
	}
	wg.Wait()
	assert.LessOrEqual(t, peak, 5)
	n, total := l.Open(ip)
	assert.Zero(t, n)
	assert.Zero(t, total)
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time      { return c.t }
func (c *fakeClock) add(d time.Duration) { c.t = c.t.Add(d) }
func newClock() *fakeClock               { return &fakeClock{t: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)} }
func testPolicy(c *fakeClock) AuthPolicy {
	return AuthPolicy{FreeFailures: 2, BaseDelay: time.Second, MaxDelay: 4 * time.Second,
		BlockAfter: 6, BlockFor: 10 * time.Minute, Window: time.Hour, Now: c.now}
}

func TestAuthDelaysThenBlock(t *testing.T) {
	c := newClock()
	l := NewAuthLimiter(testPolicy(c))
	ip := netip.MustParseAddr("192.0.2.1")
	var delays []time.Duration
	for i := range 5 {
		require.NoError(t, l.Check(ip, fmt.Sprintf("user%d", i)), "attempt %d", i+1)
		delays = append(delays, l.Failure(ip, fmt.Sprintf("user%d", i)))
	}
	assert.Equal(t, []time.Duration{0, 0, time.Second, 2 * time.Second, 4 * time.Second}, delays)
	require.NoError(t, l.Check(ip, "user5"))
	l.Failure(ip, "user5") // sixth: blocks the client
	err := l.Check(ip, "someone-else")
	var be *BlockedError
	require.ErrorAs(t, err, &be)
	assert.False(t, be.Login, "the client is blocked, not a login")
	assert.Equal(t, c.t.Add(10*time.Minute), be.Until)
	assert.ErrorIs(t, err, ErrBlocked)

	other := netip.MustParseAddr("192.0.2.2")
	assert.NoError(t, l.Check(other, "user0"), "other clients and those logins are not blocked")

	c.add(10*time.Minute - time.Second)
	assert.Error(t, l.Check(ip, ""), "still blocked just before the end")
	c.add(time.Second)
	assert.NoError(t, l.Check(ip, ""), "block over")
	l.Failure(ip, "x")
	assert.ErrorIs(t, l.Check(ip, ""), ErrBlocked, "first failure after a block blocks again")

	c.add(10*time.Minute + time.Hour + time.Second)
	assert.NoError(t, l.Check(ip, ""))
	assert.Zero(t, l.Failure(ip, "x"), "after a quiet window the count starts over")
}

func TestAuthLoginBlockedFromEveryClient(t *testing.T) {
	c := newClock()
	l := NewAuthLimiter(testPolicy(c))
	for i := range 6 {
		l.Failure(netip.AddrFrom4([4]byte{198, 51, 100, byte(i)}), "Alice@Example.com")
	}
	var be *BlockedError
	require.ErrorAs(t, l.Check(netip.MustParseAddr("203.0.113.9"), "alice@example.com"), &be,
		"distributed guessing blocks the login, case-insensitively")
	assert.True(t, be.Login)
	assert.NoError(t, l.Check(netip.MustParseAddr("203.0.113.9"), "bob@example.com"))
}

func TestAuthSuccessDoesNotResetClient(t *testing.T) {
	c := newClock()
	l := NewAuthLimiter(testPolicy(c))
	ip := netip.MustParseAddr("192.0.2.1")
	for range 5 {
		l.Failure(ip, "victim")
	}
	l.Success(ip, "attacker-own-account")
	l.Success(ip, "victim")
	n, login := l.Failures(ip, "victim")
	assert.Equal(t, 5, n, "success must not reset the client's count")
	assert.Zero(t, login, "success resets the login's count")
	l.Failure(ip, "other")
	require.ErrorIs(t, l.Check(ip, ""), ErrBlocked)
	l.Success(ip, "victim")
	assert.ErrorIs(t, l.Check(ip, ""), ErrBlocked, "success during a block does not lift it")

	// A blocked login stays blocked after a success elsewhere.
	for range 6 {
		l.Failure(netip.MustParseAddr("198.51.100.1"), "carol")
	}
	l.Success(netip.MustParseAddr("198.51.100.2"), "carol")
	assert.ErrorIs(t, l.Check(netip.MustParseAddr("198.51.100.3"), "carol"), ErrBlocked)
}

func TestAuthDefaults(t *testing.T) {
	p := NewAuthLimiter(AuthPolicy{}).Policy()
	assert.Equal(t, 2, p.FreeFailures)
	assert.Equal(t, time.Second, p.BaseDelay)
	assert.Equal(t, 10*time.Second, p.MaxDelay)
	assert.Equal(t, 10, p.BlockAfter)
	assert.Equal(t, 15*time.Minute, p.BlockFor)
	assert.Equal(t, time.Hour, p.Window)
	assert.Equal(t, 100000, p.MaxEntries)
	assert.NotNil(t, p.Now)
}

// TestAuthBoundedMemory: whatever the sequence of attempts, each table stays
// within MaxEntries and a client that is blocked stays blocked while
// unblocked entries can be evicted.
func TestAuthBoundedMemory(t *testing.T) {
	rapid.Check(t, func(rt *rapid.T) {
		c := newClock()
		p := testPolicy(c)
		p.MaxEntries = rapid.IntRange(1, 20).Draw(rt, "max")
		l := NewAuthLimiter(p)
		for range rapid.IntRange(0, 300).Draw(rt, "ops") {
			ip := netip.AddrFrom4([4]byte{10, 0, 0, byte(rapid.IntRange(0, 40).Draw(rt, "ip"))})
			login := fmt.Sprintf("u%d", rapid.IntRange(0, 40).Draw(rt, "login"))
			switch rapid.IntRange(0, 3).Draw(rt, "op") {
			case 0, 1:
				if l.Check(ip, login) == nil {
					l.Failure(ip, login)
				}
			case 2:
				l.Success(ip, login)
			case 3:
				c.add(time.Duration(rapid.IntRange(0, 120).Draw(rt, "minutes")) * time.Minute)
			}
			if len(l.clients) > p.MaxEntries || len(l.logins) > p.MaxEntries {
				rt.Fatalf("tables grew to %d/%d entries, cap %d", len(l.clients), len(l.logins), p.MaxEntries)
			}
		}
	})
}

func TestBlockedErrorText(t *testing.T) {
	err := error(&BlockedError{Login: true, Until: time.Date(2025, 1, 1, 0, 15, 0, 0, time.UTC)})
	assert.Equal(t, "limits: login blocked after too many failed authentications until 2025-01-01T00:15:00Z", err.Error())
	assert.True(t, errors.Is(err, ErrBlocked))
}

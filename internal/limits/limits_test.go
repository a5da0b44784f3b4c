package limits

import (
	"net"
	"net/netip"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
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

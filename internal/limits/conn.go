package limits

import (
	"errors"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Errors returned by [ConnLimiter.Acquire].
var (
	// ErrClientConnLimit: the client already holds the maximum number of
	// connections allowed per client.
	ErrClientConnLimit = errors.New("limits: too many connections from this client")
	// ErrConnLimit: the server holds the maximum number of connections.
	ErrConnLimit = errors.New("limits: too many connections")
)

// ConnLimiter counts open connections, per client ([ClientKey]) and in total.
// The zero value is not usable; call [NewConnLimiter].
type ConnLimiter struct {
	perClient int
	total     int

	mu    sync.Mutex
	open  int
	count map[netip.Prefix]int
}

// NewConnLimiter returns a limiter that allows perClient connections per
// client and total connections overall. A limit <= 0 is no limit.
func NewConnLimiter(perClient, total int) *ConnLimiter {
	return &ConnLimiter{perClient: perClient, total: total, count: make(map[netip.Prefix]int)}
}

// Acquire reserves a connection slot for ip. On success the caller must call
// release exactly when the connection closes; calling it again is harmless.
// It fails with ErrClientConnLimit or ErrConnLimit and reserves nothing.
func (l *ConnLimiter) Acquire(ip netip.Addr) (release func(), err error) {
	key := ClientKey(ip)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total > 0 && l.open >= l.total {
		return nil, ErrConnLimit
	}
	if l.perClient > 0 && l.count[key] >= l.perClient {
		return nil, ErrClientConnLimit
	}
	l.open++
	l.count[key]++
	var done atomic.Bool
	return func() {
		if done.Swap(true) {
			return
		}
		l.mu.Lock()
		defer l.mu.Unlock()
		l.open--
		if n := l.count[key] - 1; n > 0 {
			l.count[key] = n
		} else {
			// Deleting at zero keeps the map as small as the set of
			// clients currently connected.
			delete(l.count, key)
		}
	}, nil
}

// Open returns the number of connections held by ip's client and in total.
func (l *ConnLimiter) Open(ip netip.Addr) (client, total int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.count[ClientKey(ip)], l.open
}

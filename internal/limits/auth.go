package limits

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// ErrBlocked is matched (errors.Is) by the *BlockedError [AuthLimiter.Check]
// returns while a client or login is locked out.
var ErrBlocked = errors.New("limits: too many failed authentications")

// BlockedError says what is blocked and until when.
type BlockedError struct {
	// Login is true when the login is blocked, false when the client is.
	Login bool
	// Until is when the block ends.
	Until time.Time
}

// Error implements error.
func (e *BlockedError) Error() string {
	what := "client"
	if e.Login {
		what = "login"
	}
	return fmt.Sprintf("limits: %s blocked after too many failed authentications until %s", what, e.Until.UTC().Format(time.RFC3339))
}

// Unwrap makes errors.Is(err, ErrBlocked) true.
func (e *BlockedError) Unwrap() error { return ErrBlocked }

// AuthPolicy says how failures are punished. Zero fields take the defaults
// given on each field.
type AuthPolicy struct {
	// FreeFailures is how many failures in a row are answered without
	// delay. Default 2.
	FreeFailures int
	// BaseDelay is the delay after the first failure beyond FreeFailures;
	// each further failure doubles it up to MaxDelay. Default 1s.
	BaseDelay time.Duration
	// MaxDelay caps the delay. Default 10s.
	MaxDelay time.Duration
	// BlockAfter is the number of failures after which the client (or
	// login) is blocked for BlockFor. Default 10.
	BlockAfter int
	// BlockFor is how long a block lasts. A further failure right after a
	// block ends blocks again: the count only resets after Window without
	// failures. Default 15m.
	BlockFor time.Duration
	// Window is how long failures are remembered after the last one.
	// Default 1h.
	Window time.Duration
	// MaxEntries caps the number of clients and of logins remembered
	// (each). When full, forgotten entries are swept first, then arbitrary
	// unblocked ones. Default 100000.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
}

func (p AuthPolicy) withDefaults() AuthPolicy {
	if p.FreeFailures <= 0 {
		p.FreeFailures = 2
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = time.Second
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = 10 * time.Second
	}
	if p.MaxDelay < p.BaseDelay {
		p.MaxDelay = p.BaseDelay
	}
	if p.BlockAfter <= 0 {
		p.BlockAfter = 10
	}
	if p.BlockFor <= 0 {
		p.BlockFor = 15 * time.Minute
	}
	if p.Window <= 0 {
		p.Window = time.Hour
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = 100000
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// AuthLimiter tracks failed authentications per client ([ClientKey]) and per
// login (case-insensitive). The rules:
//
//  1. Before checking a password, call [AuthLimiter.Check]; while either
//     the client or the login is blocked, refuse without checking it.
//  2. After a wrong password, call [AuthLimiter.Failure] and wait the delay
//     it returns before answering. Failures beyond AuthPolicy.FreeFailures
//     are delayed (doubling, capped); at AuthPolicy.BlockAfter the client
//     and/or login is blocked for AuthPolicy.BlockFor.
//  3. After a correct password, call [AuthLimiter.Success]. It forgets the
//     login's failures but not the client's: an attacker who owns one
//     account cannot use it to reset the count while guessing others, and
//     a client's block always runs its full term.
type AuthLimiter struct {
	p AuthPolicy

	mu      sync.Mutex
	clients table[netip.Prefix]
	logins  table[string]
}

type failures struct {
	count        int
	last         time.Time
	blockedUntil time.Time
}

// NewAuthLimiter returns a limiter with policy p (zero fields defaulted).
func NewAuthLimiter(p AuthPolicy) *AuthLimiter {
	return &AuthLimiter{
		p:       p.withDefaults(),
		clients: make(table[netip.Prefix]),
		logins:  make(table[string]),
	}
}

// Policy returns the effective policy (with defaults applied).
func (l *AuthLimiter) Policy() AuthPolicy { return l.p }

func loginKey(login string) string { return strings.ToLower(strings.TrimSpace(login)) }

// Check returns a *BlockedError if the client of ip, or login, is blocked
// now; the client is reported first. An empty login checks the client only.
func (l *AuthLimiter) Check(ip netip.Addr, login string) error {
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.clients[ClientKey(ip)]; f != nil && now.Before(f.blockedUntil) {
		return &BlockedError{Until: f.blockedUntil}
	}
	if login == "" {
		return nil
	}
	if f := l.logins[loginKey(login)]; f != nil && now.Before(f.blockedUntil) {
		return &BlockedError{Login: true, Until: f.blockedUntil}
	}
	return nil
}

// Failure records a failed authentication of login from ip and returns how
// long the caller should wait before it answers the client.
func (l *AuthLimiter) Failure(ip netip.Addr, login string) time.Duration {
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.clients.fail(&l.p, ClientKey(ip), now)
	if login != "" {
		n = max(n, l.logins.fail(&l.p, loginKey(login), now))
	}
	return l.delay(n)
}

// Success records a successful authentication: the login's failure count is
// cleared unless the login is blocked; the client's record is unchanged.
func (l *AuthLimiter) Success(ip netip.Addr, login string) {
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	key := loginKey(login)
	if f := l.logins[key]; f != nil && !now.Before(f.blockedUntil) {
		delete(l.logins, key)
	}
}

// Failures returns the current failure counts of ip's client and of login,
// for logs and tests.
func (l *AuthLimiter) Failures(ip netip.Addr, login string) (client, loginCount int) {
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if f := l.clients[ClientKey(ip)]; f != nil && !f.forgotten(&l.p, now) {
		client = f.count
	}
	if f := l.logins[loginKey(login)]; f != nil && !f.forgotten(&l.p, now) {
		loginCount = f.count
	}
	return client, loginCount
}

// delay is the wait after the n-th failure in a row.
func (l *AuthLimiter) delay(n int) time.Duration {
	over := n - l.p.FreeFailures
	if over <= 0 {
		return 0
	}
	d := l.p.BaseDelay
	for i := 1; i < over && d < l.p.MaxDelay; i++ {
		d *= 2
	}
	return min(d, l.p.MaxDelay)
}

// table remembers failures per key (client prefix or login).
type table[K comparable] map[K]*failures

// fail counts one failure for key under policy p and returns the count.
// Callers hold the limiter's lock.
func (t table[K]) fail(p *AuthPolicy, key K, now time.Time) int {
	f := t[key]
	if f == nil {
		if len(t) >= p.MaxEntries {
			t.evict(p, now)
		}
		f = &failures{}
		t[key] = f
	}
	if f.forgotten(p, now) {
		f.count = 0
	}
	if now.Before(f.blockedUntil) {
		// Attempts while blocked are refused before the password is
		// checked, so they should not arrive here; do not extend the
		// block.
		f.last = now
		return p.BlockAfter
	}
	f.count++
	f.last = now
	if f.count >= p.BlockAfter {
		f.blockedUntil = now.Add(p.BlockFor)
		// Keep the count one below the threshold so that the first
		// failure after the block blocks again (until Window passes).
		f.count = p.BlockAfter - 1
		return p.BlockAfter
	}
	return f.count
}

// evict makes room: first everything forgotten, then arbitrary unblocked
// entries, then arbitrary entries, down to 7/8 of the cap.
func (t table[K]) evict(p *AuthPolicy, now time.Time) {
	for k, f := range t {
		if f.forgotten(p, now) {
			delete(t, k)
		}
	}
	target := p.MaxEntries - p.MaxEntries/8 - 1
	for pass := 0; pass < 2 && len(t) > target; pass++ {
		for k, f := range t {
			if len(t) <= target {
				break
			}
			if pass == 0 && now.Before(f.blockedUntil) {
				continue
			}
			delete(t, k)
		}
	}
}

// forgotten reports whether the failures are older than the window and no
// block is running.
func (f *failures) forgotten(p *AuthPolicy, now time.Time) bool {
	return now.Sub(f.last) > p.Window && !now.Before(f.blockedUntil)
}

package migration

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// allowlist is the parsed Options.Allowlist: CIDR blocks and exact host
// names (lowercase, without a trailing dot).
type allowlist struct {
	prefixes []netip.Prefix
	names    map[string]bool
}

// maxAllowlistEntry bounds one allowlist entry (a DNS name is at most 253
// octets; a CIDR is far shorter).
const maxAllowlistEntry = 253

// parseAllowlist parses allowlist entries: a CIDR block ("10.0.0.0/8",
// "2001:db8::/32"), a single IP address (taken as a /32 or /128), or an
// exact host name ("mail.example.com", case-insensitive). Anything else,
// including wildcards, is an error naming the entry.
func parseAllowlist(entries []string) (allowlist, error) {
	a := allowlist{names: map[string]bool{}}
	for _, raw := range entries {
		e := strings.TrimSpace(raw)
		if e == "" {
			return allowlist{}, errors.New("migration: empty allowlist entry")
		}
		if len(e) > maxAllowlistEntry {
			return allowlist{}, fmt.Errorf("migration: allowlist entry too long (%d bytes)", len(e))
		}
		if strings.Contains(e, "/") {
			p, err := netip.ParsePrefix(e)
			if err != nil {
				return allowlist{}, fmt.Errorf("migration: allowlist entry %q: %w", e, err)
			}
			a.prefixes = append(a.prefixes, p.Masked())
			continue
		}
		if ip, err := netip.ParseAddr(e); err == nil {
			if ip.Zone() != "" {
				return allowlist{}, fmt.Errorf("migration: allowlist entry %q: zoned addresses are not allowed", e)
			}
			ip = ip.Unmap()
			a.prefixes = append(a.prefixes, netip.PrefixFrom(ip, ip.BitLen()))
			continue
		}
		name, err := canonicalHost(e)
		if err != nil {
			return allowlist{}, fmt.Errorf("migration: allowlist entry %q: %w", e, err)
		}
		a.names[name] = true
	}
	return a, nil
}

// canonicalHost lowercases a DNS host name, strips one trailing dot and
// checks its syntax (letters, digits, '-', '_' in dot-separated labels of
// 1-63 octets; RFC 1123 section 2.1, with '_' tolerated as in practice).
func canonicalHost(h string) (string, error) {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	if h == "" || len(h) > maxAllowlistEntry {
		return "", errors.New("invalid host name")
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 {
			return "", errors.New("invalid host name")
		}
		if label[0] == '-' || label[len(label)-1] == '-' {
			return "", errors.New("invalid host name")
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return "", errors.New("invalid host name")
			}
		}
	}
	return h, nil
}

// containsAddr reports whether ip is inside a listed block.
func (a allowlist) containsAddr(ip netip.Addr) bool {
	ip = ip.Unmap().WithZone("")
	for _, p := range a.prefixes {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// check decides whether host may be dialled and returns the addresses to
// dial. A listed name is dialled by name (nil addresses: the dialer
// resolves it). An IP literal must be inside a listed block. Any other name
// is resolved, and every address must be inside a listed block; the
// returned addresses are then the ones dialled, so a second resolution
// cannot switch to an unlisted address.
func (a allowlist) check(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	if ip, err := netip.ParseAddr(host); err == nil {
		if a.containsAddr(ip) {
			return []netip.Addr{ip.Unmap()}, nil
		}
		return nil, fmt.Errorf("source host %s is not on the allowlist", host)
	}
	name, err := canonicalHost(host)
	if err != nil {
		return nil, fmt.Errorf("source host %q: %w", host, err)
	}
	if a.names[name] {
		return nil, nil
	}
	if len(a.prefixes) == 0 {
		return nil, fmt.Errorf("source host %s is not on the allowlist", name)
	}
	addrs, err := r.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return nil, fmt.Errorf("source host %s is not on the allowlist and does not resolve: %w", name, err)
	}
	if len(addrs) == 0 {
		return nil, fmt.Errorf("source host %s is not on the allowlist and has no addresses", name)
	}
	for _, ip := range addrs {
		if !a.containsAddr(ip) {
			return nil, fmt.Errorf("source host %s resolves to %s, which is not on the allowlist", name, ip.Unmap())
		}
	}
	return addrs, nil
}

// Allowlist is a parsed list of the source hosts a collector may connect
// to, shared by the IMAP collectors and package migration/ews so that
// both check every dial the same way (see [Options].Allowlist for the
// entry syntax).
type Allowlist struct{ a allowlist }

// NewAllowlist parses entries: CIDR blocks, single IP addresses and exact
// host names. An empty list allows nothing.
func NewAllowlist(entries []string) (*Allowlist, error) {
	a, err := parseAllowlist(entries)
	if err != nil {
		return nil, err
	}
	return &Allowlist{a: a}, nil
}

// Check decides whether host may be dialled and returns the addresses to
// dial: nil for a listed host name (dial it by name), otherwise exactly the
// approved addresses, so that a second resolution cannot switch to an
// unlisted one. r nil means net.DefaultResolver. A refusal is an error
// naming the host.
func (l *Allowlist) Check(ctx context.Context, r *net.Resolver, host string) ([]netip.Addr, error) {
	if r == nil {
		r = net.DefaultResolver
	}
	return l.a.check(ctx, r, host)
}

// hostLimiter bounds concurrent connections per source host (a counting
// semaphore per canonical host name, created on first use and dropped when
// idle so the map stays bounded by the hosts in use).
type hostLimiter struct {
	max int
	mu  sync.Mutex
	sem map[string]*hostSem
}

type hostSem struct {
	ch    chan struct{}
	users int // holders plus waiters; the entry is dropped at zero
}

func newHostLimiter(max int) *hostLimiter {
	return &hostLimiter{max: max, sem: map[string]*hostSem{}}
}

// acquire waits for a connection slot for host and returns its release
// function (safe to call more than once), or ctx's error.
func (h *hostLimiter) acquire(ctx context.Context, host string) (func(), error) {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	h.mu.Lock()
	s := h.sem[host]
	if s == nil {
		s = &hostSem{ch: make(chan struct{}, h.max)}
		h.sem[host] = s
	}
	s.users++
	h.mu.Unlock()
	drop := func() {
		h.mu.Lock()
		s.users--
		if s.users == 0 {
			delete(h.sem, host)
		}
		h.mu.Unlock()
	}
	select {
	case s.ch <- struct{}{}:
	case <-ctx.Done():
		drop()
		return nil, ctx.Err()
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			<-s.ch
			drop()
		})
	}, nil
}

// inUse returns the number of slots held for host (for tests).
func (h *hostLimiter) inUse(host string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	if s := h.sem[strings.ToLower(host)]; s != nil {
		return len(s.ch)
	}
	return 0
}

// bandwidth is a token bucket shared by every source connection of a
// Migrator: reads take tokens (bytes), the bucket refills at rate bytes per
// second up to a burst of one second's worth (at least 64 KiB so a single
// read can always proceed).
type bandwidth struct {
	rate  float64
	burst float64
	now   func() time.Time

	mu     sync.Mutex
	tokens float64
	last   time.Time
}

func newBandwidth(rate int64, now func() time.Time) *bandwidth {
	burst := float64(rate)
	if burst < 64<<10 {
		burst = 64 << 10
	}
	return &bandwidth{rate: float64(rate), burst: burst, now: now, tokens: burst, last: now()}
}

// take records n bytes read and waits (up to ctx) until the bucket has
// paid for them. Debt is allowed, so a read larger than the burst is paid
// for by waiting afterwards rather than refused.
func (b *bandwidth) take(ctx context.Context, n int) error {
	if n <= 0 {
		return nil
	}
	b.mu.Lock()
	t := b.now()
	if el := t.Sub(b.last).Seconds(); el > 0 {
		b.tokens += el * b.rate
		if b.tokens > b.burst {
			b.tokens = b.burst
		}
		b.last = t
	}
	b.tokens -= float64(n)
	var wait time.Duration
	if b.tokens < 0 {
		wait = time.Duration(-b.tokens / b.rate * float64(time.Second))
	}
	b.mu.Unlock()
	if wait <= 0 {
		return nil
	}
	tm := time.NewTimer(wait)
	defer tm.Stop()
	select {
	case <-tm.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

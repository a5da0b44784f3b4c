package dav

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/authlimit"
	"github.com/mailyard/mailyard/internal/limits"
)

// realm is the Basic challenge (RFC 7617 §2, with the charset parameter
// of §2.1: user names and passwords are UTF-8).
const challenge = `Basic realm="Mailyard", charset="UTF-8"`

// directoryRetry is the Retry-After of a 503 when the directory failed.
const directoryRetry = 30 * time.Second

// authenticate returns the user the request's Basic credentials name, or
// answers the request itself and returns false:
//   - no or malformed credentials, or a wrong password: 401 with the
//     challenge (RFC 7235 §3.1), a wrong password only after the
//     limiter's delay;
//   - the limiter refuses to check the password now: 429 Too Many
//     Requests with Retry-After (RFC 6585 §4). The refusal is about this
//     client's (or this login's) recent failures, not about the server,
//     so 503 would be the wrong signal to monitors and to clients that
//     treat it as an outage;
//   - a disabled account, or one without directory.ProtoDAV: 403;
//   - the directory failed: 503 with Retry-After (RFC 9110 §15.6.4).
func (h *Handler) authenticate(w http.ResponseWriter, r *http.Request) (directory.User, bool) {
	login, password, ok := r.BasicAuth()
	if !ok || login == "" {
		h.challenge(w, r, "authentication required")
		return directory.User{}, false
	}
	ip := clientIP(r)
	if u, ok := h.auth.get(ip, login, password); ok {
		return u, true
	}
	ctx := r.Context()
	log := h.opts.Logger.With("login", login, "remote", r.RemoteAddr)
	attempt, err := h.opts.AuthLimiter.Begin(ctx, ip, directory.LimiterLogin(ctx, h.opts.Directory, login))
	if err != nil {
		log.Warn("authentication refused", "rule", "auth-limit", "reason", err.Error())
		he := &httpError{status: http.StatusTooManyRequests, msg: "too many failed authentications; try again later", retryAfter: time.Second}
		if re, ok := errors.AsType[*authlimit.RefusedError](err); ok && re.RetryAfter > 0 {
			he.retryAfter = re.RetryAfter
		}
		h.writeError(w, r, he)
		return directory.User{}, false
	}
	defer attempt.Abandon()
	user, err := h.opts.Directory.Authenticate(ctx, login, password, directory.ProtoDAV)
	switch {
	case err == nil:
		attempt.Succeeded()
		h.auth.put(ip, login, password, user)
		return user, true
	case errors.Is(err, directory.ErrAuthFailed):
		delay := attempt.Failed()
		log.Warn("authentication failed", "delay", delay, "class", attempt.Class().String())
		sleep(ctx, delay)
		h.challenge(w, r, "invalid user name or password")
	case errors.Is(err, directory.ErrDisabled):
		log.Warn("authentication refused", "rule", "disabled-user")
		h.writeError(w, r, &httpError{status: http.StatusForbidden, msg: "account disabled"})
	case errors.Is(err, directory.ErrProtocolNotAllowed):
		log.Warn("authentication refused", "rule", "protocol-not-allowed")
		h.writeError(w, r, &httpError{status: http.StatusForbidden, msg: "CalDAV and CardDAV access is not allowed for this account"})
	default:
		log.Error("authentication error", "err", err)
		h.writeError(w, r, &httpError{status: http.StatusServiceUnavailable, msg: "authentication temporarily unavailable", retryAfter: directoryRetry})
	}
	return directory.User{}, false
}

// challenge answers 401 with the Basic challenge.
func (h *Handler) challenge(w http.ResponseWriter, r *http.Request, msg string) {
	w.Header().Set("WWW-Authenticate", challenge)
	h.writeError(w, r, &httpError{status: http.StatusUnauthorized, msg: msg})
}

// clientIP is the address of the peer; requests without one (in-process
// tests) count as the unspecified address.
func clientIP(r *http.Request) netip.Addr {
	if ap, err := netip.ParseAddrPort(r.RemoteAddr); err == nil {
		return ap.Addr().Unmap()
	}
	if host, _, err := net.SplitHostPort(r.RemoteAddr); err == nil {
		if a, err := netip.ParseAddr(host); err == nil {
			return a.Unmap()
		}
	}
	return netip.IPv4Unspecified()
}

func sleep(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// authCache remembers verified credentials for a short time, keyed by an
// HMAC of client, login and password under a key drawn at start, so that
// neither the password nor a hash that could be attacked offline with a
// known key is kept.
//
// The client (limits.ClientKey: the IPv4 address or IPv6 /64) is part of
// the key because a hit skips the auth limiter: keyed by login and
// password alone, the real user's requests kept the right password
// cached for everyone, and a guesser the limiter refused (429) still got
// 207 for the right guess, which made the limiter an oracle that bounded
// nothing. A hit now only repeats what the limiter allowed and the
// directory verified for the same client.
type authCache struct {
	ttl  time.Duration
	size int
	now  func() time.Time
	key  [32]byte

	mu      sync.Mutex
	entries map[[32]byte]authEntry
}

type authEntry struct {
	user    directory.User
	expires time.Time
}

func newAuthCache(ttl time.Duration, size int, now func() time.Time) *authCache {
	c := &authCache{ttl: ttl, size: size, now: now, entries: make(map[[32]byte]authEntry)}
	_, _ = rand.Read(c.key[:]) // never fails (crypto/rand)
	return c
}

func (c *authCache) mac(client netip.Addr, login, password string) [32]byte {
	m := hmac.New(sha256.New, c.key[:])
	ck, _ := limits.ClientKey(client).MarshalBinary()
	m.Write(ck)
	m.Write([]byte{0})
	m.Write([]byte(login))
	m.Write([]byte{0})
	m.Write([]byte(password))
	var k [32]byte
	copy(k[:], m.Sum(nil))
	return k
}

func (c *authCache) get(client netip.Addr, login, password string) (directory.User, bool) {
	if c.ttl <= 0 {
		return directory.User{}, false
	}
	k := c.mac(client, login, password)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[k]
	if !ok || !c.now().Before(e.expires) {
		delete(c.entries, k)
		return directory.User{}, false
	}
	return e.user, true
}

func (c *authCache) put(client netip.Addr, login, password string, u directory.User) {
	if c.ttl <= 0 {
		return
	}
	k := c.mac(client, login, password)
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.size {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
			}
		}
		if len(c.entries) >= c.size {
			clear(c.entries)
		}
	}
	c.entries[k] = authEntry{user: u, expires: now.Add(c.ttl)}
}

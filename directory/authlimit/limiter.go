package authlimit

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/limits"
)

// ErrRefused is matched (errors.Is) by the *RefusedError [Limiter.Begin]
// returns when a password must not be checked now.
var ErrRefused = errors.New("authlimit: authentication refused")

// Reason says which rule refused an attempt.
type Reason int

// The rules that refuse an attempt.
const (
	// ReasonClientBlocked: the client failed too often, for any logins.
	ReasonClientBlocked Reason = iota + 1
	// ReasonPairBlocked: the client failed too often for this login.
	ReasonPairBlocked
	// ReasonTooSoon: the delay after the client's (or the pair's) last
	// failure has not passed.
	ReasonTooSoon
	// ReasonLoginThrottled: the login's stranger budget is spent.
	ReasonLoginThrottled
)

// String names the reason for logs and metrics labels.
func (r Reason) String() string {
	switch r {
	case ReasonClientBlocked:
		return "client-blocked"
	case ReasonPairBlocked:
		return "login-blocked-for-client"
	case ReasonTooSoon:
		return "too-soon"
	case ReasonLoginThrottled:
		return "login-throttled"
	}
	return fmt.Sprintf("reason(%d)", int(r))
}

// RefusedError says why an attempt was refused and when trying again may
// help.
type RefusedError struct {
	Reason Reason
	// RetryAfter is how long the refusal lasts at least.
	RetryAfter time.Duration
}

// Error implements error.
func (e *RefusedError) Error() string {
	return fmt.Sprintf("authlimit: authentication refused (%s), retry after %s", e.Reason, e.RetryAfter.Round(time.Second))
}

// Unwrap makes errors.Is(err, ErrRefused) true.
func (e *RefusedError) Unwrap() error { return ErrRefused }

// Class is who a request comes from, as far as the limiter knows.
type Class int

// The classes of [Limiter.Begin], step 1 of the package's algorithm.
const (
	// Trusted: this client logged in to this login within TrustFor.
	Trusted Class = iota
	// Fresh: the client has no failures and no unfinished check.
	Fresh
	// Stranger: anyone else; limited by the login's stranger budget.
	Stranger
)

// String names the class for logs and metrics labels.
func (c Class) String() string {
	switch c {
	case Trusted:
		return "trusted"
	case Fresh:
		return "fresh"
	case Stranger:
		return "stranger"
	}
	return fmt.Sprintf("class(%d)", int(c))
}

// Backoff says how failures of one kind of key (a client, or a pair of
// client and login) are punished. Zero fields take the defaults named on
// [Policy.Client] and [Policy.Pair].
type Backoff struct {
	// Free is how many failures in a row cost no delay.
	Free int
	// BaseDelay is the delay after the first failure beyond Free; each
	// further failure doubles it, up to MaxDelay.
	BaseDelay time.Duration
	// MaxDelay caps the delay.
	MaxDelay time.Duration
	// BlockAfter is the number of failures that blocks the key.
	BlockAfter int
	// BlockFor is how long a block lasts.
	BlockFor time.Duration
}

// Policy configures a [Limiter]. Zero fields take the defaults given on
// each field.
type Policy struct {
	// Client punishes a client's failures for all logins. Defaults:
	// Free 3, BaseDelay 1s, MaxDelay 8s, BlockAfter 20, BlockFor 15m.
	// BlockAfter is higher than the pair's because one address may be a
	// NAT shared by many users.
	Client Backoff
	// Pair punishes a client's failures for one login. Defaults: Free 3,
	// BaseDelay 1s, MaxDelay 8s, BlockAfter 10, BlockFor 15m.
	Pair Backoff
	// Window is how long failures are remembered after the last one.
	// Default 1h.
	Window time.Duration
	// StrangerChecks is how many password checks clients that are
	// neither Trusted nor Fresh may cause for one login within
	// StrangerWindow. Default 10.
	StrangerChecks int
	// StrangerWindow is the sliding window of StrangerChecks. Default 1h.
	StrangerWindow time.Duration
	// TrustFor is how long a successful login trusts the client for that
	// login. Default 30 days.
	TrustFor time.Duration
	// MaxEntries caps each of the limiter's tables (clients, pairs,
	// logins, trusted pairs). Default 100000.
	MaxEntries int
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// Shared, if set, is where this limiter and those of the other
	// nodes of a cluster keep the failures and blocks of clients and
	// pairs, the pairs' trust and the logins' stranger budgets (see
	// "Several nodes" in the package documentation). Nil keeps them in
	// this process only, which is right for a single server.
	Shared Shared
}

func (b Backoff) withDefaults(blockAfter int) Backoff {
	if b.Free <= 0 {
		b.Free = 3
	}
	if b.BaseDelay <= 0 {
		b.BaseDelay = time.Second
	}
	if b.MaxDelay <= 0 {
		b.MaxDelay = 8 * time.Second
	}
	b.MaxDelay = max(b.MaxDelay, b.BaseDelay)
	if b.BlockAfter <= 0 {
		b.BlockAfter = blockAfter
	}
	if b.BlockFor <= 0 {
		b.BlockFor = 15 * time.Minute
	}
	return b
}

func (p Policy) withDefaults() Policy {
	p.Client = p.Client.withDefaults(20)
	p.Pair = p.Pair.withDefaults(10)
	if p.Window <= 0 {
		p.Window = time.Hour
	}
	if p.StrangerChecks <= 0 {
		p.StrangerChecks = 10
	}
	if p.StrangerWindow <= 0 {
		p.StrangerWindow = time.Hour
	}
	if p.TrustFor <= 0 {
		p.TrustFor = 30 * 24 * time.Hour
	}
	if p.MaxEntries <= 0 {
		p.MaxEntries = 100000
	}
	if p.Now == nil {
		p.Now = time.Now
	}
	return p
}

// delay is the wait after the n-th failure in a row.
func (b *Backoff) delay(n int) time.Duration {
	over := n - b.Free
	if over <= 0 {
		return 0
	}
	d := b.BaseDelay
	for i := 1; i < over && d < b.MaxDelay; i++ {
		d *= 2
	}
	return min(d, b.MaxDelay)
}

// Stats counts what a [Limiter] decided since it was made.
type Stats struct {
	// Checks counts the attempts Begin allowed, by [Class]: each is one
	// password check. With Policy.Shared they are this node's.
	Checks map[Class]uint64
	// Refused counts the attempts Begin refused, by [Reason].
	Refused map[Reason]uint64
	// Waiting is how many Begin calls wait, now, for the verdicts of
	// checks of the same client.
	Waiting int
	// SharedErrors counts the calls to Policy.Shared that failed (the
	// limiter then decided on what this process knows).
	SharedErrors uint64
}

// Limiter decides which password checks may run; see the package
// documentation for the rules. It is safe for concurrent use. The zero
// value is not usable; call [New].
type Limiter struct {
	p Policy

	mu        sync.Mutex
	clients   map[netip.Prefix]*record
	pairs     map[pairKey]*record
	budgets   map[string]*budget
	trusted   map[pairKey]time.Time // the last success
	spent     map[string]time.Time  // logins whose shared budget is spent, until when
	lastSweep time.Time
	settled   chan struct{} // closed when an unfinished check ends
	waiting   int           // Begin calls waiting on settled
	checks    [3]uint64
	refused   [ReasonLoginThrottled + 1]uint64

	sharedErrors uint64
}

type pairKey struct {
	client netip.Prefix
	login  string
}

// New returns a limiter with policy p (zero fields defaulted).
func New(p Policy) *Limiter {
	p = p.withDefaults()
	return &Limiter{
		p:         p,
		clients:   make(map[netip.Prefix]*record),
		pairs:     make(map[pairKey]*record),
		budgets:   make(map[string]*budget),
		trusted:   make(map[pairKey]time.Time),
		spent:     make(map[string]time.Time),
		lastSweep: p.Now(),
	}
}

// Policy returns the effective policy (with defaults applied).
func (l *Limiter) Policy() Policy { return l.p }

// maxLoginKey bounds the memory a login costs: RFC 5321 §4.5.3.1.3 caps a
// path at 256 octets, so a longer login is no address and is kept as its
// hash.
const maxLoginKey = 256

// loginKey folds the spellings of one login into one key: an address to
// its canonical form (directory.CanonicalAddress, the rule every
// package compares hosted addresses by), any other login (an Active
// Directory sAMAccountName, which sources compare without case) to
// lowercase.
func loginKey(login string) string {
	k := strings.TrimSpace(login)
	if c, err := directory.CanonicalAddress(k); err == nil {
		k = c
	} else {
		k = strings.ToLower(k)
	}
	if len(k) > maxLoginKey {
		sum := sha256.Sum256([]byte(k))
		return "\x00sha256:" + hex.EncodeToString(sum[:])
	}
	return k
}

// Begin asks whether the password of login, offered by the client at ip,
// may be checked now. On a nil error the check is reserved: the caller
// checks the password and then calls exactly one of the Attempt's
// Succeeded, Failed or Abandon. Otherwise the error is a *RefusedError and
// the password must not be checked.
//
// Where the verdict depends on checks of the same client still running
// (they would block it if they failed, or it has no failures of its own
// and would be Fresh once they succeed), Begin waits for those verdicts
// rather than refusing: a client's parallel logins (a mail client opening
// several connections at once) are never refused for being parallel, and
// parallel guesses still cannot pass a limit. If ctx ends first, Begin
// refuses with ReasonTooSoon.
func (l *Limiter) Begin(ctx context.Context, ip netip.Addr, login string) (*Attempt, error) {
	a := &Attempt{l: l, pair: pairKey{limits.ClientKey(ip), loginKey(login)}}
	if l.p.Shared != nil {
		l.loadShared(ctx, a)
	}
	for {
		got, settled, err := l.begin(a)
		if settled == nil {
			if got != nil && l.p.Shared != nil && got.class == Stranger {
				return l.sharedStranger(ctx, got)
			}
			return got, err
		}
		select {
		case <-settled:
			l.mu.Lock()
			l.waiting--
			l.mu.Unlock()
		case <-ctx.Done():
			l.mu.Lock()
			defer l.mu.Unlock()
			l.waiting--
			return nil, l.refuse(ReasonTooSoon, 0, l.p.Client.BaseDelay)
		}
	}
}

// sharedStranger takes the slot of a Stranger's attempt in the login's
// shared budget, or ends the attempt and refuses it.
func (l *Limiter) sharedStranger(ctx context.Context, a *Attempt) (*Attempt, error) {
	wait := l.takeSharedBudget(ctx, a.pair.login)
	l.mu.Lock()
	defer l.mu.Unlock()
	if wait > 0 {
		a.finish()
		return nil, l.refuse(ReasonLoginThrottled, 0, wait)
	}
	l.checks[Stranger]++
	return a, nil
}

// begin is one try of Begin for a. It returns a, a refusal, or a
// channel closed when an unfinished check ends (then try again). With
// Policy.Shared a Stranger's budget is taken after it returns, and its
// check counted then.
func (l *Limiter) begin(a *Attempt) (*Attempt, <-chan struct{}, error) {
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.maybeSweep(now)

	a.class = Stranger
	if t, ok := l.trusted[a.pair]; ok && now.Sub(t) <= l.p.TrustFor {
		a.class = Trusted
	}
	if r, wait := l.pairs[a.pair].refuses(&l.p.Pair, l.p.Window, now); r == reasonBusy {
		return nil, l.settledChan(), nil
	} else if r != 0 {
		return nil, nil, l.refuse(r, ReasonPairBlocked, wait)
	}
	if a.class != Trusted {
		c := l.clients[a.pair.client]
		r, wait := c.refuses(&l.p.Client, l.p.Window, now)
		if r == reasonBusy || (r == 0 && c != nil && c.count == 0 && c.pending > 0) {
			// Busy, or failure-free but for checks whose verdicts
			// decide whether this one is Fresh: one at a time.
			return nil, l.settledChan(), nil
		}
		if r != 0 {
			return nil, nil, l.refuse(r, ReasonClientBlocked, wait)
		}
		if c.idle(l.p.Window, now) {
			a.class = Fresh
		} else if l.p.Shared == nil {
			if wait := l.takeBudget(a.pair.login, now); wait > 0 {
				return nil, nil, l.refuse(ReasonLoginThrottled, 0, wait)
			}
		}
		l.clientRecord(a.pair.client, now).pending++
	}
	l.pairRecord(a.pair, now).pending++
	if l.p.Shared == nil || a.class != Stranger {
		l.checks[a.class]++
	}
	return a, nil, nil
}

// settledChan returns a channel that is closed when the next unfinished
// check ends, and counts the caller as waiting on it. Callers hold l.mu.
func (l *Limiter) settledChan() <-chan struct{} {
	l.waiting++
	if l.settled == nil {
		l.settled = make(chan struct{})
	}
	return l.settled
}

// refuse counts and returns a refusal. A record's refusal says "blocked"
// or "too soon"; blocked is the reason given for the record's kind.
func (l *Limiter) refuse(r, blocked Reason, wait time.Duration) error {
	if r == reasonBlocked {
		r = blocked
	}
	l.refused[r]++
	return &RefusedError{Reason: r, RetryAfter: wait}
}

// takeBudget takes one slot of login's stranger budget, or returns how
// long until one frees up.
func (l *Limiter) takeBudget(login string, now time.Time) time.Duration {
	b := l.budgets[login]
	if b == nil {
		if len(l.budgets) >= l.p.MaxEntries {
			l.evictBudgets(now)
		}
		b = &budget{}
		l.budgets[login] = b
	}
	b.prune(l.p.StrangerWindow, now)
	if len(b.checks) >= l.p.StrangerChecks {
		return max(b.checks[0].Add(l.p.StrangerWindow).Sub(now), time.Nanosecond)
	}
	b.checks = append(b.checks, now)
	return 0
}

// Stats returns the counts of checks and refusals so far.
func (l *Limiter) Stats() Stats {
	l.mu.Lock()
	defer l.mu.Unlock()
	s := Stats{Checks: make(map[Class]uint64, 3), Refused: make(map[Reason]uint64, 4)}
	for c, n := range l.checks {
		s.Checks[Class(c)] = n
	}
	for r := ReasonClientBlocked; r <= ReasonLoginThrottled; r++ {
		s.Refused[r] = l.refused[r]
	}
	s.Waiting = l.waiting
	s.SharedErrors = l.sharedErrors
	return s
}

// Attempt is one reserved password check; see [Limiter.Begin].
type Attempt struct {
	l     *Limiter
	pair  pairKey
	class Class
	done  bool // guarded by l.mu

	// What Policy.Shared held for the pair when Begin read it: its last
	// success, and whether it had no failures.
	sharedTrusted time.Time
	sharedClean   bool
}

// Class says how Begin classed the attempt.
func (a *Attempt) Class() Class { return a.class }

// Succeeded records that the password was right: the pair's failures are
// forgotten and the pair is trusted for Policy.TrustFor. The client's
// failures stay.
func (a *Attempt) Succeeded() {
	l := a.l
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !a.finish() {
		return
	}
	if r := l.pairs[a.pair]; r != nil && !now.Before(r.blockedUntil) {
		r.count, r.notBefore = 0, time.Time{}
		l.dropIdle(a.pair, now)
	}
	if _, ok := l.trusted[a.pair]; !ok && len(l.trusted) >= l.p.MaxEntries {
		l.evictTrusted(now)
	}
	l.trusted[a.pair] = now
	if l.p.Shared != nil {
		l.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
		err := l.succeedShared(ctx, a)
		cancel()
		l.mu.Lock()
		if err != nil {
			l.sharedErrors++
		}
	}
}

// Failed records that the password was wrong and returns how long the
// caller should wait before it answers the client.
func (a *Attempt) Failed() time.Duration {
	l := a.l
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !a.finish() {
		return 0
	}
	d := l.pairRecord(a.pair, now).fail(&l.p.Pair, l.p.Window, now)
	if a.class != Trusted {
		d = max(d, l.clientRecord(a.pair.client, now).fail(&l.p.Client, l.p.Window, now))
	}
	if l.p.Shared != nil {
		l.mu.Unlock()
		d = max(d, l.failSharedAll(a, now))
		l.mu.Lock()
	}
	return d
}

// failSharedAll counts the failure on the pair's and (unless Trusted)
// the client's shared records, makes them the local ones, and returns
// the longest delay they set. Callers do not hold l.mu.
func (l *Limiter) failSharedAll(a *Attempt, now time.Time) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), sharedTimeout)
	defer cancel()
	var d time.Duration
	ps, err := l.failShared(ctx, pairKeyString(a.pair), &l.p.Pair)
	l.mu.Lock()
	if err != nil {
		l.sharedErrors++
	} else {
		adopt(l.pairs, a.pair, ps, l, now)
		d = max(d, ps.NotBefore.Sub(now))
	}
	l.mu.Unlock()
	if a.class == Trusted {
		return d
	}
	cs, err := l.failShared(ctx, clientKey(a.pair.client), &l.p.Client)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.sharedErrors++
	} else {
		adopt(l.clients, a.pair.client, cs, l, now)
		d = max(d, cs.NotBefore.Sub(now))
	}
	return d
}

// Abandon ends an attempt that gave no verdict on the password (the
// directory failed, or the account may not log in). Nothing is counted
// but the check itself. After Succeeded or Failed it does nothing, so a
// caller may defer it right after Begin.
func (a *Attempt) Abandon() {
	l := a.l
	now := l.p.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !a.finish() {
		return
	}
	l.dropIdle(a.pair, now)
}

// finish releases the attempt's reservations, once. Callers hold l.mu.
func (a *Attempt) finish() bool {
	if a.done {
		return false
	}
	a.done = true
	l := a.l
	if r := l.pairs[a.pair]; r != nil {
		r.pending = max(r.pending-1, 0)
	}
	if a.class != Trusted {
		if r := l.clients[a.pair.client]; r != nil {
			r.pending = max(r.pending-1, 0)
		}
	}
	if l.settled != nil {
		close(l.settled)
		l.settled = nil
	}
	return true
}

// dropIdle deletes the pair's and client's records when they hold
// nothing, so that successes leave no entries behind.
func (l *Limiter) dropIdle(k pairKey, now time.Time) {
	if r := l.pairs[k]; r != nil && r.empty(l.p.Window, now) {
		delete(l.pairs, k)
	}
	if r := l.clients[k.client]; r != nil && r.empty(l.p.Window, now) {
		delete(l.clients, k.client)
	}
}

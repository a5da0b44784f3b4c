package authlimit

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"time"
)

// Shared keeps what a [Limiter] must share with the limiters of the
// other nodes of a cluster (several servers on one database behind a
// load balancer): the failures and blocks of clients and pairs, the
// trust of pairs, and the logins' stranger budgets. Set it as
// [Policy.Shared]; package directory/authlimit/limitstore implements it
// on a store's records. Entries expire: a backend must not return an
// entry after its expiry, and [Limiter.SweepShared] removes them.
type Shared interface {
	// GetShared returns the value of key, or nil if there is none or it
	// expired by now.
	GetShared(ctx context.Context, key string, now time.Time) ([]byte, error)
	// UpdateShared replaces the value of key with fn's result in one
	// transaction, atomically against every node. fn receives the
	// current value (nil if none or expired) and may be called more than
	// once; the entry then expires at expires. A nil result deletes the
	// entry; an error from fn writes nothing and is returned.
	UpdateShared(ctx context.Context, key string, now time.Time, fn func(cur []byte) (next []byte, expires time.Time, err error)) error
	// SweepShared deletes the entries that expired by now and returns
	// how many.
	SweepShared(ctx context.Context, now time.Time) (int, error)
}

// sharedTimeout bounds one call to Policy.Shared made where the caller
// gave no context (Attempt.Failed, Attempt.Succeeded).
const sharedTimeout = 5 * time.Second

// sharedRecord is a client's or pair's record as Policy.Shared keeps
// it: the failures, and for a pair the last success (its trust).
type sharedRecord struct {
	Count        int       `json:"n,omitempty"`
	Last         time.Time `json:"l,omitzero"`
	NotBefore    time.Time `json:"nb,omitzero"`
	BlockedUntil time.Time `json:"bu,omitzero"`
	Trusted      time.Time `json:"t,omitzero"`
}

// sharedBudget is a login's stranger budget as Policy.Shared keeps it.
type sharedBudget struct {
	Checks []time.Time `json:"c"`
}

// The keys of Policy.Shared: a prefix has no space, so the parts of a
// pair's key cannot run into each other.
func clientKey(k netip.Prefix) string { return "c " + k.String() }
func pairKeyString(k pairKey) string  { return "p " + k.client.String() + " " + k.login }
func budgetKey(login string) string   { return "b " + login }

// expiry is when a shared record holds nothing that matters any more.
func (p *Policy) expiry(r sharedRecord) time.Time {
	e := r.Last.Add(p.Window)
	for _, t := range []time.Time{r.NotBefore, r.BlockedUntil, r.Trusted.Add(p.TrustFor)} {
		if t.After(e) {
			e = t
		}
	}
	return e
}

func decodeRecord(b []byte) (sharedRecord, error) {
	var r sharedRecord
	if b == nil {
		return r, nil
	}
	err := json.Unmarshal(b, &r)
	return r, err
}

// loadShared reads the pair's and, unless the pair is trusted, the
// client's shared records and makes them the limiter's own: what other
// nodes counted applies here. Pending checks stay local. A failed read
// keeps the local state.
func (l *Limiter) loadShared(ctx context.Context, a *Attempt) {
	now := l.p.Now()
	pb, err := l.p.Shared.GetShared(ctx, pairKeyString(a.pair), now)
	if err != nil {
		l.sharedFailed()
		return
	}
	pr, err := decodeRecord(pb)
	if err != nil {
		l.sharedFailed()
		return
	}
	a.sharedTrusted, a.sharedClean = pr.Trusted, pr.Count == 0 && pr.NotBefore.IsZero()
	var cr sharedRecord
	var haveClient bool
	if pr.Trusted.IsZero() || now.Sub(pr.Trusted) > l.p.TrustFor {
		cb, err := l.p.Shared.GetShared(ctx, clientKey(a.pair.client), now)
		if err == nil {
			cr, err = decodeRecord(cb)
		}
		if err != nil {
			l.sharedFailed()
		} else {
			haveClient = true
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if !pr.Trusted.IsZero() && now.Sub(pr.Trusted) <= l.p.TrustFor {
		if t, ok := l.trusted[a.pair]; !ok || t.Before(pr.Trusted) {
			if !ok && len(l.trusted) >= l.p.MaxEntries {
				l.evictTrusted(now)
			}
			l.trusted[a.pair] = pr.Trusted
		}
	}
	adopt(l.pairs, a.pair, pr, l, now)
	if haveClient {
		adopt(l.clients, a.pair.client, cr, l, now)
	}
}

// adopt makes the shared record s the local record of k, keeping the
// local count of pending checks. Callers hold l.mu.
func adopt[K comparable](m map[K]*record, k K, s sharedRecord, l *Limiter, now time.Time) {
	r := m[k]
	if r == nil {
		if s.Count == 0 && !now.Before(s.BlockedUntil) && !now.Before(s.NotBefore) {
			return
		}
		r = recordFor(m, k, l, now)
	}
	r.count, r.last, r.notBefore, r.blockedUntil = s.Count, s.Last, s.NotBefore, s.BlockedUntil
}

// errBudgetSpent aborts a budget update that found no free slot.
var errBudgetSpent = errors.New("authlimit: budget spent")

// takeSharedBudget takes one slot of login's shared stranger budget, or
// returns how long until one frees up. A login found spent is
// remembered until then, so that refusals cost no write. If the shared
// state cannot be reached, the local budget is used.
func (l *Limiter) takeSharedBudget(ctx context.Context, login string) time.Duration {
	now := l.p.Now()
	l.mu.Lock()
	until, spent := l.spent[login]
	l.mu.Unlock()
	if spent && now.Before(until) {
		return until.Sub(now)
	}
	var wait time.Duration
	err := l.p.Shared.UpdateShared(ctx, budgetKey(login), now, func(cur []byte) ([]byte, time.Time, error) {
		var b sharedBudget
		if cur != nil {
			if err := json.Unmarshal(cur, &b); err != nil {
				return nil, time.Time{}, err
			}
		}
		bb := budget{checks: b.Checks}
		bb.prune(l.p.StrangerWindow, now)
		if len(bb.checks) >= l.p.StrangerChecks {
			wait = max(bb.checks[0].Add(l.p.StrangerWindow).Sub(now), time.Nanosecond)
			return nil, time.Time{}, errBudgetSpent
		}
		bb.checks = append(bb.checks, now)
		next, err := json.Marshal(sharedBudget{Checks: bb.checks})
		return next, now.Add(l.p.StrangerWindow), err
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case errors.Is(err, errBudgetSpent):
		if _, ok := l.spent[login]; !ok && len(l.spent) >= l.p.MaxEntries {
			for k, t := range l.spent {
				if !now.Before(t) || len(l.spent) > l.evictTarget() {
					delete(l.spent, k)
				}
			}
		}
		l.spent[login] = now.Add(wait)
		return wait
	case err != nil:
		l.sharedErrors++
		return l.takeBudget(login, now)
	}
	return 0
}

// failShared counts a failure on the shared record of key under b and
// returns the record as stored.
func (l *Limiter) failShared(ctx context.Context, key string, b *Backoff) (sharedRecord, error) {
	now := l.p.Now()
	var out sharedRecord
	err := l.p.Shared.UpdateShared(ctx, key, now, func(cur []byte) ([]byte, time.Time, error) {
		s, err := decodeRecord(cur)
		if err != nil {
			return nil, time.Time{}, err
		}
		r := record{count: s.Count, last: s.Last, notBefore: s.NotBefore, blockedUntil: s.BlockedUntil}
		r.fail(b, l.p.Window, now)
		s.Count, s.Last, s.NotBefore, s.BlockedUntil = r.count, r.last, r.notBefore, r.blockedUntil
		out = s
		next, err := json.Marshal(s)
		return next, l.p.expiry(s), err
	})
	return out, err
}

// succeedShared forgets the pair's shared failures (unless it is
// blocked) and trusts it from now. It writes only when something
// changes or the stored trust is older than TrustFor/16, so that a
// user's frequent logins cost no write each.
func (l *Limiter) succeedShared(ctx context.Context, a *Attempt) error {
	now := l.p.Now()
	if a.sharedClean && !a.sharedTrusted.IsZero() && now.Sub(a.sharedTrusted) < l.p.TrustFor/16 {
		return nil
	}
	return l.p.Shared.UpdateShared(ctx, pairKeyString(a.pair), now, func(cur []byte) ([]byte, time.Time, error) {
		s, err := decodeRecord(cur)
		if err != nil {
			return nil, time.Time{}, err
		}
		if !now.Before(s.BlockedUntil) {
			s.Count, s.NotBefore = 0, time.Time{}
		}
		s.Trusted = now
		next, err := json.Marshal(s)
		return next, l.p.expiry(s), err
	})
}

// sharedFailed counts a failed call to Policy.Shared.
func (l *Limiter) sharedFailed() {
	l.mu.Lock()
	l.sharedErrors++
	l.mu.Unlock()
}

// SweepShared deletes the entries of Policy.Shared that expired and
// returns how many; without Policy.Shared it does nothing. Run it
// periodically on one node or all (examples/mailserver runs it hourly):
// entries expire by themselves, so this only bounds what the shared
// store holds.
func (l *Limiter) SweepShared(ctx context.Context) (int, error) {
	if l.p.Shared == nil {
		return 0, nil
	}
	return l.p.Shared.SweepShared(ctx, l.p.Now())
}

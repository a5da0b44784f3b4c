package authlimit

import (
	"net/netip"
	"slices"
	"time"
)

// record is what the limiter remembers of a client or a pair.
type record struct {
	count        int       // failures in a row, until Window passes
	last         time.Time // the last failure
	notBefore    time.Time // the last failure's delay ends
	blockedUntil time.Time
	pending      int // reserved checks without a verdict yet
}

// reasonBlocked is what a record's refusal says before the limiter names
// the kind of record.
const reasonBlocked = ReasonClientBlocked

// reasonBusy says a record's unfinished checks would block it if they
// failed: the limiter waits for their verdicts instead of refusing, so a
// client's parallel logins are never refused for being parallel.
const reasonBusy Reason = -1

// forget clears failures that are older than window, unless a block runs.
func (r *record) forget(window time.Duration, now time.Time) {
	if r.count > 0 && now.Sub(r.last) > window && !now.Before(r.blockedUntil) {
		r.count = 0
	}
}

// refuses reports why a new check must not run now, and for how long, or
// 0. A nil record refuses nothing.
func (r *record) refuses(b *Backoff, window time.Duration, now time.Time) (Reason, time.Duration) {
	if r == nil {
		return 0, 0
	}
	r.forget(window, now)
	switch {
	case now.Before(r.blockedUntil):
		return reasonBlocked, r.blockedUntil.Sub(now)
	case r.pending > 0 && r.count+r.pending >= b.BlockAfter:
		// Unfinished checks would block if they failed: wait for them.
		return reasonBusy, 0
	case r.count >= b.BlockAfter:
		return reasonBlocked, b.BaseDelay
	case now.Before(r.notBefore):
		return ReasonTooSoon, r.notBefore.Sub(now)
	}
	return 0, 0
}

// idle reports whether the record holds no failures and no unfinished
// check; a nil record is idle.
func (r *record) idle(window time.Duration, now time.Time) bool {
	if r == nil {
		return true
	}
	r.forget(window, now)
	return r.count == 0 && r.pending == 0
}

// empty reports whether the record can be deleted.
func (r *record) empty(window time.Duration, now time.Time) bool {
	return r.idle(window, now) && !now.Before(r.blockedUntil) && !now.Before(r.notBefore)
}

// fail counts one failure under b and returns the delay before the next
// check.
func (r *record) fail(b *Backoff, window time.Duration, now time.Time) time.Duration {
	r.forget(window, now)
	r.count++
	r.last = now
	if r.count >= b.BlockAfter {
		r.blockedUntil = now.Add(b.BlockFor)
		// One below the threshold: the first failure after the block
		// blocks again, until Window passes without failures.
		r.count = b.BlockAfter - 1
		d := b.delay(b.BlockAfter)
		r.notBefore = now.Add(d)
		return d
	}
	d := b.delay(r.count)
	r.notBefore = now.Add(d)
	return d
}

// budget is one login's stranger checks within the window, oldest first;
// it never holds more than Policy.StrangerChecks.
type budget struct {
	checks []time.Time
}

func (b *budget) prune(window time.Duration, now time.Time) {
	i := 0
	for i < len(b.checks) && now.Sub(b.checks[i]) >= window {
		i++
	}
	b.checks = b.checks[i:]
}

// sweepEvery is how often Begin drops forgotten entries from every table.
const sweepEvery = time.Minute

// maybeSweep drops forgotten entries once per sweepEvery. Callers hold
// l.mu.
func (l *Limiter) maybeSweep(now time.Time) {
	if now.Sub(l.lastSweep) < sweepEvery {
		return
	}
	l.lastSweep = now
	sweepRecords(l.clients, l.p.Window, now)
	sweepRecords(l.pairs, l.p.Window, now)
	for k, b := range l.budgets {
		if b.prune(l.p.StrangerWindow, now); len(b.checks) == 0 {
			delete(l.budgets, k)
		}
	}
	for k, t := range l.trusted {
		if now.Sub(t) > l.p.TrustFor {
			delete(l.trusted, k)
		}
	}
	for k, t := range l.spent {
		if !now.Before(t) {
			delete(l.spent, k)
		}
	}
}

func sweepRecords[K comparable](m map[K]*record, window time.Duration, now time.Time) {
	for k, r := range m {
		if r.empty(window, now) {
			delete(m, k)
		}
	}
}

// evictTarget is what a full table is cut down to, so that eviction runs
// once per MaxEntries/8 insertions rather than on each.
func (l *Limiter) evictTarget() int { return l.p.MaxEntries - l.p.MaxEntries/8 - 1 }

// clientRecord returns the client's record, making room for it if needed.
func (l *Limiter) clientRecord(k netip.Prefix, now time.Time) *record {
	return recordFor(l.clients, k, l, now)
}

// pairRecord returns the pair's record, making room for it if needed.
func (l *Limiter) pairRecord(k pairKey, now time.Time) *record {
	return recordFor(l.pairs, k, l, now)
}

func recordFor[K comparable](m map[K]*record, k K, l *Limiter, now time.Time) *record {
	if r := m[k]; r != nil {
		return r
	}
	if len(m) >= l.p.MaxEntries {
		evictRecords(m, l.evictTarget(), l.p.Window, now)
	}
	r := &record{}
	m[k] = r
	return r
}

// evictRecords cuts m down to target: forgotten entries first, then
// entries without a block or an unfinished check, then any.
func evictRecords[K comparable](m map[K]*record, target int, window time.Duration, now time.Time) {
	sweepRecords(m, window, now)
	for pass := 0; pass < 3 && len(m) > target; pass++ {
		for k, r := range m {
			if len(m) <= target {
				break
			}
			if pass == 0 && (now.Before(r.blockedUntil) || r.pending > 0) {
				continue
			}
			if pass == 1 && now.Before(r.blockedUntil) {
				continue
			}
			delete(m, k)
		}
	}
}

// evictBudgets cuts the budgets down: spent ones first, then any.
func (l *Limiter) evictBudgets(now time.Time) {
	target := l.evictTarget()
	for k, b := range l.budgets {
		if b.prune(l.p.StrangerWindow, now); len(b.checks) == 0 {
			delete(l.budgets, k)
		}
	}
	for k := range l.budgets {
		if len(l.budgets) <= target {
			break
		}
		delete(l.budgets, k)
	}
}

// evictTrusted cuts the trusted pairs down, forgetting the oldest
// successes first: a flood of new successes cannot push out a user who
// logged in yesterday unless it is larger than the table.
func (l *Limiter) evictTrusted(now time.Time) {
	type entry struct {
		k pairKey
		t time.Time
	}
	all := make([]entry, 0, len(l.trusted))
	for k, t := range l.trusted {
		if now.Sub(t) > l.p.TrustFor {
			delete(l.trusted, k)
			continue
		}
		all = append(all, entry{k, t})
	}
	over := len(l.trusted) - l.evictTarget()
	if over <= 0 {
		return
	}
	slices.SortFunc(all, func(a, b entry) int { return a.t.Compare(b.t) })
	for _, e := range all[:over] {
		delete(l.trusted, e.k)
	}
}

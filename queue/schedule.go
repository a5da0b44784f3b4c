package queue

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/routing"
)

// destination is where jobs with the same hop (and, for MX delivery, the
// same recipient domain) go; its workers share nothing but the job list.
type destination struct {
	key     string
	label   string // for metrics: the next hop, or MX:domain; no credentials
	pending []*outJob
	workers int
	signal  chan struct{} // a job was added, for lingering workers
}

// outJob is one message for the claimed recipients of one destination.
type outJob struct {
	msg    string
	items  []Recipient
	hop    routing.Hop
	domain string    // the recipients' domain, for MX delivery
	until  time.Time // when the lease on items ends
}

// destLabel names a destination in metrics.
func destLabel(j *outJob) string {
	if j.hop.NextHop.Host == "" {
		return "MX:" + j.domain
	}
	return j.hop.NextHop.String()
}

// destKey names a recipient's destination; hop is its current next hop.
func destKey(r Recipient, hop routing.Hop) string {
	// The password too: a connection authenticated with one route's
	// credentials must not carry another route's mail.
	k := hop.NextHop.String() + "|" + hop.TLS.String()
	if hop.Auth != nil {
		k += "|" + hop.Auth.Username + "\x00" + hop.Auth.Password
	}
	if hop.NextHop.Host == "" {
		k += "|" + domainOf(r.Address)
	}
	return k
}

// hopFor returns the next hop of r now: its transport's hop in the
// current routing configuration, or the hop stored at enqueue time when
// it has no transport (MX delivery) or there is no Routes.
func (q *Queue) hopFor(r Recipient) (routing.Hop, error) {
	if r.Transport != "" && q.opts.Routes != nil {
		h, ok := q.opts.Routes.Transport(r.Transport)
		if !ok {
			return routing.Hop{}, fmt.Errorf("transport %q is no longer in the routing configuration", r.Transport)
		}
		return h, nil
	}
	nh, err := routing.ParseNextHop(r.NextHop)
	if err != nil {
		return routing.Hop{}, err
	}
	return routing.Hop{NextHop: nh, TLS: r.TLS, Route: r.Transport}, nil
}

// schedule is the scheduler goroutine (step 3 of [Queue]).
func (q *Queue) schedule(ctx context.Context) {
	defer q.wg.Done()
	for {
		next := q.dispatch(ctx)
		wait := q.opts.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(next.Sub(q.opts.Now()), 10*time.Millisecond))
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-q.wake:
		case <-t.C:
		}
		t.Stop()
	}
}

// dispatch claims due recipients, as many as MaxInFlight leaves room
// for, hands them to their destinations' workers and returns when the
// next one falls due (zero: none waiting, or no room).
func (q *Queue) dispatch(ctx context.Context) time.Time {
	q.mu.Lock()
	room := q.opts.MaxInFlight - q.inflight
	closed := q.closed
	q.mu.Unlock()
	if closed || room <= 0 {
		// A worker that settles its job wakes the scheduler.
		return time.Time{}
	}
	now := q.opts.Now()
	until := now.Add(q.opts.Lease)
	rs, err := q.opts.Store.ClaimRecipients(ctx, q.opts.Owner, now, until, room)
	if err != nil {
		if ctx.Err() == nil {
			q.log.Error("queue claim failed", "err", err)
		}
		return time.Time{}
	}
	q.assign(ctx, rs, until)
	if len(rs) == room {
		return now // there may be more: come back when a worker is done
	}
	next, ok, err := q.opts.Store.NextDue(ctx, now)
	if err != nil || !ok {
		return time.Time{}
	}
	return next
}

// assign groups claimed recipients into jobs by message and destination
// and starts workers for them.
func (q *Queue) assign(ctx context.Context, rs []Recipient, until time.Time) {
	if len(rs) == 0 {
		return
	}
	q.mu.Lock()
	q.inflight += len(rs)
	q.mu.Unlock()
	jobs := map[string]*outJob{}
	var order []string
	for _, r := range rs {
		hop, err := q.hopFor(r)
		if err != nil {
			q.unroutable(ctx, r, until, err)
			continue
		}
		dk := destKey(r, hop)
		jk := r.Msg + "\x00" + dk
		j := jobs[jk]
		if j == nil {
			j = &outJob{msg: r.Msg, hop: hop, domain: domainOf(r.Address), until: until}
			jobs[jk] = j
			order = append(order, jk)
		}
		j.items = append(j.items, r)
	}
	slices.Sort(order) // oldest message first: ids sort by time
	q.mu.Lock()
	defer q.mu.Unlock()
	for _, jk := range order {
		j := jobs[jk]
		slices.SortFunc(j.items, func(a, b Recipient) int { return a.Index - b.Index })
		dk := jk[strings.IndexByte(jk, 0)+1:]
		d := q.dests[dk]
		if d == nil {
			d = &destination{key: dk, label: destLabel(j), signal: make(chan struct{}, q.opts.PerDestination)}
			q.dests[dk] = d
		}
		d.pending = append(d.pending, j)
		select {
		case d.signal <- struct{}{}:
		default:
		}
	}
	q.startWorkers(ctx)
}

// unroutable settles a recipient whose transport is gone as a temporary
// failure, so that a fixed configuration still delivers it (and an
// unfixed one bounces it at Expiry). It counts as in flight until then.
func (q *Queue) unroutable(ctx context.Context, r Recipient, until time.Time, err error) {
	j := &outJob{msg: r.Msg, items: []Recipient{r}, domain: domainOf(r.Address), until: until}
	q.wg.Add(1)
	go func() {
		defer q.wg.Done()
		q.finish(ctx, j, []rcptResult{{text: err.Error()}})
	}()
}

// startWorkers starts a worker for each destination with more pending
// jobs than workers, within the bounds. The caller holds q.mu.
func (q *Queue) startWorkers(ctx context.Context) {
	if ctx.Err() != nil {
		return
	}
	for dk, d := range q.dests {
		for len(d.pending) > d.workers && d.workers < q.opts.PerDestination && q.active < q.opts.Concurrency {
			d.workers++
			q.active++
			q.wg.Add(1)
			go q.worker(ctx, d)
		}
		if d.workers == 0 && len(d.pending) == 0 {
			delete(q.dests, dk)
		}
	}
}

// worker delivers the destination's jobs over one connection, reused from
// job to job, and ends when none is left for idleLinger.
func (q *Queue) worker(ctx context.Context, d *destination) {
	defer q.wg.Done()
	var c *outConn
	defer func() {
		c.quit()
		q.mu.Lock()
		d.workers--
		q.active--
		q.startWorkers(ctx) // another destination may be waiting for a slot
		q.mu.Unlock()
		q.kick()
	}()
	for {
		if ctx.Err() != nil {
			// Closing: what is left is retried after the restart.
			return
		}
		j := q.nextJob(d)
		if j == nil {
			if !q.linger(ctx, d) {
				return
			}
			continue
		}
		if !q.renew(ctx, j) {
			continue
		}
		c = q.deliver(ctx, c, j)
	}
}

// renew extends the job's claim to a whole lease from now, just before
// its attempt: a job that waited behind others for a worker would
// otherwise start with little of its lease left, and an attempt that
// ends after its lease can be settled after another node (or another
// claim here) has claimed the recipients again and sent them a second
// time. Recipients whose claim could not be renewed (it ended and they
// were claimed again) are dropped from the job; renew reports whether any
// are left to attempt.
func (q *Queue) renew(ctx context.Context, j *outJob) bool {
	keys := make([]RecipientKey, len(j.items))
	for i, r := range j.items {
		keys[i] = r.Key()
	}
	until := q.opts.Now().Add(q.opts.Lease)
	got, err := q.opts.Store.RenewLeases(ctx, q.opts.Owner, keys, j.until, until)
	if err != nil {
		// Not attempted: the recipients are claimed again when
		// their lease ends.
		if ctx.Err() == nil {
			q.log.Error("queue lease renewal failed; attempted later", "queue_id", j.msg, "err", err)
		}
		q.done(len(j.items))
		return false
	}
	if len(got) < len(j.items) {
		q.log.Warn("queue lease ended before the attempt; claimed again later", "queue_id", j.msg,
			"recipients", len(j.items)-len(got))
		renewed := make(map[RecipientKey]bool, len(got))
		for _, k := range got {
			renewed[k] = true
		}
		kept := j.items[:0]
		for _, r := range j.items {
			if renewed[r.Key()] {
				kept = append(kept, r)
			}
		}
		q.done(len(j.items) - len(kept))
		j.items = kept
	}
	j.until = until
	return len(j.items) > 0
}

// nextJob takes the destination's first pending job, or nil.
func (q *Queue) nextJob(d *destination) *outJob {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(d.pending) == 0 {
		return nil
	}
	j := d.pending[0]
	d.pending = d.pending[1:]
	return j
}

// linger waits up to idleLinger for another job of d; it reports whether
// the worker should go on.
func (q *Queue) linger(ctx context.Context, d *destination) bool {
	t := time.NewTimer(idleLinger)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-d.signal:
		return true
	case <-t.C:
		q.mu.Lock()
		defer q.mu.Unlock()
		return len(d.pending) > 0
	}
}

// done counts n recipients as no longer in flight and wakes the
// scheduler, which may claim more.
func (q *Queue) done(n int) {
	q.mu.Lock()
	q.inflight -= n
	q.mu.Unlock()
	q.kick()
}

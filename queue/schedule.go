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
// While the job waits in its destination's pending list, a renewal
// started by another worker of the destination may change items and
// until (under q.mu, announced by renewal); once a worker has taken the
// job and renew has returned, only that worker uses it.
type outJob struct {
	msg    string
	items  []Recipient
	hop    routing.Hop
	domain string    // the recipients' domain, for MX delivery
	until  time.Time // when the lease on items ends
	// renewal is set while a renewal of the job's claim is in the
	// store, and closed when it is done (see renew).
	renewal chan struct{}
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
		if !q.renew(ctx, d, j) {
			continue
		}
		c = q.deliver(ctx, c, j)
	}
}

// renewalDue reports whether an attempt starting at now on a claim that
// ends at until must renew the claim first: when more than a quarter of
// the Lease has passed since the claim was taken or last renewed. So
// every attempt starts with at least half the Lease before leased cuts
// its connection, and an attempt that starts soon after its claim, as
// nearly all do, costs no store write.
func (q *Queue) renewalDue(until, now time.Time) bool {
	return until.Sub(now) < q.opts.Lease*3/4
}

// renew makes sure job j, just taken from destination d, has enough of
// its claim left for its attempt (renewalDue). A job that waited behind
// others for a worker would otherwise start with little of its lease
// left, and an attempt that ends after its lease can be settled after
// another node (or another claim here) has claimed the recipients again
// and sent them a second time. When j's claim must be renewed, the claims
// of every job still waiting for d are renewed with it, in one store
// write, to a whole Lease from now: the destination's next jobs then
// start without a write of their own, so a backlog costs one write per
// destination per quarter Lease instead of one per message.
//
// Recipients whose claim could not be renewed (it ended and they were
// claimed again) are dropped from their job; renew reports whether any
// of j's are left to attempt.
func (q *Queue) renew(ctx context.Context, d *destination, j *outJob) bool {
	q.mu.Lock()
	for j.renewal != nil {
		// Another worker of d is renewing j with its own job.
		wait := j.renewal
		q.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return false // closing: retried after the restart
		}
		q.mu.Lock()
	}
	now := q.opts.Now()
	if len(j.items) == 0 || !q.renewalDue(j.until, now) {
		q.mu.Unlock()
		return len(j.items) > 0
	}
	batch := []*outJob{j}
	for _, p := range d.pending {
		if p.renewal == nil {
			batch = append(batch, p)
		}
	}
	wait := make(chan struct{})
	var claims []Claim
	for _, b := range batch {
		b.renewal = wait
		for _, r := range b.items {
			claims = append(claims, Claim{RecipientKey: r.Key(), Until: b.until})
		}
	}
	q.mu.Unlock()

	until := now.Add(q.opts.Lease)
	got, err := q.opts.Store.RenewLeases(ctx, q.opts.Owner, claims, until)
	q.mu.Lock()
	dropped := 0
	if err != nil {
		// j is not attempted: its recipients are claimed again when
		// their lease ends. The other jobs keep their claims as they
		// were and try again when their turn comes.
		if ctx.Err() == nil {
			q.log.Error("queue lease renewal failed; attempted later", "queue_id", j.msg, "err", err)
		}
		dropped = len(j.items)
		j.items = nil
	} else {
		renewed := make(map[RecipientKey]bool, len(got))
		for _, k := range got {
			renewed[k] = true
		}
		for _, b := range batch {
			kept := b.items[:0]
			for _, r := range b.items {
				if renewed[r.Key()] {
					kept = append(kept, r)
				}
			}
			if n := len(b.items) - len(kept); n > 0 {
				q.log.Warn("queue lease ended before the attempt; claimed again later", "queue_id", b.msg, "recipients", n)
				dropped += n
			}
			b.items, b.until = kept, until
		}
		d.pending = slices.DeleteFunc(d.pending, func(p *outJob) bool { return len(p.items) == 0 })
	}
	for _, b := range batch {
		b.renewal = nil
	}
	close(wait)
	left := len(j.items) > 0
	q.mu.Unlock()
	if dropped > 0 {
		q.done(dropped)
	}
	return left
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

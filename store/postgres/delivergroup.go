package postgres

import (
	"context"
	"slices"
	"sync"
)

// maxDeliveryGroup bounds how many deliveries share one transaction, so
// that one transaction's statements and the time its locks are held stay
// bounded however many sessions deliver at once.
const maxDeliveryGroup = 64

// deliveryGroups is the group commit of Deliver. Deliveries that lock
// the same accounts (the same groupKey) run one transaction at a time
// per key: the first runs alone at once (no wait when the store is
// quiet), and those that arrive while a transaction for their key is
// in flight queue; when it ends, the first of them leads the next
// transaction, which takes all of them. They would have waited as long
// in PostgreSQL for the accounts' row locks, one commit and one WAL
// flush each; now a queue of n costs one.
//
// The leader runs the group with its context stripped of cancellation
// (a client that hangs up must not fail the others' deliveries; the
// statement timeout still bounds it). A caller whose context ends
// while it is still queued leaves the queue with the context's error;
// one already taken into a transaction waits for its outcome.
type deliveryGroups struct {
	mu     sync.Mutex
	queues map[string]*deliveryQueue // a key is present while a transaction for it runs
}

// deliveryQueue holds the deliveries waiting for a key's next
// transaction.
type deliveryQueue struct {
	waiting []*groupMember
}

// groupMember is one waiting caller. Its state changes under
// deliveryGroups.mu; wake gets one signal for each change its owner
// must react to (made leader, done).
type groupMember struct {
	p     *pendingDelivery
	state memberState
	wake  chan struct{}
}

type memberState int

const (
	memberQueued  memberState = iota // waiting in the queue
	memberTaken                      // part of a running transaction
	memberLeading                    // to run the next transaction
	memberDone                       // its outcome is in p
)

// run stores p, in a transaction of its own or in one shared with the
// deliveries queued with it, by calling commit (Store.deliverGroup). It
// returns p's own outcome.
func (g *deliveryGroups) run(ctx context.Context, p *pendingDelivery, commit func(context.Context, []*pendingDelivery) error) error {
	key := p.groupKey()
	m := &groupMember{p: p, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	if g.queues == nil {
		g.queues = map[string]*deliveryQueue{}
	}
	q, busy := g.queues[key]
	if busy {
		q.waiting = append(q.waiting, m)
	} else {
		q = &deliveryQueue{}
		g.queues[key] = q
		m.state = memberLeading
	}
	g.mu.Unlock()
	if busy && !g.wait(ctx, q, m) {
		return ctx.Err()
	}
	if m.state == memberDone { // read under mu in wait, and never changed after
		return p.err
	}
	g.lead(context.WithoutCancel(ctx), key, q, m, commit)
	return p.err
}

// wait blocks until m leads or is done; false if ctx ended while m was
// still queued, which takes m out of the queue.
func (g *deliveryGroups) wait(ctx context.Context, q *deliveryQueue, m *groupMember) bool {
	for {
		select {
		case <-m.wake:
		case <-ctx.Done():
			g.mu.Lock()
			if m.state == memberQueued {
				q.waiting = slices.DeleteFunc(q.waiting, func(o *groupMember) bool { return o == m })
				g.mu.Unlock()
				return false
			}
			g.mu.Unlock()
			<-m.wake
		}
		g.mu.Lock()
		st := m.state
		g.mu.Unlock()
		if st == memberLeading || st == memberDone {
			return true
		}
	}
}

// lead runs the next transaction of key's queue with m first, hands
// every member its outcome, and makes the first one still queued the
// next leader (or retires the key).
func (g *deliveryGroups) lead(ctx context.Context, key string, q *deliveryQueue, m *groupMember, commit func(context.Context, []*pendingDelivery) error) {
	g.mu.Lock()
	n := min(len(q.waiting), maxDeliveryGroup-1)
	members := append([]*groupMember{m}, q.waiting[:n]...)
	q.waiting = slices.Delete(q.waiting, 0, n)
	for _, o := range members {
		o.state = memberTaken
	}
	g.mu.Unlock()
	group := make([]*pendingDelivery, len(members))
	for i, o := range members {
		group[i] = o.p
	}
	if err := commit(ctx, group); err != nil {
		if len(group) == 1 {
			group[0].err = err
		} else {
			// The transaction failed as a whole: try each alone, so
			// that what one of them caused fails only that one.
			for _, p := range group {
				p.err = nil
				if err := commit(ctx, []*pendingDelivery{p}); err != nil {
					p.err = err
				}
			}
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	m.state = memberDone
	for _, o := range members[1:] {
		o.state = memberDone
		o.wake <- struct{}{}
	}
	if len(q.waiting) == 0 {
		delete(g.queues, key)
		return
	}
	next := q.waiting[0]
	q.waiting = q.waiting[1:]
	next.state = memberLeading
	next.wake <- struct{}{}
}

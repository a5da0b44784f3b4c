package postgres

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"slices"
	"sync"
	"sync/atomic"
)

// commitGroups is the group commit of the writes that lock the same
// rows first thing: Deliver's (keyed by the accounts it locks,
// Store.deliveries) and the pipelined writes to one account's
// mailboxes (keyed by the account, Store.accountWrites: Append,
// AppendBatch, StoreFlags, Expunge, Copy, Move).
//
// Items with the same key run one transaction at a time: the first
// runs alone at once (no wait when the store is quiet), and those that
// arrive while a transaction for their key is in flight queue in
// memory, holding no pool connection; when it ends, the first of them
// leads the next transaction, which takes up to max of them. They
// would have waited as long in PostgreSQL for the row lock, one commit
// and one WAL flush each; now a queue of n costs one.
//
// A transaction of one item runs under that caller's context. One of
// several runs under a context that ends only when every member's has
// ended (a client that hangs up must not fail the others' writes). A
// caller whose context ends while it is still queued leaves the queue
// with the context's error; one already taken into a transaction waits
// for its outcome. A panic in commit (a member's code) fails every
// member with an error instead of leaving the key's queue stuck.
type commitGroups[T any] struct {
	max    int // items in one transaction, at least 1
	mu     sync.Mutex
	queues map[string]*commitQueue[T] // a key is present while a transaction for it runs
}

// groupCommit runs items in one transaction. It returns each item's
// own outcome in errs (nil for all succeeded, else one per item: an
// item refused by what it read is refused alone and the transaction
// goes on without it), or txErr if the transaction failed as a whole,
// which stored none of them. An uncertain txErr (uncertainError: the
// COMMIT was sent and may have taken effect) is the outcome of every
// item not refused in errs; any other makes the caller try each item
// alone.
type groupCommit[T any] func(ctx context.Context, items []T) (errs []error, txErr error)

// commitQueue holds the items waiting for a key's next transaction.
type commitQueue[T any] struct {
	waiting []*groupMember[T]
}

// groupMember is one waiting caller. Its state changes under
// commitGroups.mu; wake gets one signal for each change its owner must
// react to (made leader, done).
type groupMember[T any] struct {
	ctx   context.Context
	item  T
	err   error
	state memberState
	wake  chan struct{}
}

type memberState int

const (
	memberQueued  memberState = iota // waiting in the queue
	memberTaken                      // part of a running transaction
	memberLeading                    // to run the next transaction
	memberDone                       // its outcome is in err
)

// run stores item under key, in a transaction of its own or in one
// shared with the items queued with it, by calling commit. It returns
// item's own outcome.
func (g *commitGroups[T]) run(ctx context.Context, key string, item T, commit groupCommit[T]) error {
	m := &groupMember[T]{ctx: ctx, item: item, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	if g.queues == nil {
		g.queues = map[string]*commitQueue[T]{}
	}
	q, busy := g.queues[key]
	if busy {
		q.waiting = append(q.waiting, m)
	} else {
		q = &commitQueue[T]{}
		g.queues[key] = q
		m.state = memberLeading
	}
	g.mu.Unlock()
	if busy && !g.wait(ctx, q, m) {
		return ctx.Err()
	}
	if m.state == memberDone { // read under mu in wait, and never changed after
		return m.err
	}
	g.lead(key, q, m, commit)
	return m.err
}

// queued is how many items wait for a transaction, over every key.
func (g *commitGroups[T]) queued() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	n := 0
	for _, q := range g.queues {
		n += len(q.waiting)
	}
	return n
}

// wait blocks until m leads or is done; false if ctx ended while m was
// still queued, which takes m out of the queue.
func (g *commitGroups[T]) wait(ctx context.Context, q *commitQueue[T], m *groupMember[T]) bool {
	for {
		select {
		case <-m.wake:
		case <-ctx.Done():
			g.mu.Lock()
			if m.state == memberQueued {
				q.waiting = slices.DeleteFunc(q.waiting, func(o *groupMember[T]) bool { return o == m })
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
func (g *commitGroups[T]) lead(key string, q *commitQueue[T], m *groupMember[T], commit groupCommit[T]) {
	g.mu.Lock()
	n := min(len(q.waiting), max(g.max, 1)-1)
	members := append([]*groupMember[T]{m}, q.waiting[:n]...)
	q.waiting = slices.Delete(q.waiting, 0, n)
	for _, o := range members {
		o.state = memberTaken
	}
	g.mu.Unlock()
	defer g.handOn(key, q, members)
	ctx, cancel := groupContext(members)
	defer cancel()
	items := make([]T, len(members))
	for i, o := range members {
		items[i] = o.item
	}
	errs, txErr := safeCommit(ctx, commit, items)
	var ue *uncertainError
	switch {
	case txErr == nil:
		for i, o := range members {
			if errs != nil {
				o.err = errs[i]
			}
		}
	case len(members) == 1 || errors.As(txErr, &ue):
		for i, o := range members {
			o.err = txErr
			if errs != nil && errs[i] != nil {
				o.err = errs[i] // refused before the COMMIT
			}
		}
	default:
		// The transaction failed as a whole and stored nothing: try
		// each alone, so that what one of them caused fails only that
		// one.
		for i, o := range members {
			ctx, cancel := groupContext(members[i : i+1])
			errs, txErr := safeCommit(ctx, commit, items[i:i+1])
			cancel()
			switch {
			case errs != nil && errs[0] != nil:
				o.err = errs[0]
			case txErr != nil:
				o.err = txErr
			}
		}
	}
}

// handOn marks members done and wakes them, and makes the first caller
// still queued the next leader, or retires key.
func (g *commitGroups[T]) handOn(key string, q *commitQueue[T], members []*groupMember[T]) {
	g.mu.Lock()
	defer g.mu.Unlock()
	members[0].state = memberDone
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

// groupContext is the context a transaction of members runs under: the
// member's own if it is alone, else one that ends when all of theirs
// have ended.
func groupContext[T any](members []*groupMember[T]) (context.Context, context.CancelFunc) {
	if len(members) == 1 {
		return members[0].ctx, func() {}
	}
	ctx, cancel := context.WithCancel(context.WithoutCancel(members[0].ctx))
	var left atomic.Int64
	left.Store(int64(len(members)))
	stops := make([]func() bool, len(members))
	for i, o := range members {
		stops[i] = context.AfterFunc(o.ctx, func() {
			if left.Add(-1) == 0 {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

// safeCommit calls commit, turning a panic into a failure of the whole
// transaction that is not retried.
func safeCommit[T any](ctx context.Context, commit groupCommit[T], items []T) (errs []error, txErr error) {
	defer func() {
		if r := recover(); r != nil {
			errs, txErr = nil, &uncertainError{fmt.Errorf("postgres: internal error: panic in a write: %v\n%s", r, debug.Stack())}
		}
	}()
	return commit(ctx, items)
}

// uncertainError is the error of a write whose COMMIT was sent and not
// answered: it may have committed, so it must not be tried again.
type uncertainError struct{ err error }

func (e *uncertainError) Error() string { return e.err.Error() }
func (e *uncertainError) Unwrap() error { return e.err }

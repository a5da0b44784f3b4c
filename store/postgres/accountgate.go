package postgres

import (
	"context"
	"sync"
)

// accountGates queue this Store's writes to one account's mailboxes in
// memory, one at a time, before they take a pool connection. Each of
// them locks the account's row first thing in its transaction, so two
// of them never ran at once anyway; but one waiting for that lock in
// PostgreSQL held a pool connection meanwhile, and ten IMAP sessions
// writing to each of five INBOXes held about half the pool waiting,
// while the reads of every account waited for a connection behind them
// (bench/README.md, "Session 13: the notification lock and the pool").
// Waiting here costs nothing but the gap between one write's commit and
// the next one's first round trip. Writes on other nodes, and Deliver (which locks several
// accounts and has its own queue, deliveryGroups), still wait in
// PostgreSQL.
type accountGates struct {
	mu sync.Mutex
	m  map[string]*accountGate
}

// accountGate is one account's queue: a write holds the token in ch;
// users counts the writes holding or waiting for it, and the gate is
// dropped when none is left.
type accountGate struct {
	ch    chan struct{}
	users int
}

// enter waits until no other write of this Store to account is between
// enter and its release, and returns the release; or ctx's error.
func (g *accountGates) enter(ctx context.Context, account string) (release func(), err error) {
	g.mu.Lock()
	if g.m == nil {
		g.m = make(map[string]*accountGate)
	}
	e := g.m[account]
	if e == nil {
		e = &accountGate{ch: make(chan struct{}, 1)}
		g.m[account] = e
	}
	e.users++
	g.mu.Unlock()
	leave := func() {
		g.mu.Lock()
		if e.users--; e.users == 0 {
			delete(g.m, account)
		}
		g.mu.Unlock()
	}
	select {
	case e.ch <- struct{}{}:
		return func() { <-e.ch; leave() }, nil
	case <-ctx.Done():
		leave()
		return nil, ctx.Err()
	}
}

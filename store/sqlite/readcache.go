package sqlite

import (
	"context"
	"database/sql"
	"sync"

	"github.com/mailyard/mailyard/store"
)

// maxReadStmts bounds the read pool's statement cache (see rstmt), as
// maxWriterStmts bounds the writer's: the read path uses a few dozen
// distinct texts; texts built per call beyond the bound run unprepared.
const maxReadStmts = 256

// readCache holds the read pool's statements prepared by text.
type readCache struct {
	mu      sync.Mutex
	stmts   map[string]*sql.Stmt
	pending map[string]bool // being prepared
	closed  bool
	wg      sync.WaitGroup // the preparing goroutines
}

// rstmt returns the read pool's prepared statement for q, or nil when it
// is not prepared (yet): the caller then runs q unprepared. A miss starts
// preparing q in the background, unless the cache is full. database/sql
// prepares a statement on each pooled connection the first time it runs
// there and keeps it, so a query is parsed once per connection instead
// of once per call: parsing was most of a poll's store time (the mailbox
// look-up after every IMAP command, issue 16). The preparing never
// happens in the caller: a caller inside a read transaction holds one of
// the pool's connections, and waiting for another could deadlock a full
// pool.
func (s *Store) rstmt(q string) *sql.Stmt {
	c := &s.rcache
	c.mu.Lock()
	defer c.mu.Unlock()
	if st, ok := c.stmts[q]; ok {
		return st
	}
	if c.closed || c.pending[q] || len(c.stmts)+len(c.pending) >= maxReadStmts || s.rdb == nil {
		return nil
	}
	if c.pending == nil {
		c.pending = make(map[string]bool)
	}
	c.pending[q] = true
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		st, err := s.rdb.PrepareContext(s.baseCtxOrBackground(), q)
		c.mu.Lock()
		defer c.mu.Unlock()
		delete(c.pending, q)
		if c.closed {
			if err == nil {
				st.Close()
			}
			return
		}
		if c.stmts == nil {
			c.stmts = make(map[string]*sql.Stmt)
		}
		// A statement that does not prepare (nil) runs unprepared and is
		// not tried again.
		c.stmts[q] = st
	}()
	return nil
}

// close waits for statements being prepared and closes them all.
func (c *readCache) close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	var first error
	for _, st := range c.stmts {
		if st == nil {
			continue
		}
		if err := st.Close(); err != nil && first == nil {
			first = err
		}
	}
	c.stmts = nil
	return first
}

// rtx is a read transaction whose queries run prepared (see rstmt).
type rtx struct {
	*sql.Tx
	s *Store
}

func (t *rtx) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	t.s.reads.Add(1)
	if st := t.s.rstmt(q); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return t.Tx.QueryContext(ctx, q, args...)
}

func (t *rtx) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	t.s.reads.Add(1)
	if st := t.s.rstmt(q); st != nil {
		return t.Tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return t.Tx.QueryRowContext(ctx, q, args...)
}

// rpool runs single queries on the read pool, prepared (see rstmt).
type rpool struct{ s *Store }

func (p rpool) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return p.s.rdb.ExecContext(ctx, q, args...)
}

func (p rpool) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	p.s.reads.Add(1)
	if st := p.s.rstmt(q); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return p.s.rdb.QueryContext(ctx, q, args...)
}

func (p rpool) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	p.s.reads.Add(1)
	if st := p.s.rstmt(q); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return p.s.rdb.QueryRowContext(ctx, q, args...)
}

// changeCounts are the numbers behind [Store.ChangeCount].
type changeCounts struct {
	mu       sync.Mutex
	accounts map[string]*accountCounts
	// statuses are the mailboxes' statuses as of their change numbers
	// (see Store.Status).
	statuses map[mailboxRef]statusMemo
}

// accountCounts are one account's: all counts every change of the
// account; a mailbox's number is the value of all at its last change, or
// base (all at the account's last account-wide change) if that is later.
type accountCounts struct {
	all, base uint64
	mailboxes map[string]uint64
	// list counts the changes of the account's mailbox list: a mailbox
	// created, deleted or renamed, a subscription (see ListChangeCount).
	list uint64
}

// maxCountedMailboxes bounds an account's per-mailbox numbers; past it
// they are dropped and base moves up, which changes every mailbox's
// number: a cache keyed by them misses once, never serves stale data.
const maxCountedMailboxes = 1024

// bump records committed changes; the writer calls it after the commit
// and before the callers are answered.
func (c *changeCounts) bump(changes []store.Change, touched []mailboxRef) {
	if len(changes) == 0 && len(touched) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ch := range changes {
		switch ch.Kind {
		case store.ChangeCollection:
			// Not about mailboxes; nothing cached by these numbers
			// depends on collections.
		case store.ChangeAccountDeleted, store.ChangeOverflow:
			c.touch(ch.Account, "", true).list++
		case store.ChangeMailboxCreated, store.ChangeMailboxDeleted, store.ChangeMailboxRenamed:
			c.touch(ch.Account, ch.Mailbox, false).list++
			if ch.OldName != "" {
				c.touch(ch.Account, ch.OldName, false)
			}
		default:
			c.touch(ch.Account, ch.Mailbox, false)
			if ch.OldName != "" {
				c.touch(ch.Account, ch.OldName, false)
			}
		}
	}
	for _, t := range touched {
		c.touch(t.account, t.mailbox, false).list++
	}
}

func (c *changeCounts) touch(account, mailbox string, wide bool) *accountCounts {
	if c.accounts == nil {
		c.accounts = make(map[string]*accountCounts)
	}
	a := c.accounts[account]
	if a == nil {
		a = &accountCounts{}
		c.accounts[account] = a
	}
	a.all++
	if wide || len(a.mailboxes) >= maxCountedMailboxes {
		a.base = a.all
		a.mailboxes = nil
		return a
	}
	if a.mailboxes == nil {
		a.mailboxes = make(map[string]uint64)
	}
	a.mailboxes[mailbox] = a.all
	return a
}

// ChangeCount returns a number that changes whenever a write through
// this Store that affects the account's mailbox commits: its messages,
// flags, UIDs, MODSEQ, existence, name or subscription. With mailbox "",
// any such write to any of the account's mailboxes or subscriptions
// changes it. The number changes before the writing call returns, so a
// caller that reads the same number twice knows that nothing in between
// changed what it read from this Store (imap caches its poll, STATUS and
// LIST answers by it). Writes by another process sharing the data
// directory are not counted; such a cache must also expire. The numbers
// start afresh with every Open.
func (s *Store) ChangeCount(account, mailbox string) uint64 {
	c := &s.counts
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.countLocked(account, mailbox)
}

func (c *changeCounts) countLocked(account, mailbox string) uint64 {
	a := c.accounts[account]
	if a == nil {
		return 0
	}
	if mailbox == "" {
		return a.all
	}
	return max(a.mailboxes[mailbox], a.base)
}

// ListChangeCount returns a number that changes whenever a write through
// this Store changes the account's list of mailboxes or subscriptions
// (a mailbox created, deleted or renamed, a subscription set or
// cleared, the account deleted), before the writing call returns; unlike
// ChangeCount(account, ""), a message written does not change it. imap
// answers LIST from memory while it stays the same. The same caveats as
// for ChangeCount hold.
func (s *Store) ListChangeCount(account string) uint64 {
	c := &s.counts
	c.mu.Lock()
	defer c.mu.Unlock()
	if a := c.accounts[account]; a != nil {
		return a.list
	}
	return 0
}

// mailboxRef names a mailbox whose state changed without a feed Change
// (a subscription).
type mailboxRef struct{ account, mailbox string }

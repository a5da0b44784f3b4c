package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// feedChannel is the NOTIFY channel of the change feed. A payload is
// "account n", an account some commits changed: bounded by the account
// ID (at most 255 bytes), which may contain spaces, so it is split at
// the last one. The number is not read (the notifier sends 0; earlier
// releases sent the account's feed_seq). A node hearing it moves the
// account's change count and reads its new feed rows: a change that
// writes no feed row (a subscription) finds none.
const feedChannel = "mailyard_feed"

// listsChannel is the NOTIFY channel of mailbox-list changes: the
// payload is an account whose mailbox list or subscriptions a
// transaction changed (ListChangeCount). The notifier sends it before
// the same commit's feedChannel notification.
const listsChannel = "mailyard_lists"

// feedPage is the most feed rows one read takes for one account.
const feedPage = 1000

// The listening connection is checked with a round trip after
// listenIdle without a notification, and is taken as lost when that
// takes longer than listenPingTimeout. A connection can die without an
// error reaching the client (the server's host gone, a firewall that
// forgets idle connections, a stuck proxy): TCP keepalive would notice
// only after minutes, or never through a proxy that still answers TCP,
// and until then the record cache and the change counts would trust a
// connection that no longer delivers notifications.
const (
	listenIdle        = 2 * time.Second
	listenPingTimeout = 10 * time.Second
)

// feed delivers committed changes to this Store's subscribers. Writers
// (on any node) number each account's changes in table feed under the
// account's row lock and, once committed, NOTIFY (notifier.go); here
// one goroutine LISTENs and marks accounts dirty, and another reads
// each dirty account's new rows in order and hands them to its
// subscribers. A local commit marks its account dirty directly. When
// the listening connection is lost, every subscribed account is marked
// dirty once it is back, so subscribers catch up from the last change
// they got; a notification that never came (its node died after the
// commit) is made up for by reconcile: no wake-up is lost, only
// delayed.
type feed struct {
	s   *Store
	cfg *pgx.ConnConfig

	mu     sync.Mutex
	closed bool
	accts  map[string]*acctFeed
	dirty  map[string]bool
	kick   chan struct{} // capacity 1: the dispatcher has work

	listenPID atomic.Uint32 // backend PID of the LISTEN connection (tests)
	listening chan struct{} // closed once the first LISTEN is active
	cancel    context.CancelFunc
	wg        sync.WaitGroup
}

// acctFeed is the subscribers of one account and the last change
// dispatched to them.
type acctFeed struct {
	last int64
	subs map[*subscription]struct{}
}

func newFeed(s *Store, cfg *pgx.ConnConfig) *feed {
	ctx, cancel := context.WithCancel(context.Background())
	f := &feed{
		s: s, cfg: cfg, cancel: cancel,
		accts: make(map[string]*acctFeed), dirty: make(map[string]bool),
		kick: make(chan struct{}, 1), listening: make(chan struct{}),
	}
	f.wg.Add(2)
	go f.listen(ctx)
	go f.dispatch(ctx)
	return f
}

// close ends every subscription and stops the goroutines.
func (f *feed) close() {
	f.mu.Lock()
	f.closed = true
	for _, a := range f.accts {
		for sub := range a.subs {
			sub.endLocked()
		}
	}
	f.mu.Unlock()
	f.cancel()
	f.wg.Wait()
}

// wake marks an account as having new changes.
func (f *feed) wake(account string) {
	f.mu.Lock()
	if f.accts[account] != nil {
		f.dirty[account] = true
	}
	f.mu.Unlock()
	f.signal()
}

// feedReadSQL reads an account's feed rows after $2, at most $3.
const feedReadSQL = `SELECT seq, change FROM feed WHERE account = $1 AND seq > $2 ORDER BY seq LIMIT $3`

// local hands this node's subscribers of r.account the changes a
// commit of this node wrote to the feed, without reading them back,
// when they are the next ones the subscribers get; otherwise (a commit
// of the account, here or on another node, is not dispatched yet) the
// account is marked dirty and its rows are read in order.
func (f *feed) local(r feedRun) {
	f.mu.Lock()
	af := f.accts[r.account]
	if af == nil {
		f.mu.Unlock()
		return
	}
	if af.last != r.first-1 {
		f.dirty[r.account] = true
		f.mu.Unlock()
		f.signal()
		return
	}
	for i, c := range r.changes {
		seq := r.first + int64(i)
		for sub := range af.subs {
			if seq > sub.from {
				sub.push(c)
			}
		}
	}
	af.last = r.first + int64(len(r.changes)) - 1
	f.mu.Unlock()
}

// wakeAll marks every subscribed account (after the listener was away).
func (f *feed) wakeAll() {
	f.mu.Lock()
	for a := range f.accts {
		f.dirty[a] = true
	}
	f.mu.Unlock()
	f.signal()
}

func (f *feed) signal() {
	select {
	case f.kick <- struct{}{}:
	default:
	}
}

// listen keeps a connection LISTENing on feedChannel, reconnecting with
// backoff after it is lost.
func (f *feed) listen(ctx context.Context) {
	defer f.wg.Done()
	backoff := 50 * time.Millisecond
	first := true
	for ctx.Err() == nil {
		conn, err := pgx.ConnectConfig(ctx, f.cfg)
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+feedChannel)
		}
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+recordsChannel)
		}
		if err == nil {
			_, err = conn.Exec(ctx, "LISTEN "+listsChannel)
		}
		if err == nil {
			// Every record write committed from now on is notified
			// here; the cache starts empty.
			f.s.records.setOn(true)
			f.s.counts.setOn(true)
			backoff = 50 * time.Millisecond
			f.listenPID.Store(conn.PgConn().PID())
			if first {
				close(f.listening)
				first = false
			}
			// Whatever was committed while nobody listened is read now.
			f.wakeAll()
			for {
				wctx, cancel := context.WithTimeout(ctx, listenIdle)
				n, werr := conn.WaitForNotification(wctx)
				idle := werr != nil && ctx.Err() == nil && errors.Is(wctx.Err(), context.DeadlineExceeded) && !conn.IsClosed()
				cancel()
				if idle {
					// Quiet for listenIdle: prove the connection still
					// answers (notifications arriving meanwhile are
					// kept by conn for the next wait).
					pctx, pcancel := context.WithTimeout(ctx, listenPingTimeout)
					werr = conn.Ping(pctx)
					pcancel()
					if werr == nil {
						continue
					}
				}
				if werr != nil {
					err = werr
					break
				}
				if n.Channel == recordsChannel {
					f.s.records.notified(n.Payload)
					continue
				}
				if f.s.own.has(n.PID) {
					// This Store's own commit: counted and woken by
					// committed (or uncertain) already, and counting
					// it again here would drop what the commit left
					// in memory (mailboxmemo.go).
					continue
				}
				switch n.Channel {
				case listsChannel:
					f.s.counts.bumpLists(n.Payload)
					continue
				}
				// The account ID may itself hold spaces; the
				// sequence number after the last one has none.
				if i := strings.LastIndexByte(n.Payload, ' '); i > 0 {
					// The count moves before the subscribers wake.
					f.s.counts.bump(n.Payload[:i])
					f.wake(n.Payload[:i])
				}
			}
		}
		// Notifications may be missed from here until LISTEN is back.
		f.s.records.setOn(false)
		f.s.counts.setOn(false)
		if conn != nil {
			conn.Close(context.Background())
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// dispatch reads the new feed rows of dirty accounts and hands them out;
// now and then it prunes rows older than Options.FeedRetention and
// sweeps bodies loose for longer than blobGrace.
func (f *feed) dispatch(ctx context.Context) {
	defer f.wg.Done()
	prune := time.NewTicker(time.Minute)
	defer prune.Stop()
	check := time.NewTicker(reconcileEvery)
	defer check.Stop()
	var behind map[string]int64
	for {
		select {
		case <-ctx.Done():
			return
		case <-check.C:
			behind = f.reconcile(ctx, behind)
			continue
		case <-prune.C:
			cut := f.s.now().Add(-f.s.opts.FeedRetention).UnixNano()
			f.s.pool.Exec(ctx, `DELETE FROM feed WHERE at < $1`, cut)
			f.s.blobs.sweep(ctx, f.s.pool, f.s.now().Add(-blobGrace).UnixNano())
			continue
		case <-f.kick:
		}
		f.mu.Lock()
		work := make(map[string]int64, len(f.dirty))
		for a := range f.dirty {
			if af := f.accts[a]; af != nil {
				work[a] = af.last
			}
		}
		clear(f.dirty)
		f.mu.Unlock()
		for acct, last := range work {
			if err := f.catchUp(ctx, acct, last); err != nil && ctx.Err() == nil {
				// Try again shortly: the change is in the table.
				f.mu.Lock()
				f.dirty[acct] = true
				f.mu.Unlock()
				time.AfterFunc(100*time.Millisecond, f.signal)
			}
		}
	}
}

// reconcileEvery is how often the feed checks that its subscribed
// accounts have no committed change it was not notified of.
const reconcileEvery = 5 * time.Second

// reconcile makes up for notifications that never came: a node that
// died between a commit and its notification (notifier.go) left the
// change in table feed with no one told. It reads which subscribed
// accounts have feed rows beyond those dispatched, and returns them
// with the last such row; an account already behind at the previous
// check (behind) and not yet dispatched up to what that check found
// had a notification lost: its change count moves and its subscribers
// are woken. A change merely on its way (its notification arrives in
// milliseconds) is so waited for, not counted twice. One statement per
// check, whatever the number of accounts.
func (f *feed) reconcile(ctx context.Context, behind map[string]int64) map[string]int64 {
	f.mu.Lock()
	ids := make([]string, 0, len(f.accts))
	lasts := make([]int64, 0, len(f.accts))
	for a, af := range f.accts {
		ids, lasts = append(ids, a), append(lasts, af.last)
	}
	f.mu.Unlock()
	if len(ids) == 0 {
		return nil
	}
	rows, err := f.s.pool.Query(ctx, `SELECT a.id, a.feed_seq FROM unnest($1::text[], $2::bigint[]) AS k(id, last)
		JOIN accounts a ON a.id = k.id WHERE a.feed_seq > k.last`, ids, lasts)
	if err != nil {
		return behind
	}
	now, err := accountSeqs(rows)
	if err != nil {
		return behind
	}
	var lost []string
	f.mu.Lock()
	for a, seq := range behind {
		if af := f.accts[a]; af != nil && af.last < seq {
			lost = append(lost, a)
		}
	}
	f.mu.Unlock()
	if len(lost) > 0 {
		// The count moves before the subscribers wake.
		f.s.counts.bump(lost...)
		f.mu.Lock()
		for _, a := range lost {
			if f.accts[a] != nil {
				f.dirty[a] = true
			}
		}
		f.mu.Unlock()
		f.signal()
	}
	return now
}

// catchUp reads one page of an account's changes after last and
// delivers them.
func (f *feed) catchUp(ctx context.Context, acct string, last int64) error {
	rows, err := f.s.pool.Query(ctx, feedReadSQL, acct, last, feedPage)
	if err != nil {
		return err
	}
	type entry struct {
		seq int64
		c   store.Change
	}
	var got []entry
	for rows.Next() {
		var e entry
		var doc []byte
		if err := rows.Scan(&e.seq, &doc); err != nil {
			rows.Close()
			return err
		}
		if err := json.Unmarshal(doc, &e.c); err != nil {
			rows.Close()
			return err
		}
		got = append(got, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if len(got) == 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	af := f.accts[acct]
	if af == nil || af.last >= got[len(got)-1].seq {
		return nil // unsubscribed, or another pass got here first
	}
	// A commit of this node may have handed its changes over meanwhile
	// (local): those are not handed again.
	if got[0].seq > af.last+1 {
		// Rows were pruned before this node read them.
		for sub := range af.subs {
			sub.push(store.Change{Kind: store.ChangeOverflow, Account: acct})
		}
	}
	for _, e := range got {
		if e.seq <= af.last {
			continue
		}
		for sub := range af.subs {
			if e.seq > sub.from {
				sub.push(e.c)
			}
		}
	}
	af.last = got[len(got)-1].seq
	if len(got) == feedPage {
		f.dirty[acct] = true
		f.signal()
	}
	return nil
}

// subscription implements store.Subscription on a buffered channel that
// the dispatcher fills without blocking: a reader FeedBuffer changes
// behind gets ChangeOverflow instead of what was buffered. ch is sent to
// and closed only under f.mu.
type subscription struct {
	f       *feed
	account string
	from    int64 // changes with a feed seq above it are delivered
	ch      chan store.Change
	ended   bool
	unhook  func() bool
}

func (sub *subscription) push(c store.Change) {
	select {
	case sub.ch <- c:
		return
	default:
	}
	sub.drain()
	sub.ch <- store.Change{Kind: store.ChangeOverflow, Account: sub.account}
	sub.ch <- c
}

func (sub *subscription) drain() {
	for {
		select {
		case <-sub.ch:
		default:
			return
		}
	}
}

// endLocked closes C after dropping what is buffered. The caller holds
// f.mu.
func (sub *subscription) endLocked() {
	if sub.ended {
		return
	}
	sub.ended = true
	f := sub.f
	if af := f.accts[sub.account]; af != nil {
		delete(af.subs, sub)
		if len(af.subs) == 0 {
			delete(f.accts, sub.account)
		}
	}
	sub.drain()
	close(sub.ch)
	if sub.unhook != nil {
		sub.unhook()
	}
}

// C implements store.Subscription.
func (sub *subscription) C() <-chan store.Change { return sub.ch }

// Close implements store.Subscription. C is closed when it returns.
func (sub *subscription) Close() error {
	sub.f.mu.Lock()
	defer sub.f.mu.Unlock()
	sub.endLocked()
	return nil
}

// Subscribe implements store.Feed. The subscription receives the changes
// of the account committed after Subscribe returns, made through any
// Store on the database. It ends when Close is called, ctx is done, or
// the store closes.
func (s *Store) Subscribe(ctx context.Context, account string) (store.Subscription, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	var from int64
	err := s.pool.QueryRow(ctx, `SELECT feed_seq FROM accounts WHERE id = $1`, account).Scan(&from)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errorf("account %q: %w", account, store.ErrNotFound)
	}
	if err != nil {
		return nil, wrapErr("subscribe", err)
	}
	f := s.feed
	sub := &subscription{f: f, account: account, from: from, ch: make(chan store.Change, s.opts.FeedBuffer)}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, store.ErrClosed
	}
	af := f.accts[account]
	if af == nil {
		af = &acctFeed{last: from, subs: make(map[*subscription]struct{})}
		f.accts[account] = af
	}
	af.subs[sub] = struct{}{}
	sub.unhook = context.AfterFunc(ctx, func() { sub.Close() })
	return sub, nil
}

// accountSeqs reads rows of an account and a feed number into a map,
// and closes rows.
func accountSeqs(rows pgx.Rows) (map[string]int64, error) {
	defer rows.Close()
	seqs := map[string]int64{}
	for rows.Next() {
		var a string
		var seq int64
		if err := rows.Scan(&a, &seq); err != nil {
			return nil, err
		}
		seqs[a] = seq
	}
	return seqs, rows.Err()
}

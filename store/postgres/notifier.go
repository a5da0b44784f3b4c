package postgres

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
)

// The change feed's notifications (feedChannel, listsChannel) are sent
// after the writing transaction committed, by one goroutine on a
// connection of its own, and not by the transaction itself: PostgreSQL
// serialises the commits of all transactions that sent a NOTIFY on one
// lock for the whole cluster, taken before the commit record is written
// and held until the commit's WAL flush is done (PreCommit_Notify in
// src/backend/commands/async.c: "hold till after commit", so that the
// notification queue is in commit order). With the NOTIFY inside every
// write, the writes of all accounts committed one at a time, each
// waiting for the flushes of all before it, and their sessions held
// pool connections meanwhile: 50 IMAP sessions on 5 accounts spent
// their time in that queue (bench/README.md, "Session 13: the
// notification lock and the pool"). Sent apart, commits share WAL
// flushes again, and the notifier's own transaction writes no WAL, so
// it holds that lock only for an instant.
//
// The notifier coalesces: the accounts of all the commits that came in
// while it sent the previous batch go out in one statement, one
// notification per account and channel (PostgreSQL would fold repeats
// of one transaction anyway); within it the list notifications come
// before the feed ones, so that a node's list numbers move before its
// feed wakes anyone (ListChangeCount). A batch that fails is sent
// again on a new connection. A node that dies between a commit and its
// notification leaves the other nodes unaware of the change: their
// feeds find it by reconciling (feed.reconcile).
type notifier struct {
	s   *Store
	cfg *pgx.ConnConfig

	mu    sync.Mutex
	lists map[string]struct{} // accounts whose list changed, to announce
	feed  map[string]struct{} // accounts that changed, to announce
	kick  chan struct{}       // capacity 1: there is something to send

	pid    atomic.Uint32 // backend PID of the connection (tests)
	stop   chan struct{} // closed by close
	closed sync.Once
	done   chan struct{} // closed when run returns
}

// notifyTimeout bounds one batch's round trip: a connection that does
// not answer within it is taken as lost and the batch is sent again on
// a new one.
const notifyTimeout = 10 * time.Second

// notifyCloseTimeout bounds how long close tries to send what is still
// pending.
const notifyCloseTimeout = 5 * time.Second

// newNotifier starts the notifier of s. It connects at once, within
// ctx, so that the first commits are not notified a connection's set-up
// late; if that fails, the first batch connects.
func newNotifier(ctx context.Context, s *Store, cfg *pgx.ConnConfig) *notifier {
	cfg = cfg.Copy()
	// Its transactions write no WAL; nothing of them is worth a flush.
	cfg.RuntimeParams["synchronous_commit"] = "off"
	n := &notifier{
		s: s, cfg: cfg,
		lists: make(map[string]struct{}), feed: make(map[string]struct{}),
		kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{}),
	}
	cctx, cancel := context.WithTimeout(ctx, notifyTimeout)
	conn, _ := n.connect(cctx)
	cancel()
	go n.run(conn)
	return n
}

// add queues the notifications of a commit: lists are the accounts
// whose mailbox list or subscriptions it changed, accounts those whose
// mail or subscriptions it changed.
func (n *notifier) add(lists, accounts []string) {
	if len(lists) == 0 && len(accounts) == 0 {
		return
	}
	n.mu.Lock()
	for _, a := range lists {
		n.lists[a] = struct{}{}
	}
	for _, a := range accounts {
		n.feed[a] = struct{}{}
	}
	n.mu.Unlock()
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// take returns what is pending and empties it: the channels and
// payloads of one batch, list notifications first.
func (n *notifier) take() (chans, payloads []string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, a := range slices.Sorted(maps.Keys(n.lists)) {
		chans, payloads = append(chans, listsChannel), append(payloads, a)
	}
	for _, a := range slices.Sorted(maps.Keys(n.feed)) {
		// The number after the account is not read: nodes split the
		// payload at its last space (feedChannel).
		chans, payloads = append(chans, feedChannel), append(payloads, a+" 0")
	}
	clear(n.lists)
	clear(n.feed)
	return chans, payloads
}

// close sends what is pending (for at most notifyCloseTimeout) and
// stops the notifier.
func (n *notifier) close() {
	n.closed.Do(func() { close(n.stop) })
	<-n.done
}

// run sends the pending notifications whenever there are some, until
// close, on conn while it works (nil: not connected).
func (n *notifier) run(conn *pgx.Conn) {
	defer close(n.done)
	defer func() { n.disconnect(conn) }()
	var deadline time.Time // once closing: when to give up
	backoff := 50 * time.Millisecond
	for {
		if deadline.IsZero() {
			select {
			case <-n.kick:
			case <-n.stop:
				deadline = time.Now().Add(notifyCloseTimeout)
			}
		}
		chans, payloads := n.take()
		for len(chans) > 0 {
			limit := time.Now().Add(notifyTimeout)
			if !deadline.IsZero() {
				limit = deadline
			}
			ctx, cancel := context.WithDeadline(context.Background(), limit)
			var err error
			if conn == nil {
				conn, err = n.connect(ctx)
			}
			if err == nil {
				_, err = conn.Exec(ctx, `SELECT count(pg_notify(c, p)) FROM unnest($1::text[], $2::text[]) AS n(c, p)`, chans, payloads)
			}
			cancel()
			if err == nil {
				backoff = 50 * time.Millisecond
				break
			}
			// Sent again on a new connection: a notification that did
			// go out twice costs its receivers a cache miss.
			n.disconnect(conn)
			conn = nil
			if !deadline.IsZero() {
				if time.Until(deadline) <= 0 {
					return // given up: the other nodes reconcile
				}
				time.Sleep(min(backoff, time.Until(deadline)))
			} else {
				select {
				case <-time.After(backoff):
				case <-n.stop:
					deadline = time.Now().Add(notifyCloseTimeout)
				}
			}
			backoff = min(2*backoff, 2*time.Second)
		}
		if !deadline.IsZero() && (n.idle() || time.Until(deadline) <= 0) {
			return
		}
	}
}

// idle reports whether nothing is pending.
func (n *notifier) idle() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(n.lists)+len(n.feed) == 0
}

// connect opens the notifier's connection and counts its backend as the
// Store's own: the listener skips what it sends, as it skips the pool's
// (changecount.go, ownBackends).
func (n *notifier) connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, n.cfg)
	if err != nil {
		return nil, err
	}
	pid := conn.PgConn().PID()
	n.s.own.add(pid)
	n.pid.Store(pid)
	return conn, nil
}

func (n *notifier) disconnect(conn *pgx.Conn) {
	if conn == nil {
		return
	}
	n.s.own.remove(conn.PgConn().PID())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	conn.Close(ctx)
	cancel()
}

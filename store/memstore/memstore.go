package memstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/store"
)

// Options configure a Store. The zero value works.
type Options struct {
	// Now is the clock (internal dates, account creation, UIDVALIDITY,
	// object modification times); nil means time.Now.
	Now func() time.Time
	// ChangeLogLimit is how many change-log entries each collection keeps
	// for sync tokens (RFC 6578); older tokens get ErrSyncTokenInvalid.
	// Zero means 10000.
	ChangeLogLimit int
	// FeedBuffer is how many changes a feed subscriber may lag behind
	// before it gets ChangeOverflow; zero means 1024, and it is at least 2.
	FeedBuffer int
}

// Store is the in-memory backend. It is safe for concurrent use.
type Store struct {
	opts Options

	// mu guards everything below. Writers hold it exclusively for the
	// whole of a call, which makes each call one atomic commit and orders
	// the feed.
	mu       sync.RWMutex
	closed   bool
	accounts map[string]*account
	colls    map[int64]*collection
	records  map[string]map[string]store.Record // namespace -> key -> record
	blobs    map[string]*blob
	subs     map[string]map[*subscription]struct{}   // account -> subscribers
	queue    map[queue.RecipientKey]*queue.Recipient // the outbound queue (queue.Store)

	lastUIDValidity int64
	lastMailboxID   int64
	lastCollID      int64
	lastBlobID      uint64
}

var (
	_ store.Store           = (*Store)(nil)
	_ store.AccountsQuerier = (*Store)(nil)
)

// blob is one message body, shared by the index rows (messages) that
// name it; refs counts them.
type blob struct {
	data []byte
	refs int
}

// New returns an empty store.
func New(opts Options) *Store {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.ChangeLogLimit <= 0 {
		opts.ChangeLogLimit = 10000
	}
	if opts.FeedBuffer <= 0 {
		opts.FeedBuffer = 1024
	}
	opts.FeedBuffer = max(opts.FeedBuffer, 2)
	return &Store{
		opts:     opts,
		accounts: make(map[string]*account),
		colls:    make(map[int64]*collection),
		records:  make(map[string]map[string]store.Record),
		blobs:    make(map[string]*blob),
		subs:     make(map[string]map[*subscription]struct{}),
		queue:    make(map[queue.RecipientKey]*queue.Recipient),
	}
}

// Close ends every feed subscription and drops the data. Every later call
// returns store.ErrClosed; calling Close again does nothing.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	for _, m := range s.subs {
		for sub := range m {
			sub.end()
		}
	}
	s.accounts, s.colls, s.records, s.blobs, s.subs = nil, nil, nil, nil, nil
	return nil
}

// write runs fn as one atomic change under the exclusive lock.
func (s *Store) write(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return store.ErrClosed
	}
	return fn()
}

// read runs fn under the shared lock.
func (s *Store) read(ctx context.Context, fn func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return fn()
}

// now returns the clock's time without its monotonic reading.
func (s *Store) now() time.Time { return s.opts.Now().Round(0) }

// errorf builds an error that says it comes from this package and wraps
// the sentinel given with %w.
func errorf(format string, args ...any) error {
	return fmt.Errorf("memstore: "+format, args...)
}

var errUIDSpace = errors.New("memstore: mailbox UID space exhausted; it must be re-created")

// checkOpen returns store.ErrClosed once the store is closed.
func (s *Store) checkOpen() error {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return store.ErrClosed
	}
	return nil
}

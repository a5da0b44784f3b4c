package sqlite

import (
	"context"
	"sync"

	"github.com/mailyard/mailyard/store"
)

// feed fans committed changes out to per-account subscribers. publish is
// called only by the writer goroutine, after each commit, so subscribers
// see commit order. It never blocks: each subscriber has a bounded queue
// drained by its own goroutine; a full queue is replaced by one
// ChangeOverflow and later changes queue behind it.
type feed struct {
	buffer int

	mu     sync.Mutex
	closed bool
	subs   map[string]map[*subscription]bool
}

func newFeed(buffer int) *feed {
	return &feed{buffer: buffer, subs: make(map[string]map[*subscription]bool)}
}

func (f *feed) publish(changes []store.Change) {
	if len(changes) == 0 {
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range changes {
		for sub := range f.subs[c.Account] {
			sub.push(c)
		}
	}
}

func (f *feed) add(account string) (*subscription, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return nil, store.ErrClosed
	}
	sub := &subscription{
		f:       f,
		account: account,
		max:     f.buffer,
		wake:    make(chan struct{}, 1),
		out:     make(chan store.Change),
		stop:    make(chan struct{}),
		exited:  make(chan struct{}),
	}
	if f.subs[account] == nil {
		f.subs[account] = make(map[*subscription]bool)
	}
	f.subs[account][sub] = true
	go sub.pump()
	return sub, nil
}

func (f *feed) remove(sub *subscription) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.subs[sub.account], sub)
	if len(f.subs[sub.account]) == 0 {
		delete(f.subs, sub.account)
	}
}

// close ends every subscription and waits for their goroutines.
func (f *feed) close() {
	f.mu.Lock()
	f.closed = true
	var all []*subscription
	for _, m := range f.subs {
		for sub := range m {
			all = append(all, sub)
		}
	}
	f.mu.Unlock()
	for _, sub := range all {
		sub.Close()
	}
}

// subscription implements store.Subscription.
type subscription struct {
	f       *feed
	account string
	max     int

	mu    sync.Mutex
	queue []store.Change
	// unhook deregisters the context.AfterFunc of Subscribe, so that a
	// closed subscription is not kept alive by a long-lived context.
	unhook func() bool

	wake   chan struct{} // a change was queued
	out    chan store.Change
	stop   chan struct{} // closed by Close
	exited chan struct{} // closed when pump returns
	once   sync.Once
}

func (s *subscription) push(c store.Change) {
	s.mu.Lock()
	if len(s.queue) >= s.max {
		// The reader fell behind: what is queued is useless to it now
		// (guarantee 6 in store's doc: one ChangeOverflow, then resync).
		s.queue = append(s.queue[:0], store.Change{Kind: store.ChangeOverflow, Account: s.account})
	}
	s.queue = append(s.queue, c)
	s.mu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *subscription) pump() {
	defer close(s.exited)
	defer close(s.out)
	for {
		s.mu.Lock()
		if len(s.queue) == 0 {
			s.mu.Unlock()
			select {
			case <-s.wake:
				continue
			case <-s.stop:
				return
			}
		}
		c := s.queue[0]
		s.queue[0] = store.Change{}
		s.queue = s.queue[1:]
		if len(s.queue) == 0 {
			s.queue = nil // let the backing array go
		}
		s.mu.Unlock()
		select {
		case s.out <- c:
		case <-s.stop:
			return
		}
	}
}

// C implements store.Subscription.
func (s *subscription) C() <-chan store.Change { return s.out }

// Close implements store.Subscription. It returns once C is closed.
func (s *subscription) Close() error {
	s.once.Do(func() {
		s.f.remove(s)
		close(s.stop)
		s.mu.Lock()
		unhook := s.unhook
		s.unhook = nil
		s.mu.Unlock()
		if unhook != nil {
			unhook()
		}
	})
	<-s.exited
	return nil
}

// Subscribe implements store.Feed. The subscription receives the changes
// of the account committed after Subscribe returns. It ends when Close is
// called, ctx is done, or the store closes.
func (s *Store) Subscribe(ctx context.Context, account string) (store.Subscription, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := accountExists(ctx, s.rdb, account); err != nil {
		return nil, wrapErr("subscribe", err)
	}
	sub, err := s.feed.add(account)
	if err != nil {
		return nil, err
	}
	unhook := context.AfterFunc(ctx, func() { sub.Close() })
	sub.mu.Lock()
	closed := isClosed(sub.stop)
	if !closed {
		sub.unhook = unhook
	}
	sub.mu.Unlock()
	if closed {
		unhook() // closed meanwhile, by ctx or by the store
	}
	return sub, nil
}

func isClosed(c <-chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}

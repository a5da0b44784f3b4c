package memstore

import (
	"context"

	"github.com/mailyard/mailyard/store"
)

// subscription implements store.Subscription on a buffered channel that
// publish fills without ever blocking: when the reader has fallen
// FeedBuffer changes behind, what is buffered is replaced by one
// ChangeOverflow (guarantee 6 of the store package). There is no
// goroutine per subscription; ch is sent to and closed only while s.mu is
// held, so a send never meets a closed channel.
type subscription struct {
	s       *Store
	account string
	ch      chan store.Change
	// ended and unhook (which stops the context.AfterFunc of Subscribe)
	// are guarded by s.mu.
	ended  bool
	unhook func() bool
}

// publish hands a committed change to the account's subscribers. The
// caller holds s.mu exclusively, so changes go out in commit order.
func (s *Store) publish(c store.Change) {
	for sub := range s.subs[c.Account] {
		sub.push(c)
	}
}

func (sub *subscription) push(c store.Change) {
	select {
	case sub.ch <- c:
		return
	default:
	}
	// Full: the reader may still take some meanwhile, but what remains
	// is useless to it now; it resynchronises after the overflow.
	sub.drain()
	sub.ch <- store.Change{Kind: store.ChangeOverflow, Account: sub.account}
	sub.ch <- c // cap(ch) >= 2 and ch was just emptied
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

// end closes C after dropping what is buffered, so nothing is delivered
// after Close. The caller holds s.mu exclusively.
func (sub *subscription) end() {
	if sub.ended {
		return
	}
	sub.ended = true
	delete(sub.s.subs[sub.account], sub)
	if len(sub.s.subs[sub.account]) == 0 {
		delete(sub.s.subs, sub.account)
	}
	sub.drain()
	close(sub.ch)
	if sub.unhook != nil {
		sub.unhook() // so that a long-lived context does not keep sub
	}
}

// C implements store.Subscription.
func (sub *subscription) C() <-chan store.Change { return sub.ch }

// Close implements store.Subscription. C is closed when it returns.
func (sub *subscription) Close() error {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	sub.end()
	return nil
}

// Subscribe implements store.Feed. The subscription receives the changes
// of the account committed after Subscribe returns. It ends when Close is
// called, ctx is done, or the store closes.
func (s *Store) Subscribe(ctx context.Context, account string) (store.Subscription, error) {
	sub := &subscription{s: s, account: account, ch: make(chan store.Change, s.opts.FeedBuffer)}
	err := s.write(ctx, func() error {
		if _, err := s.account(account); err != nil {
			return err
		}
		if s.subs[account] == nil {
			s.subs[account] = make(map[*subscription]struct{})
		}
		s.subs[account][sub] = struct{}{}
		// Set before the lock is released, so Close always finds it.
		sub.unhook = context.AfterFunc(ctx, func() { sub.Close() })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return sub, nil
}

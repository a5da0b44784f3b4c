package imap

import (
	"github.com/mailyard/mailyard/store"
)

// accountFeed is the one change-feed subscription of an account, shared
// by all of that account's sessions: one store subscription and one
// goroutine per account rather than per connection, which is most of
// what an idle session would otherwise cost.
type accountFeed struct {
	sub      store.Subscription
	sessions map[*session]struct{} // guarded by Server.feedMu
	done     chan struct{}         // closed when fanOut returns
}

// watch registers sess for wake-ups on the changes of account, creating
// the account's subscription on first use. Without a [Feed] it does
// nothing: IDLE then polls (see session.idleTicker).
func (s *Server) watch(sess *session, account string) error {
	if s.feed == nil {
		return nil
	}
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	f := s.feeds[account]
	if f == nil {
		// The subscription lives as long as someone watches, not as long
		// as the session that created it: it hangs off the server.
		sub, err := s.feed.Subscribe(s.ctx, account)
		if err != nil {
			return err
		}
		f = &accountFeed{sub: sub, sessions: make(map[*session]struct{}), done: make(chan struct{})}
		s.feeds[account] = f
		go s.fanOut(account, f)
	}
	f.sessions[sess] = struct{}{}
	return nil
}

// unwatch removes sess; the last session of an account closes the
// subscription and waits for its goroutine.
func (s *Server) unwatch(sess *session, account string) {
	s.feedMu.Lock()
	f := s.feeds[account]
	if f == nil {
		s.feedMu.Unlock()
		return
	}
	delete(f.sessions, sess)
	last := len(f.sessions) == 0
	if last {
		delete(s.feeds, account)
	}
	s.feedMu.Unlock()
	if last {
		_ = f.sub.Close()
		<-f.done
	}
}

// fanOut turns every change of the account into one pending wake-up per
// session. Which mailbox changed matters only to a session with NOTIFY
// (notify.go), which notes it; for the others a wake-up costs one
// query. It returns when the subscription ends (unwatch, server or
// store closing).
func (s *Server) fanOut(account string, f *accountFeed) {
	defer close(f.done)
	for ch := range f.sub.C() {
		s.feedMu.Lock()
		for sess := range f.sessions {
			sess.wake(&ch)
		}
		s.feedMu.Unlock()
	}
	// Ended under its sessions (the store closed): the next login of the
	// account subscribes afresh.
	s.feedMu.Lock()
	if s.feeds[account] == f {
		delete(s.feeds, account)
	}
	s.feedMu.Unlock()
}

// notifyLocal hands a name event the store's feed does not carry (a
// subscription, a metadata change) to the account's other sessions on
// this server, for their NOTIFY (RFC 5465 §5.5 to §5.7). Sessions on
// other servers sharing the store do not see it.
func (s *Server) notifyLocal(origin *session, account string, it notifyItem) {
	s.feedMu.Lock()
	defer s.feedMu.Unlock()
	f := s.feeds[account]
	if f == nil {
		return
	}
	for sess := range f.sessions {
		// RFC 5465 §5: the client that caused an event need not hear
		// of it.
		if sess != origin {
			sess.wakeItem(it)
		}
	}
}

package imap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/limits"
	"github.com/mailyard/mailyard/store"
)

// session is one connection's state. The library calls its methods one at
// a time, except Idle, which runs while the library waits for DONE and
// returns before the next call.
type session struct {
	srv  *Server
	conn *imapserver.Conn
	ip   netip.Addr
	log  *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc

	account string // the authenticated user's ID; "" before login

	// IDLE state, guarded by idleMu; the account's change feed calls
	// wake (see Server.watch and IdleStart).
	idleMu   sync.Mutex
	idleDone sync.Cond                // signalled when polling becomes false
	idleW    *imapserver.UpdateWriter // non-nil during IDLE
	idleErr  error                    // a failed IDLE poll's error
	woken    bool                     // a commit since the last poll began
	polling  bool                     // an idlePoll goroutine runs
	again    bool                     // it must poll once more
	// waiting: idleW is the writer of a wait for a command with NOTIFY
	// (WaitStart), not of an IDLE.
	waiting bool
	// notify is the session's NOTIFY (notify.go), nil without one; set
	// under idleMu by the command and by a poll that overflows.
	notify *notifyState
	// idleTick is closed to stop the idleTicker of an IDLE session on a
	// Backend without a Feed; nil otherwise.
	idleTick chan struct{}

	view *view // the selected mailbox, nil when none is
	// idLogged: the client's ID was logged (see ID).
	idLogged bool
	once     sync.Once
}

var (
	_ imapserver.SessionIMAP4rev2   = (*session)(nil)
	_ imapserver.SessionAppendLimit = (*session)(nil)
)

func newSession(srv *Server, c *imapserver.Conn) *session {
	ip := limits.AddrOf(c.NetConn().RemoteAddr())
	ctx, cancel := context.WithCancel(srv.ctx)
	s := &session{
		srv:    srv,
		conn:   c,
		ip:     ip,
		log:    srv.log.With("client", ip.String()),
		ctx:    ctx,
		cancel: cancel,
	}
	s.idleDone.L = &s.idleMu
	return s
}

// Close implements imapserver.Session.
func (s *session) Close() error {
	s.once.Do(func() {
		s.cancel()
		if s.account != "" {
			s.srv.unwatch(s, s.account)
		}
		s.srv.forget(s)
	})
	return nil
}

// Login implements imapserver.Session; AUTHENTICATE PLAIN ends here too.
// The limiter reserves the check before the password is looked at, or
// refuses it with NO [UNAVAILABLE] (RFC 5530 §3: try again later); a wrong
// password gets NO [AUTHENTICATIONFAILED] (RFC 5530 §3) only after the
// limiter's delay.
func (s *session) Login(login, password string) error {
	defer s.srv.begin()()
	lim := s.srv.opts.AuthLimiter
	m := s.srv.metrics.auth
	log := s.log.With("login", printable(login))
	// Keyed by the account the login names, so that its aliases share
	// one budget (directory.LoginKeyer).
	attempt, err := lim.Begin(s.ctx, s.ip, directory.LimiterLogin(s.ctx, s.srv.opts.Auth, login))
	if err != nil {
		log.Warn("authentication refused", "rule", "auth-limit", "reason", err.Error())
		m.WithLabelValues("blocked").Inc()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: "Too many failed authentications; try again later"}
	}
	// Without a verdict below (account disabled, directory error, a
	// panic) the reservation is released and nothing counted.
	defer attempt.Abandon()
	user, err := s.srv.opts.Auth.Authenticate(s.ctx, login, password, directory.ProtoIMAP)
	switch {
	case err == nil:
		attempt.Succeeded()
		m.WithLabelValues("success").Inc()
	case errors.Is(err, directory.ErrAuthFailed):
		m.WithLabelValues("failure").Inc()
		delay := attempt.Failed()
		log.Warn("authentication failed", "delay", delay, "class", attempt.Class().String())
		s.sleep(delay)
		return imapserver.ErrAuthFailed
	case errors.Is(err, directory.ErrDisabled):
		log.Warn("authentication refused", "rule", "disabled-user")
		m.WithLabelValues("disabled").Inc()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeContactAdmin,
			Text: "Account disabled"}
	case errors.Is(err, directory.ErrProtocolNotAllowed):
		log.Warn("authentication refused", "rule", "protocol-not-allowed")
		m.WithLabelValues("not_allowed").Inc()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeAuthorizationFailed,
			Text: "IMAP access is not allowed for this account"}
	default:
		log.Error("authentication error", "err", err)
		m.WithLabelValues("error").Inc()
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: "Authentication temporarily unavailable"}
	}
	if err := s.srv.watch(s, user.ID); err != nil {
		log.Error("change feed subscription failed", "err", err)
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: imap.ResponseCodeUnavailable,
			Text: "Mailbox temporarily unavailable"}
	}
	s.account = user.ID
	s.log = s.log.With("user", user.ID)
	log.Info("authenticated", "user", user.ID)
	return nil
}

func (s *session) sleep(d time.Duration) {
	if d <= 0 {
		return
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-s.ctx.Done():
	case <-s.srv.stopping:
	}
}

// AppendLimit implements imapserver.SessionAppendLimit (RFC 7889).
func (s *session) AppendLimit() uint32 { return uint32(s.srv.opts.AppendLimit) }

// Namespace implements imapserver.SessionNamespace (RFC 2342): one
// personal namespace with "/" as the hierarchy separator.
func (s *session) Namespace() (*imap.NamespaceData, error) {
	return &imap.NamespaceData{Personal: []imap.NamespaceDescriptor{{Prefix: "", Delim: '/'}}}, nil
}

// Select implements imapserver.Session (SELECT and EXAMINE).
func (s *session) Select(name string, options *imap.SelectOptions) (*imap.SelectData, error) {
	defer s.srv.begin()()
	s.closeView()
	name, err := mailboxName(name)
	if err != nil {
		return nil, err
	}
	v, data, err := openView(s, name, options.ReadOnly)
	if err != nil {
		return nil, s.storeErr("select", err)
	}
	s.view = v
	return data, nil
}

// Unselect implements imapserver.Session (UNSELECT, and CLOSE after its
// expunge).
func (s *session) Unselect() error {
	s.closeView()
	return nil
}

func (s *session) closeView() {
	s.view = nil
}

// Create implements imapserver.Session (RFC 9051 §6.3.4, RFC 6154 §3).
func (s *session) Create(name string, options *imap.CreateOptions) error {
	defer s.srv.begin()()
	name, err := newMailboxName(name)
	if err != nil {
		return err
	}
	use := store.SpecialNone
	if options != nil && len(options.SpecialUse) > 0 {
		if len(options.SpecialUse) > 1 {
			return noCode("USEATTR", "Only one special-use attribute per mailbox")
		}
		var ok bool
		if use, ok = specialUseOf(options.SpecialUse[0]); !ok {
			return noCode("USEATTR", "Unsupported special-use attribute "+string(options.SpecialUse[0]))
		}
	}
	undo := s.expectOwn(notifyItem{kind: itemCreated, name: name})
	if _, err = s.srv.opts.Backend.CreateMailbox(s.ctx, s.account, name, use); err != nil {
		undo()
	}
	return s.storeErr("create", err)
}

// Delete implements imapserver.Session (RFC 9051 §6.3.5). Inferior names
// stay; the deleted name then lists as \Noselect while it has children.
func (s *session) Delete(name string) error {
	defer s.srv.begin()()
	name, err := mailboxName(name)
	if err != nil {
		return err
	}
	undo := s.expectOwn(notifyItem{kind: itemDeleted, name: name})
	err = s.srv.opts.Backend.DeleteMailbox(s.ctx, s.account, name)
	if err != nil {
		undo()
	}
	return s.storeErr("delete", err)
}

// Rename implements imapserver.Session (RFC 9051 §6.3.6). Renaming INBOX
// moves all its messages into a new mailbox and leaves INBOX empty.
func (s *session) Rename(oldName, newName string, _ *imap.RenameOptions) error {
	defer s.srv.begin()()
	oldName, err := mailboxName(oldName)
	if err != nil {
		return err
	}
	newName, err = newMailboxName(newName)
	if err != nil {
		return err
	}
	b := s.srv.opts.Backend
	if oldName != store.Inbox {
		undo := s.expectOwn(notifyItem{kind: itemRenamed, name: newName, old: oldName})
		err := b.RenameMailbox(s.ctx, s.account, oldName, newName)
		if err != nil {
			undo()
		}
		return s.storeErr("rename", err)
	}
	undo := s.expectOwn(notifyItem{kind: itemCreated, name: newName})
	if _, err := b.CreateMailbox(s.ctx, s.account, newName, store.SpecialNone); err != nil {
		undo()
		return s.storeErr("rename", err)
	}
	if _, err := b.Move(s.ctx, s.account, store.Inbox, newName, nil); err != nil {
		return s.storeErr("rename", err)
	}
	return nil
}

// Subscribe implements imapserver.Session.
func (s *session) Subscribe(name string) error { return s.setSubscribed(name, true) }

// Unsubscribe implements imapserver.Session.
func (s *session) Unsubscribe(name string) error { return s.setSubscribed(name, false) }

func (s *session) setSubscribed(name string, on bool) error {
	defer s.srv.begin()()
	name, err := mailboxName(name)
	if err != nil {
		return err
	}
	if s.srv.subs == nil {
		return s.implicitSubscription(name, on)
	}
	if on {
		// Subscriptions need no mailbox (RFC 3501 §6.3.6), so they are
		// bounded on their own.
		subs, err := s.srv.subs.Subscriptions(s.ctx, s.account)
		if err != nil {
			return s.storeErr("subscribe", err)
		}
		if len(subs) >= maxSubscriptions && !slices.Contains(subs, name) {
			return noCode(imap.ResponseCodeLimit, fmt.Sprintf("At most %d subscriptions", maxSubscriptions))
		}
	}
	if err := s.srv.subs.SetSubscribed(s.ctx, s.account, name, on); err != nil {
		return s.storeErr("subscribe", err)
	}
	// RFC 5465 §5.5, for the account's other sessions: the store's feed
	// does not carry subscriptions.
	s.srv.notifyLocal(s, s.account, notifyItem{kind: itemSubscription, name: name})
	return nil
}

// implicitSubscription answers SUBSCRIBE and UNSUBSCRIBE for a Backend
// without [Subscriptions], on which every existing mailbox is
// subscribed: SUBSCRIBE of one succeeds and changes nothing, of another
// name it fails (RFC 9051 §6.3.7 lets the server check that the mailbox
// exists), and UNSUBSCRIBE cannot be done.
func (s *session) implicitSubscription(name string, on bool) error {
	if !on {
		return noCode(imap.ResponseCodeCannot, "Every mailbox is subscribed on this server")
	}
	_, err := s.srv.opts.Backend.Mailbox(s.ctx, s.account, name)
	return s.storeErr("subscribe", err)
}

// subscriptions returns the account's subscribed names; without
// [Subscriptions], the names of mbs (see implicitSubscription).
func (s *session) subscriptions(mbs []store.Mailbox) ([]string, error) {
	if s.srv.subs != nil {
		return s.srv.subs.Subscriptions(s.ctx, s.account)
	}
	names := make([]string, len(mbs))
	for i, mb := range mbs {
		names[i] = mb.Name
	}
	return names, nil
}

// maxSubscriptions bounds an account's subscription list (a variable
// only so that a test can lower it).
var maxSubscriptions = 10000

// Status implements imapserver.Session (RFC 9051 §6.3.11, RFC 8438
// STATUS=SIZE, RFC 7889 APPENDLIMIT).
func (s *session) Status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	defer s.srv.begin()()
	name, err := mailboxName(name)
	if err != nil {
		return nil, err
	}
	data, err := s.status(name, options)
	return data, s.storeErr("status", err)
}

func (s *session) status(name string, options *imap.StatusOptions) (*imap.StatusData, error) {
	b := s.srv.opts.Backend
	st, err := s.srv.cache.mailboxStatus(s.ctx, b, s.account, name)
	if err != nil {
		return nil, err
	}
	num := func(n int64) *uint32 { v := uint32(n); return &v }
	limit := uint32(s.srv.opts.AppendLimit)
	data := &imap.StatusData{
		Mailbox:       st.Name,
		NumMessages:   num(st.Messages),
		UIDNext:       imap.UID(st.UIDNext),
		UIDValidity:   st.UIDValidity,
		NumUnseen:     num(st.Unseen),
		NumDeleted:    num(st.Deleted),
		Size:          &st.Size,
		AppendLimit:   &limit,
		HighestModSeq: st.HighestModSeq,
		NumRecent:     num(0),
	}
	if options.NumRecent {
		// RFC 3501 §6.3.10: messages no session has been told about.
		mark := s.srv.recent.peek(recentKey{s.account, st.Name, st.UIDValidity})
		if st.UIDNext > mark+1 {
			uids, err := b.Search(s.ctx, s.account, name, store.SearchCriteria{UIDs: store.UIDSet{{Start: mark + 1}}})
			if err != nil {
				return nil, err
			}
			data.NumRecent = num(int64(len(uids)))
		}
	}
	if options.DeletedStorage {
		// RFC 9208 §4.4: the storage \Deleted messages would free.
		var size int64
		uids, err := b.Search(s.ctx, s.account, name, store.SearchCriteria{WithFlags: []string{store.FlagDeleted}})
		if err != nil {
			return nil, err
		}
		if len(uids) > 0 {
			msgs, err := b.ListMessages(s.ctx, s.account, name, compressUIDs(uids))
			if err != nil {
				return nil, err
			}
			for _, m := range msgs {
				size += m.Size
			}
		}
		data.DeletedStorage = &size
	}
	return data, nil
}

// Append implements imapserver.Session (RFC 9051 §6.3.12, RFC 4315
// APPENDUID). The OK is sent only after the store has committed.
func (s *session) Append(name string, r imap.LiteralReader, options *imap.AppendOptions) (*imap.AppendData, error) {
	defer s.srv.begin()()
	name, err := mailboxName(name)
	if err != nil {
		return nil, err
	}
	flags := make([]string, 0, len(options.Flags))
	for _, f := range options.Flags {
		// \Recent is the server's to set (RFC 3501 §2.3.2); ignore it.
		if !strings.EqualFold(string(f), `\Recent`) {
			flags = append(flags, string(f))
		}
	}
	if flags, err = store.NormalizeFlags(flags); err != nil {
		return nil, s.storeErr("append", err)
	}
	b := s.srv.opts.Backend
	m, err := b.Append(s.ctx, s.account, name, r, store.AppendOptions{Flags: flags, InternalDate: options.Time})
	if errors.Is(err, store.ErrNoMailbox) {
		return nil, noCode(imap.ResponseCodeTryCreate, "No such mailbox: "+name)
	}
	if err != nil {
		return nil, s.storeErr("append", err)
	}
	s.srv.metrics.appended.Inc()
	mb, err := b.Mailbox(s.ctx, s.account, name)
	if err != nil {
		// The message is stored; only the APPENDUID code cannot be given.
		s.log.Warn("append: mailbox vanished after append", "mailbox", name, "err", err)
		return nil, nil
	}
	return &imap.AppendData{UID: imap.UID(m.UID), UIDValidity: mb.UIDValidity}, nil
}

// Poll implements imapserver.Session: the updates after every command.
func (s *session) Poll(w *imapserver.UpdateWriter, allowExpunge bool) error {
	s.idleMu.Lock()
	s.woken = false // this poll sees every commit up to now
	s.idleMu.Unlock()
	if s.view == nil && s.notify == nil {
		return nil
	}
	defer s.srv.begin()()
	if s.view != nil {
		if err := s.view.poll(w, allowExpunge); err != nil {
			return err
		}
	}
	// RFC 5465 §4: in IDLE, the events NOTIFY asked for.
	return s.notifyPoll(w)
}

// IdleStart implements imapserver.Session (RFC 2177): from now until
// IdleStop, every wake-up from the account's change feed starts a poll in
// a short-lived goroutine, which writes what changed. The connection's own
// goroutine meanwhile waits for DONE without buffers, so an idling client
// costs one parked goroutine with a small stack.
//
// A poll starts at once only to report expunges held back after a FETCH,
// STORE or SEARCH (RFC 9051 §7.5.1), or a commit whose wake-up came after
// the last command's poll. Otherwise that poll saw every commit up to
// then.
func (s *session) IdleStart(w *imapserver.UpdateWriter) error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	s.idleW = w
	if s.srv.feed == nil {
		s.idleTick = make(chan struct{})
		go s.idleTicker(s.idleTick)
	}
	if s.woken || (s.view != nil && len(s.view.gone) > 0) || (s.notify != nil && s.notify.pending()) {
		s.startPollLocked()
	}
	return nil
}

// IdleStop implements imapserver.Session: it waits for a poll in flight,
// and returns the error of a poll that failed.
func (s *session) IdleStop() error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	s.idleW = nil
	if s.idleTick != nil {
		close(s.idleTick)
		s.idleTick = nil
	}
	for s.polling {
		s.idleDone.Wait()
	}
	err := s.idleErr
	s.idleErr = nil
	return err
}

// idleTicker stands in for the change feed of a Backend without a
// [Feed]: it wakes the IDLE session every Options.IdlePollInterval until
// stop is closed.
func (s *session) idleTicker(stop <-chan struct{}) {
	t := time.NewTicker(s.srv.opts.IdlePollInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			s.wake(nil)
		}
	}
}

// wake is called by the account's feed after every commit, with the
// change (nil from idleTicker). Outside IDLE it only notes that
// something changed (the poll after the next command reports it;
// IdleStart polls at once), unless the session's NOTIFY has something to
// report while the connection waits for a command (WaitStart).
func (s *session) wake(ch *store.Change) {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.notify != nil && ch != nil {
		s.notify.noteChange(ch)
	}
	s.wakeLocked()
}

// wakeItem is wake for a name event that does not come from the store's
// feed (Server.notifyLocal): sessions without NOTIFY ignore it.
func (s *session) wakeItem(it notifyItem) {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if s.notify == nil {
		return
	}
	s.notify.noteItem(it)
	if s.idleW != nil && s.notify.pending() {
		s.startPollLocked()
	}
}

func (s *session) wakeLocked() {
	if s.idleW == nil || s.waiting && (s.notify == nil || !s.notify.pending() && s.notify.sel == 0) {
		s.woken = true
		return
	}
	s.startPollLocked()
}

// startPollLocked runs idlePoll unless one runs already, in which case
// that one polls once more. s.idleMu is held.
func (s *session) startPollLocked() {
	if !s.waiting {
		// Between commands the poll may leave the selected mailbox out
		// (waitPoll), so a wake-up still counts for IdleStart.
		s.woken = false
	}
	if s.polling {
		s.again = true
		return
	}
	s.polling = true
	go s.idlePoll(s.idleW, s.waiting)
}

// idlePoll polls until no wake-up came meanwhile: in IDLE (Poll), or
// while the connection waits for a command with NOTIFY (waitPoll).
func (s *session) idlePoll(w *imapserver.UpdateWriter, waiting bool) {
	for {
		var err error
		if waiting {
			err = s.waitPoll(w)
		} else {
			err = s.Poll(w, true)
		}
		s.idleMu.Lock()
		if err != nil && s.idleErr == nil {
			// The client cannot be told; IdleStop returns the error,
			// and closing the connection ends the wait for DONE.
			s.idleErr = err
			_ = s.conn.NetConn().Close()
		}
		if err != nil || !s.again || s.idleW == nil {
			s.polling = false
			s.again = false
			s.idleDone.Broadcast()
			s.idleMu.Unlock()
			return
		}
		s.again = false
		s.idleMu.Unlock()
	}
}

// Expunge implements imapserver.Session (EXPUNGE, UID EXPUNGE and CLOSE).
func (s *session) Expunge(w *imapserver.ExpungeWriter, uids *imap.UIDSet) error {
	defer s.srv.begin()()
	return s.view.expunge(w, uids)
}

// Search implements imapserver.Session.
func (s *session) Search(kind imapserver.NumKind, criteria *imap.SearchCriteria, options *imap.SearchOptions) (*imap.SearchData, error) {
	defer s.srv.begin()()
	return s.view.search(kind, criteria, options)
}

// Fetch implements imapserver.Session.
func (s *session) Fetch(w *imapserver.FetchWriter, numSet imap.NumSet, options *imap.FetchOptions) error {
	defer s.srv.begin()()
	return s.view.fetch(w, numSet, options)
}

// Store implements imapserver.Session.
//
// Messages another session expunged keep their sequence numbers until
// the EXPUNGE may be sent (RFC 9051 §7.5.1); their flags cannot be set.
// RFC 2180 §4.2: STORE .SILENT answers OK for the others (§4.2.1); a
// STORE that reports flags sets them on the others, sends their FETCH
// responses and answers NO [EXPUNGEISSUED] (§4.2.2, §4.2.3). A failed
// UNCHANGEDSINCE keeps its OK [MODIFIED] (RFC 7162 §3.1.3).
func (s *session) Store(w *imapserver.FetchWriter, numSet imap.NumSet, flags *imap.StoreFlags, options *imap.StoreOptions) error {
	defer s.srv.begin()()
	v := s.view
	idxs, err := v.resolve(numSet)
	if err != nil {
		return err
	}
	missing, err := v.store(w, numSet, flags, options)
	if err != nil || flags.Silent || len(idxs) == 0 {
		return err
	}
	// Expunged before the last poll (still in the view), or since: the
	// store no longer had them when it changed the others.
	expunged := missing || len(v.live(idxs)) < len(idxs)
	if expunged {
		return noCode("EXPUNGEISSUED", "Some messages were expunged; their flags were not changed")
	}
	return nil
}

// Copy implements imapserver.Session (RFC 4315 COPYUID).
func (s *session) Copy(numSet imap.NumSet, dest string) (*imap.CopyData, error) {
	defer s.srv.begin()()
	return s.view.copyTo(numSet, dest)
}

// Move implements imapserver.SessionMove (RFC 6851).
func (s *session) Move(w *imapserver.MoveWriter, numSet imap.NumSet, dest string) error {
	defer s.srv.begin()()
	return s.view.move(w, numSet, dest)
}

// rev2 reports whether the client has enabled IMAP4rev2, which drops
// \Recent (RFC 9051 §2.3.2).
func (s *session) rev2() bool {
	return s.conn.EnabledCaps().Has(imap.CapIMAP4rev2)
}

// mailboxName checks a mailbox name from the client (already decoded from
// modified UTF-7 by the library) and returns the store's form of it.
func mailboxName(name string) (string, error) {
	clean, err := store.CleanMailboxName(name)
	if err != nil {
		return "", noCode(imap.ResponseCodeCannot, "Invalid mailbox name: "+errText(err))
	}
	return clean, nil
}

// newMailboxName checks the name of a mailbox to be created (CREATE, or
// the target of RENAME). A trailing separator announces that the client
// means to create inferior names; the mailbox itself is created without it.
func newMailboxName(name string) (string, error) {
	name, err := mailboxName(strings.TrimSuffix(name, store.Separator))
	if err != nil {
		return "", err
	}
	if strings.ContainsAny(name, "*%") {
		return "", noCode(imap.ResponseCodeCannot, "Mailbox names may not contain * or % (they are LIST wildcards)")
	}
	return name, nil
}

func specialUseOf(a imap.MailboxAttr) (store.SpecialUse, bool) {
	for _, u := range []store.SpecialUse{store.SpecialSent, store.SpecialDrafts, store.SpecialTrash,
		store.SpecialJunk, store.SpecialArchive, store.SpecialAll, store.SpecialFlagged} {
		if strings.EqualFold(string(a), string(u)) {
			return u, true
		}
	}
	return store.SpecialNone, false
}

// storeErr turns a store error into the NO the client gets. Unexpected
// errors are logged and answered without detail.
func (s *session) storeErr(op string, err error) error {
	var qe *store.QuotaError
	var ie *imap.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie):
		return err
	case errors.As(err, &qe):
		return noCode(imap.ResponseCodeOverQuota, "Quota exceeded ("+qe.Resource+")")
	case errors.Is(err, store.ErrNoMessage):
		// Expunged meanwhile (RFC 5530 §3). FETCH and SEARCH answer
		// it before here, as RFC 2180 §4.1 and §4.3 let them.
		return errExpungeIssued()
	case errors.Is(err, store.ErrNoMailbox):
		return noCode(imap.ResponseCodeNonExistent, "No such mailbox")
	case errors.Is(err, store.ErrNotFound):
		// Neither a mailbox nor a message: the account, deleted while
		// the session was logged in (RFC 5530 §3 NONEXISTENT).
		return noCode(imap.ResponseCodeNonExistent, "No such account")
	case errors.Is(err, store.ErrExists):
		return noCode(imap.ResponseCodeAlreadyExists, "Mailbox already exists")
	case errors.Is(err, store.ErrInvalid):
		return noCode(imap.ResponseCodeCannot, errText(err))
	case errors.Is(err, store.ErrClosed), errors.Is(err, context.Canceled):
		return noCode(imap.ResponseCodeUnavailable, "Server shutting down")
	case errors.Is(err, store.ErrNoSpace):
		// RFC 5530 §3: OVERQUOTA says the user's quota would be
		// exceeded, which GETQUOTAROOT would then contradict; a full
		// disk is a limit of the installation, LIMIT.
		s.log.Warn("store out of disk space", "op", op, "err", err)
		return noCode(imap.ResponseCodeLimit, "Not enough disk space on the server, the operation was not carried out; try again later")
	}
	s.log.Error("store error", "op", op, "err", err)
	return noCode(imap.ResponseCodeServerBug, "Internal error, the operation was not carried out")
}

// errExpungeIssued is the NO of a command some of whose messages were
// expunged meanwhile (RFC 5530 §3).
func errExpungeIssued() error {
	return noCode("EXPUNGEISSUED", "Some messages were expunged")
}

func noCode(code imap.ResponseCode, text string) error {
	return &imap.Error{Type: imap.StatusResponseTypeNo, Code: code, Text: text}
}

// errText is an error's message made safe for a response line.
func errText(err error) string {
	t := strings.TrimPrefix(err.Error(), "store: ")
	return printable(t)
}

// printable replaces control characters so that client-supplied text
// cannot break a response or log line, and caps its length.
func printable(s string) string {
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

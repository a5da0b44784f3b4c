package imap

import (
	"errors"
	"slices"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// NOTIFY (RFC 5465). A session's NOTIFY is a notifyState: the event
// groups of its NOTIFY SET, what it last told the client about each
// watched mailbox, and what the account's change feed has reported since
// the last poll. The feed (Server.fanOut) only notes changes here, under
// session.idleMu, in bounded form: the names of mailboxes whose counts
// changed (at most Options.MaxNotifyMailboxes) and a queue of name
// events (create, delete, rename, subscription, metadata) of at most
// maxNotifyQueueBytes. The poll (after every command, in IDLE, and while
// the connection waits for a command) turns them into STATUS, LIST and
// METADATA responses, reading counts from the server's status cache.
// Past either bound the session gets OK [NOTIFICATIONOVERFLOW] and its
// NOTIFY ends (§5.8).

// notifyEvents is a set of RFC 5465 events.
type notifyEvents uint8

const (
	// evMessage is MessageNew with MessageExpunge: §5 lets neither go
	// without the other.
	evMessage      notifyEvents = 1 << iota
	evFlags                     // FlagChange
	evMailboxName               // MailboxName
	evSubscription              // SubscriptionChange
	evMailboxMeta               // MailboxMetadataChange
	evServerMeta                // ServerMetadataChange
)

// maxNotifyQueueBytes bounds the name events one session holds for its
// client (a variable only so that a test can lower it).
var maxNotifyQueueBytes = 256 << 10

// notifyGroup is one event group of NOTIFY SET for other mailboxes than
// the selected one (RFC 5465 §6.2 to §6.6).
type notifyGroup struct {
	filter imapserver.NotifyFilter
	names  []string // of "subtree" and "mailboxes", in the store's form
	events notifyEvents
}

// notifyKnown is what the client was last told of a watched mailbox.
type notifyKnown struct {
	uidValidity, uidNext uint32
	messages, unseen     int64
	modSeq               uint64
}

// Kinds of notifyItem.
const (
	itemCreated uint8 = iota
	itemDeleted
	itemRenamed
	itemSubscription
	itemMetadata
)

// notifyItem is one name event waiting to be reported.
type notifyItem struct {
	kind    uint8
	own     bool   // the session's own change: no LIST (§5)
	name    string // the mailbox ("" for server metadata); the new name of a rename
	old     string // the old name of a rename
	entries []string
}

func (it notifyItem) size() int {
	n := 32 + len(it.name) + len(it.old)
	for _, e := range it.entries {
		n += 16 + len(e)
	}
	return n
}

// notifyState is a session's NOTIFY.
type notifyState struct {
	groups []notifyGroup
	// The selected mailbox's events (RFC 5465 §6.1): sel is 0 without
	// SELECTED or SELECTED-DELAYED; immediate with SELECTED, whose
	// expunges go out between commands too; fetch holds MessageNew's
	// attributes.
	sel       notifyEvents
	immediate bool
	fetch     *imap.FetchOptions
	max       int
	any       notifyEvents // the union of the groups' events

	// subs is the subscription list, kept when a group is "subscribed"
	// (§6.4: re-evaluated when it changes). Read and written by the
	// poll only.
	subs  map[string]bool
	known map[string]notifyKnown // by the poll only

	// Guarded by session.idleMu; filled by the feed, taken by the poll.
	dirty      map[string]struct{}
	queue      []notifyItem
	queueBytes int
	overflow   bool
	// own are the session's own CREATE, DELETE and RENAME, whose
	// changes the feed is yet to bring: they are not reported (§5),
	// at most maxOwn of them (guarded by session.idleMu).
	own []notifyItem
}

// maxOwn bounds notifyState.own: the oldest is dropped past it (its
// change then reported, as a change by another session would be).
const maxOwn = 8

// expectOwn notes a name change the session is about to make, so that
// its change from the feed is not reported back (RFC 5465 §5: "the
// server SHOULD omit notifying the client if the event is caused by
// this client"). The returned function takes the note back, for a
// change that failed.
func (s *session) expectOwn(it notifyItem) (undo func()) {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	n := s.notify
	if n == nil {
		return func() {}
	}
	if len(n.own) >= maxOwn {
		n.own = slices.Delete(n.own, 0, 1)
	}
	n.own = append(n.own, it)
	return func() {
		s.idleMu.Lock()
		defer s.idleMu.Unlock()
		if i := slices.IndexFunc(n.own, func(o notifyItem) bool {
			return o.kind == it.kind && o.name == it.name && o.old == it.old
		}); i >= 0 {
			n.own = slices.Delete(n.own, i, i+1)
		}
	}
}

// ownChange reports whether a name change from the feed is one of the
// session's own (expectOwn), and forgets a CREATE or DELETE once seen.
// A RENAME stays noted (until pushed out): the store reports one change
// for the mailbox and one for each of its children. session.idleMu is
// held.
func (n *notifyState) ownChange(it notifyItem) bool {
	for i, o := range n.own {
		if o.kind != it.kind {
			continue
		}
		switch {
		case it.kind != itemRenamed && o.name == it.name:
			n.own = slices.Delete(n.own, i, i+1)
			return true
		case it.kind == itemRenamed && o.old == it.old && o.name == it.name,
			it.kind == itemRenamed && strings.HasPrefix(it.old, o.old+store.Separator) &&
				it.name == o.name+it.old[len(o.old):]:
			return true
		}
	}
	return false
}

// pending reports whether the feed noted something to report;
// session.idleMu is held.
func (n *notifyState) pending() bool {
	return n.overflow || len(n.queue) > 0 || len(n.dirty) > 0
}

// eventsFor returns the events the groups ask for on the mailbox name,
// the union of every group that takes it in. Without subs (called by
// the feed) "subscribed" takes in every name.
func (n *notifyState) eventsFor(name string, subs map[string]bool) notifyEvents {
	var ev notifyEvents
	for _, g := range n.groups {
		if g.matches(name, subs) {
			ev |= g.events
		}
	}
	return ev
}

func (g *notifyGroup) matches(name string, subs map[string]bool) bool {
	switch g.filter {
	case imapserver.NotifyInboxes, imapserver.NotifyPersonal:
		// §6.3: a server that cannot tell where mail may be delivered
		// treats "inboxes" as "personal"; Sieve rules may file mail
		// anywhere. Every mailbox of the account is personal (§6.2).
		return true
	case imapserver.NotifySubscribed:
		return subs == nil || subs[name]
	case imapserver.NotifySubtree:
		for _, root := range g.names {
			if name == root || strings.HasPrefix(name, root+store.Separator) {
				return true
			}
		}
	case imapserver.NotifyMailboxes:
		// §6.6: no wildcard expansion.
		return slices.Contains(g.names, name)
	}
	return false
}

// noteChange records a change from the store's feed; session.idleMu is
// held. Changes of mailboxes no group watches are dropped here.
func (n *notifyState) noteChange(ch *store.Change) {
	if n.overflow {
		return
	}
	switch ch.Kind {
	case store.ChangeMessagesAdded, store.ChangeFlags, store.ChangeExpunged:
		if n.eventsFor(ch.Mailbox, nil)&(evMessage|evFlags) == 0 {
			return
		}
		if n.dirty == nil {
			n.dirty = make(map[string]struct{})
		}
		n.dirty[ch.Mailbox] = struct{}{}
		if len(n.dirty) > n.max {
			n.setOverflow()
		}
	case store.ChangeMailboxCreated:
		n.noteName(notifyItem{kind: itemCreated, name: ch.Mailbox})
	case store.ChangeMailboxDeleted:
		n.noteName(notifyItem{kind: itemDeleted, name: ch.Mailbox})
	case store.ChangeMailboxRenamed:
		n.noteName(notifyItem{kind: itemRenamed, name: ch.Mailbox, old: ch.OldName})
	case store.ChangeOverflow:
		// The feed lost changes: what they were cannot be told (§5.8).
		n.setOverflow()
	}
}

// noteName is noteItem for a mailbox's CREATE, DELETE or RENAME: one of
// the session's own is reported only as far as the watched mailboxes
// need it (a STATUS of a mailbox it created, as the view reports a
// mailbox it selected), not with LIST.
func (n *notifyState) noteName(it notifyItem) {
	if n.ownChange(it) {
		if n.any&(evMessage|evFlags) == 0 {
			return
		}
		it.own = true
	}
	n.noteItem(it)
}

// noteItem queues a name event if a group may want it; session.idleMu is
// held.
func (n *notifyState) noteItem(it notifyItem) {
	if n.overflow {
		return
	}
	ev := n.eventsFor(it.name, nil)
	if it.kind == itemRenamed {
		ev |= n.eventsFor(it.old, nil)
	}
	switch {
	case it.kind == itemMetadata && it.name == "":
		ev = n.any & evServerMeta
	case it.kind == itemSubscription && n.subs != nil:
		ev |= evSubscription // the "subscribed" groups change
	}
	if ev == 0 {
		return
	}
	n.queue = append(n.queue, it)
	n.queueBytes += it.size()
	if n.queueBytes > maxNotifyQueueBytes {
		n.setOverflow()
	}
}

// setOverflow drops what was noted: the client will be told that
// notifications stopped (§5.8).
func (n *notifyState) setOverflow() {
	n.overflow = true
	n.dirty, n.queue, n.queueBytes = nil, nil, 0
}

var _ imapserver.SessionNotify = (*session)(nil)

// notifySupported are the events this server reports (RFC 5465 §3.1:
// BADEVENT lists them). AnnotationChange needs per-message annotations
// (RFC 5257), which the store does not keep.
func (s *session) notifySupported() []string {
	ev := []string{"MessageNew", "MessageExpunge", "FlagChange", "MailboxName", "SubscriptionChange"}
	if s.srv.meta != nil {
		// §5.6, §5.7: required of a server with METADATA.
		ev = append(ev, "MailboxMetadataChange", "ServerMetadataChange")
	}
	return ev
}

// Notify implements imapserver.SessionNotify (RFC 5465 §3.1).
func (s *session) Notify(w *imapserver.UpdateWriter, o *imapserver.NotifyOptions) error {
	defer s.srv.begin()()
	if o == nil {
		s.setNotify(nil)
		return nil
	}
	n, err := s.newNotify(o)
	if err != nil {
		return err
	}
	mbs, subs, err := s.srv.cache.listing(s.ctx, s.srv.opts.Backend, s.account, s.subscriptions)
	if err != nil {
		return s.storeErr("notify", err)
	}
	if n.subs != nil {
		for _, name := range subs {
			n.subs[name] = true
		}
	}
	var watched []string
	for _, mb := range mbs {
		if n.eventsFor(mb.Name, n.subs)&(evMessage|evFlags) != 0 {
			watched = append(watched, mb.Name)
		}
	}
	if len(watched) > n.max {
		// §3.1: a NOTIFY too expensive for the server.
		return noCode("NOTIFICATIONOVERFLOW", "NOTIFY would watch more than the server's limit of mailboxes")
	}
	for _, name := range watched {
		st, err := s.srv.cache.mailboxStatus(s.ctx, s.srv.opts.Backend, s.account, name)
		if errors.Is(err, store.ErrNoMailbox) {
			continue // deleted meanwhile
		}
		if err != nil {
			return s.storeErr("notify", err)
		}
		n.known[name] = knownOf(st)
		// §3.1: with STATUS, one STATUS response per watched mailbox
		// other than the selected one, before the tagged OK.
		if o.Status && (s.view == nil || s.view.name != name) {
			if err := s.writeNotifyStatus(w, n, name, st); err != nil {
				return err
			}
		}
	}
	s.setNotify(n)
	return nil
}

// newNotify checks the events of NOTIFY SET (the connection checked
// the syntax and the rules whose breach is BAD) and builds its state.
func (s *session) newNotify(o *imapserver.NotifyOptions) (*notifyState, error) {
	n := &notifyState{max: s.srv.opts.MaxNotifyMailboxes, known: make(map[string]notifyKnown)}
	names := 0
	for _, g := range o.Groups {
		var ev notifyEvents
		for _, e := range g.Events {
			bit, ok := s.notifyEvent(e)
			if !ok {
				// §3.1: an unsupported event is NO, with BADEVENT listing
				// the events the server supports.
				return nil, noCode(imap.ResponseCode("BADEVENT ("+strings.Join(s.notifySupported(), " ")+")"),
					"Unsupported NOTIFY event "+printable(string(e)))
			}
			ev |= bit
		}
		if ev == 0 {
			continue // NONE: as if the group were not there (§5)
		}
		if g.Filter.Selected() {
			n.sel, n.immediate, n.fetch = ev, g.Filter == imapserver.NotifySelected, g.Fetch
			continue
		}
		ng := notifyGroup{filter: g.Filter, events: ev}
		for _, name := range g.Mailboxes {
			clean, err := store.CleanMailboxName(name)
			if err != nil {
				continue // names no mailbox: ignored, as one that does not exist
			}
			ng.names = append(ng.names, clean)
			names++
		}
		if g.Filter == imapserver.NotifySubscribed {
			n.subs = make(map[string]bool)
		}
		n.groups = append(n.groups, ng)
		n.any |= ev
	}
	if names > n.max {
		return nil, noCode("NOTIFICATIONOVERFLOW", "NOTIFY names more than the server's limit of mailboxes")
	}
	return n, nil
}

// notifyEvent maps an event to its bit; false if it is not supported.
func (s *session) notifyEvent(e imapserver.NotifyEvent) (notifyEvents, bool) {
	switch e {
	case imapserver.NotifyMessageNew, imapserver.NotifyMessageExpunge:
		return evMessage, true
	case imapserver.NotifyFlagChange:
		return evFlags, true
	case imapserver.NotifyMailboxName:
		return evMailboxName, true
	case imapserver.NotifySubscriptionChange:
		return evSubscription, true
	case imapserver.NotifyMailboxMetadataChange:
		return evMailboxMeta, s.srv.meta != nil
	case imapserver.NotifyServerMetadataChange:
		return evServerMeta, s.srv.meta != nil
	}
	return 0, false
}

// setNotify installs n, nil for none.
func (s *session) setNotify(n *notifyState) {
	s.idleMu.Lock()
	s.notify = n
	s.idleMu.Unlock()
}

func knownOf(st store.MailboxStatus) notifyKnown {
	return notifyKnown{uidValidity: st.UIDValidity, uidNext: st.UIDNext, messages: st.Messages,
		unseen: st.Unseen, modSeq: st.HighestModSeq}
}

// notifyPoll reports what the feed noted since the last poll.
func (s *session) notifyPoll(w *imapserver.UpdateWriter) error {
	n := s.notify
	if n == nil {
		return nil
	}
	s.idleMu.Lock()
	over, queue, dirty := n.overflow, n.queue, n.dirty
	n.overflow, n.queue, n.dirty, n.queueBytes = false, nil, nil, 0
	s.idleMu.Unlock()
	if over {
		return s.notifyOverflow(w)
	}
	var l *notifyListing
	for _, it := range queue {
		if err := s.notifyItem(w, n, it, &l); err != nil {
			return err
		}
	}
	for name := range dirty {
		if err := s.notifyStatus(w, n, name); err != nil {
			return err
		}
	}
	if len(n.known) > n.max {
		return s.notifyOverflow(w)
	}
	return nil
}

// notifyOverflow ends the session's NOTIFY and tells the client (RFC
// 5465 §5.8: as if NOTIFY NONE had been received).
func (s *session) notifyOverflow(w *imapserver.UpdateWriter) error {
	s.setNotify(nil)
	s.log.Info("notify overflow: notifications stopped")
	return w.WriteOK("NOTIFICATIONOVERFLOW", "Too many notifications; NOTIFY is off")
}

// notifyStatus sends a STATUS response for a watched mailbox whose
// counts changed in a way its events ask about (RFC 5465 §5.1 to §5.3),
// and for one whose UIDVALIDITY changed (deleted and created again).
func (s *session) notifyStatus(w *imapserver.UpdateWriter, n *notifyState, name string) error {
	if s.view != nil && s.view.name == name {
		return nil // the selected mailbox: the view reports it
	}
	ev := n.eventsFor(name, n.subs) & (evMessage | evFlags)
	if ev == 0 {
		delete(n.known, name)
		return nil
	}
	st, err := s.srv.cache.mailboxStatus(s.ctx, s.srv.opts.Backend, s.account, name)
	if errors.Is(err, store.ErrNoMailbox) {
		delete(n.known, name)
		return nil
	}
	if err != nil {
		// A notification is not worth the connection: the next change
		// of the mailbox is reported with its counts as they are then.
		s.log.Warn("notify: reading a mailbox's status failed", "mailbox", name, "err", err)
		return nil
	}
	cur := knownOf(st)
	k, ok := n.known[name]
	n.known[name] = cur
	changed := !ok || k.uidValidity != cur.uidValidity ||
		ev&evMessage != 0 && (k.messages != cur.messages || k.uidNext != cur.uidNext) ||
		ev&evFlags != 0 && (k.modSeq != cur.modSeq || k.unseen != cur.unseen)
	if !changed {
		return nil
	}
	return s.writeNotifyStatus(w, n, name, st)
}

// notifyBaseline starts watching a mailbox that a subscription brought
// in, silently as NOTIFY SET without STATUS does, or stops watching one
// an unsubscription took out.
func (s *session) notifyBaseline(n *notifyState, name string) {
	if n.eventsFor(name, n.subs)&(evMessage|evFlags) == 0 {
		delete(n.known, name)
		return
	}
	if _, ok := n.known[name]; ok {
		return
	}
	if st, err := s.srv.cache.mailboxStatus(s.ctx, s.srv.opts.Backend, s.account, name); err == nil {
		n.known[name] = knownOf(st)
	}
}

// writeNotifyStatus writes the STATUS response of a watched mailbox:
// MESSAGES, UIDNEXT, UIDVALIDITY and UNSEEN (§5.2, §5.3: UIDNEXT and
// MESSAGES), and HIGHESTMODSEQ with FlagChange (§5.1) or once CONDSTORE
// is enabled (§5.2, §5.3).
func (s *session) writeNotifyStatus(w *imapserver.UpdateWriter, n *notifyState, name string, st store.MailboxStatus) error {
	msgs, unseen := uint32(st.Messages), uint32(st.Unseen)
	data := &imap.StatusData{Mailbox: name, NumMessages: &msgs, UIDNext: imap.UID(st.UIDNext),
		UIDValidity: st.UIDValidity, NumUnseen: &unseen, HighestModSeq: st.HighestModSeq}
	opts := &imap.StatusOptions{NumMessages: true, UIDNext: true, UIDValidity: true, NumUnseen: true,
		HighestModSeq: s.condStore() || n.eventsFor(name, n.subs)&evFlags != 0}
	return w.WriteStatus(data, opts)
}

// notifyListing is the account's mailboxes and subscriptions, read once
// per poll when a LIST response needs them.
type notifyListing struct {
	nodes map[string]*listNode
}

func (s *session) listing(l **notifyListing) (*notifyListing, error) {
	if *l != nil {
		return *l, nil
	}
	mbs, subs, err := s.srv.cache.listing(s.ctx, s.srv.opts.Backend, s.account, s.subscriptions)
	if err != nil {
		return nil, err
	}
	*l = &notifyListing{nodes: listTree(mbs, subs)}
	return *l, nil
}

// notifyItem reports one name event and keeps the watched mailboxes
// right.
func (s *session) notifyItem(w *imapserver.UpdateWriter, n *notifyState, it notifyItem, l **notifyListing) error {
	switch it.kind {
	case itemSubscription:
		if n.subs != nil {
			// §6.4: the subscription list is evaluated again.
			subs, err := s.subscriptions(nil)
			if err != nil {
				s.log.Warn("notify: reading the subscriptions failed", "err", err)
				return nil
			}
			clear(n.subs)
			for _, name := range subs {
				n.subs[name] = true
			}
			s.notifyBaseline(n, it.name)
		}
		if n.eventsFor(it.name, n.subs)&evSubscription == 0 {
			return nil
		}
		return s.writeNotifyList(w, l, it.name, "")
	case itemMetadata:
		if it.name == "" || n.eventsFor(it.name, n.subs)&evMailboxMeta != 0 {
			// §5.6, §5.7: the entries that changed, without values
			// (RFC 5464 §4.4.2).
			return w.WriteMetadataChanged(it.name, it.entries)
		}
		return nil
	case itemRenamed:
		if n.subs != nil && n.subs[it.old] {
			// RENAME moves the subscription (store.Mailboxes).
			delete(n.subs, it.old)
			n.subs[it.name] = true
		}
		if k, ok := n.known[it.old]; ok {
			delete(n.known, it.old)
			if n.eventsFor(it.name, n.subs)&(evMessage|evFlags) != 0 {
				n.known[it.name] = k
			}
		}
		if it.own || (n.eventsFor(it.name, n.subs)|n.eventsFor(it.old, n.subs))&evMailboxName == 0 {
			return nil
		}
		// §5.4: the new name's LIST with OLDNAME.
		return s.writeNotifyList(w, l, it.name, it.old)
	case itemDeleted:
		delete(n.known, it.name)
	case itemCreated:
		if _, ok := n.known[it.name]; !ok && n.eventsFor(it.name, n.subs)&(evMessage|evFlags) != 0 {
			// Baseline an empty mailbox, so that mail that came before
			// this poll is reported.
			st, err := s.srv.cache.mailboxStatus(s.ctx, s.srv.opts.Backend, s.account, it.name)
			if err == nil {
				n.known[it.name] = notifyKnown{uidValidity: st.UIDValidity, uidNext: 1, modSeq: 1}
				if err := s.notifyStatus(w, n, it.name); err != nil {
					return err
				}
			}
		}
	}
	if it.own || n.eventsFor(it.name, n.subs)&evMailboxName == 0 {
		return nil
	}
	return s.writeNotifyList(w, l, it.name, "")
}

// writeNotifyList writes the LIST response of a name as it is now (RFC
// 5465 §5.4, §5.5): \NonExistent when no mailbox has it, \Subscribed
// when it is subscribed, children and special use as LIST gives them.
func (s *session) writeNotifyList(w *imapserver.UpdateWriter, l **notifyListing, name, old string) error {
	ls, err := s.listing(l)
	if err != nil {
		s.log.Warn("notify: listing the mailboxes failed", "err", err)
		return nil
	}
	data := &imap.ListData{Mailbox: name, Delim: '/', OldName: old}
	node := ls.nodes[name]
	switch {
	case node == nil || node.mb == nil && !node.inTree():
		data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
	case node.mb == nil:
		data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent)
	}
	if node != nil {
		if node.children {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
		} else {
			data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
		}
		if node.subscribed {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if node.mb != nil && node.mb.SpecialUse != store.SpecialNone {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(node.mb.SpecialUse))
		}
	}
	return w.WriteList(data)
}

// notifyNew writes the FETCH responses MessageNew's attributes ask for,
// after the EXISTS of the last added messages of the view (RFC 5465
// §5.2) and before their ADDTO (§7).
func (s *session) notifyNew(w *imapserver.UpdateWriter, added int) error {
	n := s.notify
	if n == nil || n.fetch == nil || n.sel&evMessage == 0 {
		return nil
	}
	v := s.view
	var set imap.SeqSet
	set.AddRange(uint32(len(v.uids)-added+1), uint32(len(v.uids)))
	err := v.fetch(w.NotifyFetchWriter(), set, n.fetch)
	var ie *imap.Error
	if errors.As(err, &ie) {
		return nil // expunged meanwhile: the EXPUNGE follows
	}
	return err
}

// WaitStart implements imapserver.SessionNotify: while the connection
// waits for a command, the feed's wake-ups start a poll that writes the
// notifications, as in IDLE.
func (s *session) WaitStart(w *imapserver.UpdateWriter) {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	n := s.notify
	if n == nil {
		return
	}
	s.idleW, s.waiting = w, true
	if n.pending() || s.woken && n.sel != 0 && s.view != nil {
		s.startPollLocked()
	}
}

// WaitStop implements imapserver.SessionNotify: it waits for a poll in
// flight and returns the error of one that failed.
func (s *session) WaitStop() error {
	s.idleMu.Lock()
	defer s.idleMu.Unlock()
	if !s.waiting {
		return nil
	}
	s.idleW, s.waiting = nil, false
	for s.polling {
		s.idleDone.Wait()
	}
	err := s.idleErr
	s.idleErr = nil
	return err
}

// waitPoll is the poll while the connection waits for a command: the
// selected mailbox only with SELECTED or SELECTED-DELAYED, whose
// expunges wait for a command that allows them (RFC 5465 §6.1).
func (s *session) waitPoll(w *imapserver.UpdateWriter) error {
	n := s.notify
	if n == nil {
		return nil
	}
	defer s.srv.begin()()
	if s.view != nil && n.sel != 0 {
		s.idleMu.Lock()
		s.woken = false
		s.idleMu.Unlock()
		if err := s.view.poll(w, n.immediate); err != nil {
			return err
		}
	}
	return s.notifyPoll(w)
}

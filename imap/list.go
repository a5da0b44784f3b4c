package imap

import (
	"errors"
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// listNode is one name in the hierarchy: a mailbox, a parent that exists
// only because it has children (listed \Noselect), or a subscribed name
// without a mailbox (listed \NonExistent with SUBSCRIBED, RFC 5258 §3.1).
type listNode struct {
	mb       *store.Mailbox
	children bool // some descendant mailbox exists
	// subscribed: the name is on the subscription list, whether or not
	// a mailbox of that name exists (RFC 9051 §6.3.7).
	subscribed bool
	// subChild: some descendant is subscribed (LSUB \Noselect parents,
	// LIST-EXTENDED CHILDINFO).
	subChild bool
}

// inTree reports whether a LIST without the SUBSCRIBED selection option
// shows the name: a mailbox or a parent of one.
func (n *listNode) inTree() bool { return n.mb != nil || n.children }

// List implements LIST (RFC 9051 §6.3.9) with LIST-EXTENDED (RFC 5258),
// LIST-STATUS (RFC 5819), SPECIAL-USE (RFC 6154) and CHILDREN (RFC 3348),
// and LSUB (RFC 3501 §6.3.9), which the library passes as a LIST with
// only the SUBSCRIBED selection option.
func (s *session) List(w *imapserver.ListWriter, ref string, patterns []string, options *imap.ListOptions) error {
	defer s.srv.begin()()
	if len(patterns) == 0 {
		// LIST "" "": the hierarchy delimiter and root (RFC 9051 §6.3.9).
		return w.WriteList(&imap.ListData{Attrs: []imap.MailboxAttr{imap.MailboxAttrNoSelect}, Delim: '/'})
	}
	mbs, subs, err := s.srv.cache.listing(s.ctx, s.srv.opts.Backend, s.account, s.subscriptions)
	if err != nil {
		return s.storeErr("list", err)
	}
	// RFC 9590: entry names are checked, as GETMETADATA checks them,
	// before any response is written.
	var metaNames []string
	if want := w.MetadataEntries(); want != nil && s.srv.meta != nil {
		if metaNames, err = metadataNames(want, true); err != nil {
			return err
		}
	}
	nodes := listTree(mbs, subs)
	names := make([]string, 0, len(nodes))
	for n := range nodes {
		names = append(names, n)
	}
	sort.Strings(names)

	ref = canonicalInbox(ref)
	for i, p := range patterns {
		if ref == "" {
			patterns[i] = canonicalInbox(p)
		}
	}
	lsub := w.LSUB()
	matches := func(name string) (matched, lastPercent bool) {
		for _, p := range patterns {
			if imapserver.MatchList(name, '/', ref, p) {
				matched = true
				lastPercent = lastPercent || strings.HasSuffix(p, "%")
			}
		}
		return matched, lastPercent
	}
	// hiddenSubChild reports whether a subscribed descendant of name is
	// not listed itself: only then does RECURSIVEMATCH bring the parent
	// in (RFC 5258 §3.1: "return information about parent mailboxes that
	// don't match other selection options, but have some submailboxes
	// that do"; a submailbox already listed needs no parent to show it,
	// which is how Dovecot reads it too). names is sorted, so the
	// descendants are contiguous.
	hiddenSubChild := func(name string) bool {
		prefix := name + "/"
		for i := sort.SearchStrings(names, prefix); i < len(names) && strings.HasPrefix(names[i], prefix); i++ {
			if nodes[names[i]].subscribed {
				if m, _ := matches(names[i]); !m {
					return true
				}
			}
		}
		return false
	}
	for _, name := range names {
		n := nodes[name]
		matched, lastPercent := matches(name)
		if !matched {
			continue
		}
		var childInfo *imap.ListDataChildInfo
		switch {
		case options.SelectSubscribed && n.subscribed:
		case options.SelectSubscribed && options.SelectRecursiveMatch && n.subChild && hiddenSubChild(name):
			// RFC 5258 §3.5: a parent of a subscribed mailbox.
			childInfo = &imap.ListDataChildInfo{Subscribed: true}
		case lsub && n.subChild && lastPercent:
			// RFC 3501 §6.3.9: "%" stops at a level that is not itself
			// subscribed but holds subscribed names: \Noselect.
		case options.SelectSubscribed:
			continue
		case !n.inTree():
			continue // only subscribed: not a LIST result
		}
		if options.SelectSpecialUse && (n.mb == nil || n.mb.SpecialUse == store.SpecialNone) {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: '/', ChildInfo: childInfo}
		switch {
		case lsub:
			// LSUB lists subscriptions: \Noselect marks a level that
			// only holds subscribed names (RFC 3501 §6.3.9); a subscribed
			// name is listed plainly whether or not its mailbox exists.
			if !n.subscribed {
				data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
			}
		case n.mb == nil && n.inTree():
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect, imap.MailboxAttrNonExistent)
		case n.mb == nil:
			// A subscribed name whose mailbox does not exist (RFC 5258
			// §3.1); \NonExistent implies \Noselect (RFC 5258 §3.4).
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		}
		if !lsub {
			if n.children {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if n.subscribed && !lsub && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if n.mb != nil && n.mb.SpecialUse != store.SpecialNone && !lsub {
			data.Attrs = append(data.Attrs, imap.MailboxAttr(n.mb.SpecialUse))
		}
		if options.ReturnStatus != nil && n.mb != nil {
			st, err := s.status(name, options.ReturnStatus)
			if err == nil {
				data.Status = st
			}
		}
		if err := w.WriteList(data); err != nil {
			return err
		}
		if metaNames != nil && n.mb != nil {
			if err := s.listMetadata(w, n.mb, metaNames); err != nil {
				return err
			}
		}
	}
	return nil
}

// listMetadata writes the METADATA response of a listed mailbox for
// LIST's METADATA return option (RFC 9590 §3): the entries named, as
// GETMETADATA gives them, from one read of the mailbox's entries, which
// are dropped once written, so a LIST over many mailboxes holds one
// mailbox's entries (at most Options.Metadata.MaxEntries) at a time.
// Names without a mailbox (\NonExistent, \Noselect parents) get none.
func (s *session) listMetadata(w *imapserver.ListWriter, mb *store.Mailbox, names []string) error {
	stored, err := s.srv.meta.Metadata(s.ctx, s.account, mb.Name)
	if errors.Is(err, store.ErrNoMailbox) {
		return nil // deleted since the listing was read
	}
	if err != nil {
		return s.storeErr("list", err)
	}
	return w.WriteMetadata(mb.Name, selectMetadata(stored, mb.SpecialUse, names, 0))
}

// listTree indexes mailboxes, subscribed names and the parents implied by
// both.
func listTree(mbs []store.Mailbox, subs []string) map[string]*listNode {
	nodes := make(map[string]*listNode, len(mbs))
	get := func(name string) *listNode {
		n := nodes[name]
		if n == nil {
			n = &listNode{}
			nodes[name] = n
		}
		return n
	}
	// parents calls fn with the node of every ancestor of name.
	parents := func(name string, fn func(*listNode)) {
		for p := name; ; {
			j := strings.LastIndex(p, store.Separator)
			if j < 0 {
				return
			}
			p = p[:j]
			fn(get(p))
		}
	}
	for i := range mbs {
		mb := &mbs[i]
		get(mb.Name).mb = mb
		parents(mb.Name, func(p *listNode) { p.children = true })
	}
	for _, name := range subs {
		get(name).subscribed = true
		parents(name, func(p *listNode) { p.subChild = true })
	}
	return nodes
}

// canonicalInbox spells a leading INBOX segment of a pattern or reference
// in upper case: INBOX is case-insensitive (RFC 9051 §5.1), other names
// are not.
func canonicalInbox(p string) string {
	first, rest, has := strings.Cut(p, store.Separator)
	if !strings.EqualFold(first, store.Inbox) {
		return p
	}
	if has {
		return store.Inbox + store.Separator + rest
	}
	return store.Inbox
}

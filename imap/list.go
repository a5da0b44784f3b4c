package imap

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"

	"github.com/mailyard/mailyard/store"
)

// listNode is one name in the hierarchy: a mailbox, or a parent that
// exists only because it has children (listed \Noselect).
type listNode struct {
	mb         *store.Mailbox
	children   bool
	subscribed bool // the mailbox is subscribed
	// subChild: some descendant is subscribed (LSUB \Noselect parents,
	// LIST-EXTENDED CHILDINFO).
	subChild bool
}

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
	mbs, err := s.srv.opts.Backend.ListMailboxes(s.ctx, s.account)
	if err != nil {
		return s.storeErr("list", err)
	}
	nodes := listTree(mbs)
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
	lsub := options.SelectSubscribed && !options.SelectRecursiveMatch && !options.SelectSpecialUse &&
		!options.ReturnSubscribed && !options.ReturnChildren && !options.ReturnSpecialUse && options.ReturnStatus == nil
	for _, name := range names {
		n := nodes[name]
		matched, lastPercent := false, false
		for _, p := range patterns {
			if imapserver.MatchList(name, '/', ref, p) {
				matched = true
				lastPercent = lastPercent || strings.HasSuffix(p, "%")
			}
		}
		if !matched {
			continue
		}
		var childInfo *imap.ListDataChildInfo
		switch {
		case options.SelectSubscribed && n.subscribed:
		case options.SelectSubscribed && options.SelectRecursiveMatch && n.subChild:
			// RFC 5258 §3.5: a parent of a subscribed mailbox.
			childInfo = &imap.ListDataChildInfo{Subscribed: true}
		case lsub && n.subChild && lastPercent:
			// RFC 3501 §6.3.9: "%" stops at a level that is not itself
			// subscribed but holds subscribed names: \Noselect.
		case options.SelectSubscribed:
			continue
		}
		if options.SelectSpecialUse && (n.mb == nil || n.mb.SpecialUse == store.SpecialNone) {
			continue
		}
		data := &imap.ListData{Mailbox: name, Delim: '/', ChildInfo: childInfo}
		if n.mb == nil || (lsub && !n.subscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNoSelect)
		}
		if n.mb == nil && !lsub {
			data.Attrs = append(data.Attrs, imap.MailboxAttrNonExistent)
		}
		if !lsub {
			if n.children {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasChildren)
			} else {
				data.Attrs = append(data.Attrs, imap.MailboxAttrHasNoChildren)
			}
		}
		if n.subscribed && (options.SelectSubscribed || options.ReturnSubscribed) {
			data.Attrs = append(data.Attrs, imap.MailboxAttrSubscribed)
		}
		if n.mb != nil && n.mb.SpecialUse != store.SpecialNone {
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
	}
	return nil
}

// listTree indexes mailboxes and the parents implied by their names.
func listTree(mbs []store.Mailbox) map[string]*listNode {
	nodes := make(map[string]*listNode, len(mbs))
	get := func(name string) *listNode {
		n := nodes[name]
		if n == nil {
			n = &listNode{}
			nodes[name] = n
		}
		return n
	}
	for i := range mbs {
		mb := &mbs[i]
		n := get(mb.Name)
		n.mb = mb
		n.subscribed = mb.Subscribed
		for p := mb.Name; ; {
			j := strings.LastIndex(p, store.Separator)
			if j < 0 {
				break
			}
			p = p[:j]
			parent := get(p)
			parent.children = true
			if mb.Subscribed {
				parent.subChild = true
			}
		}
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

package imap

import (
	"cmp"
	"slices"
	"strings"
	"time"

	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

// threadMsg is what threading needs of a message (RFC 5256 §2).
type threadMsg struct {
	seq, num uint32 // sequence number, and the number to answer with
	sent     time.Time
	subject  string // base subject, folded (sortFold)
	reply    bool   // the subject was a reply's or forward's
	msgID    string // "" if it has none (or none valid)
	refs     []string
}

// bySent orders messages by sent date, then sequence number (RFC 5256
// §2.2: messages with the same sent date keep mailbox order).
func bySent(a, b *threadMsg) int {
	if c := a.sent.Compare(b.sent); c != 0 {
		return c
	}
	return cmp.Compare(a.seq, b.seq)
}

// orderedSubject threads by THREAD=ORDEREDSUBJECT (RFC 5256 §2.2):
// messages with the same base subject form a thread, in sent date order,
// the first the parent of all the others; threads are in the order of
// their first messages.
func orderedSubject(msgs []*threadMsg) []imapserver.Thread {
	sorted := slices.Clone(msgs)
	slices.SortFunc(sorted, func(a, b *threadMsg) int {
		if c := strings.Compare(a.subject, b.subject); c != 0 {
			return c
		}
		return bySent(a, b)
	})
	var groups [][]*threadMsg
	for i := 0; i < len(sorted); {
		j := i + 1
		for j < len(sorted) && sorted[j].subject == sorted[i].subject {
			j++
		}
		groups = append(groups, sorted[i:j])
		i = j
	}
	slices.SortFunc(groups, func(a, b []*threadMsg) int { return bySent(a[0], b[0]) })
	out := make([]imapserver.Thread, len(groups))
	for i, g := range groups {
		out[i].Num = g[0].num
		for _, m := range g[1:] {
			out[i].Children = append(out[i].Children, imapserver.Thread{Num: m.num})
		}
	}
	return out
}

// container is a node of THREAD=REFERENCES: a message, or a dummy for a
// message referred to but not among those threaded.
type container struct {
	msg      *threadMsg
	parent   *container
	children []*container
}

func (c *container) link(child *container) {
	child.parent = c
	c.children = append(c.children, child)
}

func (c *container) unlink() {
	if p := c.parent; p != nil {
		p.children = slices.DeleteFunc(p.children, func(x *container) bool { return x == c })
		c.parent = nil
	}
}

// ancestorOf reports whether c is x or one of x's ancestors.
func (c *container) ancestorOf(x *container) bool {
	for ; x != nil; x = x.parent {
		if x == c {
			return true
		}
	}
	return false
}

// first is the message that stands for c in sorting and subject
// grouping: its own, or for a dummy its first child's (RFC 5256 §2.3
// steps 5 and 6; children are sorted before).
func (c *container) first() *threadMsg {
	for c.msg == nil && len(c.children) > 0 {
		c = c.children[0]
	}
	return c.msg
}

// bySentC orders containers by their first message's sent date; a dummy
// without any message (not left after pruning) sorts last.
func bySentC(a, b *container) int {
	ma, mb := a.first(), b.first()
	switch {
	case ma == nil && mb == nil:
		return 0
	case ma == nil:
		return 1
	case mb == nil:
		return -1
	}
	return bySent(ma, mb)
}

// references threads by THREAD=REFERENCES (RFC 5256 §2.3); msgs are in
// sequence order.
func references(msgs []*threadMsg) []imapserver.Thread {
	// (1) Link messages by their references.
	byID := make(map[string]*container)
	get := func(id string) *container {
		c := byID[id]
		if c == nil {
			c = &container{}
			byID[id] = c
		}
		return c
	}
	all := make([]*container, 0, len(msgs))
	for _, m := range msgs {
		var c *container
		if m.msgID != "" && (byID[m.msgID] == nil || byID[m.msgID].msg == nil) {
			c = get(m.msgID)
		} else {
			// No Message-ID, or a duplicate: a unique one (§2.3 (1)).
			c = &container{}
		}
		c.msg = m
		all = append(all, c)
		// (1)(A) Each reference the parent of the next, unless the
		// next has a parent or the link would make a loop.
		for i := 0; i+1 < len(m.refs); i++ {
			p, ch := get(m.refs[i]), get(m.refs[i+1])
			if ch.parent == nil && !ch.ancestorOf(p) {
				p.link(ch)
			}
		}
		// (1)(B) The last reference is the message's parent; no
		// references, no parent.
		if len(m.refs) == 0 {
			c.unlink()
			continue
		}
		if p := get(m.refs[len(m.refs)-1]); p != c.parent && !c.ancestorOf(p) {
			c.unlink()
			p.link(c)
		}
	}
	// (2) The root set: containers without a parent. Dummies come from
	// byID, messages from all (those with unique IDs are only there),
	// each in a fixed order so that the result does not depend on map
	// iteration.
	var roots []*container
	seen := make(map[*container]bool)
	addRoot := func(c *container) {
		if c.parent == nil && !seen[c] {
			seen[c] = true
			roots = append(roots, c)
		}
	}
	for _, c := range all {
		addRoot(c)
	}
	for _, m := range msgs {
		for _, id := range m.refs {
			addRoot(byID[id])
		}
	}
	// (4) Prune dummies.
	roots = prune(roots, true)
	// (5) Sort the root set by sent date (a dummy by its first child's).
	for _, r := range roots {
		if r.msg == nil {
			slices.SortStableFunc(r.children, bySentC)
		}
	}
	slices.SortStableFunc(roots, bySentC)
	// (6) Gather threads with the same base subject.
	roots = groupBySubject(roots)
	// (7) Sort siblings at every level, deepest first.
	return sortThreads(roots)
}

// prune deletes dummies without children and splices a dummy's children
// into its place, except at the root when it has two or more (RFC 5256
// §2.3 (4)).
func prune(list []*container, root bool) []*container {
	var out []*container
	for _, c := range list {
		c.children = prune(c.children, false)
		switch {
		case c.msg != nil:
			out = append(out, c)
		case len(c.children) == 0:
			// dropped
		case !root || len(c.children) == 1:
			for _, ch := range c.children {
				ch.parent = c.parent
				out = append(out, ch)
			}
			c.children = nil
		default:
			out = append(out, c)
		}
	}
	return out
}

// groupBySubject merges root threads with the same base subject (RFC
// 5256 §2.3 (6)); roots are sorted by sent date.
func groupBySubject(roots []*container) []*container {
	isReply := func(c *container) bool { return c.msg != nil && c.msg.reply }
	subjectOf := func(c *container) string {
		if m := c.first(); m != nil {
			return m.subject
		}
		return ""
	}
	// (B) The table: per subject, a dummy if there is one, else a
	// message that is not a reply if there is one, else the first.
	table := make(map[string]*container)
	for _, r := range roots {
		subj := subjectOf(r)
		if subj == "" {
			continue
		}
		old := table[subj]
		if old == nil ||
			(r.msg == nil && old.msg != nil) ||
			(r.msg != nil && old.msg != nil && isReply(old) && !isReply(r)) {
			table[subj] = r
		}
	}
	// (C) Merge each root into its subject's table entry.
	removed := make(map[*container]bool)
	replaced := make(map[*container]*container) // old table entry -> its new dummy
	for _, r := range roots {
		subj := subjectOf(r)
		if subj == "" || r.parent != nil {
			continue // r was merged into another thread already
		}
		t := table[subj]
		if t == r {
			continue
		}
		switch {
		case t.msg == nil && r.msg == nil:
			// Both dummies: r's children join t's.
			for _, ch := range r.children {
				t.link(ch)
			}
			r.children = nil
			removed[r] = true
		case t.msg == nil:
			t.link(r)
			removed[r] = true
		case !isReply(t) && isReply(r):
			t.link(r)
			removed[r] = true
		default:
			// A new dummy holds both, in t's place.
			d := &container{}
			replaced[t] = d
			d.link(t)
			d.link(r)
			table[subj] = d
			removed[r] = true
		}
	}
	var out []*container
	for _, r := range roots {
		if removed[r] {
			continue
		}
		for replaced[r] != nil {
			r = replaced[r]
		}
		out = append(out, r)
	}
	return out
}

// sortThreads sorts the siblings of every level by sent date, children
// before their parents (RFC 5256 §2.3 (7)), and gives the threads in
// the order of the root set.
func sortThreads(roots []*container) []imapserver.Thread {
	for _, r := range roots {
		sortSiblings(r)
	}
	slices.SortStableFunc(roots, bySentC)
	out := make([]imapserver.Thread, len(roots))
	for i, r := range roots {
		out[i] = toThread(r)
	}
	return out
}

// sortSiblings sorts the children of c and of everything below it.
func sortSiblings(c *container) {
	// Iteratively, so that a long chain of replies does not recurse.
	stack := []*container{c}
	var order []*container
	for len(stack) > 0 {
		x := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		order = append(order, x)
		stack = append(stack, x.children...)
	}
	for i := len(order) - 1; i >= 0; i-- {
		slices.SortStableFunc(order[i].children, bySentC)
	}
}

// toThread converts a container tree into the response's.
func toThread(c *container) imapserver.Thread {
	var t imapserver.Thread
	if c.msg != nil {
		t.Num = c.msg.num
	}
	for _, ch := range c.children {
		t.Children = append(t.Children, toThread(ch))
	}
	return t
}

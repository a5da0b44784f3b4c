package postgres

import (
	"slices"

	"github.com/mailyard/mailyard/store"
)

// The IMAP server asks for a mailbox's row (Mailbox: UIDNEXT,
// HIGHESTMODSEQ) before it asks what changed, after every command once
// the account's change number moved, and on every SELECT. Where the
// change was a write through this Store, the write already knows the
// row it leaves behind: the pipelined writes (Append, StoreFlags,
// Expunge, Copy, Move) read the mailbox's row under the account's lock
// and compute its new UIDNEXT and HIGHESTMODSEQ. They leave it here,
// numbered by the account's change number, and Mailbox answers from it
// while that number holds, so the poll after another session's write
// costs the one statement of Changes. Any other write to the account,
// on any node, moves the number (changeCounts) and the entry is no
// longer used; so does losing the listening connection.
//
// A write's row is remembered only if the account's number did not move
// between the moment its reads returned (the account locked) and its
// commit being counted: no other write's count came in between, so no
// write committed after this one was counted yet, and the row is the
// latest the store has heard of. Otherwise only the number moves.

// maxMailboxMemos bounds the remembered mailboxes; past it they start
// over.
const maxMailboxMemos = 4096

type mailboxKey struct{ account, name string }

// mailboxMemo is a mailbox's row as of change number n of its account.
type mailboxMemo struct {
	n  uint64
	mb store.Mailbox
}

// writtenBox is the row a write leaves a mailbox with, and the
// account's change number when the write's reads returned.
type writtenBox struct {
	account string
	mb      store.Mailbox
	n       uint64
	on      bool
}

// currentLocked is the account's number; the caller holds c.mu and has
// checked c.on.
func (c *changeCounts) currentLocked(account string) uint64 {
	return max(c.accounts[account], c.base)
}

// snapshot is the account's number for writtenBox.n; false while the
// listener is away (nothing is remembered then).
func (c *changeCounts) snapshot(account string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return 0, false
	}
	return c.currentLocked(account), true
}

// mailbox returns the remembered row of a mailbox, if its account's
// number still is the one it was remembered under.
func (c *changeCounts) mailbox(account, name string) (store.Mailbox, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		return store.Mailbox{}, false
	}
	e, ok := c.memos[mailboxKey{account, name}]
	if !ok || e.n != c.currentLocked(account) {
		return store.Mailbox{}, false
	}
	return e.mb, true
}

// rememberRead keeps a row read from the database when the account's
// number is still n, the number read before the query: a write counted
// meanwhile may have committed before the query's snapshot or after.
func (c *changeCounts) rememberRead(account string, n uint64, mb store.Mailbox) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.on && c.currentLocked(account) == n {
		c.rememberLocked(mailboxKey{account, mb.Name}, mailboxMemo{n: n, mb: mb})
	}
}

func (c *changeCounts) rememberLocked(k mailboxKey, e mailboxMemo) {
	if c.memos == nil || len(c.memos) >= maxMailboxMemos {
		c.memos = make(map[mailboxKey]mailboxMemo)
	}
	c.memos[k] = e
}

// committed counts a committed write: the accounts whose feed it wrote
// or that it changed without a feed row move, those whose list changed
// move their list number too, and the rows in boxes are remembered
// under the new numbers where nothing else was counted for their
// account since the write's reads returned.
func (c *changeCounts) committed(accounts, lists []string, boxes []writtenBox) {
	if len(accounts) == 0 && len(lists) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	latest := make([]bool, len(boxes))
	for i, b := range boxes {
		latest[i] = b.on && c.on && c.currentLocked(b.account) == b.n
	}
	c.makeRoomLocked()
	for _, a := range accounts {
		c.next++
		c.accounts[a] = c.next
	}
	for _, a := range lists {
		c.next++
		c.accounts[a] = c.next
		c.lists[a] = c.next
	}
	for i, b := range boxes {
		if latest[i] && (slices.Contains(accounts, b.account) || slices.Contains(lists, b.account)) {
			c.rememberLocked(mailboxKey{b.account, b.mb.Name}, mailboxMemo{n: c.currentLocked(b.account), mb: b.mb})
		}
	}
}

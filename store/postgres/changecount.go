package postgres

import "sync"

// maxCountedAccounts bounds changeCounts' map: past it every account's
// number changes at once and the map starts over.
const maxCountedAccounts = 65536

// changeCounts numbers the changes of each account that this Store
// learnt of: its own commits (before the writing call returns) and
// every node's, by their NOTIFY on the feed channel (before the feed
// wakes this node's subscribers). While the feed's connection is not
// listening, notifications may be missed, so every call gets a new
// number and nothing cached by them is used.
type changeCounts struct {
	mu       sync.Mutex
	on       bool
	next     uint64            // the last number given out
	base     uint64            // every account's number is at least this
	accounts map[string]uint64 // the number of each account's last change
	lists    map[string]uint64 // the number of each account's last list change
	memos    map[mailboxKey]mailboxMemo
}

// bump gives each account a new number.
func (c *changeCounts) bump(accounts ...string) { c.bumpAll(false, accounts) }

// bumpLists gives each account a new number and a new list number: its
// mailbox list or subscriptions changed.
func (c *changeCounts) bumpLists(accounts ...string) { c.bumpAll(true, accounts) }

func (c *changeCounts) bumpAll(lists bool, accounts []string) {
	if len(accounts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.makeRoomLocked()
	for _, a := range accounts {
		c.next++
		c.accounts[a] = c.next
		if lists {
			c.lists[a] = c.next
		}
	}
}

// makeRoomLocked makes the maps and, past maxCountedAccounts, empties
// them and moves base up, which changes every account's numbers.
func (c *changeCounts) makeRoomLocked() {
	if c.accounts == nil {
		c.accounts = make(map[string]uint64)
		c.lists = make(map[string]uint64)
	}
	if len(c.accounts) >= maxCountedAccounts || len(c.lists) >= maxCountedAccounts {
		clear(c.accounts)
		clear(c.lists)
		c.next++
		c.base = c.next
	}
}

// setOn records whether the feed's connection listens; either way every
// account's number changes.
func (c *changeCounts) setOn(on bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.on = on
	c.next++
	c.base = c.next
	clear(c.accounts)
	clear(c.lists)
	clear(c.memos)
}

func (c *changeCounts) count(account string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		c.next++
		return c.next
	}
	return max(c.accounts[account], c.base)
}

func (c *changeCounts) listCount(account string) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.on {
		c.next++
		return c.next
	}
	return max(c.lists[account], c.base)
}

// ChangeCount implements imap.ChangeCounter: a number that changes
// whenever a write affecting the account commits, through this Store
// (before the writing call returns) or through any other Store on the
// database (once its notification arrived, before this Store's feed
// subscribers are woken by it, so a session woken by a delivery on
// another node does not answer from a cache older than it). The number
// is per account: mailbox is not told apart, so a write to any of the
// account's mailboxes or subscriptions changes the number of all of
// them. While the store's listening connection is lost (notifications
// may be missed) every call returns a new number. Numbers start afresh
// with every Open.
func (s *Store) ChangeCount(account, mailbox string) uint64 {
	return s.counts.count(account)
}

// ListChangeCount implements imap.ListChangeCounter: a number that
// changes whenever the account's list of mailboxes or subscriptions
// changes (a mailbox created, deleted, renamed or imported, a
// subscription set or cleared, the account deleted), through this
// Store (before the writing call returns) or through any other Store
// on the database (once its notification on listsChannel arrived,
// which the writing Store sends before the same commit's feed
// notification). Unlike ChangeCount, a message written does not change
// it, so IMAP answers LIST from memory while mail comes and goes. While
// the listening connection is lost every call returns a new number.
func (s *Store) ListChangeCount(account string) uint64 {
	return s.counts.listCount(account)
}

// ownBackends is the set of backend PIDs of a Store's pool connections:
// notifications they sent are the Store's own commits.
type ownBackends struct {
	mu   sync.Mutex
	pids map[uint32]struct{}
}

func (o *ownBackends) add(pid uint32) {
	o.mu.Lock()
	o.pids[pid] = struct{}{}
	o.mu.Unlock()
}

func (o *ownBackends) remove(pid uint32) {
	o.mu.Lock()
	delete(o.pids, pid)
	o.mu.Unlock()
}

func (o *ownBackends) has(pid uint32) bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	_, ok := o.pids[pid]
	return ok
}

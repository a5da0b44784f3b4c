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
}

// bump gives each account a new number.
func (c *changeCounts) bump(accounts ...string) {
	if len(accounts) == 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.accounts == nil {
		c.accounts = make(map[string]uint64)
	}
	if len(c.accounts) >= maxCountedAccounts {
		clear(c.accounts)
		c.next++
		c.base = c.next
	}
	for _, a := range accounts {
		c.next++
		c.accounts[a] = c.next
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

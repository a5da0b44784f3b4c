package imap

import (
	"strconv"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapserver"
)

// WITHIN (RFC 5032): the OLDER and YOUNGER search keys arrive as header
// fields with names no client can send (imapserver.SearchKeyOlder and
// SearchKeyYounger); within takes them out of c.k into c's time bounds,
// computed once per search from now.
//
// OLDER n matches an INTERNALDATE at least n seconds before now, YOUNGER
// n one less than n seconds before now, so the two partition the mailbox
// (RFC 5032 §2 leaves the boundary open). Time zones play no part: the
// INTERNALDATE is an instant.
func (c *compiled) within(now time.Time) error {
	var rest []imap.SearchCriteriaHeaderField
	found := false
	for _, f := range c.k.Header {
		if f.Key != imapserver.SearchKeyOlder && f.Key != imapserver.SearchKeyYounger {
			rest = append(rest, f)
			continue
		}
		found = true
		n, err := strconv.ParseUint(f.Value, 10, 32)
		if err != nil {
			return err // not reached: the parser wrote the number
		}
		t := now.Add(-time.Duration(n) * time.Second)
		if f.Key == imapserver.SearchKeyOlder {
			if c.olderBy.IsZero() || t.Before(c.olderBy) {
				c.olderBy = t
			}
		} else if t.After(c.youngerThan) {
			c.youngerThan = t
		}
	}
	if found {
		k := *c.k
		k.Header = rest
		c.k = &k
	}
	return nil
}

// matchWithin reports whether an INTERNALDATE d is within c's bounds.
func (c *compiled) matchWithin(d time.Time) bool {
	if !c.olderBy.IsZero() && d.After(c.olderBy) {
		return false
	}
	if !c.youngerThan.IsZero() && !d.After(c.youngerThan) {
		return false
	}
	return true
}

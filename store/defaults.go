package store

import "fmt"

// DefaultMailbox is one of the mailboxes [Accounts.CreateAccount] creates.
type DefaultMailbox struct {
	Name string
	Use  SpecialUse
}

// DefaultMailboxes returns the mailboxes every new account gets, in the
// order backends create them: INBOX, then one per special use of RFC 6154
// §2 that a client files mail into (all subscribed).
func DefaultMailboxes() []DefaultMailbox {
	return []DefaultMailbox{
		{Inbox, SpecialNone},
		{"Sent", SpecialSent},
		{"Drafts", SpecialDrafts},
		{"Trash", SpecialTrash},
		{"Junk", SpecialJunk},
		{"Archive", SpecialArchive},
	}
}

// CheckSpecialUse returns nil for SpecialNone and the special-use
// attributes this package defines, else an error wrapping ErrInvalid.
// Backends call it before they create a mailbox.
func CheckSpecialUse(u SpecialUse) error {
	switch u {
	case SpecialNone, SpecialSent, SpecialDrafts, SpecialTrash, SpecialJunk,
		SpecialArchive, SpecialAll, SpecialFlagged:
		return nil
	}
	return fmt.Errorf("%w: unknown special-use attribute %q", ErrInvalid, u)
}

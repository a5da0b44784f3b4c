package memstore

import (
	"context"
	"slices"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// mailbox is one mailbox with its messages, ascending by UID, and the
// expunge tombstones QRESYNC needs (RFC 7162 §3.2.10).
type mailbox struct {
	id          int64
	name        string
	use         store.SpecialUse
	uidValidity uint32
	uidNext     uint32
	modSeq      uint64
	msgs        []*store.Message
	expunged    map[uint32]uint64 // UID -> MODSEQ of its expunge
	meta        map[string][]byte // metadata entries (RFC 5464), by name
}

func (m *mailbox) info(a *account) store.Mailbox {
	return store.Mailbox{
		ID: m.id, Name: m.name, SpecialUse: m.use, Subscribed: a.subscribed[m.name],
		UIDValidity: m.uidValidity, UIDNext: m.uidNext, HighestModSeq: m.modSeq,
	}
}

// mailbox returns an account and its mailbox by canonical name:
// ErrNotFound for a missing account, ErrNoMailbox for a missing mailbox.
// The caller holds s.mu.
func (s *Store) mailbox(account, name string) (*account, *mailbox, error) {
	a, err := s.account(account)
	if err != nil {
		return nil, nil, err
	}
	m := a.mailboxes[name]
	if m == nil {
		return a, nil, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
	}
	return a, m, nil
}

// newUIDValidity returns a UIDVALIDITY from the clock, larger than any
// the store gave out before, so a mailbox re-created under a name never
// repeats one (RFC 9051 §2.3.1.1).
func (s *Store) newUIDValidity() uint32 {
	v := s.now().Unix()
	if v <= s.lastUIDValidity || v > 0xffffffff {
		v = s.lastUIDValidity + 1
	}
	if v > 0xffffffff {
		v = 1
	}
	s.lastUIDValidity = v
	return uint32(v)
}

func (s *Store) insertMailbox(a *account, name string, use store.SpecialUse) *mailbox {
	s.lastMailboxID++
	m := &mailbox{
		id: s.lastMailboxID, name: name, use: use, uidValidity: s.newUIDValidity(),
		uidNext: 1, modSeq: 1, expunged: make(map[uint32]uint64),
	}
	a.mailboxes[name] = m
	s.publish(store.Change{Kind: store.ChangeMailboxCreated, Account: a.info.ID, Mailbox: name, ModSeq: 1})
	return m
}

// createParents creates the missing ancestors of name (RFC 9051 §6.3.4:
// the server SHOULD create superior hierarchical names).
func (s *Store) createParents(a *account, name string) {
	for i := range len(name) {
		if name[i] == store.Separator[0] && a.mailboxes[name[:i]] == nil {
			s.insertMailbox(a, name[:i], store.SpecialNone)
		}
	}
}

// CreateMailbox implements store.Mailboxes. The new mailbox is not
// subscribed, unless its name already was.
func (s *Store) CreateMailbox(ctx context.Context, account, name string, use store.SpecialUse) (store.Mailbox, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	if err := store.CheckSpecialUse(use); err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	err = s.write(ctx, func() error {
		a, err := s.account(account)
		if err != nil {
			return err
		}
		if a.mailboxes[name] != nil {
			return errorf("mailbox %q: %w", name, store.ErrExists)
		}
		s.createParents(a, name)
		out = s.insertMailbox(a, name, use).info(a)
		return nil
	})
	return out, err
}

// Mailbox implements store.Mailboxes.
func (s *Store) Mailbox(ctx context.Context, account, name string) (store.Mailbox, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	err = s.read(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err == nil {
			out = m.info(a)
		}
		return err
	})
	return out, err
}

// ListMailboxes implements store.Mailboxes.
func (s *Store) ListMailboxes(ctx context.Context, account string) ([]store.Mailbox, error) {
	var out []store.Mailbox
	err := s.read(ctx, func() error {
		a, err := s.account(account)
		if err != nil {
			return err
		}
		for _, n := range sortedKeys(a.mailboxes) {
			out = append(out, a.mailboxes[n].info(a))
		}
		return nil
	})
	return out, err
}

// Status implements store.Mailboxes.
func (s *Store) Status(ctx context.Context, account, name string) (store.MailboxStatus, error) {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return store.MailboxStatus{}, err
	}
	var st store.MailboxStatus
	err = s.read(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		st.Mailbox = m.info(a)
		for _, msg := range m.msgs {
			st.Messages++
			st.Size += msg.Size
			if !slices.Contains(msg.Flags, store.FlagSeen) {
				st.Unseen++
			}
			if slices.Contains(msg.Flags, store.FlagDeleted) {
				st.Deleted++
			}
		}
		return nil
	})
	return st, err
}

// RenameMailbox implements store.Mailboxes. Missing parents of the new
// name are created; renaming a mailbox below itself is ErrInvalid.
func (s *Store) RenameMailbox(ctx context.Context, account, oldName, newName string) error {
	oldName, err := store.CleanMailboxName(oldName)
	if err != nil {
		return err
	}
	newName, err = store.CleanMailboxName(newName)
	if err != nil {
		return err
	}
	switch {
	case oldName == store.Inbox:
		return errorf("%w: INBOX cannot be renamed here", store.ErrInvalid)
	case newName == store.Inbox || newName == oldName:
		return errorf("mailbox %q: %w", newName, store.ErrExists)
	case strings.HasPrefix(newName, oldName+store.Separator):
		return errorf("%w: cannot rename %q below itself", store.ErrInvalid, oldName)
	}
	return s.write(ctx, func() error {
		a, _, err := s.mailbox(account, oldName)
		if err != nil {
			return err
		}
		var moving []string
		for _, n := range sortedKeys(a.mailboxes) {
			if n == oldName || strings.HasPrefix(n, oldName+store.Separator) {
				moving = append(moving, n)
			}
		}
		for _, n := range moving {
			if target := newName + strings.TrimPrefix(n, oldName); a.mailboxes[target] != nil {
				return errorf("mailbox %q: %w", target, store.ErrExists)
			}
		}
		for _, n := range moving {
			target := newName + strings.TrimPrefix(n, oldName)
			m := a.mailboxes[n]
			delete(a.mailboxes, n)
			m.name = target
			a.mailboxes[target] = m
			// The subscription follows the mailbox (store.Mailboxes).
			if a.subscribed[n] {
				delete(a.subscribed, n)
				a.subscribed[target] = true
			}
			s.publish(store.Change{Kind: store.ChangeMailboxRenamed, Account: account, Mailbox: target, OldName: n})
		}
		s.createParents(a, newName)
		return nil
	})
}

// DeleteMailbox implements store.Mailboxes.
func (s *Store) DeleteMailbox(ctx context.Context, account, name string) error {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return err
	}
	if name == store.Inbox {
		return errorf("%w: INBOX cannot be deleted", store.ErrInvalid)
	}
	return s.write(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		for _, msg := range m.msgs {
			a.used.Bytes -= msg.Size
			a.used.Messages--
			s.unrefBlob(msg.BlobID)
		}
		delete(a.mailboxes, name)
		s.publish(store.Change{Kind: store.ChangeMailboxDeleted, Account: account, Mailbox: name})
		return nil
	})
}

// SetSubscribed implements store.Mailboxes.
func (s *Store) SetSubscribed(ctx context.Context, account, name string, subscribed bool) error {
	name, err := store.CleanMailboxName(name)
	if err != nil {
		return err
	}
	return s.write(ctx, func() error {
		a, err := s.account(account)
		if err != nil {
			return err
		}
		if subscribed {
			a.subscribed[name] = true
		} else {
			delete(a.subscribed, name)
		}
		return nil
	})
}

// Subscriptions implements store.Mailboxes.
func (s *Store) Subscriptions(ctx context.Context, account string) ([]string, error) {
	var out []string
	err := s.read(ctx, func() error {
		a, err := s.account(account)
		if err == nil {
			out = sortedKeys(a.subscribed)
		}
		return err
	})
	return out, err
}

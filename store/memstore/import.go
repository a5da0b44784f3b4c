package memstore

import (
	"context"
	"io"
	"slices"
	"time"

	"github.com/mailyard/mailyard/store"
)

var _ store.Importer = (*Store)(nil)

// ImportMailbox implements store.Importer.
func (s *Store) ImportMailbox(ctx context.Context, account string, mb store.Mailbox) (store.Mailbox, error) {
	name, err := store.CheckImportMailbox(mb)
	if err != nil {
		return store.Mailbox{}, err
	}
	var out store.Mailbox
	err = s.write(ctx, func() error {
		a, err := s.account(account)
		if err != nil {
			return err
		}
		m := a.mailboxes[name]
		switch {
		case m == nil:
			m = s.insertMailbox(a, name, mb.SpecialUse)
		case m.uidValidity != mb.UIDValidity && m.uidNext != 1:
			return errorf("import mailbox %q: %w with UIDVALIDITY %d and UIDs given out", name, store.ErrExists, m.uidValidity)
		}
		m.use, m.uidValidity = mb.SpecialUse, mb.UIDValidity
		m.uidNext, m.modSeq = max(m.uidNext, mb.UIDNext), max(m.modSeq, mb.HighestModSeq)
		s.lastUIDValidity = max(s.lastUIDValidity, int64(mb.UIDValidity))
		out = m.info(a)
		return nil
	})
	return out, err
}

// ImportMessage implements store.Importer. The body is read before the
// store is locked.
func (s *Store) ImportMessage(ctx context.Context, account, mailbox string, msg store.Message, body io.Reader) error {
	name, flags, err := store.CheckImportMessage(mailbox, msg)
	if err != nil {
		return err
	}
	data, err := readBody(body)
	if err != nil {
		return err
	}
	if msg.Size != 0 && int64(len(data)) != msg.Size {
		return errorf("import message: UID %d of %q: %w: body of %d bytes, want %d", msg.UID, name, store.ErrInvalid, len(data), msg.Size)
	}
	return s.write(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		i, found := slices.BinarySearchFunc(m.msgs, msg.UID, func(e *store.Message, uid uint32) int { return int(int64(e.UID) - int64(uid)) })
		if _, gone := m.expunged[msg.UID]; found || gone {
			return errorf("import message: UID %d of %q: %w", msg.UID, name, store.ErrExists)
		}
		nm := &store.Message{UID: msg.UID, ModSeq: msg.ModSeq, Flags: flags, InternalDate: inStoredZone(msg.InternalDate),
			Size: int64(len(data)), BlobID: s.addBlob(data), SaveDate: saveDate(msg.SaveDate)}
		m.msgs = slices.Insert(m.msgs, i, nm)
		a.used.Bytes += nm.Size
		a.used.Messages++
		s.blobs[nm.BlobID].refs++
		m.uidNext, m.modSeq = max(m.uidNext, msg.UID+1), max(m.modSeq, msg.ModSeq)
		s.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: []uint32{msg.UID}, ModSeq: m.modSeq})
		return nil
	})
}

// ImportSyncToken implements store.Importer.
func (s *Store) ImportSyncToken(ctx context.Context, collectionID int64, token uint64) error {
	if token == 0 {
		return errorf("%w: import of sync token 0", store.ErrInvalid)
	}
	return s.write(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		if c.info.SyncToken > token {
			return errorf("%w: import of sync token %d below the collection's %d", store.ErrInvalid, token, c.info.SyncToken)
		}
		c.info.SyncToken, c.pruned, c.log = token, token, nil
		s.publish(store.Change{Kind: store.ChangeCollection, Account: c.info.Account, CollectionID: c.info.ID, SyncToken: token})
		return nil
	})
}

// ImportTombstones implements store.Importer.
func (s *Store) ImportTombstones(ctx context.Context, account, mailbox string, ts []store.Tombstone) error {
	name, err := store.CheckImportTombstones(mailbox, ts)
	if err != nil {
		return err
	}
	return s.write(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		for _, t := range ts {
			if _, found := slices.BinarySearchFunc(m.msgs, t.UID, func(e *store.Message, uid uint32) int { return int(int64(e.UID) - int64(uid)) }); found {
				return errorf("import tombstones: UID %d of %q holds a message: %w", t.UID, name, store.ErrExists)
			}
		}
		for _, t := range ts {
			if _, there := m.expunged[t.UID]; !there {
				m.expunged[t.UID] = t.ModSeq
			}
			m.uidNext, m.modSeq = max(m.uidNext, t.UID+1), max(m.modSeq, t.ModSeq)
		}
		return nil
	})
}

// ImportChangeLog implements store.Importer.
func (s *Store) ImportChangeLog(ctx context.Context, collectionID int64, log store.ChangeLog) error {
	if err := store.CheckChangeLog(log); err != nil {
		return err
	}
	return s.write(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		if c.info.SyncToken > log.SyncToken {
			return errorf("%w: import of sync token %d below the collection's %d", store.ErrInvalid, log.SyncToken, c.info.SyncToken)
		}
		c.info.SyncToken, c.pruned, c.log = log.SyncToken, log.Pruned, make([]objectChange, len(log.Changes))
		for i, ch := range log.Changes {
			c.log[i] = objectChange{ch.Token, ch.ObjectChange}
		}
		s.publish(store.Change{Kind: store.ChangeCollection, Account: c.info.Account, CollectionID: c.info.ID, SyncToken: log.SyncToken})
		return nil
	})
}

var _ store.Exporter = (*Store)(nil)

// Tombstones implements store.Exporter.
func (s *Store) Tombstones(ctx context.Context, account, mailbox string) ([]store.Tombstone, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	out := []store.Tombstone{}
	err = s.read(ctx, func() error {
		_, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		for uid, ms := range m.expunged {
			out = append(out, store.Tombstone{UID: uid, ModSeq: ms})
		}
		slices.SortFunc(out, func(a, b store.Tombstone) int { return int(int64(a.UID) - int64(b.UID)) })
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ChangeLog implements store.Exporter.
func (s *Store) ChangeLog(ctx context.Context, collectionID int64) (store.ChangeLog, error) {
	var log store.ChangeLog
	err := s.read(ctx, func() error {
		c, err := s.collection(collectionID)
		if err != nil {
			return err
		}
		log = store.ChangeLog{SyncToken: c.info.SyncToken, Pruned: c.pruned, Changes: make([]store.LoggedChange, len(c.log))}
		for i, ch := range c.log {
			log.Changes[i] = store.LoggedChange{Token: ch.token, ObjectChange: ch.ObjectChange}
		}
		return nil
	})
	if err != nil {
		return store.ChangeLog{}, err
	}
	return log, nil
}

// saveDate is an imported message's save date as the store keeps it: in
// UTC, the zero time (unknown) as it is.
func saveDate(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return t.UTC()
}

package sqlite

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/mailyard/mailyard/store"
)

// Deliver implements store.Deliverer.
//
// The body is written once; every distinct (account, mailbox) target gets
// an index row pointing at it, all in one savepoint of a group commit, so
// all recipients get the message or none does. An empty, invalid or
// missing mailbox falls back to INBOX. The result has one entry per
// element of d.Recipients, in order; recipients that resolve to the same
// target share one copy (and report the same UID), stored with the flags
// of the first of them.
func (s *Store) Deliver(ctx context.Context, d store.Delivery, body io.Reader) ([]store.Delivered, error) {
	if len(d.Recipients) == 0 {
		return nil, fmt.Errorf("%w: delivery without recipients", store.ErrInvalid)
	}
	type rcpt struct {
		want  string // requested mailbox, canonical, or INBOX
		flags []string
	}
	rcpts := make([]rcpt, len(d.Recipients))
	for i, r := range d.Recipients {
		flags, err := store.NormalizeFlags(r.Flags)
		if err != nil {
			return nil, err
		}
		want := store.Inbox
		if r.Mailbox != "" {
			if n, err := store.CleanMailboxName(r.Mailbox); err == nil {
				want = n
			}
		}
		rcpts[i] = rcpt{want: want, flags: flags}
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	date := d.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	saved := s.now().UTC()
	blob, size, err := s.blobs.write(ctx, body)
	if err != nil {
		return nil, err
	}
	out := make([]store.Delivered, len(d.Recipients))
	err = s.write(ctx, func(tx *wtx) error {
		type target struct {
			account, mailbox string
		}
		type copyOf struct {
			mailboxID int64
			msg       store.Message
			rcpt      int
		}
		targets := make(map[target]int) // -> index in copies
		var copies []copyOf
		var adds []quotaAdd
		addIdx := make(map[string]int)
		resolved := make([]target, len(rcpts))
		for i, r := range rcpts {
			acct := d.Recipients[i].Account
			m, err := tx.mailbox(acct, r.want)
			if errors.Is(err, store.ErrNotFound) && r.want != store.Inbox {
				m, err = tx.mailbox(acct, store.Inbox)
			}
			if err != nil {
				return err
			}
			t := target{acct, m.Name}
			resolved[i] = t
			if _, ok := targets[t]; ok {
				continue
			}
			targets[t] = len(copies)
			copies = append(copies, copyOf{mailboxID: m.ID, rcpt: i, msg: store.Message{
				Flags: r.flags, InternalDate: inStoredZone(date), Size: size, BlobID: blob, SaveDate: saved,
			}})
			if j, ok := addIdx[acct]; ok {
				adds[j].bytes += size
				adds[j].counts++
			} else {
				addIdx[acct] = len(adds)
				adds = append(adds, quotaAdd{acct, size, 1})
			}
		}
		if err := tx.addUsageWithin(adds); err != nil {
			return err
		}
		for i := range copies {
			c := &copies[i]
			var err error
			if c.msg.UID, c.msg.ModSeq, err = tx.allocUIDs(c.mailboxID, 1); err != nil {
				return err
			}
			if err := tx.insertMessage(c.mailboxID, c.msg); err != nil {
				return err
			}
			t := resolved[c.rcpt]
			tx.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: t.account, Mailbox: t.mailbox,
				UIDs: []uint32{c.msg.UID}, ModSeq: c.msg.ModSeq})
		}
		if err := tx.indexText(blob); err != nil {
			return err
		}
		for i, r := range d.Recipients {
			t := resolved[i]
			out[i] = store.Delivered{Recipient: r, Mailbox: t.mailbox, UID: copies[targets[t]].msg.UID}
		}
		return nil
	})
	if err != nil {
		if derr := s.blobs.discard(blob); derr != nil {
			s.log.Warn("removing blob of failed delivery", "blob", blob, "err", derr)
		}
		return nil, wrapErr("deliver", err)
	}
	s.blobs.settle(blob)
	s.textIdx.added(1, true)
	return out, nil
}

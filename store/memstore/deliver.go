package memstore

import (
	"context"
	"errors"
	"io"

	"github.com/mailyard/mailyard/store"
)

// Deliver implements store.Deliverer.
//
// The body is kept once; every distinct (account, mailbox) target gets an
// index row naming it, all in one step, so all recipients get the message
// or none does. An empty, invalid or missing mailbox falls back to INBOX.
// The result has one entry per element of d.Recipients, in order;
// recipients that resolve to the same target share one copy (and report
// the same UID), stored with the flags of the first of them.
func (s *Store) Deliver(ctx context.Context, d store.Delivery, body io.Reader) ([]store.Delivered, error) {
	if len(d.Recipients) == 0 {
		return nil, errorf("%w: delivery without recipients", store.ErrInvalid)
	}
	flags := make([][]string, len(d.Recipients))
	want := make([]string, len(d.Recipients))
	for i, r := range d.Recipients {
		var err error
		if flags[i], err = store.NormalizeFlags(r.Flags); err != nil {
			return nil, err
		}
		want[i] = store.Inbox
		if n, err := store.CleanMailboxName(r.Mailbox); r.Mailbox != "" && err == nil {
			want[i] = n
		}
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	date := d.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	data, err := readBody(body)
	if err != nil {
		return nil, err
	}
	size := int64(len(data))
	out := make([]store.Delivered, len(d.Recipients))
	err = s.write(ctx, func() error {
		type target struct {
			account *account
			mailbox *mailbox
		}
		targets := make([]target, len(d.Recipients))
		first := make(map[*mailbox]int) // target -> first recipient index
		var adds []quotaAdd
		addIdx := make(map[string]int)
		for i, r := range d.Recipients {
			a, m, err := s.mailbox(r.Account, want[i])
			if errors.Is(err, store.ErrNoMailbox) {
				a, m, err = s.mailbox(r.Account, store.Inbox)
			}
			if err != nil {
				return err
			}
			targets[i] = target{a, m}
			if _, dup := first[m]; dup {
				continue
			}
			first[m] = i
			if j, ok := addIdx[r.Account]; ok {
				adds[j].bytes += size
				adds[j].count++
			} else {
				addIdx[r.Account] = len(adds)
				adds = append(adds, quotaAdd{r.Account, size, 1})
			}
		}
		if err := s.checkQuota(adds); err != nil {
			return err
		}
		// Reserve every UID before changing anything, so that a full UID
		// space leaves no recipient with a copy.
		for m := range first {
			if !m.hasUIDs(1) {
				return errUIDSpace
			}
		}
		uids := make(map[*mailbox]uint32, len(first))
		blobID := s.addBlob(data)
		for i, t := range targets {
			if first[t.mailbox] == i {
				uid, ms, _ := t.mailbox.allocUIDs(1) // checked above
				uids[t.mailbox] = uid
				s.add(t.account, t.mailbox, store.Message{
					UID: uid, ModSeq: ms, Flags: flags[i], InternalDate: inStoredZone(date), Size: size, BlobID: blobID,
					SaveDate: s.now().UTC(),
				})
				s.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: t.account.info.ID, Mailbox: t.mailbox.name,
					UIDs: []uint32{uid}, ModSeq: ms})
			}
			out[i] = store.Delivered{Recipient: d.Recipients[i], Mailbox: t.mailbox.name, UID: uids[t.mailbox]}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

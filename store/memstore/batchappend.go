package memstore

import (
	"context"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/batchappend"
)

// AppendBatch implements store.BatchAppender: the messages are appended
// as Append appends each, in one write.
func (s *Store) AppendBatch(ctx context.Context, account, mailbox string, msgs []store.AppendMessage) ([]store.Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	name, out, err := batchappend.Prepare(mailbox, msgs, s.now, inStoredZone)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	bodies := make([][]byte, len(msgs))
	var total int64
	for i, m := range msgs {
		if bodies[i], err = readBody(m.Body); err != nil {
			return nil, err
		}
		out[i].Size = int64(len(bodies[i]))
		total += out[i].Size
	}
	err = s.write(ctx, func() error {
		a, m, err := s.mailbox(account, name)
		if err != nil {
			return err
		}
		if err := s.checkQuota([]quotaAdd{{account, total, int64(len(out))}}); err != nil {
			return err
		}
		first, modseq, err := m.allocUIDs(len(out))
		if err != nil {
			return err
		}
		saved := s.now().UTC()
		uids := make([]uint32, len(out))
		for i := range out {
			out[i].UID, out[i].ModSeq, out[i].SaveDate = first+uint32(i), modseq, saved
			out[i].BlobID = s.addBlob(bodies[i])
			uids[i] = out[i].UID
			s.add(a, m, out[i])
		}
		s.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: uids, ModSeq: modseq})
		return nil
	})
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i] = clone(&out[i])
	}
	return out, nil
}

package sqlite

import (
	"context"
	"strings"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/batchappend"
)

// AppendBatch implements store.BatchAppender: the bodies are written as
// blobs together (writeBatch: their fsyncs run at once and each fan-out
// directory is fsynced once), then one writer request reserves the UIDs,
// adds the usage and inserts the rows and their "not indexed yet"
// full-text entries in a few multi-row statements, in place of the
// request, savepoint and four statements of each Append.
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
	bodies := make([]blobSource, len(msgs))
	for i, m := range msgs {
		bodies[i] = blobSource{r: m.Body}
	}
	if err := s.blobs.writeBatch(ctx, bodies); err != nil {
		return nil, wrapErr("append", err)
	}
	var total int64
	for i, b := range bodies {
		out[i].BlobID, out[i].Size = b.id, b.size
		total += b.size
	}
	live := false
	for _, m := range msgs {
		live = live || !m.Options.DeferTextIndex
	}
	err = s.write(ctx, func(tx *wtx) error {
		mailboxID, first, modseq, err := tx.appendUIDs(account, name, len(out))
		if err != nil {
			return err
		}
		if err := tx.addUsageWithin([]quotaAdd{{account, total, int64(len(out))}}); err != nil {
			return err
		}
		saved := s.now().UTC()
		uids := make([]uint32, len(out))
		for i := range out {
			out[i].UID, out[i].ModSeq, out[i].SaveDate = first+uint32(i), modseq, saved
			uids[i] = out[i].UID
		}
		if err := tx.insertMessages(mailboxID, out); err != nil {
			return err
		}
		if err := tx.insertMissingTexts(out); err != nil {
			return err
		}
		tx.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: uids, ModSeq: modseq})
		return nil
	})
	for _, b := range bodies {
		if err == nil {
			s.blobs.settle(b.id)
		} else if derr := s.blobs.discard(b.id); derr != nil {
			s.log.Warn("removing blob of failed append", "blob", b.id, "err", derr)
		}
	}
	if err != nil {
		return nil, wrapErr("append", err)
	}
	s.textIdx.added(len(out), live)
	return out, nil
}

// multiRow is the largest number of rows one INSERT of a batch append
// writes. A batch is cut into inserts of 32, 16, 8, 4, 2 and 1 rows (its
// size in binary), so that at most six statement texts per table enter
// the writer's statement cache (wstmt), whatever the batch sizes.
const multiRow = 32

// inChunks calls fn with the consecutive parts of n rows the inserts of
// a batch take (see multiRow): offset and length.
func inChunks(n int, fn func(off, k int) error) error {
	off := 0
	for k := multiRow; k > 0; k /= 2 {
		for n-off >= k {
			if err := fn(off, k); err != nil {
				return err
			}
			off += k
		}
	}
	return nil
}

// rowsSQL is "head (?, ...), (?, ...) tail" for k rows of cols columns.
func rowsSQL(head string, cols, k int, tail string) string {
	row := "(" + strings.TrimSuffix(strings.Repeat("?, ", cols), ", ") + ")"
	return head + strings.TrimSuffix(strings.Repeat(row+", ", k), ", ") + tail
}

// insertMessages inserts the rows of msgs, as insertMessage each.
func (t *wtx) insertMessages(mailboxID int64, msgs []store.Message) error {
	return inChunks(len(msgs), func(off, k int) error {
		args := make([]any, 0, 9*k)
		for _, m := range msgs[off : off+k] {
			args = append(args, mailboxID, m.UID, m.ModSeq, encodeFlags(m.Flags),
				m.InternalDate.UnixNano(), zoneOffset(m.InternalDate), m.Size, m.BlobID, saveNanos(m.SaveDate))
		}
		_, err := t.exec(rowsSQL(`INSERT INTO messages (mailbox, uid, modseq, flags, internal_date, internal_zone, size, blob_id, save_date) VALUES `, 9, k, ""), args...)
		return err
	})
}

// insertMissingTexts gives the new blobs of msgs their full-text rows,
// "not indexed yet", as indexText does for one (the background indexer
// fills them, textindexer.go).
func (t *wtx) insertMissingTexts(msgs []store.Message) error {
	return inChunks(len(msgs), func(off, k int) error {
		args := make([]any, 0, 2*k)
		for _, m := range msgs[off : off+k] {
			args = append(args, m.BlobID, textMissing)
		}
		_, err := t.exec(rowsSQL("INSERT INTO text_docs (blob_id, state) VALUES ", 2, k, " ON CONFLICT (blob_id) DO NOTHING"), args...)
		return err
	})
}

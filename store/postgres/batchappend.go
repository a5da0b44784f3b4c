package postgres

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/batchappend"
	"github.com/mailyard/mailyard/store/internal/textdoc"
)

var _ store.BatchAppender = (*Store)(nil)

// batchUploadBytes is about how many bytes of bodies AppendBatch holds
// before it sends them in one statement (uploadBodies): a migration's
// batch of small messages goes in one, and the memory a batch holds
// stays bounded whatever its size.
const batchUploadBytes = 16 * chunkSize

// AppendBatch implements store.BatchAppender. The bodies are uploaded
// before the transaction begins, as Append's: those of one chunk (most
// messages) together, one statement per batchUploadBytes of them, a
// longer one chunk by chunk. Then one transaction of two round trips
// (writePipelined) locks the account and the mailbox, checks the quota
// for the batch, inserts every row, counter, usage and full-text entry
// in one statement, and writes the feed: a batch of small messages is
// 7 statements in 3 round trips whatever its length
// (TestAppendBatchStatements),
// where Append is 7 in 3 per message. A refused batch's bodies are
// discarded. The full-text entries are made as the bodies are read, in
// the transaction, as Append's, and written by the indexer once the
// transaction committed (textindexer.go).
func (s *Store) AppendBatch(ctx context.Context, account, mailbox string, msgs []store.AppendMessage) ([]store.Message, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	name, out, err := batchappend.Prepare(mailbox, msgs, s.now, func(t time.Time) time.Time { return storedDate(t.UnixNano(), zoneOf(t)) })
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	bodies, err := s.uploadBodies(ctx, msgs)
	if err != nil {
		return nil, wrapErr("append", err)
	}
	n := int64(len(out))
	rows := make([]newMsg, n)
	ids := make([]int64, n)
	texts := make([]textEntry, len(bodies))
	var total int64
	for i, b := range bodies {
		out[i].Size, out[i].BlobID = b.size, blobName(b.id)
		ids[i] = b.id
		texts[i] = textEntry{blob: b.id, text: b.text}
		total += b.size
	}
	var b lockedBox
	reads, scan := lockMailboxBatch(account, name, &b)
	err = s.writePipelined(ctx, "append", account, reads, scan, func(w *wtx) error {
		if err := checkQuota([]quotaAdd{{account: account, bytes: total, count: n, q: b.q, used: b.used}}); err != nil {
			return err
		}
		if b.uidNext+n > math.MaxUint32 {
			return errUIDSpace
		}
		modseq, saved := b.modSeq+1, s.now().UTC()
		uids := make([]uint32, n)
		for i := range out {
			m := &out[i]
			m.UID, m.ModSeq, m.SaveDate = uint32(b.uidNext)+uint32(i), uint64(modseq), saved
			rows[i] = newMsg{mailbox: b.id, uid: int64(m.UID), modseq: modseq, flags: strings.Join(m.Flags, " "),
				date: m.InternalDate.UnixNano(), zone: zoneOf(m.InternalDate), size: m.Size, blob: ids[i]}
			uids[i] = m.UID
		}
		if err := w.insertMessages(rows, map[string]store.Usage{account: {Bytes: total, Messages: n}}, texts, saved); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: uids, ModSeq: uint64(modseq)})
		w.wrote(account, b.after(b.uidNext+n, modseq))
		return nil
	})
	if err != nil {
		s.blobs.discard(s.pool, ids...)
		return nil, err
	}
	return out, nil
}

// uploadedBody is one body of a batch, stored as a loose blob.
type uploadedBody struct {
	id, size int64
	text     bodyText
}

// uploadBodies reads the bodies of msgs in order and stores each as a
// loose blob (blobStore.upload), with its full-text entry: those of at
// most one chunk are held and sent together (blobStore.uploadSmall)
// once batchUploadBytes of them are held and after the last body; a
// longer body is streamed by itself. On error the blobs stored are
// discarded.
func (s *Store) uploadBodies(ctx context.Context, msgs []store.AppendMessage) ([]uploadedBody, error) {
	out := make([]uploadedBody, len(msgs))
	var stored []int64 // every blob stored so far
	var held [][]byte  // bodies not sent yet,
	var at []int       // and their places in out
	heldBytes := 0
	fail := func(err error) ([]uploadedBody, error) {
		s.blobs.discard(s.pool, stored...)
		return nil, err
	}
	send := func() error {
		if len(held) == 0 {
			return nil
		}
		ids, err := s.blobs.uploadSmall(ctx, s.pool, held, s.now)
		if err != nil {
			return err
		}
		for k, id := range ids {
			out[at[k]].id = id
		}
		stored = append(stored, ids...)
		held, at, heldBytes = held[:0], at[:0], 0
		return nil
	}
	for i, m := range msgs {
		// One byte past a chunk tells a body of one chunk from a
		// longer one.
		head, err := io.ReadAll(io.LimitReader(m.Body, chunkSize+1))
		if err != nil {
			return fail(fmt.Errorf("reading body: %w", err))
		}
		if len(head) <= chunkSize {
			out[i].size, out[i].text = int64(len(head)), docText(textdoc.Read(bytes.NewReader(head)))
			held, at = append(held, head), append(at, i)
			if heldBytes += len(head); heldBytes >= batchUploadBytes {
				if err := send(); err != nil {
					return fail(err)
				}
			}
			continue
		}
		body, tt := startText(io.MultiReader(bytes.NewReader(head), m.Body))
		id, size, err := s.blobs.upload(ctx, s.pool, body, s.now)
		out[i].text = tt.finish(err)
		if err != nil {
			return fail(err)
		}
		out[i].id, out[i].size = id, size
		stored = append(stored, id)
	}
	if err := send(); err != nil {
		return fail(err)
	}
	return out, nil
}

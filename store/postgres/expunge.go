package postgres

import (
	"context"
	"math"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// Expunge, Copy and Move run as pipelined writes (writePipelined): the
// messages they act on are read in the first round trip, after the
// account's row is locked, and every write to an account's mail takes
// that lock first (lockAccount), so they are still the mailbox's when
// the second round trip deletes or copies them by UID. An IMAP EXPUNGE
// or COPY is then two round trips whatever the number of messages, where
// it was one per statement (8 and 7).

// removeMessages queues the expunge of the messages uids of the locked
// mailbox b, read under the account's lock: their tombstones with a new
// MODSEQ (RFC 7162 §3.2.10, VANISHED), HIGHESTMODSEQ and the account's
// usage (bytes, their sizes' sum, for txState: the statement counts
// them itself); with free, the bodies of blobs that no index row names
// any more are released. It returns the expunge's MODSEQ.
func (w *wtx) removeMessages(account string, b lockedBox, uids, blobs []int64, bytes int64, free bool) (uint64, error) {
	modseq := b.modSeq + 1
	if _, err := w.Exec(w.ctx, `WITH d AS (DELETE FROM messages WHERE mailbox = $1 AND uid = ANY($3::bigint[]) RETURNING uid, size, flags),
		t AS (INSERT INTO expunged (mailbox, uid, modseq) SELECT $1, uid, $2 FROM d
			ON CONFLICT (mailbox, uid) DO UPDATE SET modseq = EXCLUDED.modseq),
		m AS (UPDATE mailboxes mb SET highest_modseq = $2, `+countsMoveSQL("-")+`
			FROM (SELECT `+countsOfSQL("flags", "size")+` FROM d) x WHERE mb.id = $1)
		UPDATE accounts SET used_bytes = used_bytes - (SELECT coalesce(sum(size), 0) FROM d),
			used_messages = used_messages - (SELECT count(*) FROM d) WHERE id = (SELECT account FROM mailboxes WHERE id = $1)`,
		b.id, modseq, uids); err != nil {
		return 0, err
	}
	w.addUsage(account, -bytes, -int64(len(uids)))
	if free {
		if err := w.release(uniq(blobs)); err != nil {
			return 0, err
		}
	}
	return uint64(modseq), nil
}

// deletedSQL is the condition of the messages Expunge removes; index
// messages_deleted (migrations/0009_write_cost.sql) holds those.
var deletedSQL = hasFlagSQL("m.flags", "'"+store.FlagDeleted+"'")

// Expunge implements store.Messages, in two round trips.
func (s *Store) Expunge(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]uint32, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	var b lockedBox
	var doomed []store.Message
	reads, scan := lockMailboxBatch(account, name, &b)
	reads, scan = selectLockedBatch(account, name, uids, deletedSQL, reads, scan, &doomed)
	var out []uint32
	err = s.writePipelined(ctx, "expunge", account, reads, scan, func(w *wtx) error {
		out = []uint32{}
		var ids, blobs []int64
		var bytes int64
		for _, m := range doomed {
			blob, _ := parseI(m.BlobID)
			out, ids, blobs = append(out, m.UID), append(ids, int64(m.UID)), append(blobs, blob)
			bytes += m.Size
		}
		if len(out) == 0 {
			return nil
		}
		ms, err := w.removeMessages(account, b, ids, blobs, bytes, true)
		if err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeExpunged, Account: account, Mailbox: name, UIDs: out, ModSeq: ms})
		w.wrote(account, b.after(b.uidNext, int64(ms)))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Copy implements store.Messages. Copies keep flags and internal date and
// share the source's body. Two round trips.
func (s *Store) Copy(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error) {
	return s.copyOrMove(ctx, account, src, dst, uids, false)
}

// Move implements store.Messages (RFC 6851): the copies are added and the
// originals expunged in one transaction. Usage does not change, so a move
// is never refused for quota. Two round trips.
func (s *Store) Move(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error) {
	return s.copyOrMove(ctx, account, src, dst, uids, true)
}

func (s *Store) copyOrMove(ctx context.Context, account, src, dst string, uids store.UIDSet, move bool) ([]store.UIDPair, error) {
	srcName, err := store.CleanMailboxName(src)
	if err != nil {
		return nil, err
	}
	dstName, err := store.CleanMailboxName(dst)
	if err != nil {
		return nil, err
	}
	var sb, db lockedBox
	var msgs []store.Message
	reads, scan := lockMailboxBatch(account, srcName, &sb)
	if dstName != srcName {
		reads, scan = lockOtherMailboxBatch(account, dstName, &db, reads, scan)
	}
	reads, scan = selectLockedBatch(account, srcName, uids, "", reads, scan, &msgs)
	var pairs []store.UIDPair
	err = s.writePipelined(ctx, "copy", account, reads, scan, func(w *wtx) error {
		pairs = []store.UIDPair{}
		if dstName == srcName {
			db = sb
		}
		if len(msgs) == 0 {
			return nil
		}
		var size int64
		for _, m := range msgs {
			size += m.Size
		}
		if !move {
			if err := checkQuota([]quotaAdd{{account: account, bytes: size, count: int64(len(msgs)), q: sb.q, used: sb.used}}); err != nil {
				return err
			}
		}
		if db.uidNext+int64(len(msgs)) > math.MaxUint32 {
			return errUIDSpace
		}
		modseq := db.modSeq + 1
		rows := make([]newMsg, len(msgs))
		added := make([]uint32, len(msgs))
		srcUIDs := make([]int64, len(msgs))
		for i, m := range msgs {
			blob, _ := parseI(m.BlobID)
			_, zone := m.InternalDate.Zone()
			rows[i] = newMsg{mailbox: db.id, uid: db.uidNext + int64(i), modseq: modseq, flags: strings.Join(m.Flags, " "),
				date: m.InternalDate.UnixNano(), zone: int32(zone), size: m.Size, blob: blob}
			added[i] = uint32(rows[i].uid)
			srcUIDs[i] = int64(m.UID)
			pairs = append(pairs, store.UIDPair{Src: m.UID, Dst: added[i]})
		}
		// RFC 8514: a copy's save date is the time of the COPY or MOVE.
		if err := w.insertMessages(rows, map[string]store.Usage{account: {Bytes: size, Messages: int64(len(msgs))}}, nil, s.now()); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: dstName, UIDs: added, ModSeq: uint64(modseq)})
		if move {
			if dstName == srcName {
				sb.modSeq = modseq
			}
			// The copies name the same bodies, so none is freed: not
			// locking them for deletion keeps two moves of shared
			// bodies in two accounts from deadlocking.
			ms, err := w.removeMessages(account, sb, srcUIDs, nil, size, false)
			if err != nil {
				return err
			}
			gone := make([]uint32, len(srcUIDs))
			for i, u := range srcUIDs {
				gone[i] = uint32(u)
			}
			w.publish(store.Change{Kind: store.ChangeExpunged, Account: account, Mailbox: srcName, UIDs: gone, ModSeq: ms})
			if dstName == srcName {
				w.wrote(account, db.after(db.uidNext+int64(len(msgs)), int64(ms)))
				return nil
			}
			w.wrote(account, sb.after(sb.uidNext, int64(ms)))
		} else if dstName != srcName {
			w.wrote(account, sb.mb) // unchanged by a copy
		}
		w.wrote(account, db.after(db.uidNext+int64(len(msgs)), modseq))
		return nil
	})
	if err != nil {
		return nil, err
	}
	return pairs, nil
}

// lockOtherMailboxBatch adds to a pipelined write's reads (after those
// of lockMailboxBatch, which lock the account) the lock of a second
// mailbox of the account, into b: ErrNoMailbox if it is missing.
func lockOtherMailboxBatch(account, name string, b *lockedBox, reads readsFunc, scan scanFunc) (readsFunc, scanFunc) {
	return func(batch *pgx.Batch, st *txState) {
			reads(batch, st)
			if st.boxes[name].id == 0 {
				batch.Queue(lockedBoxSQL, account, name)
			}
		}, func(br pgx.BatchResults, st *txState) error {
			if err := scan(br, st); err != nil {
				return err
			}
			if st.cached(name, b) {
				return nil
			}
			if err := b.scan(br.QueryRow(), name); err != nil {
				return err
			}
			st.remember(name, *b)
			return nil
		}
}

package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

const messageCols = "uid, modseq, flags, internal_date, internal_zone, size, blob_id, save_date"

// zones hands out the fixed zones of INTERNALDATE offsets, one Location
// per distinct offset in a listing (a mailbox holds few).
type zones map[int]*time.Location

// at returns the zone offset seconds east of UTC: time.UTC for 0, so
// that rows stored before zones were kept read as before.
func (z zones) at(offset int) *time.Location {
	if offset == 0 {
		return time.UTC
	}
	loc := z[offset]
	if loc == nil {
		loc = time.FixedZone("", offset)
		z[offset] = loc
	}
	return loc
}

// instant is the Unix time nanos in the zone offset seconds east of UTC,
// as the index stores INTERNALDATE.
func (z zones) instant(nanos int64, offset int) time.Time {
	return time.Unix(0, nanos).In(z.at(offset))
}

func scanMessage(r interface{ Scan(...any) error }, z zones) (store.Message, error) {
	var m store.Message
	var flags string
	var date int64
	var offset int
	var saved int64
	if err := r.Scan(&m.UID, &m.ModSeq, &flags, &date, &offset, &m.Size, &m.BlobID, &saved); err != nil {
		return m, err
	}
	m.Flags = decodeFlags(flags)
	m.InternalDate = z.instant(date, offset)
	if saved != 0 {
		m.SaveDate = time.Unix(0, saved).UTC()
	}
	return m, nil
}

// zoneOffset is the UTC offset of t's zone in seconds east, as stored in
// internal_zone.
func zoneOffset(t time.Time) int {
	_, off := t.Zone()
	return off
}

func encodeFlags(f []string) string { return strings.Join(f, " ") }

func decodeFlags(s string) []string {
	f := strings.Fields(s)
	if f == nil {
		f = []string{}
	}
	return f
}

// maxSQLRanges bounds the ranges turned into SQL; larger sets are
// filtered in Go after a full scan of the mailbox.
const maxSQLRanges = 500

// uidClause returns an SQL condition on column uid for the set and
// whether the caller must still filter with set.Contains.
func uidClause(set store.UIDSet) (string, []any, bool) {
	if set == nil {
		return "1", nil, false
	}
	if len(set) == 0 {
		return "0", nil, false
	}
	if len(set) > maxSQLRanges {
		return "1", nil, true
	}
	parts := make([]string, 0, len(set))
	args := make([]any, 0, 2*len(set))
	for _, r := range set {
		if r.Stop == 0 {
			parts = append(parts, "uid >= ?")
			args = append(args, r.Start)
		} else {
			parts = append(parts, "uid BETWEEN ? AND ?")
			args = append(args, r.Start, r.Stop)
		}
	}
	return "(" + strings.Join(parts, " OR ") + ")", args, false
}

// selectMessages returns the messages of a mailbox in set, by UID; extra
// is more of the condition, with extraArgs its parameters (values go in
// parameters, so that the text stays one prepared statement, see rstmt).
func selectMessages(ctx context.Context, q querier, mailboxID int64, set store.UIDSet, extra string, extraArgs ...any) ([]store.Message, error) {
	cond, args, filter := uidClause(set)
	rows, err := q.QueryContext(ctx, "SELECT "+messageCols+" FROM messages WHERE mailbox = ? AND "+cond+extra+" ORDER BY uid",
		append(append([]any{mailboxID}, args...), extraArgs...)...)
	if err != nil {
		return nil, err
	}
	return scanMessages(rows, set, filter)
}

// allocUIDs reserves n UIDs in a mailbox and a new MODSEQ for them
// (guarantees 2 and 3 of the store contract).
func (t *wtx) allocUIDs(mailboxID int64, n int) (first uint32, modseq uint64, err error) {
	var next int64
	err = t.queryRow(`UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + 1
		WHERE id = ? RETURNING uidnext, highest_modseq`, n, mailboxID).Scan(&next, &modseq)
	if err != nil {
		return 0, 0, err
	}
	// UIDNEXT itself must stay a valid nz-number (RFC 9051 §2.3.1.1).
	if next > math.MaxUint32 {
		return 0, 0, fmt.Errorf("sqlite: mailbox UID space exhausted; it must be re-created")
	}
	return uint32(next - int64(n)), modseq, nil
}

// appendUIDs reserves the next n UIDs of a mailbox named by account and
// canonical name, and a new MODSEQ for them, in one statement that also
// looks the mailbox up; a missing mailbox or account is reported as
// getMailbox reports it. It returns the first of the UIDs.
func (t *wtx) appendUIDs(account, name string, n int) (mailboxID int64, first uint32, modseq uint64, err error) {
	var next int64
	err = t.queryRow(`UPDATE mailboxes SET uidnext = uidnext + ?, highest_modseq = highest_modseq + 1
		WHERE account = ? AND name = ? RETURNING id, uidnext, highest_modseq`, n, account, name).Scan(&mailboxID, &next, &modseq)
	if errors.Is(err, sql.ErrNoRows) {
		if _, err = t.mailbox(account, name); err == nil {
			err = fmt.Errorf("sqlite: mailbox %q: %w", name, store.ErrNoMailbox)
		}
		return 0, 0, 0, err
	}
	if err != nil {
		return 0, 0, 0, err
	}
	// UIDNEXT itself must stay a valid nz-number (RFC 9051 §2.3.1.1).
	if next > math.MaxUint32 {
		return 0, 0, 0, fmt.Errorf("sqlite: mailbox UID space exhausted; it must be re-created")
	}
	return mailboxID, uint32(next - int64(n)), modseq, nil
}

// bumpModSeq gives out a new MODSEQ in a mailbox.
func (t *wtx) bumpModSeq(mailboxID int64) (uint64, error) {
	var ms uint64
	err := t.queryRow("UPDATE mailboxes SET highest_modseq = highest_modseq + 1 WHERE id = ? RETURNING highest_modseq", mailboxID).Scan(&ms)
	return ms, err
}

func (t *wtx) insertMessage(mailboxID int64, m store.Message) error {
	_, err := t.exec(`INSERT INTO messages (mailbox, uid, modseq, flags, internal_date, internal_zone, size, blob_id, save_date)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, mailboxID, m.UID, m.ModSeq, encodeFlags(m.Flags),
		m.InternalDate.UnixNano(), zoneOffset(m.InternalDate), m.Size, m.BlobID, saveNanos(m.SaveDate))
	return err
}

// saveNanos is a save date as the save_date column holds it: Unix
// nanoseconds, 0 for unknown (migrationV6).
func saveNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// removeMessages deletes rows, leaves expunge tombstones with a new
// MODSEQ (RFC 7162 §3.2.10 VANISHED needs them), fixes usage and frees
// blobs no longer referenced. It returns the new MODSEQ.
func (t *wtx) removeMessages(account string, mailboxID int64, msgs []store.Message) (uint64, error) {
	ms, err := t.bumpModSeq(mailboxID)
	if err != nil {
		return 0, err
	}
	var bytes int64
	blobs := make([]string, 0, len(msgs))
	for _, m := range msgs {
		if _, err := t.exec("DELETE FROM messages WHERE mailbox = ? AND uid = ?", mailboxID, m.UID); err != nil {
			return 0, err
		}
		if _, err := t.exec(`INSERT INTO expunged (mailbox, uid, modseq) VALUES (?, ?, ?)
			ON CONFLICT (mailbox, uid) DO UPDATE SET modseq = excluded.modseq`, mailboxID, m.UID, ms); err != nil {
			return 0, err
		}
		bytes += m.Size
		blobs = append(blobs, m.BlobID)
	}
	if err := t.addUsage(account, -bytes, -int64(len(msgs))); err != nil {
		return 0, err
	}
	return ms, t.dropBlobRefs(blobs)
}

type quotaAdd struct {
	account       string
	bytes, counts int64
}

// addUsageWithin adds to the usage of accounts, one statement each, and
// refuses additions that take an account over a limit (guarantee 5:
// checked inside the transaction that adds; the caller's error rolls
// the additions back with its savepoint). adds are in the caller's
// order, one entry per account; the QuotaError names every account
// over a limit.
func (t *wtx) addUsageWithin(adds []quotaAdd) error {
	var qe *store.QuotaError
	for _, a := range adds {
		var usedB, usedN, maxB, maxN int64
		err := t.queryRow(`UPDATE accounts SET used_bytes = used_bytes + ?, used_messages = used_messages + ? WHERE id = ?
			RETURNING used_bytes, used_messages, max_bytes, max_messages`, a.bytes, a.counts, a.account).
			Scan(&usedB, &usedN, &maxB, &maxN)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("sqlite: account %q: %w", a.account, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		res := ""
		switch {
		case maxB > 0 && usedB > maxB:
			res = "STORAGE"
		case maxN > 0 && usedN > maxN:
			res = "MESSAGE"
		}
		if res == "" {
			continue
		}
		if qe == nil {
			qe = &store.QuotaError{Resource: res}
		}
		qe.Accounts = append(qe.Accounts, a.account)
	}
	if qe != nil {
		return qe
	}
	return nil
}

// Append implements store.Messages.
func (s *Store) Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.Message{}, err
	}
	flags, err := store.NormalizeFlags(opts.Flags)
	if err != nil {
		return store.Message{}, err
	}
	if err := s.checkOpen(); err != nil {
		return store.Message{}, err
	}
	// No look-up of the mailbox before the body is streamed: the writer
	// checks it in the transaction anyway, and a miss (rare: IMAP checks
	// the mailbox before it reads the literal) only costs a discarded blob,
	// while a query here cost every append a round trip.
	date := opts.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	blob, size, err := s.blobs.write(ctx, r)
	if err != nil {
		return store.Message{}, err
	}
	msg := store.Message{Flags: flags, InternalDate: inStoredZone(date), Size: size, BlobID: blob}
	// Four statements in the request's savepoint: the UID (with the
	// mailbox look-up), the usage (with the quota check), the row and
	// its full-text entry, "not indexed yet": the background indexer
	// fills it soon after, in a batch (textindexer.go).
	err = s.write(ctx, func(tx *wtx) error {
		mailboxID, uid, modseq, err := tx.appendUIDs(account, name, 1)
		if err != nil {
			return err
		}
		if err := tx.addUsageWithin([]quotaAdd{{account, size, 1}}); err != nil {
			return err
		}
		msg.UID, msg.ModSeq = uid, modseq
		msg.SaveDate = s.now().UTC()
		if err := tx.insertMessage(mailboxID, msg); err != nil {
			return err
		}
		if err := tx.indexText(blob); err != nil {
			return err
		}
		tx.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: []uint32{msg.UID}, ModSeq: msg.ModSeq})
		return nil
	})
	if err != nil {
		if derr := s.blobs.discard(blob); derr != nil {
			s.log.Warn("removing blob of failed append", "blob", blob, "err", derr)
		}
		return store.Message{}, wrapErr("append", err)
	}
	s.blobs.settle(blob)
	s.textIdx.added(1, !opts.DeferTextIndex)
	return msg, nil
}

// inStoredZone returns t as Store methods give it back: in a fixed zone
// with t's offset (UTC for offset 0), without a monotonic reading.
func inStoredZone(t time.Time) time.Time {
	return zones{}.instant(t.UnixNano(), zoneOffset(t))
}

// wallNanos is t's wall-clock time in its zone as Unix nanoseconds, as if
// that wall clock were UTC.
func wallNanos(t time.Time) int64 {
	return t.UnixNano() + int64(zoneOffset(t))*int64(time.Second)
}

// ListMessages implements store.Messages.
func (s *Store) ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	out, err := s.listMessages(ctx, account, name, uids)
	return out, wrapErr("list messages", err)
}

// Search implements store.Messages. It reads only the index.
func (s *Store) Search(ctx context.Context, account, mailbox string, c store.SearchCriteria) ([]uint32, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	cond, args, filter := uidClause(c.UIDs)
	var where strings.Builder
	where.WriteString(cond)
	add := func(clause string, a ...any) {
		where.WriteString(" AND " + clause)
		args = append(args, a...)
	}
	// Wall clock against wall clock (store.SearchCriteria): both sides
	// shifted by their zone's offset. A zone is less than 100 hours off
	// (RFC 9051 date-time: 4 digits of hours and minutes), so the first,
	// indexed, test on internal_date alone narrows the rows the exact
	// test reads.
	const zoneSlack = int64(100 * time.Hour)
	if !c.Since.IsZero() {
		add("internal_date >= ? AND internal_date + internal_zone * 1000000000 >= ?", wallNanos(c.Since)-zoneSlack, wallNanos(c.Since))
	}
	if !c.Before.IsZero() {
		add("internal_date < ? AND internal_date + internal_zone * 1000000000 < ?", wallNanos(c.Before)+zoneSlack, wallNanos(c.Before))
	}
	if c.Larger > 0 {
		add("size > ?", c.Larger)
	}
	if c.Smaller > 0 {
		add("size < ?", c.Smaller)
	}
	if c.ModSeqAtLeast > 0 {
		add("modseq >= ?", int64(min(c.ModSeqAtLeast, math.MaxInt64)))
	}
	// Flags compare case-insensitively (RFC 9051 §2.3.2); keywords are
	// ASCII atoms, so SQLite's ASCII lower() is exact.
	for _, f := range c.WithFlags {
		cf, err := store.CanonicalFlag(f)
		if err != nil {
			return nil, err
		}
		add("instr(' ' || lower(flags) || ' ', ?) > 0", " "+strings.ToLower(cf)+" ")
	}
	for _, f := range c.WithoutFlags {
		cf, err := store.CanonicalFlag(f)
		if err != nil {
			return nil, err
		}
		add("instr(' ' || lower(flags) || ' ', ?) = 0", " "+strings.ToLower(cf)+" ")
	}
	out := []uint32{}
	err = s.readTx(ctx, func(tx *rtx) error {
		m, err := getMailbox(ctx, tx, account, name)
		if err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT uid FROM messages WHERE mailbox = ? AND "+where.String()+" ORDER BY uid",
			append([]any{m.ID}, args...)...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid uint32
			if err := rows.Scan(&uid); err != nil {
				return err
			}
			if filter && !c.UIDs.Contains(uid) {
				continue
			}
			out = append(out, uid)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, wrapErr("search", err)
	}
	return out, nil
}

// OpenBody implements store.Messages. The body stays readable whole
// while it is open, even if the message is expunged meanwhile: its blob
// is removed only once the last reader closes it (blobStore.free). A
// message expunged before the body is opened is ErrNoMessage, never a
// missing file.
func (s *Store) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	lookup := func() (string, error) {
		blob, err := s.blobOf(ctx, account, name, uid)
		return blob, wrapErr("open body", err)
	}
	blob, err := lookup()
	if err != nil {
		return nil, err
	}
	f, err := s.blobs.open(blob)
	if errors.Is(err, fs.ErrNotExist) {
		// Expunged (row deleted, then blob freed) between the look-up
		// and the open: the row is gone now.
		if _, lerr := lookup(); lerr != nil {
			return nil, lerr
		}
	}
	if err != nil {
		return nil, fmt.Errorf("sqlite: open body of UID %d: %w", uid, err)
	}
	return f, nil
}

func sameFlags(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// StoreFlags implements store.Messages. All messages changed by one call
// share one new MODSEQ (RFC 7162 §3.1: it must only be greater than every
// earlier one). Messages that fail UnchangedSince are listed in Modified
// and are not in Updated.
func (s *Store) StoreFlags(ctx context.Context, account, mailbox string, req store.StoreFlagsRequest) (store.StoreFlagsResult, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	if req.Op != store.FlagsReplace && req.Op != store.FlagsAdd && req.Op != store.FlagsRemove {
		return store.StoreFlagsResult{}, fmt.Errorf("%w: unknown flag operation %d", store.ErrInvalid, req.Op)
	}
	flags, err := store.NormalizeFlags(req.Flags)
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	var res store.StoreFlagsResult
	err = s.write(ctx, func(tx *wtx) error {
		res = store.StoreFlagsResult{Updated: []store.Message{}}
		m, err := tx.mailbox(account, name)
		if err != nil {
			return err
		}
		msgs, err := selectMessages(tx.ctx, tx, m.ID, req.UIDs, "")
		if err != nil {
			return err
		}
		var modseq uint64
		var changed []uint32
		for _, msg := range msgs {
			// RFC 7162 §3.1.3: UNCHANGEDSINCE fails for messages whose
			// MODSEQ is greater than the given value.
			if req.UnchangedSince > 0 && msg.ModSeq > req.UnchangedSince {
				res.Modified = append(res.Modified, msg.UID)
				continue
			}
			nf := store.ApplyFlags(msg.Flags, req.Op, flags)
			if !sameFlags(nf, msg.Flags) {
				if modseq == 0 {
					if modseq, err = tx.bumpModSeq(m.ID); err != nil {
						return err
					}
				}
				msg.Flags, msg.ModSeq = nf, modseq
				if _, err := tx.exec("UPDATE messages SET flags = ?, modseq = ? WHERE mailbox = ? AND uid = ?",
					encodeFlags(nf), modseq, m.ID, msg.UID); err != nil {
					return err
				}
				changed = append(changed, msg.UID)
			}
			res.Updated = append(res.Updated, msg)
		}
		if len(changed) > 0 {
			tx.publish(store.Change{Kind: store.ChangeFlags, Account: account, Mailbox: name, UIDs: changed, ModSeq: modseq})
		}
		res.ModSeq = modseq
		return nil
	})
	if err != nil {
		return store.StoreFlagsResult{}, wrapErr("store flags", err)
	}
	return res, nil
}

// Expunge implements store.Messages.
func (s *Store) Expunge(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]uint32, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	var out []uint32
	err = s.write(ctx, func(tx *wtx) error {
		out = []uint32{}
		m, err := tx.mailbox(account, name)
		if err != nil {
			return err
		}
		msgs, err := selectMessages(tx.ctx, tx, m.ID, uids, ` AND instr(' ' || flags || ' ', ' \Deleted ') > 0`)
		if err != nil || len(msgs) == 0 {
			return err
		}
		ms, err := tx.removeMessages(account, m.ID, msgs)
		if err != nil {
			return err
		}
		for _, msg := range msgs {
			out = append(out, msg.UID)
		}
		tx.publish(store.Change{Kind: store.ChangeExpunged, Account: account, Mailbox: name, UIDs: out, ModSeq: ms})
		return nil
	})
	if err != nil {
		return nil, wrapErr("expunge", err)
	}
	return out, nil
}

// Copy implements store.Messages. Copies keep flags and internal date and
// share the source's blob.
func (s *Store) Copy(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error) {
	return s.copyOrMove(ctx, account, src, dst, uids, false)
}

// Move implements store.Messages (RFC 6851): the copies are added and the
// originals expunged in one transaction. Usage does not change, so a move
// is never refused for quota.
func (s *Store) Move(ctx context.Context, account, src, dst string, uids store.UIDSet) ([]store.UIDPair, error) {
	return s.copyOrMove(ctx, account, src, dst, uids, true)
}

func (s *Store) copyOrMove(ctx context.Context, account, src, dst string, uids store.UIDSet, move bool) ([]store.UIDPair, error) {
	op := "copy"
	if move {
		op = "move"
	}
	srcName, err := store.CleanMailboxName(src)
	if err != nil {
		return nil, err
	}
	dstName, err := store.CleanMailboxName(dst)
	if err != nil {
		return nil, err
	}
	var pairs []store.UIDPair
	err = s.write(ctx, func(tx *wtx) error {
		pairs = []store.UIDPair{}
		sm, err := tx.mailbox(account, srcName)
		if err != nil {
			return err
		}
		dm, err := tx.mailbox(account, dstName)
		if err != nil {
			return err
		}
		msgs, err := selectMessages(tx.ctx, tx, sm.ID, uids, "")
		if err != nil || len(msgs) == 0 {
			return err
		}
		var bytes int64
		for _, m := range msgs {
			bytes += m.Size
		}
		if move {
			// No quota check: removeMessages takes the usage back.
			err = tx.addUsage(account, bytes, int64(len(msgs)))
		} else {
			err = tx.addUsageWithin([]quotaAdd{{account, bytes, int64(len(msgs))}})
		}
		if err != nil {
			return err
		}
		first, modseq, err := tx.allocUIDs(dm.ID, len(msgs))
		if err != nil {
			return err
		}
		added := make([]uint32, 0, len(msgs))
		saved := tx.s.now().UTC() // RFC 8514: the time of the COPY or MOVE
		for i, m := range msgs {
			c := m
			c.UID, c.ModSeq, c.SaveDate = first+uint32(i), modseq, saved
			if err := tx.insertMessage(dm.ID, c); err != nil {
				return err
			}
			pairs = append(pairs, store.UIDPair{Src: m.UID, Dst: c.UID})
			added = append(added, c.UID)
		}
		tx.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: dstName, UIDs: added, ModSeq: modseq})
		if move {
			ms, err := tx.removeMessages(account, sm.ID, msgs)
			if err != nil {
				return err
			}
			gone := make([]uint32, len(msgs))
			for i, m := range msgs {
				gone[i] = m.UID
			}
			tx.publish(store.Change{Kind: store.ChangeExpunged, Account: account, Mailbox: srcName, UIDs: gone, ModSeq: ms})
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr(op, err)
	}
	return pairs, nil
}

// Changes implements store.Messages.
func (s *Store) Changes(ctx context.Context, account, mailbox string, sinceModSeq uint64) (store.ChangeSet, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.ChangeSet{}, err
	}
	cs := store.ChangeSet{Changed: []store.Message{}, Vanished: []uint32{}}
	since := int64(min(sinceModSeq, math.MaxInt64)) // SQLite integers are signed
	err = s.readTx(ctx, func(tx *rtx) error {
		m, err := getMailbox(ctx, tx, account, name)
		if err != nil {
			return err
		}
		if cs.Changed, err = selectMessages(ctx, tx, m.ID, nil, " AND modseq > ?", since); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, "SELECT uid FROM expunged WHERE mailbox = ? AND modseq > ? ORDER BY uid", m.ID, since)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid uint32
			if err := rows.Scan(&uid); err != nil {
				return err
			}
			cs.Vanished = append(cs.Vanished, uid)
		}
		return rows.Err()
	})
	if err != nil {
		return store.ChangeSet{}, wrapErr("changes", err)
	}
	return cs, nil
}

package postgres

import (
	"context"
	"errors"
	"io"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

var errUIDSpace = errors.New("postgres: mailbox UID space exhausted; it must be re-created")

// lockedBox is a mailbox found under its account's row lock.
type lockedBox struct {
	mb      store.Mailbox // as read: lockMailboxBatch only
	id      int64
	uidNext int64
	modSeq  int64
	q       store.Quota
	used    store.Usage
}

// lockMailbox locks the account row and returns the mailbox:
// ErrNotFound for a missing account, ErrNoMailbox for a missing mailbox.
func (w *wtx) lockMailbox(account, name string) (lockedBox, error) {
	var b lockedBox
	// Both rows are locked, so PostgreSQL re-reads their latest versions
	// after waiting for another writer (READ COMMITTED): the counters are
	// current.
	err := w.QueryRow(w.ctx, `SELECT a.max_bytes, a.max_messages, a.used_bytes, a.used_messages, m.id, m.uidnext, m.highest_modseq
		FROM accounts a JOIN mailboxes m ON m.account = a.id AND m.name = $2 WHERE a.id = $1 FOR UPDATE OF a, m`, account, name).
		Scan(&b.q.MaxBytes, &b.q.MaxMessages, &b.used.Bytes, &b.used.Messages, &b.id, &b.uidNext, &b.modSeq)
	if errors.Is(err, pgx.ErrNoRows) {
		if _, _, err := w.lockAccount(account); err != nil {
			return b, err
		}
		return b, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
	}
	return b, err
}

// uidRanges turns a UID set into the two arrays uidSetSQL compares with;
// nil for "all messages".
func uidRanges(set store.UIDSet) ([]int64, []int64) {
	if set == nil {
		return nil, nil
	}
	lo, hi := make([]int64, len(set)), make([]int64, len(set))
	for i, r := range set {
		lo[i], hi[i] = int64(r.Start), int64(r.Stop)
		if r.Stop == 0 {
			hi[i] = math.MaxUint32
		}
	}
	return lo, hi
}

// uidSetSQL is an SQL condition: col is in the ranges given as the
// bigint arrays $lo and $hi (NULL: every UID). It bounds col by the
// lowest and highest of them first, which an index on (mailbox, uid)
// answers as a range: a FETCH of 20 UIDs reads those 20 rows, not the
// mailbox's.
func uidSetSQL(col, lo, hi string) string {
	return `(` + col + ` BETWEEN coalesce((SELECT min(r) FROM unnest(` + lo + `::bigint[]) r), 0)
		AND coalesce((SELECT max(r) FROM unnest(` + hi + `::bigint[]) r), ` + strconvI(math.MaxUint32) + `)
		AND (` + lo + `::bigint[] IS NULL OR EXISTS (SELECT 1 FROM unnest(` + lo + `::bigint[], ` + hi + `::bigint[]) r(lo, hi) WHERE ` + col + ` BETWEEN r.lo AND r.hi)))`
}

// The counts STATUS answers (mailboxes.messages, unseen, deleted, size)
// move in the statement that changes the messages: countsOfSQL sums
// what rows add to them (as aggregates over rows with flags and size:
// n, u, d, s), and countsMoveSQL is the SET clause that adds or takes
// such sums x to or from mailbox row mb. A flag change moves
// them by what StoreFlags works out (flagCount). Check compares them
// with the messages.
func countsOfSQL(flags, size string) string {
	return `count(*) AS n, coalesce(sum(1 - mailyard_has_flag(` + flags + `, '\Seen')), 0) AS u,
		coalesce(sum(mailyard_has_flag(` + flags + `, '\Deleted')), 0) AS d, coalesce(sum(` + size + `), 0) AS s`
}

// countsMoveSQL sets mailbox row mb's counts to themselves op ("+" or
// "-") the sums x of countsOfSQL.
func countsMoveSQL(op string) string {
	return `messages = mb.messages ` + op + ` x.n, unseen = mb.unseen ` + op + ` x.u, deleted = mb.deleted ` + op + ` x.d, size = mb.size ` + op + ` x.s`
}

// flagCount is 1 if flags (normalised) hold f, else 0.
func flagCount(flags []string, f string) int64 {
	if slices.ContainsFunc(flags, func(g string) bool { return strings.EqualFold(g, f) }) {
		return 1
	}
	return 0
}

// msgCols are the columns scanMsg reads, over messages m.
const msgCols = `m.uid, m.modseq, m.flags, m.internal_date, m.internal_zone, m.size, m.blob_id, m.save_date`

// storedDate is an INTERNALDATE as the store gives it back: in a fixed
// zone of its UTC offset (time.UTC for offset 0).
func storedDate(n int64, zone int32) time.Time {
	t := time.Unix(0, n)
	if zone == 0 {
		return t.UTC()
	}
	return t.In(time.FixedZone("", int(zone)))
}

// zoneOf is t's UTC offset in seconds.
func zoneOf(t time.Time) int32 {
	_, off := t.Zone()
	return int32(off)
}

// wallClock is t's wall-clock reading in its own zone, as Unix
// nanoseconds as if it were UTC (store.SearchCriteria compares these).
func wallClock(t time.Time) int64 {
	return t.UnixNano() + int64(zoneOf(t))*int64(time.Second)
}

func splitFlags(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, " ")
}

// msgRow is one scanned message with nullable columns (outer joins).
type msgRow struct {
	uid, modseq, date, size, blob *int64
	flags                         *string
	zone                          *int32
	saved                         *int64
}

func (r *msgRow) dest() []any {
	return []any{&r.uid, &r.modseq, &r.flags, &r.date, &r.zone, &r.size, &r.blob, &r.saved}
}

func (r *msgRow) message() store.Message {
	return store.Message{UID: uint32(*r.uid), ModSeq: uint64(*r.modseq), Flags: splitFlags(*r.flags),
		InternalDate: storedDate(*r.date, *r.zone), Size: *r.size, BlobID: blobName(*r.blob), SaveDate: savedDate(r.saved)}
}

// savedDate is a save_date as store.Message.SaveDate holds it: in UTC,
// the zero time for 0 (unknown, 0005_save_date.sql).
func savedDate(n *int64) time.Time {
	if n == nil || *n == 0 {
		return time.Time{}
	}
	return time.Unix(0, *n).UTC()
}

// saveNanos is a save date as save_date holds it: Unix nanoseconds, 0
// for unknown.
func saveNanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

func blobName(id int64) string { return strconvI(id) }

// queryMessages reads the messages of a mailbox that meet cond (over
// messages m; its arguments start at $3) in one statement that also
// tells a missing account (ErrNotFound) from a missing mailbox
// (ErrNoMailbox).
func (s *Store) queryMessages(ctx context.Context, account, name, cond string, args ...any) ([]store.Message, error) {
	rows, err := s.pool.Query(ctx, `SELECT mb.mid, `+msgCols+` FROM
		(SELECT (SELECT id FROM mailboxes WHERE account = $1 AND name = $2) AS mid FROM accounts WHERE id = $1) mb
		LEFT JOIN messages m ON m.mailbox = mb.mid AND `+cond+` ORDER BY m.uid`, append([]any{account, name}, args...)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Message{}
	found := false
	for rows.Next() {
		found = true
		var mid *int64
		var r msgRow
		if err := rows.Scan(append([]any{&mid}, r.dest()...)...); err != nil {
			return nil, err
		}
		if mid == nil {
			return nil, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
		}
		if r.uid != nil {
			out = append(out, r.message())
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if !found {
		return nil, errorf("account %q: %w", account, store.ErrNotFound)
	}
	return out, nil
}

// newMsg is one index row to insert.
type newMsg struct {
	mailbox int64
	uid     int64
	modseq  int64
	flags   string
	date    int64
	zone    int32
	size    int64
	blob    int64
}

// insertMessages adds index rows, moves each mailbox's UIDNEXT past its
// highest new UID and HIGHESTMODSEQ to its MODSEQ, and adds to the
// accounts' usage, claims the bodies if they were just uploaded
// (blobStore.upload) and stores the full-text entries of texts, for
// bodies that have none yet, as not indexed: one statement whatever the
// number of rows. The texts go to the indexer once the transaction
// committed (textindexer.go). Every row gets saved as its save date (RFC 8514: each
// caller puts the messages in their mailbox now). The rows
// go in by body ID, so that the foreign-key checks lock the bodies (FOR
// KEY SHARE) in the order release locks them (FOR UPDATE): a Copy in one
// account and an Expunge of the same bodies in another cannot deadlock.
func (w *wtx) insertMessages(msgs []newMsg, usage map[string]store.Usage, texts []textEntry, saved time.Time) error {
	n := len(msgs)
	mbox, uid, ms, date, size, blob := make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n), make([]int64, n)
	flags, zone := make([]string, n), make([]int32, n)
	for i, m := range msgs {
		mbox[i], uid[i], ms[i], flags[i], date[i], zone[i], size[i], blob[i] = m.mailbox, m.uid, m.modseq, m.flags, m.date, m.zone, m.size, m.blob
	}
	var accts []string
	var ub, un []int64
	textBlobs := make([]int64, len(texts))
	for i, t := range texts {
		textBlobs[i] = t.blob
	}
	for a, u := range usage {
		accts, ub, un = append(accts, a), append(ub, u.Bytes), append(un, u.Messages)
	}
	_, err := w.Exec(w.ctx, `WITH t AS (SELECT * FROM unnest($1::bigint[], $2::bigint[], $3::bigint[], $4::text[], $5::bigint[], $6::int[], $7::bigint[], $8::bigint[])
			AS t(mailbox, uid, modseq, flags, date, zone, size, blob)),
		i AS (INSERT INTO messages (mailbox, uid, modseq, flags, internal_date, internal_zone, size, blob_id, save_date)
			SELECT mailbox, uid, modseq, flags, date, zone, size, blob, $12 FROM t ORDER BY blob),
		b AS (UPDATE mailboxes mb SET uidnext = x.uid + 1, highest_modseq = GREATEST(mb.highest_modseq, x.modseq),
				`+countsMoveSQL("+")+`
			FROM (SELECT mailbox, max(uid) AS uid, max(modseq) AS modseq, `+countsOfSQL("flags", "size")+` FROM t GROUP BY mailbox) x WHERE mb.id = x.mailbox),
		a AS (UPDATE accounts ac SET used_bytes = used_bytes + u.b, used_messages = used_messages + u.n
			FROM unnest($9::text[], $10::bigint[], $11::bigint[]) u(id, b, n) WHERE ac.id = u.id),
		c AS (`+claimSQL("$8")+`),
		x AS (INSERT INTO text_docs (blob_id, state) SELECT unnest($13::bigint[]), `+strconvI(textMissing)+` ON CONFLICT (blob_id) DO NOTHING)
		SELECT 1`, mbox, uid, ms, flags, date, zone, size, blob, accts, ub, un, saveNanos(saved), textBlobs)
	if err == nil {
		w.texts = append(w.texts, texts...)
		for a, u := range usage {
			w.addUsage(a, u.Bytes, u.Messages)
		}
	}
	return err
}

// Append implements store.Messages. The body is uploaded before the
// transaction begins, so a slow client holds neither a lock nor a
// connection; a refused message's body is discarded. The transaction
// takes two round trips (writePipelined).
func (s *Store) Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.Message{}, err
	}
	flags, err := store.NormalizeFlags(opts.Flags)
	if err != nil {
		return store.Message{}, err
	}
	date := opts.InternalDate
	if date.IsZero() {
		date = s.now()
	}
	if err := s.checkOpen(ctx); err != nil {
		return store.Message{}, err
	}
	body, tt := startText(r)
	blob, size, err := s.blobs.upload(ctx, s.pool, body, s.now)
	text := tt.finish(err)
	if err != nil {
		return store.Message{}, wrapErr("append", err)
	}
	var msg store.Message
	var b lockedBox
	reads, scan := lockMailboxBatch(account, name, &b)
	err = s.writePipelined(ctx, "append", account, reads, scan, func(w *wtx) error {
		if err := checkQuota([]quotaAdd{{account: account, bytes: size, count: 1, q: b.q, used: b.used}}); err != nil {
			return err
		}
		if b.uidNext+1 > math.MaxUint32 {
			return errUIDSpace
		}
		nm := newMsg{mailbox: b.id, uid: b.uidNext, modseq: b.modSeq + 1, flags: strings.Join(flags, " "),
			date: date.UnixNano(), zone: zoneOf(date), size: size, blob: blob}
		saved := s.now().UTC()
		if err := w.insertMessages([]newMsg{nm}, map[string]store.Usage{account: {Bytes: size, Messages: 1}}, []textEntry{{blob: blob, text: text}}, saved); err != nil {
			return err
		}
		msg = store.Message{UID: uint32(nm.uid), ModSeq: uint64(nm.modseq), Flags: flags, InternalDate: storedDate(nm.date, nm.zone),
			Size: size, BlobID: blobName(blob), SaveDate: saved}
		w.publish(store.Change{Kind: store.ChangeMessagesAdded, Account: account, Mailbox: name, UIDs: []uint32{msg.UID}, ModSeq: msg.ModSeq})
		w.wrote(account, b.after(nm.uid+1, nm.modseq))
		return nil
	})
	if err != nil {
		s.blobs.discard(s.pool, blob)
		return store.Message{}, err
	}
	return msg, nil
}

// ListMessages implements store.Messages: one statement.
func (s *Store) ListMessages(ctx context.Context, account, mailbox string, uids store.UIDSet) ([]store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	lo, hi := uidRanges(uids)
	out, err := s.queryMessages(ctx, account, name, uidSetSQL("m.uid", "$3", "$4"), lo, hi)
	return out, wrapErr("list messages", err)
}

// Search implements store.Messages. It reads only the index, in one
// statement.
func (s *Store) Search(ctx context.Context, account, mailbox string, c store.SearchCriteria) ([]uint32, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	for _, list := range []*[]string{&c.WithFlags, &c.WithoutFlags} {
		canon := make([]string, len(*list))
		for i, f := range *list {
			if canon[i], err = store.CanonicalFlag(f); err != nil {
				return nil, err
			}
		}
		*list = canon
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	lo, hi := uidRanges(c.UIDs)
	args := []any{lo, hi}
	cond := []string{uidSetSQL("m.uid", "$3", "$4")}
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconvI(int64(len(args)+2))
	}
	wall := `(m.internal_date + m.internal_zone::bigint * 1000000000)`
	if !c.Since.IsZero() {
		cond = append(cond, wall+` >= `+arg(wallClock(c.Since)))
	}
	if !c.Before.IsZero() {
		cond = append(cond, wall+` < `+arg(wallClock(c.Before)))
	}
	if c.Larger > 0 {
		cond = append(cond, `m.size > `+arg(c.Larger))
	}
	if c.Smaller > 0 {
		cond = append(cond, `m.size < `+arg(c.Smaller))
	}
	if c.ModSeqAtLeast > 0 {
		cond = append(cond, `m.modseq >= `+arg(int64(c.ModSeqAtLeast)))
	}
	if len(c.WithFlags) > 0 {
		cond = append(cond, `(SELECT bool_and(`+hasFlagSQL("m.flags", "f")+`) FROM unnest(`+arg(c.WithFlags)+`::text[]) f)`)
	}
	if len(c.WithoutFlags) > 0 {
		cond = append(cond, `NOT (SELECT bool_or(`+hasFlagSQL("m.flags", "f")+`) FROM unnest(`+arg(c.WithoutFlags)+`::text[]) f)`)
	}
	msgs, err := s.queryMessages(ctx, account, name, strings.Join(cond, " AND "), args...)
	if err != nil {
		return nil, wrapErr("search", err)
	}
	out := make([]uint32, len(msgs))
	for i, m := range msgs {
		out[i] = m.UID
	}
	return out, nil
}

// OpenBody implements store.Messages. A body of one chunk is read whole
// at once; a longer one is read chunk by chunk in one snapshot, so it
// reads whole even if the message is expunged meanwhile.
func (s *Store) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	_, rc, err := s.openMessage(ctx, "open body", account, mailbox, uid)
	return rc, err
}

// StoreFlags implements store.Messages. All messages changed by one call
// share one new MODSEQ (RFC 7162 §3.1: it must only be greater than every
// earlier one). Messages that fail UnchangedSince are listed in Modified
// and are not in Updated. The changed rows are written in one statement;
// the transaction takes two round trips (writePipelined).
func (s *Store) StoreFlags(ctx context.Context, account, mailbox string, req store.StoreFlagsRequest) (store.StoreFlagsResult, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	if req.Op != store.FlagsReplace && req.Op != store.FlagsAdd && req.Op != store.FlagsRemove {
		return store.StoreFlagsResult{}, errorf("%w: unknown flag operation %d", store.ErrInvalid, req.Op)
	}
	flags, err := store.NormalizeFlags(req.Flags)
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	var res store.StoreFlagsResult
	var b lockedBox
	var msgs []store.Message
	reads, scan := lockMailboxBatch(account, name, &b)
	reads, scan = selectLockedBatch(account, name, req.UIDs, "", reads, scan, &msgs)
	err = s.writePipelined(ctx, "store flags", account, reads, scan, func(w *wtx) error {
		res = store.StoreFlagsResult{Updated: []store.Message{}}
		modseq := uint64(b.modSeq + 1)
		var changed []uint32
		var cuids []int64
		var cflags []string
		var unseen, deleted int64 // how the changes move the mailbox's counts
		for _, msg := range msgs {
			if req.UnchangedSince > 0 && msg.ModSeq > req.UnchangedSince {
				res.Modified = append(res.Modified, msg.UID)
				continue
			}
			if nf := store.ApplyFlags(msg.Flags, req.Op, flags); !slices.Equal(nf, msg.Flags) {
				unseen += flagCount(msg.Flags, store.FlagSeen) - flagCount(nf, store.FlagSeen)
				deleted += flagCount(nf, store.FlagDeleted) - flagCount(msg.Flags, store.FlagDeleted)
				msg.Flags, msg.ModSeq = nf, modseq
				changed = append(changed, msg.UID)
				cuids, cflags = append(cuids, int64(msg.UID)), append(cflags, strings.Join(nf, " "))
			}
			res.Updated = append(res.Updated, msg)
		}
		if len(changed) == 0 {
			return nil
		}
		if _, err := w.Exec(ctx, `WITH u AS (UPDATE messages m SET flags = t.flags, modseq = $2
				FROM unnest($3::bigint[], $4::text[]) t(uid, flags) WHERE m.mailbox = $1 AND m.uid = t.uid)
			UPDATE mailboxes SET highest_modseq = $2, unseen = unseen + $5, deleted = deleted + $6 WHERE id = $1`,
			b.id, int64(modseq), cuids, cflags, unseen, deleted); err != nil {
			return err
		}
		w.publish(store.Change{Kind: store.ChangeFlags, Account: account, Mailbox: name, UIDs: changed, ModSeq: modseq})
		w.wrote(account, b.after(b.uidNext, int64(modseq)))
		// The mailbox's row was read under the account's lock, so no
		// other write has this MODSEQ: a session that knew the mailbox
		// up to modseq-1 need not read this change back.
		res.ModSeq = modseq
		return nil
	})
	if err != nil {
		return store.StoreFlagsResult{}, err
	}
	return res, nil
}

// Changes implements store.Messages, in one statement: the messages
// changed and the UIDs vanished since sinceModSeq come from one snapshot
// (a statement sees one under READ COMMITTED), and the IMAP poll, which
// asks after every command once the mailbox changed, pays one round
// trip for it instead of a transaction's five.
func (s *Store) Changes(ctx context.Context, account, mailbox string, sinceModSeq uint64) (store.ChangeSet, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return store.ChangeSet{}, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return store.ChangeSet{}, err
	}
	cs, err := s.changes(ctx, account, name, sinceModSeq)
	if err != nil {
		return store.ChangeSet{}, wrapErr("changes", err)
	}
	return cs, nil
}

// changesSQL reads the changes of mailbox $2 of account $1 after MODSEQ
// $3: a row with vanished false per changed message, true per expunged
// UID, and one row of NULLs after mb.mid if there are none; mb.mid NULL
// for a missing mailbox, no row at all for a missing account.
const changesSQL = `SELECT mb.mid, c.vanished, c.uid, c.modseq, c.flags, c.internal_date, c.internal_zone, c.size, c.blob_id, c.save_date FROM
	(SELECT (SELECT id FROM mailboxes WHERE account = $1 AND name = $2) AS mid FROM accounts WHERE id = $1) mb
	LEFT JOIN LATERAL (
		SELECT false AS vanished, m.uid, m.modseq, m.flags, m.internal_date, m.internal_zone, m.size, m.blob_id, m.save_date
			FROM messages m WHERE m.mailbox = mb.mid AND m.modseq > $3
		UNION ALL
		SELECT true, e.uid, e.modseq, NULL::text, NULL::bigint, NULL::integer, NULL::bigint, NULL::bigint, NULL::bigint
			FROM expunged e WHERE e.mailbox = mb.mid AND e.modseq > $3) c ON true
	ORDER BY c.vanished, c.uid`

func (s *Store) changes(ctx context.Context, account, name string, since uint64) (store.ChangeSet, error) {
	cs := store.ChangeSet{Changed: []store.Message{}, Vanished: []uint32{}}
	rows, err := s.pool.Query(ctx, changesSQL, account, name, int64(since))
	if err != nil {
		return cs, err
	}
	defer rows.Close()
	found := false
	for rows.Next() {
		found = true
		var mid *int64
		var vanished *bool
		var r msgRow
		if err := rows.Scan(append([]any{&mid, &vanished}, r.dest()...)...); err != nil {
			return cs, err
		}
		switch {
		case mid == nil:
			return cs, errorf("mailbox %q: %w", name, store.ErrNoMailbox)
		case r.uid == nil:
			// Nothing changed: the one row of the outer join.
		case *vanished:
			cs.Vanished = append(cs.Vanished, uint32(*r.uid))
		default:
			cs.Changed = append(cs.Changed, r.message())
		}
	}
	if err := rows.Err(); err != nil {
		return cs, err
	}
	if !found {
		return cs, errorf("account %q: %w", account, store.ErrNotFound)
	}
	return cs, nil
}

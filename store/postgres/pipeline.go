package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/mailyard/mailyard/store"
)

// writePipelined runs a write transaction in two round trips instead
// of one per statement: BEGIN and the reads that lock and fetch what the
// write needs (queued by reads, their results consumed by scan, in
// order) go in one batch; the statements fn sends, the feed (flushFeed)
// and COMMIT in the other. Inside fn, w only queues statements (Exec):
// fn decides from what scan read, and what it queues cannot be read
// back. The statements are those write would send one by one, in the
// same order on one connection, so the locking is the same; an error in
// one makes PostgreSQL skip the rest of its batch, COMMIT included, and
// the transaction is rolled back. Deliver and Append, the hot writes,
// use it (bench/README.md, "postgres").
//
// A write to the mailboxes of one account names it, and shares its
// transaction with the writes of this Store to the same account that
// queue meanwhile (group commit, commitGroups; commitWrites): the queue
// holds no pool connection, and n queued writes cost one commit and
// one WAL flush instead of n. Deliver names none: it has its own group
// commit (Store.deliveries) around this.
func (s *Store) writePipelined(ctx context.Context, op, account string, reads readsFunc, scan scanFunc, fn func(w *wtx) error) error {
	if err := s.checkOpen(ctx); err != nil {
		return err
	}
	defer s.observeWrite(time.Now())
	pw := &pendingWrite{op: op, ctx: ctx, reads: reads, scan: scan, fn: fn}
	if account != "" {
		return s.accountWrites.run(ctx, account, pw, s.commitWrites)
	}
	errs, err := s.commitWrites(ctx, []*pendingWrite{pw})
	if err == nil {
		err = errs[0]
	}
	return err
}

// maxWriteGroup bounds how many writes to one account share one
// transaction (commitWrites).
const maxWriteGroup = 32

// readsFunc queues a pipelined write's reads: the statements that lock
// and read what the write needs. st tells what the transaction already
// holds (earlier writes of its group).
type readsFunc func(b *pgx.Batch, st *txState)

// scanFunc reads the results of what the readsFunc queued, in order,
// and records in st what they locked.
type scanFunc func(br pgx.BatchResults, st *txState) error

// txState is what a pipelined transaction holds so far, as the reads of
// its writes record it.
type txState struct {
	// accountLocked: a read of an earlier write locked the account's
	// row (lockMailboxBatch), so the next write's reads need not lock it
	// again: a transaction keeps its row locks until it ends.
	accountLocked bool
	// account, q and used: the account locked, its quota, and its
	// usage as the writes stored so far left it.
	account string
	q       store.Quota
	used    store.Usage
	// boxes are the mailboxes an earlier write's reads locked, by name,
	// as the writes stored so far left them (UIDNEXT, HIGHESTMODSEQ). A
	// later write takes its mailbox from here and sends no statement
	// for it: under the account's lock, nothing but this transaction
	// changes them (the writes that do not queue here, Deliver's and
	// the mailbox list's, take the account's lock first).
	boxes map[string]lockedBox
}

// remember records b, just read and locked, for the group's later
// writes.
func (st *txState) remember(name string, b lockedBox) {
	if st.boxes == nil {
		st.boxes = map[string]lockedBox{}
	}
	st.boxes[name] = b
}

// cached fills b from a mailbox an earlier write of the transaction
// locked; false if none did.
func (st *txState) cached(name string, b *lockedBox) bool {
	c, ok := st.boxes[name]
	if ok {
		*b = c
		b.q, b.used = st.q, st.used
	}
	return ok
}

// absorb moves st past what write w stored: the mailboxes it left and
// the account's usage.
func (st *txState) absorb(w *wtx) {
	for _, wb := range w.boxes {
		if c, ok := st.boxes[wb.mb.Name]; ok && wb.account == st.account {
			c.mb, c.uidNext, c.modSeq = wb.mb, int64(wb.mb.UIDNext), int64(wb.mb.HighestModSeq)
			st.boxes[wb.mb.Name] = c
		}
	}
	u := w.usage[st.account]
	st.used.Bytes += u.Bytes
	st.used.Messages += u.Messages
}

// pendingWrite is one pipelined write on its way into a transaction.
type pendingWrite struct {
	op    string
	ctx   context.Context // the caller's, for fn's wtx
	reads readsFunc
	scan  scanFunc
	fn    func(*wtx) error
}

// commitWrites runs ws in one transaction, in order, in len(ws)+1 round
// trips: BEGIN and the first write's reads; then each write's
// statements with the next one's reads; the last one's with the feed
// rows of all of them and COMMIT. Each write's reads come after the statements of the writes
// before it, so they see what those left (UIDNEXT, MODSEQ, usage),
// exactly as if each had its own transaction after the one before. A
// write refused by what its reads found (scan or fn returned an error
// and no statement failed: the transaction is still open) gets its
// error alone and none of its statements is sent. A statement that
// fails aborts the transaction: the error is txErr, and the caller
// tries each write alone. Every write stored returns only once the
// COMMIT is durable.
func (s *Store) commitWrites(ctx context.Context, ws []*pendingWrite) (errs []error, txErr error) {
	op := ws[0].op
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, wrapErr(op, err)
	}
	// A connection left inside a transaction (a failed ROLLBACK) is
	// closed by Release rather than pooled; a second Release does
	// nothing.
	defer conn.Release()
	errs = make([]error, len(ws))
	done := &wtx{ctx: ctx, s: s} // what the writes stored changed, for the feed and committed
	cur := &queuedTx{}           // the batch to send next
	cur.batch.Queue("BEGIN")
	skip, stored := 1, 0
	st := &txState{}
	for i, pw := range ws {
		pw.reads(&cur.batch, st)
		if err := sendBatch(ctx, conn, &cur.batch, skip, func(br pgx.BatchResults) error { return pw.scan(br, st) }); err != nil {
			if !inTx(conn) {
				return nil, rollbackConn(conn, op, err)
			}
			errs[i] = wrapErr(pw.op, err)
			cur, skip = &queuedTx{}, 0
			continue
		}
		q := &queuedTx{}
		w := &wtx{Tx: q, ctx: pw.ctx, s: s}
		if err := pw.fn(w); err != nil {
			errs[i] = wrapErr(pw.op, err)
			cur, skip = &queuedTx{}, 0
			continue
		}
		cur, skip = q, q.batch.Len()
		st.absorb(w)
		done.absorb(w)
		stored++
	}
	if stored == 0 {
		// Every write was refused: nothing to commit, and the rows
		// their reads locked are let go.
		rollbackConn(conn, op, nil)
		return errs, nil
	}
	// The feed rows of all of them in one statement, in their order,
	// and the numbers they got.
	done.Tx = cur
	feedArgs, fed, err := done.feedArgs()
	if err != nil {
		return nil, rollbackConn(conn, op, err)
	}
	if fed {
		cur.batch.Queue(feedSQL, feedArgs...)
	}
	cur.batch.Queue("COMMIT")
	checked := cur.batch.Len() - 1 // the writes' statements
	if fed {
		checked--
	}
	err = sendBatch(ctx, conn, &cur.batch, checked, func(br pgx.BatchResults) error {
		if !fed {
			return nil
		}
		rows, err := br.Query()
		if err != nil {
			return err
		}
		return done.feedNumbered(rows)
	})
	if err != nil {
		if refused(err) {
			// PostgreSQL refused a statement or the COMMIT, and the
			// session goes on: the transaction did not commit.
			return nil, rollbackConn(conn, op, err)
		}
		done.uncertain()
		return errs, &uncertainError{rollbackConn(conn, op, err)}
	}
	conn.Release()
	done.committed()
	return errs, nil
}

// refused reports whether err is PostgreSQL's ERROR for a statement of
// the batch, COMMIT included, which ends the transaction without
// committing it (a problem after the commit comes as a WARNING, or as a
// FATAL that ends the session). Severity may be translated
// (lc_messages); SeverityUnlocalized is not.
func refused(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	sev := pe.SeverityUnlocalized
	if sev == "" {
		sev = pe.Severity
	}
	return sev == "ERROR"
}

// inTx reports whether conn is still in a transaction that can go on:
// a statement that failed would have aborted it.
func inTx(conn *pgxpool.Conn) bool {
	pc := conn.Conn().PgConn()
	return !pc.IsClosed() && pc.TxStatus() == 'T'
}

// sendBatch sends b on conn: the results of its first skip statements
// are checked, scan (if any) reads the results after them, and the
// rest are checked.
func sendBatch(ctx context.Context, conn *pgxpool.Conn, b *pgx.Batch, skip int, scan func(br pgx.BatchResults) error) error {
	br := conn.SendBatch(ctx, b)
	var err error
	for range skip {
		if _, err = br.Exec(); err != nil {
			break
		}
	}
	if err == nil && scan != nil {
		err = scan(br)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return err
}

// rollbackConn ends the transaction on conn after err and returns err
// named by op. A ROLLBACK that fails leaves the connection inside the
// transaction, and Release closes it.
func rollbackConn(conn *pgxpool.Conn, op string, err error) error {
	ctx, cancel := context.WithTimeout(context.Background(), rollbackTimeout)
	defer cancel()
	conn.Exec(ctx, "ROLLBACK")
	return wrapErr(op, err)
}

// rollbackTimeout bounds the ROLLBACK after a failed pipelined write.
const rollbackTimeout = 10 * time.Second

// lockMailboxBatch queues the reads of lockMailbox for a pipelined
// write: the account row is locked first, so the mailbox row, locked
// next, is read current; scan fills b with what they found and returns
// what lockMailbox would (ErrNotFound, ErrNoMailbox).
//
// In a transaction whose account row an earlier write of the group has
// locked (st.accountLocked), the two are one statement (lockedHeldSQL):
// it waits for no lock of the account's, so its snapshot, taken when
// it starts, is as current as the second statement's would be. That
// is one statement less for every write of a group but the first.
func lockMailboxBatch(account, name string, b *lockedBox) (reads readsFunc, scan scanFunc) {
	reads = func(batch *pgx.Batch, st *txState) {
		switch {
		case st.boxes[name].id != 0:
		case st.accountLocked:
			batch.Queue(lockedHeldSQL, account, name)
		default:
			batch.Queue(accountLockSQL, account)
			batch.Queue(lockedBoxSQL, account, name)
		}
	}
	scan = func(br pgx.BatchResults, st *txState) error {
		if st.cached(name, b) {
			return nil
		}
		if st.accountLocked {
			if err := b.scan(br.QueryRow(), name, &b.q.MaxBytes, &b.q.MaxMessages, &b.used.Bytes, &b.used.Messages); err != nil {
				return err
			}
			st.remember(name, *b)
			return nil
		}
		err := br.QueryRow().Scan(&b.q.MaxBytes, &b.q.MaxMessages, &b.used.Bytes, &b.used.Messages)
		if errors.Is(err, pgx.ErrNoRows) {
			return errorf("account %q: %w", account, store.ErrNotFound)
		}
		if err != nil {
			return err
		}
		st.accountLocked, st.account, st.q, st.used = true, account, b.q, b.used
		if err := b.scan(br.QueryRow(), name); err != nil {
			return err
		}
		st.remember(name, *b)
		return nil
	}
	return reads, scan
}

// accountLockSQL locks account $1's row and reads its quota and usage.
const accountLockSQL = `SELECT max_bytes, max_messages, used_bytes, used_messages FROM accounts WHERE id = $1 FOR UPDATE`

// lockedHeldSQL reads account $1's quota and usage and reads and locks
// its mailbox $2, in a transaction that holds the account's row lock:
// lockMailboxBatch.
const lockedHeldSQL = `SELECT a.max_bytes, a.max_messages, a.used_bytes, a.used_messages, ` + mailboxCols + `
	FROM accounts a JOIN mailboxes m ON m.account = a.id AND m.name = $2 WHERE a.id = $1 FOR UPDATE OF m`

// lockedBoxSQL reads and locks mailbox $2 of account $1, for
// lockedBox.scan.
const lockedBoxSQL = `SELECT ` + mailboxCols + ` FROM mailboxes m WHERE m.account = $1 AND m.name = $2 FOR UPDATE OF m`

// scan reads a row of lockedBoxSQL (or lockedHeldSQL, whose columns
// before the mailbox's go to before) into b: ErrNoMailbox if there is
// none.
func (b *lockedBox) scan(row pgx.Row, name string, before ...any) error {
	var d mailboxDest
	err := row.Scan(append(before, d.dest()...)...)
	if errors.Is(err, pgx.ErrNoRows) {
		return errorf("mailbox %q: %w", name, store.ErrNoMailbox)
	}
	if err != nil {
		return err
	}
	mb := d.mailbox()
	b.mb, b.id, b.uidNext, b.modSeq = mb, mb.ID, int64(mb.UIDNext), int64(mb.HighestModSeq)
	return nil
}

// after is the row b is left with by a write that moved its UIDNEXT and
// HIGHESTMODSEQ to uidNext and modSeq.
func (b *lockedBox) after(uidNext, modSeq int64) store.Mailbox {
	mb := b.mb
	mb.UIDNext, mb.HighestModSeq = uint32(uidNext), uint64(modSeq)
	return mb
}

// errNotPipelined: a statement whose result is needed was sent inside
// a pipelined write, where statements are only queued.
var errNotPipelined = errors.New("postgres: internal error: a query inside a pipelined write")

// queuedTx is the pgx.Tx of a pipelined write's second half: Exec
// queues the statement and reports success (its outcome is known when
// the batch is sent); everything that needs a result fails.
type queuedTx struct {
	batch pgx.Batch
}

var _ pgx.Tx = (*queuedTx)(nil)

func (q *queuedTx) Exec(_ context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	q.batch.Queue(sql, args...)
	return pgconn.CommandTag{}, nil
}

func (q *queuedTx) Query(context.Context, string, ...any) (pgx.Rows, error) {
	return nil, errNotPipelined
}

func (q *queuedTx) QueryRow(context.Context, string, ...any) pgx.Row { return errRow{} }

func (q *queuedTx) Begin(context.Context) (pgx.Tx, error) { return nil, errNotPipelined }
func (q *queuedTx) Commit(context.Context) error          { return errNotPipelined }
func (q *queuedTx) Rollback(context.Context) error        { return errNotPipelined }
func (q *queuedTx) CopyFrom(context.Context, pgx.Identifier, []string, pgx.CopyFromSource) (int64, error) {
	return 0, errNotPipelined
}
func (q *queuedTx) SendBatch(context.Context, *pgx.Batch) pgx.BatchResults { return errBatch{} }
func (q *queuedTx) LargeObjects() pgx.LargeObjects                         { return pgx.LargeObjects{} }
func (q *queuedTx) Prepare(context.Context, string, string) (*pgconn.StatementDescription, error) {
	return nil, errNotPipelined
}
func (q *queuedTx) Conn() *pgx.Conn { return nil }

// errRow is the pgx.Row of a query inside a pipelined write.
type errRow struct{}

func (errRow) Scan(...any) error { return errNotPipelined }

// errBatch is the pgx.BatchResults of a batch inside a pipelined write.
type errBatch struct{}

func (errBatch) Exec() (pgconn.CommandTag, error) { return pgconn.CommandTag{}, errNotPipelined }
func (errBatch) Query() (pgx.Rows, error)         { return nil, errNotPipelined }
func (errBatch) QueryRow() pgx.Row                { return errRow{} }
func (errBatch) Close() error                     { return errNotPipelined }
func (errBatch) Tx() pgx.Tx                       { return nil }

// selectLockedSQL reads the messages of mailbox $2 of account $1 in the
// UID set of $3 and $4 (uidRanges) that meet cond ("" for all).
func selectLockedSQL(cond string) string {
	if cond != "" {
		cond = " AND " + cond
	}
	return `SELECT ` + msgCols + ` FROM messages m WHERE m.mailbox = (SELECT id FROM mailboxes WHERE account = $1 AND name = $2)
		AND ` + uidSetSQL("m.uid", "$3", "$4") + cond + ` ORDER BY m.uid`
}

// selectLockedBatch adds to a pipelined write's reads (after those of
// lockMailboxBatch) the read of the messages of the mailbox in set that
// meet cond (an SQL condition over messages m without parameters; ""
// for all), read after its row is locked, into msgs.
func selectLockedBatch(account, name string, set store.UIDSet, cond string, reads readsFunc, scan scanFunc,
	msgs *[]store.Message) (readsFunc, scanFunc) {
	lo, hi := uidRanges(set)
	q := selectLockedSQL(cond)
	return func(b *pgx.Batch, st *txState) {
			reads(b, st)
			b.Queue(q, account, name, lo, hi)
		}, func(br pgx.BatchResults, st *txState) error {
			if err := scan(br, st); err != nil {
				return err
			}
			rows, err := br.Query()
			if err != nil {
				return err
			}
			*msgs, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (store.Message, error) {
				var r msgRow
				if err := row.Scan(r.dest()...); err != nil {
					return store.Message{}, err
				}
				return r.message(), nil
			})
			return err
		}
}

package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"

	sqlite "modernc.org/sqlite"
)

// The full-text index lives in a database file of its own,
// dir/textindex.db, written only by the background indexer (the "index
// writer", under textIndex.mu) over a connection of its own. The main
// writer (writer.go) never touches it, so no STORE, COPY, EXPUNGE or
// APPEND waits for FTS5's tokenisers or segment merges; SQLite locks each
// file apart, so the two writers do not wait for each other either.
//
// mail.db keeps text_docs, the entry of each blob with its state
// (migrationV5): the truth of what is indexed. textindex.db holds
// text_fts and text_words (migrationV5, migrationV9) keyed by
// text_docs.id, and text_ix, one row per id the two tables hold (words:
// whether text_words holds it too). Read connections ATTACH it as "ti",
// so SEARCH joins the two files in one query.
//
// Invariants, which make SEARCH exact at every moment and after a crash:
//
//   - Index first: the indexer commits an entry's rows in textindex.db
//     (synchronous=FULL, so durable) before it marks the entry indexed in
//     mail.db. A search reads mail.db before textindex.db (its first
//     statement, the mailbox look-up, reads only mail.db, and SQLite
//     opens an attached file's snapshot when a statement first reads
//     it), so an entry the search sees indexed has its rows in the
//     snapshot of the index it reads; one not indexed is a candidate.
//   - Ids are never given out twice: text_docs.id is AUTOINCREMENT
//     (migrationV10), so index rows of an entry that is gone can only
//     match that id, which no text_docs row has any more. A search reads
//     index rows only through text_docs, so such rows are invisible.
//   - Index rows are deleted only for an id whose text_docs row is gone
//     (deleted in a committed write: Expunge and the like queue the id,
//     dropText) or in the same index transaction that inserts the id's
//     rows again (re-indexing). Hence "marked indexed, rows missing"
//     never happens, not even for a moment; reconcile repairs it all the
//     same (a textindex.db restored from a backup, or removed).
//
// One effect of the two snapshots: a search whose mail.db snapshot still
// has the last message of a blob while the index writer has already
// deleted the blob's rows (the message expunged meanwhile) does not find
// that message; it is gone by the time the search answers.
//
// A crash between the two commits leaves rows of an entry still marked
// not indexed: harmless (the entry is a candidate; the indexer deletes
// the rows before it inserts the entry again), and reconcile at Open
// deletes rows whose entry is gone.
const textIndexFile = "textindex.db"

// textIndexVersion is textindex.db's user_version; its application_id
// is mail.db's.
const textIndexVersion = 1

// textIndexSchema is textindex.db's schema (see migrationV5 and
// migrationV9 for the two FTS5 tables).
const textIndexSchema = `
CREATE TABLE text_ix (
	id    INTEGER PRIMARY KEY,
	words INTEGER NOT NULL
);
CREATE VIRTUAL TABLE text_fts USING fts5(header, body, content='', contentless_delete=1,
	tokenize='trigram case_sensitive 1');
CREATE VIRTUAL TABLE text_words USING fts5(header, body, content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE text_words_row USING fts5vocab(text_words, 'row');
CREATE VIRTUAL TABLE text_words_inst USING fts5vocab(text_words, 'instance');
`

// maxPendingDrops bounds the ids queued for deletion from the index;
// past it the queue is dropped and the next index write deletes every
// row whose entry is gone instead (sweepOrphanText).
const maxPendingDrops = 1 << 16

// textIndex is the index writer's state.
type textIndex struct {
	// mu makes whoever holds it the index writer: conn and its
	// statements are used only under it.
	mu   sync.Mutex
	db   *sql.DB
	conn *sql.Conn
	st   map[string]*sql.Stmt

	// dmu guards drops and overflow, filled by the main writer after
	// its commits (queueDrops) and emptied by the index writer.
	dmu      sync.Mutex
	drops    []int64
	overflow bool
}

// Statements of the index writer, prepared once.
const (
	ixDropSQL     = "DELETE FROM text_ix WHERE id = ? RETURNING words"
	ixDropFTSSQL  = "DELETE FROM text_fts WHERE rowid = ?"
	ixDropWordSQL = "DELETE FROM text_words WHERE rowid = ?"
	ixInsFTSSQL   = "INSERT INTO text_fts (rowid, header, body) VALUES (?, ?, ?)"
	ixInsWordSQL  = "INSERT INTO text_words (rowid, header, body) VALUES (?, ?, ?)"
	ixInsSQL      = "INSERT INTO text_ix (id, words) VALUES (?, 1)"
)

func (s *Store) textIndexPath() string { return filepath.Join(s.dir, textIndexFile) }

// openTextIndex opens (creating it if there is none) textindex.db for
// the index writer. A file of another program is refused.
func (s *Store) openTextIndex(ctx context.Context) error {
	ms := strconv.FormatInt(s.opts.BusyTimeout.Milliseconds(), 10)
	db, err := sql.Open("sqlite", "file:"+s.textIndexPath()+"?_busy_timeout="+ms+"&_synchronous=FULL&_journal_mode=WAL")
	if err != nil {
		return fmt.Errorf("sqlite: open %s: %w", textIndexFile, err)
	}
	x := &textIndex{db: db, st: make(map[string]*sql.Stmt)}
	s.tix = x
	db.SetMaxOpenConns(1)
	db.SetMaxIdleConns(1)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
	if x.conn, err = db.Conn(ctx); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", textIndexFile, err)
	}
	if err := x.tx(ctx, func() error {
		id, err := readIdentity(ctx, x.conn)
		if err != nil {
			return err
		}
		switch {
		case id.app == applicationID && id.version == textIndexVersion:
		case id.app == 0 && id.version == 0:
			var n int
			if err := x.conn.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
				return err
			}
			if n != 0 {
				return fmt.Errorf("%w: %s has tables of another program", ErrForeignDataDir, textIndexFile)
			}
			if _, err := x.conn.ExecContext(ctx, textIndexSchema); err != nil {
				return err
			}
			if _, err := x.conn.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d; PRAGMA application_id = %d", textIndexVersion, applicationID)); err != nil {
				return err
			}
		case id.app == applicationID && id.version > textIndexVersion:
			return fmt.Errorf("%s is of a newer release (version %d, this one knows %d)", textIndexFile, id.version, textIndexVersion)
		default:
			return fmt.Errorf("%w: %s: application_id %#x, version %d", ErrForeignDataDir, textIndexFile, id.app, id.version)
		}
		return setTextMerge(ctx, x.conn)
	}); err != nil {
		return fmt.Errorf("sqlite: open %s: %w", textIndexFile, err)
	}
	for _, q := range []string{ixDropSQL, ixDropFTSSQL, ixDropWordSQL, ixInsFTSSQL, ixInsWordSQL, ixInsSQL} {
		st, err := x.conn.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("sqlite: prepare %q: %w", q, err)
		}
		x.st[q] = st
	}
	return nil
}

// tx runs fn in a write transaction of the index connection; the caller
// holds mu (or is Open, before anyone else can).
func (x *textIndex) tx(ctx context.Context, fn func() error) error {
	return connTx(ctx, x.conn, fn)
}

// connTx runs fn in a write transaction (BEGIN IMMEDIATE) of conn.
func connTx(ctx context.Context, conn *sql.Conn, fn func() error) error {
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return err
	}
	if err := fn(); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	if _, err := conn.ExecContext(ctx, "COMMIT"); err != nil {
		_, _ = conn.ExecContext(ctx, "ROLLBACK")
		return err
	}
	return nil
}

func (x *textIndex) close() error {
	if x == nil {
		return nil
	}
	var errs []error
	for _, st := range x.st {
		errs = append(errs, st.Close())
	}
	if x.conn != nil {
		errs = append(errs, x.conn.Close())
	}
	if x.db != nil {
		errs = append(errs, x.db.Close())
	}
	return errors.Join(errs...)
}

// queueDrops queues the ids of text_docs rows deleted by a committed
// write; the index writer deletes their rows with its next write.
func (x *textIndex) queueDrops(ids []int64) {
	if len(ids) == 0 {
		return
	}
	x.dmu.Lock()
	defer x.dmu.Unlock()
	if x.overflow || len(x.drops)+len(ids) > maxPendingDrops {
		x.drops, x.overflow = nil, true
		return
	}
	x.drops = append(x.drops, ids...)
}

// pendingDrops says whether deletions wait.
func (x *textIndex) pendingDrops() bool {
	x.dmu.Lock()
	defer x.dmu.Unlock()
	return len(x.drops) > 0 || x.overflow
}

// drop deletes the rows of id from the index, if it holds any.
func (x *textIndex) drop(ctx context.Context, id int64) error {
	var words int
	err := x.st[ixDropSQL].QueryRowContext(ctx, id).Scan(&words)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if _, err := x.st[ixDropFTSSQL].ExecContext(ctx, id); err != nil {
		return err
	}
	if words == 1 {
		_, err = x.st[ixDropWordSQL].ExecContext(ctx, id)
	}
	return err
}

// insert stores the entry d of id in both tables; the caller dropped
// id's old rows first.
func (x *textIndex) insert(ctx context.Context, id int64, d textDoc) error {
	if _, err := x.st[ixInsFTSSQL].ExecContext(ctx, id, d.header, d.body); err != nil {
		return err
	}
	if _, err := x.st[ixInsWordSQL].ExecContext(ctx, id, d.header, d.body); err != nil {
		return err
	}
	_, err := x.st[ixInsSQL].ExecContext(ctx, id)
	return err
}

// writeTextIndex is one transaction of the index writer: the deletions
// queued so far, then fn (nil: none). It takes the deletions off the
// queue only once committed.
func (s *Store) writeTextIndex(ctx context.Context, fn func() error) error {
	x := s.tix
	x.mu.Lock()
	defer x.mu.Unlock()
	x.dmu.Lock()
	drops, overflow := x.drops, x.overflow
	x.drops, x.overflow = nil, false
	x.dmu.Unlock()
	var orphans []int64
	if overflow {
		var err error
		if orphans, err = s.orphanTextIDs(ctx); err != nil {
			x.queueOverflow()
			return err
		}
	}
	err := x.tx(ctx, func() error {
		for _, ids := range [][]int64{drops, orphans} {
			for _, id := range ids {
				if err := x.drop(ctx, id); err != nil {
					return err
				}
			}
		}
		if fn != nil {
			return fn()
		}
		return nil
	})
	if err != nil {
		if overflow {
			x.queueOverflow()
		} else {
			x.queueDrops(drops)
		}
		return fmt.Errorf("sqlite: full-text index: %w", err)
	}
	return nil
}

func (x *textIndex) queueOverflow() {
	x.dmu.Lock()
	x.drops, x.overflow = nil, true
	x.dmu.Unlock()
}

// orphanTextIDs lists the ids the index holds whose text_docs row is
// gone. Safe at any time: such an id never comes back.
func (s *Store) orphanTextIDs(ctx context.Context) ([]int64, error) {
	var ids []int64
	err := s.readTx(ctx, func(tx *rtx) (err error) {
		ids, err = queryIDs(ctx, tx, "SELECT x.id FROM ti.text_ix x WHERE NOT EXISTS (SELECT 1 FROM main.text_docs d WHERE d.id = x.id)")
		return err
	})
	return ids, err
}

// reconcileTextIndex runs at Open: entries marked indexed whose rows the
// index lacks (textindex.db removed or restored from an older copy) go
// back to "not indexed", and rows of entries that are gone (a crash
// between an expunge's commit and the index writer's deletion) are
// deleted.
func (s *Store) reconcileTextIndex(ctx context.Context) error {
	var lost []int64
	err := s.readTx(ctx, func(tx *rtx) error {
		var err error
		lost, err = queryIDs(ctx, tx, "SELECT d.id FROM main.text_docs d WHERE d.state != ? AND NOT EXISTS (SELECT 1 FROM ti.text_ix x WHERE x.id = d.id)", textMissing)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: reconcile full-text index: %w", err)
	}
	if len(lost) > 0 {
		s.log.Warn("full-text entries missing from the index, to be indexed again", "file", textIndexFile, "entries", len(lost))
		err := s.rawWrite(ctx, func() error {
			for _, id := range lost {
				if _, err := s.wconn.ExecContext(ctx, "UPDATE text_docs SET state = ?, words = 0 WHERE id = ?", textMissing, id); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("sqlite: reconcile full-text index: %w", err)
		}
	}
	orphans, err := s.orphanTextIDs(ctx)
	if err != nil {
		return fmt.Errorf("sqlite: reconcile full-text index: %w", err)
	}
	s.tix.queueDrops(orphans)
	if len(orphans) > 0 {
		return s.writeTextIndex(ctx, nil)
	}
	return nil
}

// rawWrite runs fn in a transaction of the main write connection; only
// Open uses it, before the writer goroutine starts.
func (s *Store) rawWrite(ctx context.Context, fn func() error) error {
	return connTx(ctx, s.wconn, fn)
}

// queryIDs runs a query of one integer column.
func queryIDs(ctx context.Context, q querier, query string, args ...any) ([]int64, error) {
	return queryColumn[int64](ctx, q, query, args...)
}

// readMainFirst opens the read transaction's snapshot of mail.db before
// that of textindex.db: SQLite takes a file's snapshot when a statement
// of the transaction first reads it, so this statement, which reads only
// mail.db, makes every entry the search sees marked indexed have its
// rows in the index snapshot it reads next (textindex.go, invariants).
// Searches call it first, rather than count on their first look-up
// reading mail.db (a cache could answer it).
func readMainFirst(ctx context.Context, tx *rtx) error {
	var n int
	err := tx.QueryRowContext(ctx, "SELECT count(*) FROM (SELECT 1 FROM main.text_docs LIMIT 1)").Scan(&n)
	return err
}

// attachTextIndex returns the connection hook of the read pool: it
// attaches textindex.db as "ti" and maps it as the main file is mapped.
func attachTextIndex(path string) sqlite.ConnectionHookFn {
	return func(conn sqlite.ExecQuerierContext, _ string) error {
		ctx := context.Background()
		if _, err := conn.ExecContext(ctx, "ATTACH DATABASE ? AS ti", []driver.NamedValue{{Ordinal: 1, Value: path}}); err != nil {
			return fmt.Errorf("attach %s: %w", textIndexFile, err)
		}
		_, err := conn.ExecContext(ctx, "PRAGMA ti.mmap_size = "+strconv.Itoa(readMmapSize), nil)
		return err
	}
}

// hookConnector opens connections of dsn through a driver of its own,
// whose hooks reach only them.
type hookConnector struct {
	drv *sqlite.Driver
	dsn string
}

func (c hookConnector) Connect(context.Context) (driver.Conn, error) { return c.drv.Open(c.dsn) }
func (c hookConnector) Driver() driver.Driver                        { return c.drv }

// textMerge are text_fts's FTS5 merge settings, which FTS5 keeps in the
// table's config (text_fts_config). Every commit that adds messages
// writes one new index segment; FTS5 merges a level's segments into one
// of the next level once automerge of them exist (crisismerge: at once,
// in the writing transaction), so each entry is rewritten about
// log_automerge(entries per commit / entries) times. At FTS5's default
// of 4, merging was a third of the CPU time of 4,000 concurrent appends
// (BenchmarkAppendText, profile of 2026-12-06); at 8 each entry is
// rewritten a third fewer times, while a search term reads at most 7
// segments of each level instead of 3 (bench/README.md, "migrate",
// session 10).
var textMerge = []struct{ key, value string }{
	{"automerge", "8"},
	{"crisismerge", "32"},
}

// setTextMerge applies textMerge where the config says otherwise; Open
// calls it in the transaction that opens textindex.db, so a text_fts
// created anew (a removed file) gets the settings too.
func setTextMerge(ctx context.Context, conn *sql.Conn) error {
	for _, m := range textMerge {
		var v string
		err := conn.QueryRowContext(ctx, "SELECT v FROM text_fts_config WHERE k = ?", m.key).Scan(&v)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("full-text settings: %w", err)
		}
		if v == m.value {
			continue
		}
		if _, err := conn.ExecContext(ctx, "INSERT INTO text_fts (text_fts, rank) VALUES (?, ?)", m.key, m.value); err != nil {
			return fmt.Errorf("full-text settings: %w", err)
		}
	}
	return nil
}

package sqlite

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/textdoc"
)

// migrationV5 adds the full-text index (store.TextSearcher).
//
// Its unit is the blob, not the message: copies share a blob (Copy, and a
// delivery to several mailboxes), so they share one entry, and COPY
// writes nothing to the index. text_docs has one row per blob that some
// message names, with its state:
//
//   - textMissing: not in text_fts; every message of the blob is a
//     candidate of every search. Blobs stored before version 5 start so,
//     until `ReindexText` reads them.
//   - textWhole: text_fts holds the blob's whole text.
//   - textPartial: text_fts holds the first part of it (the message or
//     its text is over the bounds of extractText, or did not parse);
//     always a candidate, as textMissing.
//
// text_fts is a contentless FTS5 table (the text is in the blob already)
// with the trigram tokenizer, case-sensitive: the text is stored
// lower-cased by strings.ToLower, as IMAP SEARCH lower-cases it, so a
// phrase of a lower-cased pattern's trigrams finds every text the
// pattern is a substring of (RFC 9051 §6.4.4), whatever Unicode folding
// the tokenizer would apply. Its rowid is text_docs.id. Column header is
// the top-level header (TEXT), body the texts (BODY and TEXT), each
// joined with newlines: a match across two texts only adds a candidate.
const migrationV5 = `
CREATE TABLE text_docs (
	id      INTEGER PRIMARY KEY,
	blob_id TEXT NOT NULL UNIQUE,
	state   INTEGER NOT NULL
);
CREATE INDEX text_docs_unread ON text_docs(blob_id) WHERE state != 1;
CREATE VIRTUAL TABLE text_fts USING fts5(header, body, content='', contentless_delete=1,
	tokenize='trigram case_sensitive 1');
INSERT INTO text_docs (blob_id, state) SELECT DISTINCT blob_id, 0 FROM messages;
`

// States of text_docs rows (migrationV5).
const (
	textMissing = 0
	textWhole   = 1
	textPartial = 2
)

// Bounds of what the index holds of one message (package textdoc): a
// message over either is textPartial (a candidate of every search).
const (
	maxIndexedRaw  = textdoc.MaxRaw
	maxIndexedText = textdoc.MaxText
)

// textDoc is the index entry of a blob, extracted before the write
// transaction that stores it.
type textDoc struct {
	header, body string
	state        int
}

// extractText reads the text of a blob (textdoc.Read) within its
// bounds. A blob that cannot be read gives a textMissing entry.
func (s *Store) extractText(blob string) textDoc {
	f, err := s.blobs.open(blob)
	if err != nil {
		return textDoc{state: textMissing}
	}
	defer f.Close()
	return readTextDoc(f)
}

func readTextDoc(r io.Reader) textDoc {
	d := textdoc.Read(r)
	if !d.Whole {
		return textDoc{header: d.Header, body: d.Body, state: textPartial}
	}
	return textDoc{header: d.Header, body: d.Body, state: textWhole}
}

// migrationV10 moves the full-text index out of mail.db into a file of
// its own, textindex.db (textindex.go), written by the background
// indexer alone, so that the main writer does no FTS5 work. text_docs
// stays here, rebuilt with AUTOINCREMENT ids: the index keys its rows by
// text_docs.id, and an id given out again could meet rows of the text
// of a gone message (textindex.go, invariants). Every entry starts "not
// indexed" again, and the background indexer rebuilds the index in
// textindex.db, in batches, while the store serves: until then a message
// is a candidate of every search, so answers stay exact (only slower).
// Copying FTS5's shadow tables instead would tie the migration to
// FTS5's private format.
const migrationV10 = `
DROP TABLE text_words_inst;
DROP TABLE text_words_row;
DROP TABLE text_words;
DROP TABLE text_fts;
CREATE TABLE text_docs_v10 (
	id      INTEGER PRIMARY KEY AUTOINCREMENT,
	blob_id TEXT NOT NULL UNIQUE,
	state   INTEGER NOT NULL,
	words   INTEGER NOT NULL DEFAULT 0
);
INSERT INTO text_docs_v10 (id, blob_id, state, words) SELECT id, blob_id, 0, 0 FROM text_docs;
DROP TABLE text_docs;
ALTER TABLE text_docs_v10 RENAME TO text_docs;
CREATE INDEX text_docs_unread ON text_docs(blob_id) WHERE state != 1;
CREATE INDEX text_docs_nowords ON text_docs(blob_id) WHERE words = 0;
`

// indexText gives a blob its entry, "not indexed yet", unless it has
// one (a copy); the background indexer fills it (textindexer.go).
func (t *wtx) indexText(blob string) error {
	_, err := t.exec("INSERT INTO text_docs (blob_id, state, words) VALUES (?, ?, 0) ON CONFLICT (blob_id) DO NOTHING", blob, textMissing)
	return err
}

// dropText removes the entry of a blob no message names any more; its
// index rows are deleted by the index writer once the write commits
// (request.dropped).
func (t *wtx) dropText(blob string) error {
	var id int64
	err := t.queryRow("DELETE FROM text_docs WHERE blob_id = ? RETURNING id", blob).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	t.req.dropped = append(t.req.dropped, id)
	return nil
}

// textEntry is a text_docs row to index: its id and blob.
type textEntry struct {
	id   int64
	blob string
}

// fillTexts indexes entries: it reads their texts, commits their rows
// in textindex.db (after deleting any rows the ids have there), then
// marks them indexed in mail.db, those still "not indexed" (another
// indexer may have been first; its rows hold the same text). Rows of
// entries that went away meanwhile are queued for deletion. In that
// order, a search never finds an entry marked indexed without its rows
// (textindex.go). A blob whose text cannot be read becomes textPartial
// with no text (a candidate of every search).
func (s *Store) fillTexts(ctx context.Context, entries []textEntry) error {
	docs := make([]textDoc, len(entries))
	for i, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		docs[i] = s.extractText(e.blob)
		if docs[i].state == textMissing {
			docs[i] = textDoc{state: textPartial}
		}
	}
	// In rowid order, and every deletion before the first insert: FTS5
	// writes its pending rows out as a new segment whenever a rowid is
	// not above the last one or an insert follows a delete, and each
	// segment costs merges later. The indexer's query returns entries in
	// blob order; unsorted, a batch of 64 was 64 segments per table
	// (bench/README.md, "textindex.db").
	order := make([]int, len(entries))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int { return cmp.Compare(entries[a].id, entries[b].id) })
	x := s.tix
	err := s.writeTextIndex(ctx, func() error {
		for _, i := range order {
			if err := x.drop(ctx, entries[i].id); err != nil {
				return err
			}
		}
		for _, i := range order {
			if err := x.insert(ctx, entries[i].id, docs[i]); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if s.opts.testHookTextIndexed != nil {
		if err := s.opts.testHookTextIndexed(); err != nil {
			return err
		}
	}
	var gone []int64
	// Its own write is no activity to yield to: else every batch of a
	// backlog would wait textIdleGap after the one before.
	err = s.writeRequest(&request{ctx: ctx, done: make(chan struct{}), background: true, fn: func(tx *wtx) error {
		gone = gone[:0]
		for i, e := range entries {
			res, err := tx.exec("UPDATE text_docs SET state = ?, words = 1 WHERE id = ? AND state = ?", docs[i].state, e.id, textMissing)
			if err != nil {
				return err
			}
			if n, _ := res.RowsAffected(); n == 1 {
				continue
			}
			var exists int
			if err := tx.queryRow("SELECT EXISTS (SELECT 1 FROM text_docs WHERE id = ?)", e.id).Scan(&exists); err != nil {
				return err
			}
			if exists == 0 {
				gone = append(gone, e.id)
			}
		}
		return nil
	}})
	if err != nil {
		return err
	}
	x.queueDrops(gone)
	return nil
}

// SearchText implements store.TextSearcher: the messages whose blob's
// indexed text contains every term of at least store.MinTextTerm runes
// (Sure if indexed whole and no term is shorter), and those of blobs not
// indexed whole, read with their metadata in one query.
func (s *Store) SearchText(ctx context.Context, account, mailbox string, terms []store.TextTerm, within store.UIDSet) ([]store.TextHit, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	expr, all := ftsQuery(terms)
	var hits []store.TextHit
	err = s.readTx(ctx, func(tx *rtx) error {
		if err := readMainFirst(ctx, tx); err != nil {
			return err
		}
		m, err := getMailbox(ctx, tx, account, name)
		if err != nil {
			return err
		}
		// The second half reads the few entries not held whole
		// through their partial index (text_docs_unread); left to
		// itself the planner walked every message of the mailbox.
		var rows *sql.Rows
		if expr == "" {
			rows, err = tx.QueryContext(ctx, "SELECT "+messageCols+", 0 FROM messages WHERE mailbox = ? ORDER BY uid", m.ID)
		} else {
			cols := "m." + strings.ReplaceAll(messageCols, ", ", ", m.") + ", d.state"
			rows, err = tx.QueryContext(ctx, `SELECT `+cols+` FROM text_fts f
				JOIN text_docs d ON d.id = f.rowid
				JOIN messages m ON m.blob_id = d.blob_id
				WHERE text_fts MATCH ? AND m.mailbox = ?
				UNION
				SELECT `+cols+` FROM text_docs d INDEXED BY text_docs_unread
				CROSS JOIN messages m ON m.blob_id = d.blob_id
				WHERE d.state != 1 AND m.mailbox = ?
				ORDER BY 1`, expr, m.ID, m.ID)
		}
		if err != nil {
			return err
		}
		defer rows.Close()
		z := zones{}
		for rows.Next() {
			var state int
			msg, err := scanMessage(withState{rows, &state}, z)
			if err != nil {
				return err
			}
			if within.Contains(msg.UID) {
				hits = append(hits, store.TextHit{Message: msg, Sure: state == textWhole && all})
			}
		}
		return rows.Err()
	})
	return hits, wrapErr("search text", err)
}

// withState scans a message row followed by its text_docs state.
type withState struct {
	rows  *sql.Rows
	state *int
}

func (w withState) Scan(dest ...any) error { return w.rows.Scan(append(dest, w.state)...) }

// ftsQuery is the FTS5 query of the terms the index narrows by: each a
// phrase of its lower-cased value, in its columns, all ANDed; "" when
// none is long enough. all reports whether every term is in it.
func ftsQuery(terms []store.TextTerm) (expr string, all bool) {
	var parts []string
	all = true
	for _, t := range terms {
		v := strings.ToLower(t.Value)
		if utf8.RuneCountInString(v) < store.MinTextTerm {
			all = false
			continue
		}
		phrase := `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
		if t.Field == store.TextBody {
			phrase = "body:" + phrase
		}
		parts = append(parts, phrase)
	}
	return strings.Join(parts, " AND "), all
}

// ReindexText rebuilds the full-text entries of the blobs of account's
// messages (every account's when account is ""): each is read again and
// its entry replaced, in batches of group commits, while the store
// serves. It returns how many blobs were read. Messages stored before
// the index existed are found by every search until this ran.
func (s *Store) ReindexText(ctx context.Context, account string) (int, error) {
	q := "SELECT DISTINCT blob_id FROM messages"
	var args []any
	if account != "" {
		if err := s.readTx(ctx, func(tx *rtx) error { return accountExists(ctx, tx, account) }); err != nil {
			return 0, wrapErr("reindex text", err)
		}
		q = `SELECT DISTINCT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox WHERE b.account = ?`
		args = append(args, account)
	}
	var blobs []string
	err := s.readTx(ctx, func(tx *rtx) (err error) {
		blobs, err = queryStrings(ctx, tx, q, args...)
		return err
	})
	if err != nil {
		return 0, wrapErr("reindex text", err)
	}
	const batch = 64
	for i := 0; i < len(blobs); i += batch {
		part := blobs[i:min(i+batch, len(blobs))]
		// "Not indexed" first, so that no search trusts the old state
		// while the index holds the new text; then as the indexer.
		var entries []textEntry
		err := s.write(ctx, func(tx *wtx) error {
			entries = entries[:0]
			for _, b := range part {
				var id int64
				err := tx.queryRow("UPDATE text_docs SET state = ?, words = 0 WHERE blob_id = ? RETURNING id", textMissing, b).Scan(&id)
				if errors.Is(err, sql.ErrNoRows) {
					continue // its messages were removed meanwhile
				}
				if err != nil {
					return err
				}
				entries = append(entries, textEntry{id, b})
			}
			return nil
		})
		if err == nil {
			err = s.fillTexts(ctx, entries)
		}
		if err != nil {
			return i, wrapErr("reindex text", err)
		}
	}
	return len(blobs), nil
}

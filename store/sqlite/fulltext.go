package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"io"
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

// indexText stores the entry of a blob unless it has one (a copy): in
// text_fts and, for fuzzy search, text_words (migrationV9).
func (t *wtx) indexText(blob string, d textDoc) error {
	words := 0
	if d.state != textMissing {
		words = 1
	}
	res, err := t.exec("INSERT INTO text_docs (blob_id, state, words) VALUES (?, ?, ?) ON CONFLICT (blob_id) DO NOTHING", blob, d.state, words)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 || d.state == textMissing {
		return nil
	}
	id, err := res.LastInsertId()
	if err != nil {
		return err
	}
	t.queueText(id, d) // inserted by insertText before the commit (textqueue.go)
	return nil
}

// insertText writes the entry d of text_docs row id into both indexes
// (text_fts, and text_words for fuzzy search); the writer calls it for
// the queued rows of a batch (flushTexts).
func (t *wtx) insertText(id int64, d textDoc) error {
	if _, err := t.exec("INSERT INTO text_fts (rowid, header, body) VALUES (?, ?, ?)", id, d.header, d.body); err != nil {
		return err
	}
	_, err := t.exec("INSERT INTO text_words (rowid, header, body) VALUES (?, ?, ?)", id, d.header, d.body)
	return err
}

// deleteText removes document id from the indexes that hold it.
func (t *wtx) deleteText(id int64, state, words int) error {
	if state != textMissing {
		if _, err := t.exec("DELETE FROM text_fts WHERE rowid = ?", id); err != nil {
			return err
		}
	}
	if words == 1 {
		if _, err := t.exec("DELETE FROM text_words WHERE rowid = ?", id); err != nil {
			return err
		}
	}
	return nil
}

// replaceText sets the entry of a blob that has one (ReindexText); a
// blob whose messages were all removed meanwhile is left alone.
func (t *wtx) replaceText(blob string, d textDoc) error { return t.setText(blob, d, false) }

// fillText sets the entry of a blob whose entry is still textMissing
// (the background indexer, textindexer.go); an entry filled meanwhile
// (another process's indexer, ReindexText) or removed is left alone.
func (t *wtx) fillText(blob string, d textDoc) error { return t.setText(blob, d, true) }

func (t *wtx) setText(blob string, d textDoc, onlyMissing bool) error {
	var id int64
	var state, words int
	err := t.queryRow("SELECT id, state, words FROM text_docs WHERE blob_id = ?", blob).Scan(&id, &state, &words)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	if onlyMissing && state != textMissing {
		return nil
	}
	if err := t.unindexText(id, state, words); err != nil {
		return err
	}
	words = 0
	if d.state != textMissing {
		words = 1
	}
	if _, err := t.exec("UPDATE text_docs SET state = ?, words = ? WHERE id = ?", d.state, words, id); err != nil {
		return err
	}
	if d.state != textMissing {
		t.queueText(id, d)
	}
	return nil
}

// dropText removes the entry of a blob no message names any more.
func (t *wtx) dropText(blob string) error {
	var id int64
	var state, words int
	err := t.queryRow("DELETE FROM text_docs WHERE blob_id = ? RETURNING id, state, words", blob).Scan(&id, &state, &words)
	if errors.Is(err, sql.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	return t.unindexText(id, state, words)
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
		docs := make([]textDoc, len(part))
		for j, b := range part {
			if err := ctx.Err(); err != nil {
				return i, err
			}
			docs[j] = s.extractText(b)
		}
		err := s.write(ctx, func(tx *wtx) error {
			for j, b := range part {
				if err := tx.replaceText(b, docs[j]); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return i, wrapErr("reindex text", err)
		}
	}
	return len(blobs), nil
}

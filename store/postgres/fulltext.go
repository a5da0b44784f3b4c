package postgres

import (
	"context"
	"errors"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/textdoc"
)

var _ store.TextSearcher = (*Store)(nil)

// States of text_docs rows (migrations/0004_fulltext.sql).
const (
	textMissing = 0
	textWhole   = 1
	textPartial = 2
)

// bodyText is the text_docs entry of one body.
type bodyText struct {
	state        int16
	header, body string
	words        string // textWords(header, body) when whole, else ""
}

// docText turns an extracted text into its entry. PostgreSQL's text
// holds neither NUL nor invalid UTF-8; a text with either is kept as a
// partial entry without text (a candidate of every search), so the
// index never answers for text it could not hold as it is.
func docText(d textdoc.Doc) bodyText {
	for _, s := range []string{d.Header, d.Body} {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return bodyText{state: textPartial}
		}
	}
	if !d.Whole {
		// Always a candidate: the index's words would narrow nothing.
		return bodyText{state: textPartial, header: d.Header, body: d.Body}
	}
	return bodyText{state: textWhole, header: d.Header, body: d.Body, words: textWords(d.Header, d.Body)}
}

// textTee extracts a body's text (textdoc.Read) while the body is read
// for storing, so the body is read once: what the reader returned by
// startText yields is also fed to the extraction, which runs in its own
// goroutine. finish must be called once the body was read, whatever the
// outcome; it ends the goroutine.
type textTee struct {
	pw   *io.PipeWriter
	done chan textdoc.Doc
}

// startText returns r as it will be read for storing, and the tee that
// extracts its text.
func startText(r io.Reader) (io.Reader, *textTee) {
	pr, pw := io.Pipe()
	t := &textTee{pw: pw, done: make(chan textdoc.Doc, 1)}
	go func() {
		d := textdoc.Read(pr)
		// Past the bounds (or after a bad header) the rest is read and
		// dropped, so that the writer never blocks.
		io.Copy(io.Discard, pr)
		t.done <- d
	}()
	return io.TeeReader(r, pw), t
}

// finish ends the extraction: with readErr nil the body was read whole
// and its entry is returned; otherwise the extraction is abandoned.
func (t *textTee) finish(readErr error) bodyText {
	if readErr != nil {
		t.pw.CloseWithError(readErr)
		<-t.done
		return bodyText{state: textMissing}
	}
	t.pw.Close()
	return docText(<-t.done)
}

// textInsertSQL is a data-modifying CTE that stores the entries of
// bodies given as the array parameters named (textRows.args), those of
// bodies that have none yet: a body is indexed once.
func textInsertSQL(blobs, states, headers, bodies, words string) string {
	return `INSERT INTO text_docs (blob_id, state, header, body, words) SELECT * FROM unnest(` + blobs + `::bigint[], ` +
		states + `::smallint[], ` + headers + `::text[], ` + bodies + `::text[], ` + words + `::text[]) ON CONFLICT (blob_id) DO NOTHING`
}

// textRows are the entries of bodies, as textInsertSQL stores them.
type textRows struct {
	blobs                  []int64
	states                 []int16
	headers, bodies, words []string
}

// textsOf is the one entry t of body blob.
func textsOf(blob int64, t bodyText) *textRows {
	r := &textRows{}
	r.add(blob, t)
	return r
}

// add adds the entry t of body blob.
func (r *textRows) add(blob int64, t bodyText) {
	r.blobs, r.states = append(r.blobs, blob), append(r.states, t.state)
	r.headers, r.bodies, r.words = append(r.headers, t.header), append(r.bodies, t.body), append(r.words, t.words)
}

// args are the arguments of textInsertSQL; with r nil, nothing is
// stored.
func (r *textRows) args() []any {
	if r == nil {
		return []any{nil, nil, nil, nil, nil}
	}
	return []any{r.blobs, r.states, r.headers, r.bodies, r.words}
}

// dropText removes the entries of the bodies among ids that no message
// names any more; release locked them first. An entry the text indexer
// is writing (its row locked: textFillSQL) is skipped rather than waited
// for, with the account's lock held: it names no message, so no search
// finds it, and it goes with its body when the body is swept (ON DELETE
// CASCADE).
func (w *wtx) dropText(ids []int64) error {
	_, err := w.Exec(w.ctx, `DELETE FROM text_docs WHERE blob_id IN (SELECT d.blob_id FROM text_docs d WHERE d.blob_id = ANY($1)
		AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = d.blob_id) FOR UPDATE SKIP LOCKED)`, ids)
	return err
}

// likePattern is the LIKE pattern that matches any text containing v.
func likePattern(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`)
	return "%" + r.Replace(v) + "%"
}

// SearchText implements store.TextSearcher, in one statement: the
// messages whose body's indexed text contains every term of at least
// store.MinTextTerm runes, found through the trigram index of the
// entries' words (each of a term's words must be there: wordPatterns)
// and checked by PostgreSQL against the pattern, so Sure when indexed
// whole and no term is shorter; and those of bodies not indexed whole,
// through their partial index. TEXT looks in the header and the texts
// apart: a pattern without a line feed is never found across them.
func (s *Store) SearchText(ctx context.Context, account, mailbox string, terms []store.TextTerm, within store.UIDSet) ([]store.TextHit, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	args := []any{account, name}
	var conds []string
	all := true
	for _, t := range terms {
		v := strings.ToLower(t.Value)
		if utf8.RuneCountInString(v) < store.MinTextTerm {
			all = false
			continue
		}
		for _, w := range wordPatterns(v) {
			args = append(args, w)
			conds = append(conds, `d.words LIKE $`+strconvI(int64(len(args))))
		}
		args = append(args, likePattern(v))
		p := "$" + strconvI(int64(len(args)))
		if t.Field == store.TextBody {
			conds = append(conds, `d.body LIKE `+p)
		} else {
			conds = append(conds, `(d.header LIKE `+p+` OR d.body LIKE `+p+`)`)
		}
	}
	var q string
	if len(conds) == 0 {
		q = `SELECT ` + msgCols + `, 0::smallint AS state FROM messages m WHERE m.mailbox = mb.mid`
	} else {
		q = `SELECT ` + msgCols + `, d.state FROM text_docs d JOIN messages m ON m.blob_id = d.blob_id
			WHERE m.mailbox = mb.mid AND d.state = 1 AND ` + strings.Join(conds, " AND ") + `
			UNION ALL
			SELECT ` + msgCols + `, d.state FROM text_docs d JOIN messages m ON m.blob_id = d.blob_id
			WHERE m.mailbox = mb.mid AND d.state <> 1`
	}
	// Planned for its patterns (the simple protocol sends them as
	// literals), not generically as the pool's statements are
	// (plan_cache_mode, Open): whether to scan the trigram index or the
	// mailbox first depends on them.
	rows, err := s.pool.Query(ctx, inMailboxByUID(q), append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		return nil, wrapErr("search text", err)
	}
	defer rows.Close()
	var hits []store.TextHit
	found := false
	for rows.Next() {
		found = true
		var mid *int64
		var state *int16
		var r msgRow
		if err := rows.Scan(append(append([]any{&mid}, r.dest()...), &state)...); err != nil {
			return nil, wrapErr("search text", err)
		}
		if mid == nil {
			return nil, errorf("search text: mailbox %q: %w", name, store.ErrNoMailbox)
		}
		if r.uid == nil {
			continue
		}
		msg := r.message()
		if within.Contains(msg.UID) {
			hits = append(hits, store.TextHit{Message: msg, Sure: all && *state == textWhole})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("search text", err)
	}
	if !found {
		return nil, errorf("search text: account %q: %w", account, store.ErrNotFound)
	}
	return hits, nil
}

// reindexBatch is how many bodies ReindexText reads before it writes
// their entries in one transaction.
const reindexBatch = 64

// ReindexText rebuilds the full-text entries of the bodies of account's
// messages (every account's when account is ""): each is read again and
// its entry replaced, a batch at a time, while the store serves. It
// returns how many bodies were read. Messages stored before the index
// existed (schema version 4) are found by every search until this ran.
func (s *Store) ReindexText(ctx context.Context, account string) (int, error) {
	if err := s.checkOpen(ctx); err != nil {
		return 0, err
	}
	q := `SELECT DISTINCT blob_id FROM messages ORDER BY 1`
	var args []any
	if account != "" {
		var exists bool
		if err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM accounts WHERE id = $1)`, account).Scan(&exists); err != nil {
			return 0, wrapErr("reindex text", err)
		}
		if !exists {
			return 0, errorf("reindex text: account %q: %w", account, store.ErrNotFound)
		}
		q = `SELECT DISTINCT m.blob_id FROM messages m JOIN mailboxes b ON b.id = m.mailbox WHERE b.account = $1 ORDER BY 1`
		args = append(args, account)
	}
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return 0, wrapErr("reindex text", err)
	}
	blobs, err := pgx.CollectRows(rows, pgx.RowTo[int64])
	if err != nil {
		return 0, wrapErr("reindex text", err)
	}
	for i := 0; i < len(blobs); i += reindexBatch {
		entries, err := s.readEntries(ctx, blobs[i:min(i+reindexBatch, len(blobs))])
		if err != nil {
			return i, wrapErr("reindex text", err)
		}
		rows := &textRows{}
		for _, e := range entries {
			rows.add(e.blob, e.text)
		}
		// Only bodies a message still names get an entry; one whose
		// last message goes meanwhile loses it with release, or with
		// the body when it is swept.
		_, err = s.pool.Exec(ctx, `INSERT INTO text_docs (blob_id, state, header, body, words)
			SELECT t.* FROM unnest($1::bigint[], $2::smallint[], $3::text[], $4::text[], $5::text[]) t(blob_id, state, header, body, words)
			WHERE EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = t.blob_id)
			ON CONFLICT (blob_id) DO UPDATE SET state = EXCLUDED.state, header = EXCLUDED.header, body = EXCLUDED.body, words = EXCLUDED.words`,
			rows.args()...)
		if err != nil {
			return i, wrapErr("reindex text", err)
		}
	}
	return len(blobs), nil
}

// readText reads the entry of body id; nil if the body is gone.
func (s *Store) readText(ctx context.Context, id int64) (*bodyText, error) {
	rc, err := s.blobs.open(ctx, s.pool, id)
	if errors.Is(err, errBlobGone) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	cr := &errReader{r: rc}
	d := textdoc.Read(cr)
	if errors.Is(cr.err, errBlobGone) {
		return nil, nil
	}
	if cr.err != nil {
		return nil, cr.err
	}
	t := docText(d)
	return &t, nil
}

// errReader keeps the first error other than io.EOF its reader gave,
// which msgtext would take for the end of the message.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

// inMailboxByUID wraps q, a query of mailbox mb.mid's rows, so that one
// statement also tells a missing account ($1) or mailbox ($2) apart: the
// first column is the mailbox's id (NULL when there is none), and a
// mailbox without matching rows gives one row of NULLs. Rows by UID.
func inMailboxByUID(q string) string {
	return `SELECT mb.mid, x.* FROM
		(SELECT (SELECT id FROM mailboxes WHERE account = $1 AND name = $2) AS mid FROM accounts WHERE id = $1) mb
		LEFT JOIN LATERAL (` + q + `) x ON true ORDER BY x.uid`
}

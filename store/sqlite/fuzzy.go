package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/mailyard/mailyard/internal/fuzzy"
	"github.com/mailyard/mailyard/store"
)

// migrationV9 adds the word index of fuzzy search (store.FuzzySearcher,
// IMAP SEARCH FUZZY, RFC 6203). text_fts (migrationV5) holds trigrams,
// which find substrings but give no words to compare; text_words holds
// the same texts split into words by FTS5's unicode61 tokenizer (letters
// and digits of every script, case-folded, diacritics kept, as
// internal/fuzzy splits them), with the same rowid (text_docs.id).
// text_words_row lists its vocabulary, the words fuzzy search compares
// a query word to, and text_words_inst where each word occurs. Entries
// of blobs indexed before version 9 have words = 0: their messages are
// candidates of every fuzzy search, read by the caller, until
// `ReindexText` reads them.
const migrationV9 = `
ALTER TABLE text_docs ADD COLUMN words INTEGER NOT NULL DEFAULT 0;
CREATE INDEX text_docs_nowords ON text_docs(blob_id) WHERE words = 0;
CREATE VIRTUAL TABLE text_words USING fts5(header, body, content='', contentless_delete=1,
	tokenize='unicode61 remove_diacritics 0');
CREATE VIRTUAL TABLE text_words_row USING fts5vocab(text_words, 'row');
CREATE VIRTUAL TABLE text_words_inst USING fts5vocab(text_words, 'instance');
`

// Bounds of one query word's look-up in the vocabulary: at most
// maxVocabScan words under its first letter are compared with it, and
// the maxExpansions best matches are looked for in the messages.
const (
	maxVocabScan  = 100000
	maxExpansions = 64
)

var _ store.FuzzySearcher = (*Store)(nil)

// SearchFuzzy implements store.FuzzySearcher through the word index,
// in one read transaction: each query word is compared (fuzzy.Compare:
// exact, prefix, or one or two edits after the same first letter) with
// the indexed words under its first letter; where the best of those
// occur in the mailbox's texts is read from text_words_inst; a message
// whose text holds a match of every word is Sure, scored by
// fuzzy.Score per term and averaged over the terms. Messages whose text
// is not indexed whole, or not in the word index, are returned not
// Sure. A term without words matches no message (store.FuzzySearcher):
// once the mailbox is found, nothing else is read.
func (s *Store) SearchFuzzy(ctx context.Context, account, mailbox string, terms []store.TextTerm, within store.UIDSet) ([]store.FuzzyHit, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	q, err := newFuzzyQuery(terms)
	if err != nil {
		return nil, err
	}
	var hits []store.FuzzyHit
	err = s.readTx(ctx, func(tx *rtx) error {
		if err := readMainFirst(ctx, tx); err != nil {
			return err
		}
		m, err := getMailbox(ctx, tx, account, name)
		if err != nil || q.none {
			return err
		}
		if err := q.expand(ctx, tx); err != nil {
			return err
		}
		scores, err := q.score(ctx, tx, m.ID)
		if err != nil {
			return err
		}
		hits, err = fuzzyHits(ctx, tx, m.ID, scores, within)
		return err
	})
	return hits, wrapErr("search fuzzy", err)
}

// fuzzyQuery is one SearchFuzzy: its terms' words and, once expanded,
// the indexed words that match each of them.
type fuzzyQuery struct {
	terms []fuzzyTerm
	words []string                          // distinct, in order of appearance
	exp   map[string]map[string]fuzzy.Match // query word -> indexed word -> match
	none  bool                              // a term has no words: no message matches
}

type fuzzyTerm struct {
	cols  uint8 // colHeader, colBody
	words []string
}

const (
	colHeader = 1 << iota
	colBody
)

func newFuzzyQuery(terms []store.TextTerm) (*fuzzyQuery, error) {
	q := &fuzzyQuery{exp: make(map[string]map[string]fuzzy.Match)}
	n := 0
	for _, t := range terms {
		ft := fuzzyTerm{cols: colBody, words: fuzzy.Words(t.Value)}
		if t.Field == store.TextAll {
			ft.cols |= colHeader
		}
		n += len(ft.words)
		q.none = q.none || len(ft.words) == 0
		for _, w := range ft.words {
			if _, ok := q.exp[w]; !ok {
				q.exp[w] = make(map[string]fuzzy.Match)
				q.words = append(q.words, w)
			}
		}
		q.terms = append(q.terms, ft)
	}
	if n > fuzzy.MaxWords {
		return nil, fmt.Errorf("sqlite: search fuzzy: %d words, at most %d: %w", n, fuzzy.MaxWords, store.ErrInvalid)
	}
	return q, nil
}

// expand finds the indexed words that match each query word.
func (q *fuzzyQuery) expand(ctx context.Context, tx *rtx) error {
	for _, w := range q.words {
		first, _ := utf8.DecodeRuneInString(w)
		rows, err := tx.QueryContext(ctx, "SELECT term FROM text_words_row WHERE term >= ? AND term < ? LIMIT ?",
			string(first), string(first+1), maxVocabScan)
		if err != nil {
			return err
		}
		type cand struct {
			term string
			m    fuzzy.Match
		}
		var found []cand
		for rows.Next() {
			var t string
			if err := rows.Scan(&t); err != nil {
				rows.Close()
				return err
			}
			if m := fuzzy.Compare(w, t); m != fuzzy.None {
				found = append(found, cand{t, m})
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		// The best matches first, then the shorter words.
		slices.SortStableFunc(found, func(a, b cand) int {
			if a.m != b.m {
				return int(b.m) - int(a.m)
			}
			return len(a.term) - len(b.term)
		})
		for _, c := range found[:min(len(found), maxExpansions)] {
			q.exp[w][c.term] = c.m
		}
	}
	return nil
}

// score returns the relevancy of every document (text_docs.id) of
// mailbox whose text, indexed whole in words, matches every term.
func (q *fuzzyQuery) score(ctx context.Context, tx *rtx, mailbox int64) (map[int64]int, error) {
	var all []any
	seen := make(map[string]bool)
	for _, w := range q.words {
		for t := range q.exp[w] {
			if !seen[t] {
				seen[t] = true
				all = append(all, t)
			}
		}
	}
	// Which of the matching words each document holds, in which column.
	docs := make(map[int64]map[string]uint8)
	if len(all) > 0 {
		rows, err := tx.QueryContext(ctx, `SELECT DISTINCT i.doc, i.term, i.col FROM text_words_inst i
			JOIN text_docs d ON d.id = i.doc
			WHERE i.term IN (?`+strings.Repeat(", ?", len(all)-1)+`) AND d.state = 1 AND d.words = 1
			AND EXISTS (SELECT 1 FROM messages m WHERE m.blob_id = d.blob_id AND m.mailbox = ?)`,
			append(all, mailbox)...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var doc int64
			var term, col string
			if err := rows.Scan(&doc, &term, &col); err != nil {
				rows.Close()
				return nil, err
			}
			if docs[doc] == nil {
				docs[doc] = make(map[string]uint8)
			}
			if col == "header" {
				docs[doc][term] |= colHeader
			} else {
				docs[doc][term] |= colBody
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
	}
	if len(q.words) == 0 {
		return nil, nil // no terms: every message, see fuzzyHits
	}
	scores := make(map[int64]int)
	for doc, has := range docs {
		if s, ok := q.docScore(has); ok {
			scores[doc] = s
		}
	}
	return scores, nil
}

// docScore scores a document holding the words has (with their
// columns): ok if it matches every term.
func (q *fuzzyQuery) docScore(has map[string]uint8) (score int, ok bool) {
	sum := 0
	for _, t := range q.terms {
		best := make([]fuzzy.Match, len(t.words))
		for i, w := range t.words {
			for term, m := range q.exp[w] {
				if has[term]&t.cols != 0 && m > best[i] {
					best[i] = m
				}
			}
		}
		if !fuzzy.Matched(best) {
			return 0, false
		}
		sum += fuzzy.Score(best)
	}
	if len(q.terms) == 0 {
		return 100, true
	}
	return max(1, (sum+len(q.terms)/2)/len(q.terms)), true
}

// fuzzyHits lists the messages of mailbox in within whose document has
// a score (Sure), or is not held whole in the word index (not Sure).
// scores nil: every message matches, with score 100.
func fuzzyHits(ctx context.Context, tx *rtx, mailbox int64, scores map[int64]int, within store.UIDSet) ([]store.FuzzyHit, error) {
	cols := "m." + strings.ReplaceAll(messageCols, ", ", ", m.")
	rows, err := tx.QueryContext(ctx, `SELECT `+cols+`, ifnull(d.id, 0), ifnull(d.state, 0), ifnull(d.words, 0)
		FROM messages m LEFT JOIN text_docs d ON d.blob_id = m.blob_id
		WHERE m.mailbox = ? ORDER BY m.uid`, mailbox)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var hits []store.FuzzyHit
	z := zones{}
	for rows.Next() {
		var doc int64
		var state, words int
		msg, err := scanMessage(withDoc{rows, &doc, &state, &words}, z)
		if err != nil {
			return nil, err
		}
		if !within.Contains(msg.UID) {
			continue
		}
		switch {
		case scores == nil:
			hits = append(hits, store.FuzzyHit{Message: msg, Sure: true, Score: 100})
		case state != textWhole || words != 1:
			hits = append(hits, store.FuzzyHit{Message: msg})
		default:
			if s, ok := scores[doc]; ok {
				hits = append(hits, store.FuzzyHit{Message: msg, Sure: true, Score: s})
			}
		}
	}
	return hits, rows.Err()
}

// withDoc scans a message row followed by its text_docs id, state and
// words.
type withDoc struct {
	rows               *sql.Rows
	doc                *int64
	state, wordIndexed *int
}

func (w withDoc) Scan(dest ...any) error {
	return w.rows.Scan(append(dest, w.doc, w.state, w.wordIndexed)...)
}

package postgres

import (
	"context"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/internal/fuzzy"
	"github.com/mailyard/mailyard/store"
)

var _ store.FuzzySearcher = (*Store)(nil)

// SearchFuzzy implements store.FuzzySearcher with pg_trgm's word
// similarity (migrations/0004_fulltext.sql created the extension), in
// one statement: a query word (as fuzzy.Words splits it) matches where
// word_similarity(word, text) exceeds pg_trgm.word_similarity_threshold
// (0.6 unless the server is set otherwise): some extent of the text's
// words shares at least that share of the word's trigrams ("mesage" and
// "accomodation" find "message" and "accommodation", and "meet" finds
// "meeting"). The condition is the %> operator, on the header and the
// body, and first on the entry's distinct words (textWords), which the
// GIN trigram index answers: an extent of words that are neighbours in
// the text but not in the words column (two words that together look
// like the query word) no longer matches. The score of a term is the mean similarity of its words, times 100,
// averaged over the terms. Bodies not indexed whole are returned not
// Sure. A term without words matches no message (store.FuzzySearcher):
// the statement then only finds the mailbox.
func (s *Store) SearchFuzzy(ctx context.Context, account, mailbox string, terms []store.TextTerm, within store.UIDSet) ([]store.FuzzyHit, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return nil, err
	}
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	args := []any{account, name}
	var conds, scores []string
	words, none := 0, false
	for _, t := range terms {
		ws := fuzzy.Words(t.Value)
		words += len(ws)
		if words > fuzzy.MaxWords {
			return nil, errorf("search fuzzy: more than %d words: %w", fuzzy.MaxWords, store.ErrInvalid)
		}
		if len(ws) == 0 {
			none = true
			continue
		}
		var sims []string
		for _, w := range ws {
			args = append(args, w)
			p := "$" + strconvI(int64(len(args))) + "::text"
			// The index on words narrows (migrations/0010_text_words.sql);
			// header and body decide, as the score does.
			conds = append(conds, "d.words %> "+p)
			if t.Field == store.TextBody {
				conds = append(conds, "d.body %> "+p)
				sims = append(sims, "word_similarity("+p+", d.body)")
			} else {
				conds = append(conds, "(d.header %> "+p+" OR d.body %> "+p+")")
				sims = append(sims, "greatest(word_similarity("+p+", d.header), word_similarity("+p+", d.body))")
			}
		}
		scores = append(scores, "("+strings.Join(sims, " + ")+") / "+strconvI(int64(len(sims))))
	}
	score := "100"
	if len(scores) > 0 {
		score = "greatest(1, round(100 * (" + strings.Join(scores, " + ") + ") / " + strconvI(int64(len(scores))) + "))::int"
	}
	var q string
	switch {
	case none:
		q, args = `SELECT `+msgCols+`, 1::smallint AS state, 100 AS score FROM messages m WHERE false`, args[:2]
	case len(conds) == 0:
		q = `SELECT ` + msgCols + `, 1::smallint AS state, 100 AS score FROM messages m WHERE m.mailbox = mb.mid`
	default:
		q = `SELECT ` + msgCols + `, d.state, ` + score + ` AS score FROM text_docs d JOIN messages m ON m.blob_id = d.blob_id
			WHERE m.mailbox = mb.mid AND d.state = 1 AND ` + strings.Join(conds, " AND ") + `
			UNION ALL
			SELECT ` + msgCols + `, d.state, 0 FROM text_docs d JOIN messages m ON m.blob_id = d.blob_id
			WHERE m.mailbox = mb.mid AND d.state <> 1`
	}
	// Planned for its patterns (the simple protocol sends them as
	// literals), not generically as the pool's statements are
	// (plan_cache_mode, Open): whether to scan the trigram index or the
	// mailbox first depends on them.
	rows, err := s.pool.Query(ctx, inMailboxByUID(q), append([]any{pgx.QueryExecModeSimpleProtocol}, args...)...)
	if err != nil {
		return nil, wrapErr("search fuzzy", err)
	}
	defer rows.Close()
	var hits []store.FuzzyHit
	found := false
	for rows.Next() {
		found = true
		var mid *int64
		var state *int16
		var sc *int32
		var r msgRow
		if err := rows.Scan(append(append([]any{&mid}, r.dest()...), &state, &sc)...); err != nil {
			return nil, wrapErr("search fuzzy", err)
		}
		if mid == nil {
			return nil, errorf("search fuzzy: mailbox %q: %w", name, store.ErrNoMailbox)
		}
		if r.uid == nil {
			continue
		}
		msg := r.message()
		if !within.Contains(msg.UID) {
			continue
		}
		h := store.FuzzyHit{Message: msg}
		if *state == textWhole {
			h.Sure, h.Score = true, int(*sc)
		}
		hits = append(hits, h)
	}
	if err := rows.Err(); err != nil {
		return nil, wrapErr("search fuzzy", err)
	}
	if !found {
		return nil, errorf("search fuzzy: account %q: %w", account, store.ErrNotFound)
	}
	return hits, nil
}

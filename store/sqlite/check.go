package sqlite

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/mailyard/mailyard/store"
)

// referencedBlobs returns every blob the index references with the size
// its rows record (-1 if rows disagree).
func referencedBlobs(ctx context.Context, q querier) (map[string]int64, error) {
	rows, err := q.QueryContext(ctx, "SELECT blob_id, min(size), max(size) FROM messages GROUP BY blob_id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make(map[string]int64)
	for rows.Next() {
		var id string
		var lo, hi int64
		if err := rows.Scan(&id, &lo, &hi); err != nil {
			return nil, err
		}
		if lo != hi {
			lo = -1
		}
		out[id] = lo
	}
	return out, rows.Err()
}

// sweep removes temporary files and orphan blobs. Open calls it only while
// it holds the exclusive lock, so no other process is between writing a
// blob and committing its rows.
func (s *Store) sweep(ctx context.Context) error {
	tmps, err := s.blobs.clearTmp()
	if err != nil {
		return err
	}
	files, err := s.blobs.list(ctx)
	if err != nil {
		return err
	}
	refs, err := referencedBlobs(ctx, s.rdb)
	if err != nil {
		return fmt.Errorf("sqlite: sweep: %w", err)
	}
	orphans := 0
	for id := range files {
		if _, ok := refs[id]; ok {
			continue
		}
		if err := s.blobs.remove(id); err != nil {
			return err
		}
		orphans++
	}
	if tmps > 0 || orphans > 0 {
		s.log.Info("removed crash leftovers", "dir", s.dir, "temp_files", tmps, "orphan_blobs", orphans)
	}
	return nil
}

// Check implements store.Checker. It reads a snapshot of the index and
// the blob tree and changes nothing. It verifies the full-text index
// too: FTS5's own integrity check of both of its tables, and that every
// entry mail.db marks indexed has its rows in textindex.db. Blobs this process is writing are not
// orphans; writes by another process that has the store open at the same
// time can still show up as transient problems, which Check re-verifies
// once before reporting.
func (s *Store) Check(ctx context.Context) ([]store.Problem, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// List files first: a blob committed after the listing is then
	// simply not seen, instead of looking like an orphan.
	files, err := s.blobs.list(ctx)
	if err != nil {
		return nil, err
	}
	problems := []store.Problem{}
	var missing []string
	err = s.readTx(ctx, func(tx *rtx) error {
		refs, err := referencedBlobs(ctx, tx)
		if err != nil {
			return err
		}
		for id, size := range files {
			if _, ok := refs[id]; ok || s.blobs.inUse(id) {
				continue
			}
			if _, err := s.blobs.stat(id); err != nil {
				continue // deleted meanwhile with its last row
			}
			problems = append(problems, store.Problem{Kind: "orphan-blob", Detail: fmt.Sprintf("blob %s (%d bytes) has no index row", id, size)})
		}
		for id, want := range refs {
			got, ok := files[id]
			if !ok {
				info, err := s.blobs.stat(id)
				if err != nil {
					missing = append(missing, id)
					continue
				}
				got = info.Size()
			}
			if want < 0 {
				problems = append(problems, store.Problem{Kind: "size-mismatch", Detail: fmt.Sprintf("rows sharing blob %s record different sizes", id)})
			} else if got != want {
				problems = append(problems, store.Problem{Kind: "size-mismatch", Detail: fmt.Sprintf("blob %s has %d bytes, index says %d", id, got, want)})
			}
		}
		if err := checkCounters(ctx, tx.Tx, &problems); err != nil {
			return err
		}
		return checkTextEntries(ctx, tx, &problems)
	})
	if err != nil {
		return nil, wrapErr("check", err)
	}
	if err := s.checkTextIndex(ctx, &problems); err != nil {
		return nil, wrapErr("check", err)
	}
	// A blob can vanish after the snapshot together with its last row;
	// only a blob still referenced now is missing.
	for _, id := range missing {
		var n int
		if err := s.rdb.QueryRowContext(ctx, "SELECT EXISTS (SELECT 1 FROM messages WHERE blob_id = ?)", id).Scan(&n); err != nil {
			return nil, fmt.Errorf("sqlite: check: %w", err)
		}
		if _, err := s.blobs.stat(id); n != 0 && err != nil {
			problems = append(problems, store.Problem{Kind: "missing-blob", Detail: fmt.Sprintf("blob %s is referenced but missing: %v", id, err)})
		}
	}
	return problems, nil
}

func checkCounters(ctx context.Context, tx *sql.Tx, problems *[]store.Problem) error {
	queries := []struct {
		q      string
		format string
	}{
		{`SELECT b.account, b.name, b.uidnext, max(u.uid) FROM mailboxes b
			JOIN (SELECT mailbox, uid FROM messages UNION ALL SELECT mailbox, uid FROM expunged) u ON u.mailbox = b.id
			GROUP BY b.id HAVING max(u.uid) >= b.uidnext`,
			"account %s mailbox %q: UIDNEXT %d <= highest UID %d"},
		{`SELECT b.account, b.name, b.highest_modseq, max(u.modseq) FROM mailboxes b
			JOIN (SELECT mailbox, modseq FROM messages UNION ALL SELECT mailbox, modseq FROM expunged) u ON u.mailbox = b.id
			GROUP BY b.id HAVING max(u.modseq) > b.highest_modseq`,
			"account %s mailbox %q: HIGHESTMODSEQ %d < MODSEQ %d in use"},
		{`SELECT a.id, '', a.used_bytes, coalesce(sum(m.size), 0) FROM accounts a
			LEFT JOIN mailboxes b ON b.account = a.id LEFT JOIN messages m ON m.mailbox = b.id
			GROUP BY a.id HAVING a.used_bytes <> coalesce(sum(m.size), 0)`,
			"account %s%s: usage says %d bytes, messages hold %d"},
		{`SELECT a.id, '', a.used_messages, count(m.uid) FROM accounts a
			LEFT JOIN mailboxes b ON b.account = a.id LEFT JOIN messages m ON m.mailbox = b.id
			GROUP BY a.id HAVING a.used_messages <> count(m.uid)`,
			"account %s%s: usage says %d messages, there are %d"},
	}
	queries = append(queries, statusCounterChecks...)
	for _, q := range queries {
		rows, err := tx.QueryContext(ctx, q.q)
		if err != nil {
			return err
		}
		for rows.Next() {
			var acct, name string
			var a, b int64
			if err := rows.Scan(&acct, &name, &a, &b); err != nil {
				rows.Close()
				return err
			}
			*problems = append(*problems, store.Problem{Kind: "counter", Detail: fmt.Sprintf(q.format, acct, name, a, b)})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
	}
	return nil
}

// checkTextEntries reports entries marked indexed in mail.db whose rows
// textindex.db lacks: by the order of the index writer's commits
// (textindex.go) that is never transient, so it is damage (a
// textindex.db replaced by an older copy, say). Reopening the store
// repairs it (reconcileTextIndex).
func checkTextEntries(ctx context.Context, tx *rtx, problems *[]store.Problem) error {
	var n int64
	if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM main.text_docs d
		WHERE d.state != ? AND NOT EXISTS (SELECT 1 FROM ti.text_ix x WHERE x.id = d.id)`, textMissing).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		*problems = append(*problems, store.Problem{Kind: "text-index",
			Detail: fmt.Sprintf("%d full-text entries are marked indexed but %s lacks them (reopening the store indexes them again)", n, textIndexFile)})
	}
	return nil
}

// checkTextIndex runs FTS5's integrity check of text_fts and text_words
// as the index writer. The check writes nothing; it is an INSERT of a
// command only by FTS5's syntax.
func (s *Store) checkTextIndex(ctx context.Context, problems *[]store.Problem) error {
	var bad []string
	err := s.writeTextIndex(ctx, func() error {
		for _, table := range []string{"text_fts", "text_words"} {
			if _, err := s.tix.conn.ExecContext(ctx, "INSERT INTO "+table+" ("+table+") VALUES ('integrity-check')"); err != nil {
				if ctx.Err() != nil {
					return err
				}
				bad = append(bad, fmt.Sprintf("%s: %v", table, err))
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, b := range bad {
		*problems = append(*problems, store.Problem{Kind: "text-index", Detail: fmt.Sprintf("%s: FTS5 integrity check: %s", textIndexFile, b)})
	}
	return nil
}

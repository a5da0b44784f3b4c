package sqlite

import (
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

var _ queue.Store = (*Store)(nil)

// queueCols are the columns of queue_recipients in the order scanQueued
// reads them.
const queueCols = `msg, idx, sender, address, transport, next_hop, tls, utf8, size, created, next_attempt,
	attempts, held, warned, last_error, remote_mta, lease_owner, lease_until`

// nanos is t as stored: Unix nanoseconds, 0 for the zero time.
func nanos(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixNano()
}

// fromNanosOrZero reverses nanos.
func fromNanosOrZero(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return fromNanos(n)
}

// scanQueued reads the rows of a query over queueCols.
func scanQueued(rows *sql.Rows) ([]queue.Recipient, error) {
	defer rows.Close()
	out := []queue.Recipient{}
	for rows.Next() {
		var r queue.Recipient
		var tls int
		var created, next, until int64
		if err := rows.Scan(&r.Msg, &r.Index, &r.From, &r.Address, &r.Transport, &r.NextHop, &tls, &r.UTF8, &r.Size,
			&created, &next, &r.Attempts, &r.Held, &r.Warned, &r.LastError, &r.RemoteMTA, &r.LeaseOwner, &until); err != nil {
			return nil, err
		}
		r.TLS = routing.TLSPolicy(tls)
		r.Created, r.Next, r.LeaseUntil = fromNanosOrZero(created), fromNanosOrZero(next), fromNanosOrZero(until)
		out = append(out, r)
	}
	return out, rows.Err()
}

// EnqueueRecipients implements queue.Store: the rows go in one
// savepoint of a group commit, durable when it returns.
func (s *Store) EnqueueRecipients(ctx context.Context, rcpts []queue.Recipient) error {
	if err := queue.CheckRecipients(rcpts); err != nil {
		return fmt.Errorf("sqlite: %w", err)
	}
	return wrapErr("enqueue recipients", s.write(ctx, func(t *wtx) error {
		for _, r := range rcpts {
			res, err := t.exec(`INSERT INTO queue_recipients (msg, idx, sender, address, transport, next_hop, tls, utf8, size,
				created, next_attempt, attempts, held, warned, last_error, remote_mta)
				VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`,
				r.Msg, r.Index, r.From, r.Address, r.Transport, r.NextHop, int(r.TLS), r.UTF8, r.Size,
				nanos(r.Created), nanos(r.Next), r.Attempts, r.Held, r.Warned, r.LastError, r.RemoteMTA)
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil || n == 0 {
				return fmt.Errorf("recipient %s/%d: %w", r.Msg, r.Index, queue.ErrDuplicate)
			}
		}
		return nil
	}))
}

// ClaimRecipients implements queue.Store: one UPDATE ... RETURNING over
// the due rows the queue_due index finds; the single writer makes it
// exclusive.
func (s *Store) ClaimRecipients(ctx context.Context, owner string, now, until time.Time, limit int) ([]queue.Recipient, error) {
	if limit <= 0 {
		limit = -1
	}
	var out []queue.Recipient
	err := s.write(ctx, func(t *wtx) error {
		rows, err := t.query(`UPDATE queue_recipients SET lease_owner = ?, lease_until = ?
			WHERE (msg, idx) IN (SELECT msg, idx FROM queue_recipients
				WHERE held = 0 AND next_attempt <= ? AND lease_until <= ? ORDER BY next_attempt LIMIT ?)
			RETURNING `+queueCols, owner, nanos(until), nanos(now), nanos(now), limit)
		if err != nil {
			return err
		}
		out, err = scanQueued(rows)
		return err
	})
	if err != nil {
		return nil, wrapErr("claim recipients", err)
	}
	slices.SortFunc(out, func(a, b queue.Recipient) int { return a.Next.Compare(b.Next) })
	return out, nil
}

// RenewLeases implements queue.Store: one UPDATE per claim, in one
// write.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []queue.Claim, until time.Time) ([]queue.RecipientKey, error) {
	var out []queue.RecipientKey
	err := s.write(ctx, func(t *wtx) error {
		out = out[:0]
		for _, c := range claims {
			res, err := t.exec(`UPDATE queue_recipients SET lease_until = ?
				WHERE msg = ? AND idx = ? AND lease_owner = ? AND lease_until = ?`, nanos(until), c.Msg, c.Index, owner, nanos(c.Until))
			if err != nil {
				return err
			}
			if n, err := res.RowsAffected(); err != nil {
				return err
			} else if n > 0 {
				out = append(out, c.RecipientKey)
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("renew leases", err)
	}
	return out, nil
}

// SettleRecipients implements queue.Store.
func (s *Store) SettleRecipients(ctx context.Context, owner string, outcomes []queue.Outcome) ([]string, error) {
	var emptied []string
	err := s.write(ctx, func(t *wtx) error {
		emptied = emptied[:0]
		touched := map[string]bool{}
		for _, o := range outcomes {
			n, err := settleOne(t, owner, o)
			if err != nil {
				return err
			}
			if n > 0 {
				touched[o.Msg] = true
			}
		}
		for msg := range touched {
			var one int
			err := t.queryRow("SELECT 1 FROM queue_recipients WHERE msg = ? LIMIT 1", msg).Scan(&one)
			if err == sql.ErrNoRows {
				emptied = append(emptied, msg)
			} else if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, wrapErr("settle recipients", err)
	}
	slices.Sort(emptied)
	return emptied, nil
}

// settleOne applies one outcome to a row owner leases and returns the
// rows changed (0: gone, or leased by another owner).
func settleOne(t *wtx, owner string, o queue.Outcome) (int64, error) {
	var res sql.Result
	var err error
	if o.Done {
		res, err = t.exec("DELETE FROM queue_recipients WHERE msg = ? AND idx = ? AND lease_owner = ?", o.Msg, o.Index, owner)
	} else {
		res, err = t.exec(`UPDATE queue_recipients SET next_attempt = ?, attempts = ?, warned = ?, last_error = ?, remote_mta = ?,
			lease_owner = '', lease_until = 0 WHERE msg = ? AND idx = ? AND lease_owner = ?`,
			nanos(o.Next), o.Attempts, o.Warned, o.LastError, o.RemoteMTA, o.Msg, o.Index, owner)
	}
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ReleaseLeases implements queue.Store.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	return wrapErr("release leases", s.write(ctx, func(t *wtx) error {
		_, err := t.exec("UPDATE queue_recipients SET lease_owner = '', lease_until = 0 WHERE lease_owner = ?", owner)
		return err
	}))
}

// NextDue implements queue.Store with the queue_due index: the rows it
// passes over are the leased ones, which are in flight and few.
func (s *Store) NextDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	if err := s.checkOpen(); err != nil {
		return time.Time{}, false, err
	}
	var next int64
	err := s.rdb.QueryRowContext(ctx, `SELECT next_attempt FROM queue_recipients
		WHERE held = 0 AND lease_until <= ? ORDER BY next_attempt LIMIT 1`, nanos(now)).Scan(&next)
	if err == sql.ErrNoRows {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, wrapErr("next due", err)
	}
	return fromNanosOrZero(next), true, nil
}

// ListRecipients implements queue.Store.
func (s *Store) ListRecipients(ctx context.Context, after queue.RecipientKey, limit int) ([]queue.Recipient, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		limit = -1
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+queueCols+` FROM queue_recipients
		WHERE (msg, idx) > (?, ?) ORDER BY msg, idx LIMIT ?`, after.Msg, after.Index, limit)
	if err != nil {
		return nil, wrapErr("list recipients", err)
	}
	out, err := scanQueued(rows)
	return out, wrapErr("list recipients", err)
}

// MessageRecipients implements queue.Store.
func (s *Store) MessageRecipients(ctx context.Context, msg string) ([]queue.Recipient, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	rows, err := s.rdb.QueryContext(ctx, `SELECT `+queueCols+` FROM queue_recipients WHERE msg = ? ORDER BY idx`, msg)
	if err != nil {
		return nil, wrapErr("message recipients", err)
	}
	out, err := scanQueued(rows)
	return out, wrapErr("message recipients", err)
}

// UpdateMessage implements queue.Store.
func (s *Store) UpdateMessage(ctx context.Context, msg string, op queue.MessageOp, now time.Time) (int, error) {
	var q string
	args := []any{msg}
	switch op {
	case queue.OpHold:
		q = "UPDATE queue_recipients SET held = 1 WHERE msg = ?"
	case queue.OpRelease:
		q = "UPDATE queue_recipients SET held = 0 WHERE msg = ?"
	case queue.OpRetryNow:
		q, args = "UPDATE queue_recipients SET next_attempt = ? WHERE msg = ?", []any{nanos(now), msg}
	case queue.OpDelete:
		q = "DELETE FROM queue_recipients WHERE msg = ?"
	default:
		return 0, fmt.Errorf("sqlite: %w: unknown queue operation %d", store.ErrInvalid, op)
	}
	var n int64
	err := s.write(ctx, func(t *wtx) error {
		res, err := t.exec(q, args...)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	return int(n), wrapErr("update message", err)
}

// CountRecipients implements queue.Store. It reads every row: the
// metrics call it when they are collected, not the scheduler.
func (s *Store) CountRecipients(ctx context.Context, now time.Time) (queue.Counts, error) {
	var c queue.Counts
	if err := s.checkOpen(); err != nil {
		return c, err
	}
	t := nanos(now)
	var oldest sql.NullInt64
	err := s.rdb.QueryRowContext(ctx, `SELECT
		coalesce(sum(held != 0), 0),
		coalesce(sum(held = 0 AND (next_attempt <= ? OR lease_until > ?)), 0),
		coalesce(sum(held = 0 AND next_attempt > ? AND lease_until <= ?), 0),
		min(created) FROM queue_recipients`, t, t, t, t).Scan(&c.Held, &c.Ready, &c.Deferred, &oldest)
	if err != nil {
		return c, wrapErr("count recipients", err)
	}
	if oldest.Valid {
		c.Oldest = fromNanosOrZero(oldest.Int64)
	}
	return c, nil
}

package postgres

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

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

// fromNanos reverses nanos (in UTC).
func fromNanos(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}

// scanQueued reads the rows of a query over queueCols.
func scanQueued(rows pgx.Rows) ([]queue.Recipient, error) {
	defer rows.Close()
	out := []queue.Recipient{}
	for rows.Next() {
		var r queue.Recipient
		var tls int32
		var created, next, until int64
		if err := rows.Scan(&r.Msg, &r.Index, &r.From, &r.Address, &r.Transport, &r.NextHop, &tls, &r.UTF8, &r.Size,
			&created, &next, &r.Attempts, &r.Held, &r.Warned, &r.LastError, &r.RemoteMTA, &r.LeaseOwner, &until); err != nil {
			return nil, err
		}
		r.TLS = routing.TLSPolicy(tls)
		r.Created, r.Next, r.LeaseUntil = fromNanos(created), fromNanos(next), fromNanos(until)
		out = append(out, r)
	}
	return out, rows.Err()
}

// EnqueueRecipients implements queue.Store: every recipient in one
// INSERT from arrays, all or none.
func (s *Store) EnqueueRecipients(ctx context.Context, rcpts []queue.Recipient) error {
	if err := queue.CheckRecipients(rcpts); err != nil {
		return errorf("%w", err)
	}
	n := len(rcpts)
	var (
		msg, sender, addr, transport, hop, lastErr, mta = make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		idx, tls, attempts                              = make([]int32, n), make([]int32, n), make([]int32, n)
		utf8, held, warned                              = make([]bool, n), make([]bool, n), make([]bool, n)
		size, created, next                             = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	for i, r := range rcpts {
		msg[i], idx[i], sender[i], addr[i], transport[i], hop[i] = r.Msg, int32(r.Index), r.From, r.Address, r.Transport, r.NextHop
		tls[i], utf8[i], size[i], created[i], next[i] = int32(r.TLS), r.UTF8, r.Size, nanos(r.Created), nanos(r.Next)
		attempts[i], held[i], warned[i], lastErr[i], mta[i] = int32(r.Attempts), r.Held, r.Warned, r.LastError, r.RemoteMTA
	}
	err := s.write(ctx, "enqueue recipients", func(w *wtx) error {
		_, err := w.Exec(ctx, `INSERT INTO queue_recipients (msg, idx, sender, address, transport, next_hop, tls, utf8, size,
			created, next_attempt, attempts, held, warned, last_error, remote_mta)
			SELECT * FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::text[], $6::text[], $7::int[], $8::boolean[],
				$9::bigint[], $10::bigint[], $11::bigint[], $12::int[], $13::boolean[], $14::boolean[], $15::text[], $16::text[])`,
			msg, idx, sender, addr, transport, hop, tls, utf8, size, created, next, attempts, held, warned, lastErr, mta)
		if pgCode(err) == codeUniqueViolation {
			return errorf("recipient already queued: %w", queue.ErrDuplicate)
		}
		return err
	})
	return err
}

// ClaimRecipients implements queue.Store: the due rows are selected FOR
// UPDATE SKIP LOCKED, so that nodes claiming at once each get different
// ones, and leased in the same statement.
func (s *Store) ClaimRecipients(ctx context.Context, owner string, now, until time.Time, limit int) ([]queue.Recipient, error) {
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	var out []queue.Recipient
	err := s.write(ctx, "claim recipients", func(w *wtx) error {
		rows, err := w.Query(ctx, `WITH c AS (SELECT msg, idx FROM queue_recipients
				WHERE NOT held AND next_attempt <= $3 AND lease_until <= $3
				ORDER BY next_attempt, msg, idx LIMIT $4 FOR UPDATE SKIP LOCKED)
			UPDATE queue_recipients q SET lease_owner = $1, lease_until = $2 FROM c
			WHERE q.msg = c.msg AND q.idx = c.idx RETURNING `+prefixed("q.", queueCols), owner, nanos(until), nanos(now), lim)
		if err != nil {
			return err
		}
		out, err = scanQueued(rows)
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(out, func(a, b queue.Recipient) int {
		if c := a.Next.Compare(b.Next); c != 0 {
			return c
		}
		if a.Msg != b.Msg {
			if a.Msg < b.Msg {
				return -1
			}
			return 1
		}
		return a.Index - b.Index
	})
	return out, nil
}

// RenewLeases implements queue.Store: one UPDATE over the claims as
// arrays.
func (s *Store) RenewLeases(ctx context.Context, owner string, claims []queue.Claim, until time.Time) ([]queue.RecipientKey, error) {
	msgs, idxs, helds := make([]string, len(claims)), make([]int32, len(claims)), make([]int64, len(claims))
	for i, c := range claims {
		msgs[i], idxs[i], helds[i] = c.Msg, int32(c.Index), nanos(c.Until)
	}
	var out []queue.RecipientKey
	err := s.write(ctx, "renew leases", func(w *wtx) error {
		out = out[:0]
		rows, err := w.Query(ctx, `UPDATE queue_recipients q SET lease_until = $5
			FROM unnest($2::text[], $3::integer[], $4::bigint[]) AS k(msg, idx, held)
			WHERE q.msg = k.msg AND q.idx = k.idx AND q.lease_owner = $1 AND q.lease_until = k.held
			RETURNING q.msg, q.idx`, owner, msgs, idxs, helds, nanos(until))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var k queue.RecipientKey
			var idx int32
			if err := rows.Scan(&k.Msg, &idx); err != nil {
				return err
			}
			k.Index = int(idx)
			out = append(out, k)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, err
	}
	// RETURNING follows the plan's order: give (Msg, Index) order.
	slices.SortFunc(out, func(a, b queue.RecipientKey) int {
		return cmp.Or(strings.Compare(a.Msg, b.Msg), cmp.Compare(a.Index, b.Index))
	})
	return out, nil
}

// SettleRecipients implements queue.Store: the outcomes go in as arrays,
// in one statement for the finished recipients and the retries, after
// one that locks the rows of the messages that lose recipients.
func (s *Store) SettleRecipients(ctx context.Context, owner string, outcomes []queue.Outcome) ([]string, error) {
	var doneMsg, retryMsg, lastErr, mta []string
	var doneIdx, retryIdx, attempts []int32
	var next []int64
	var warned []bool
	for _, o := range outcomes {
		if o.Done {
			doneMsg, doneIdx = append(doneMsg, o.Msg), append(doneIdx, int32(o.Index))
			continue
		}
		retryMsg, retryIdx = append(retryMsg, o.Msg), append(retryIdx, int32(o.Index))
		next, attempts, warned = append(next, nanos(o.Next)), append(attempts, int32(o.Attempts)), append(warned, o.Warned)
		lastErr, mta = append(lastErr, o.LastError), append(mta, o.RemoteMTA)
	}
	var emptied []string
	err := s.write(ctx, "settle recipients", func(w *wtx) error {
		// Lock every row of the messages losing recipients first, so
		// that the statement below starts after any other node's
		// settle of the same messages has committed and sees what is
		// left of them: otherwise two nodes removing a message's last
		// two recipients at once would each see the other's row and
		// neither would report the message emptied.
		if len(doneMsg) > 0 {
			if _, err := w.Exec(ctx, `SELECT 1 FROM queue_recipients WHERE msg = ANY($1) ORDER BY msg, idx FOR UPDATE`, doneMsg); err != nil {
				return err
			}
		}
		rows, err := w.Query(ctx, `WITH d AS (DELETE FROM queue_recipients q USING unnest($2::text[], $3::int[]) o(msg, idx)
				WHERE q.msg = o.msg AND q.idx = o.idx AND q.lease_owner = $1 RETURNING q.msg),
			r AS (UPDATE queue_recipients q SET next_attempt = o.next, attempts = o.attempts, warned = o.warned,
					last_error = o.last_error, remote_mta = o.mta, lease_owner = '', lease_until = 0
				FROM unnest($4::text[], $5::int[], $6::bigint[], $7::int[], $8::boolean[], $9::text[], $10::text[])
					o(msg, idx, next, attempts, warned, last_error, mta)
				WHERE q.msg = o.msg AND q.idx = o.idx AND q.lease_owner = $1 RETURNING q.msg),
			t AS (SELECT msg FROM d UNION SELECT msg FROM r)
			-- The main query sees the rows as they were before d and r:
			-- a message is emptied when d deleted all of them.
			SELECT t.msg FROM t
			WHERE (SELECT count(*) FROM queue_recipients q WHERE q.msg = t.msg) = (SELECT count(*) FROM d WHERE d.msg = t.msg)
			ORDER BY t.msg`,
			owner, doneMsg, doneIdx, retryMsg, retryIdx, next, attempts, warned, lastErr, mta)
		if err != nil {
			return err
		}
		emptied, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, err
	}
	return emptied, nil
}

// ReleaseLeases implements queue.Store.
func (s *Store) ReleaseLeases(ctx context.Context, owner string) error {
	return s.write(ctx, "release leases", func(w *wtx) error {
		_, err := w.Exec(ctx, "UPDATE queue_recipients SET lease_owner = '', lease_until = 0 WHERE lease_owner = $1", owner)
		return err
	})
}

// NextDue implements queue.Store with the queue_due index.
func (s *Store) NextDue(ctx context.Context, now time.Time) (time.Time, bool, error) {
	if err := s.checkOpen(ctx); err != nil {
		return time.Time{}, false, err
	}
	var next int64
	err := s.pool.QueryRow(ctx, `SELECT next_attempt FROM queue_recipients
		WHERE NOT held AND lease_until <= $1 ORDER BY next_attempt LIMIT 1`, nanos(now)).Scan(&next)
	if errors.Is(err, pgx.ErrNoRows) {
		return time.Time{}, false, nil
	}
	if err != nil {
		return time.Time{}, false, wrapErr("next due", err)
	}
	return fromNanos(next), true, nil
}

// ListRecipients implements queue.Store.
func (s *Store) ListRecipients(ctx context.Context, after queue.RecipientKey, limit int) ([]queue.Recipient, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	var lim *int
	if limit > 0 {
		lim = &limit
	}
	rows, err := s.pool.Query(ctx, `SELECT `+queueCols+` FROM queue_recipients
		WHERE (msg, idx) > ($1, $2) ORDER BY msg, idx LIMIT $3`, after.Msg, after.Index, lim)
	if err != nil {
		return nil, wrapErr("list recipients", err)
	}
	out, err := scanQueued(rows)
	return out, wrapErr("list recipients", err)
}

// MessageRecipients implements queue.Store.
func (s *Store) MessageRecipients(ctx context.Context, msg string) ([]queue.Recipient, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT `+queueCols+` FROM queue_recipients WHERE msg = $1 ORDER BY idx`, msg)
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
		q = "UPDATE queue_recipients SET held = true WHERE msg = $1"
	case queue.OpRelease:
		q = "UPDATE queue_recipients SET held = false WHERE msg = $1"
	case queue.OpRetryNow:
		q, args = "UPDATE queue_recipients SET next_attempt = $2 WHERE msg = $1", []any{msg, nanos(now)}
	case queue.OpDelete:
		q = "DELETE FROM queue_recipients WHERE msg = $1"
	default:
		return 0, errorf("%w: unknown queue operation %d", store.ErrInvalid, op)
	}
	var n int64
	err := s.write(ctx, "update message", func(w *wtx) error {
		tag, err := w.Exec(ctx, q, args...)
		n = tag.RowsAffected()
		return err
	})
	return int(n), err
}

// CountRecipients implements queue.Store. It reads every row: the
// metrics call it when they are collected, not the scheduler.
func (s *Store) CountRecipients(ctx context.Context, now time.Time) (queue.Counts, error) {
	var c queue.Counts
	if err := s.checkOpen(ctx); err != nil {
		return c, err
	}
	var oldest *int64
	err := s.pool.QueryRow(ctx, `SELECT
		count(*) FILTER (WHERE held),
		count(*) FILTER (WHERE NOT held AND (next_attempt <= $1 OR lease_until > $1)),
		count(*) FILTER (WHERE NOT held AND next_attempt > $1 AND lease_until <= $1),
		min(created) FROM queue_recipients`, nanos(now)).Scan(&c.Held, &c.Ready, &c.Deferred, &oldest)
	if err != nil {
		return c, wrapErr("count recipients", err)
	}
	if oldest != nil {
		c.Oldest = fromNanos(*oldest)
	}
	return c, nil
}

// prefixed puts p before every name of a comma-separated column list.
func prefixed(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

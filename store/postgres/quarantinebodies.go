package postgres

import (
	"context"
	"io"
	"time"
)

// PutQuarantineBody implements smtp.QuarantineBodies: the bodies of
// messages a milter quarantined, in table quarantine_bodies, so that any
// node releases or deletes what any node held. Chunks are written as
// PutQueueBody writes them; the quarantine's record, committed
// synchronously next, makes them durable before the client's 250.
func (s *Store) PutQuarantineBody(ctx context.Context, id string, r io.Reader) (int64, error) {
	return s.putChunked(ctx, quarantineBodies, id, r)
}

// OpenQuarantineBody implements smtp.QuarantineBodies.
func (s *Store) OpenQuarantineBody(ctx context.Context, id string) (io.ReadCloser, error) {
	return s.openChunked(ctx, quarantineBodies, id)
}

// RemoveQuarantineBody implements smtp.QuarantineBodies.
func (s *Store) RemoveQuarantineBody(ctx context.Context, id string) error {
	return s.removeChunkedCtx(ctx, quarantineBodies, id)
}

// QuarantineBodiesBefore implements smtp.QuarantineBodies: the bodies
// whose last chunk was written before cut.
func (s *Store) QuarantineBodiesBefore(ctx context.Context, cut time.Time) ([]string, error) {
	if err := s.checkOpen(ctx); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT msg FROM quarantine_bodies GROUP BY msg HAVING max(written) < $1 ORDER BY msg`, nanos(cut))
	if err != nil {
		return nil, wrapErr("list quarantine bodies", err)
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, wrapErr("list quarantine bodies", err)
		}
		ids = append(ids, id)
	}
	return ids, wrapErr("list quarantine bodies", rows.Err())
}

package queue

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/mailyard/mailyard/store"
)

// Entry is one recipient of one queued message, as List shows it.
type Entry struct {
	// ID is the message id; every recipient of a message shares it.
	ID        string
	From      string // "" for the null sender
	Recipient string
	// NextHop is the hop in routing.NextHop syntax ("" is MX of the
	// recipient's domain), TLS its policy, Route the route that chose it.
	NextHop string
	TLS     string
	Route   string
	Size    int64
	Created time.Time
	// Next is when the next attempt is due (in the past: now).
	Next     time.Time
	Attempts int
	Held     bool
	// LastError is the last temporary failure ("" before the first).
	LastError string
}

// ErrNoSuchMessage is returned by the admin operations for an id with no
// queued recipient.
var ErrNoSuchMessage = errors.New("queue: no such queued message")

// List returns every queued recipient, oldest message first. It reads the
// records, so it shows the queue of any process on the same store.
func (q *Queue) List(ctx context.Context) ([]Entry, error) {
	recs, err := q.listAll(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Entry, 0, len(recs))
	for _, r := range recs {
		var e queueEntry
		if err := store.DecodeJSON(r, &e); err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		out = append(out, Entry{
			ID: e.Msg, From: e.From, Recipient: e.Rcpt, NextHop: e.Hop.NextHop, TLS: e.Hop.TLS.String(),
			Route: e.Hop.Route, Size: e.Size, Created: e.Created, Next: e.Next, Attempts: e.Attempts,
			Held: e.Held, LastError: e.LastError,
		})
	}
	return out, nil
}

// Hold stops delivery attempts for message id until Release. An attempt
// already in progress finishes.
func (q *Queue) Hold(ctx context.Context, id string) error {
	return q.modify(ctx, id, func(e *queueEntry) { e.Held = true })
}

// Release lets a held message be delivered again, at its next attempt time.
func (q *Queue) Release(ctx context.Context, id string) error {
	return q.modify(ctx, id, func(e *queueEntry) { e.Held = false })
}

// RetryNow makes message id due now (held recipients stay held).
func (q *Queue) RetryNow(ctx context.Context, id string) error {
	now := q.opts.Now()
	return q.modify(ctx, id, func(e *queueEntry) { e.Next = now })
}

// Delete removes message id from the queue without a DSN. An attempt
// already in progress may still deliver it.
func (q *Queue) Delete(ctx context.Context, id string) error {
	if err := q.modify(ctx, id, nil); err != nil {
		return err
	}
	if err := os.Remove(q.path(id)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// modify applies fn to every record of message id, or deletes them when
// fn is nil, and updates this process's view.
func (q *Queue) modify(ctx context.Context, id string, fn func(*queueEntry)) error {
	if id == "" || strings.ContainsRune(id, '/') {
		return fmt.Errorf("%w: %q", ErrNoSuchMessage, id)
	}
	changed := map[string]queueEntry{}
	err := q.opts.Records.UpdateRecords(ctx, func(tx store.RecordTx) error {
		clear(changed)
		recs, err := tx.List(Namespace, id+"/", 0)
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !strings.HasPrefix(r.Key, id+"/") {
				break
			}
			if fn == nil {
				if err := tx.Delete(Namespace, r.Key); err != nil {
					return err
				}
				changed[r.Key] = queueEntry{}
				continue
			}
			var e queueEntry
			if err := store.DecodeJSON(r, &e); err != nil {
				return err
			}
			fn(&e)
			if err := store.PutJSON(tx, Namespace, r.Key, e, r.Version); err != nil {
				return err
			}
			changed[r.Key] = e
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if len(changed) == 0 {
		return fmt.Errorf("%w: %q", ErrNoSuchMessage, id)
	}
	q.mu.Lock()
	q.gen++
	for k, e := range changed {
		it := q.entries[k]
		switch {
		case it == nil:
		case fn == nil && !it.busy:
			delete(q.entries, k)
		case fn != nil && !it.busy:
			it.e.Held, it.e.Next = e.Held, e.Next
		case fn != nil:
			// A worker reads a busy item's entry without the lock: it
			// is left alone, and apply takes the hold from the record
			// when the attempt is recorded.
		}
	}
	q.mu.Unlock()
	q.kick()
	return nil
}

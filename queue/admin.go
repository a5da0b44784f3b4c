package queue

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Entry is one recipient of one queued message, as List shows it.
type Entry struct {
	// ID is the message id; every recipient of a message shares it.
	ID        string
	From      string // "" for the null sender
	Recipient string
	// NextHop is the hop routing gave at enqueue time, in routing.NextHop
	// syntax ("" is MX of the recipient's domain), TLS its policy; Route
	// names the transport whose current hop is used at delivery.
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

func entryOf(r Recipient) Entry {
	return Entry{
		ID: r.Msg, From: r.From, Recipient: r.Address, NextHop: r.NextHop, TLS: r.TLS.String(),
		Route: r.Transport, Size: r.Size, Created: r.Created, Next: r.Next, Attempts: r.Attempts,
		Held: r.Held, LastError: r.LastError,
	}
}

// ErrNoSuchMessage is returned by the admin operations for an id with no
// queued recipient.
var ErrNoSuchMessage = errors.New("queue: no such queued message")

// listPage is how many recipients List reads per Store call.
const listPage = 1000

// List returns every queued recipient, oldest message first. It reads the
// Store, so it shows the queue of any process on the same store; it holds
// the whole queue in memory, which is what its caller prints.
func (q *Queue) List(ctx context.Context) ([]Entry, error) {
	var out []Entry
	var after RecipientKey
	for {
		rs, err := q.opts.Store.ListRecipients(ctx, after, listPage)
		if err != nil {
			return nil, fmt.Errorf("queue: %w", err)
		}
		for _, r := range rs {
			out = append(out, entryOf(r))
		}
		if len(rs) < listPage {
			return out, nil
		}
		after = rs[len(rs)-1].Key()
	}
}

// Recipients returns the queued recipients of message id.
func (q *Queue) Recipients(ctx context.Context, id string) ([]Entry, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchMessage, id)
	}
	rs, err := q.opts.Store.MessageRecipients(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	if len(rs) == 0 {
		return nil, fmt.Errorf("%w: %q", ErrNoSuchMessage, id)
	}
	out := make([]Entry, len(rs))
	for i, r := range rs {
		out[i] = entryOf(r)
	}
	return out, nil
}

// Hold stops delivery attempts for message id until Release. An attempt
// already in progress finishes.
func (q *Queue) Hold(ctx context.Context, id string) error { return q.modify(ctx, id, OpHold) }

// Release lets a held message be delivered again, at its next attempt time.
func (q *Queue) Release(ctx context.Context, id string) error { return q.modify(ctx, id, OpRelease) }

// RetryNow makes message id due now (held recipients stay held).
func (q *Queue) RetryNow(ctx context.Context, id string) error { return q.modify(ctx, id, OpRetryNow) }

// Delete removes message id from the queue without a DSN. An attempt
// already in progress may still deliver it.
func (q *Queue) Delete(ctx context.Context, id string) error {
	if err := q.modify(ctx, id, OpDelete); err != nil {
		return err
	}
	if err := q.bodies.RemoveQueueBody(ctx, id); err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	return nil
}

// modify applies op to every recipient of message id and wakes the
// scheduler.
func (q *Queue) modify(ctx context.Context, id string, op MessageOp) error {
	if !validID(id) {
		return fmt.Errorf("%w: %q", ErrNoSuchMessage, id)
	}
	n, err := q.opts.Store.UpdateMessage(ctx, id, op, q.opts.Now())
	if err != nil {
		return fmt.Errorf("queue: %w", err)
	}
	if n == 0 {
		return fmt.Errorf("%w: %q", ErrNoSuchMessage, id)
	}
	q.kick()
	return nil
}

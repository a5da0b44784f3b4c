package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/mailyard/mailyard/routing"
)

// ErrNotSpooled is returned by Commit for an id that Spool did not return,
// or that was committed or aborted already.
var ErrNotSpooled = errors.New("queue: no such spooled body")

// Spool writes body to a new file in Dir and fsyncs the file and the
// directory, or to the shared [Bodies] (step 1 of [Queue]); it returns
// the body's id. Nothing is queued until [Queue.Commit]; [Queue.Abort]
// removes the body. The SMTP server spools a message once and delivers
// its local copies from the spooled body ([Queue.OpenSpooled]) before
// it commits, so that the client's data is read once. Close waits for
// spooled bodies to be committed or aborted.
func (q *Queue) Spool(ctx context.Context, body io.Reader) (string, error) {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		return "", ErrClosed
	}
	q.spooling.Add(1)
	q.mu.Unlock()
	id := newMessageID(q.opts.Now())
	n, err := q.bodies.PutQueueBody(ctx, id, body)
	if err != nil {
		q.removeBody(id)
		q.spooling.Done()
		return "", fmt.Errorf("queue: %w", err)
	}
	q.mu.Lock()
	q.spooled[id] = n
	q.mu.Unlock()
	return id, nil
}

// OpenSpooled returns spooled (or queued) body id from its start.
func (q *Queue) OpenSpooled(id string) (io.ReadCloser, error) {
	if !validID(id) {
		return nil, fmt.Errorf("%w: %q", ErrNotSpooled, id)
	}
	f, err := q.bodies.OpenQueueBody(context.Background(), id)
	if err != nil {
		return nil, fmt.Errorf("queue: %w", err)
	}
	return f, nil
}

// removeBody removes body id, logging a failure (a body left behind
// without recipients is swept at the next Start).
func (q *Queue) removeBody(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := q.bodies.RemoveQueueBody(ctx, id); err != nil {
		q.log.Warn("queue body not removed", "queue_id", id, "err", err)
	}
}

// Abort removes spooled body id. It does nothing for an id that is not
// spooled (committed, aborted, or unknown), so a caller can defer it.
func (q *Queue) Abort(id string) {
	if _, ok := q.takeSpooled(id); !ok {
		return
	}
	q.removeBody(id)
	q.spooling.Done()
}

// takeSpooled removes id from the spooled bodies and returns its size.
func (q *Queue) takeSpooled(id string) (int64, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	n, ok := q.spooled[id]
	delete(q.spooled, id)
	return n, ok
}

// Commit queues spooled body id from sender from ("" for the null sender)
// for the relay targets (their Address, Hop and Rule are used), durably
// (step 2 of [Queue]): when it returns nil, the message survives a crash.
// Each recipient keeps the name of the routing entry that chose its hop
// (routing.TransportOf), not the hop's credentials. utf8 says the message
// needs SMTPUTF8 (RFC 6531). On error the body is removed.
func (q *Queue) Commit(ctx context.Context, id, from string, utf8 bool, targets []routing.Decision) error {
	size, ok := q.takeSpooled(id)
	if !ok {
		return fmt.Errorf("%w: %q", ErrNotSpooled, id)
	}
	defer q.spooling.Done()
	if err := checkTargets(targets); err != nil {
		q.removeBody(id)
		return err
	}
	now := q.opts.Now()
	rcpts := make([]Recipient, len(targets))
	for i, d := range targets {
		rcpts[i] = Recipient{
			Msg: id, Index: i, From: from, Address: d.Address,
			Transport: routing.TransportOf(d), NextHop: d.Hop.NextHop.String(), TLS: d.Hop.TLS,
			UTF8: utf8 || !isASCII(from) || !isASCII(d.Address), Size: size, Created: now, Next: now,
		}
	}
	if err := q.opts.Store.EnqueueRecipients(ctx, rcpts); err != nil {
		q.removeBody(id)
		return fmt.Errorf("queue: commit: %w", err)
	}
	q.kick()
	return nil
}

// validID reports whether id can name a body file: message ids are
// lower-case letters and digits.
func validID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

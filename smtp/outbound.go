package smtp

import (
	"context"
	"io"

	"github.com/mailyard/mailyard/routing"
)

// Outbound takes the recipients routing relays to other hosts
// ([Options].Queue, [QuarantineOptions].Queue). *queue.Queue satisfies
// it; the server needs no more of the queue than this.
//
// The server hands a message over in two steps so that the client's data
// is read once and nothing is acknowledged before it is durable (steps 6
// and 7 of the package documentation): Spool writes the body durably,
// the local copies are delivered from OpenSpooled, and Commit queues it
// for the remote recipients before the 250. A failure before Commit
// calls Abort, which must do nothing for an id already committed or
// aborted (the server defers it).
type Outbound interface {
	// Spool writes body durably and returns its id; nothing is queued
	// yet.
	Spool(ctx context.Context, body io.Reader) (id string, err error)
	// OpenSpooled returns spooled body id from its start.
	OpenSpooled(id string) (io.ReadCloser, error)
	// Commit queues spooled body id for targets (Relay decisions) from
	// sender from ("" for the null sender), durably; utf8 says the
	// message needs SMTPUTF8 (RFC 6531).
	Commit(ctx context.Context, id, from string, utf8 bool, targets []routing.Decision) error
	// Abort drops spooled body id.
	Abort(id string)
}

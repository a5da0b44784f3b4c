// Package batchappend holds the checks every backend's
// store.BatchAppender.AppendBatch makes before it writes anything, so
// that a batch is refused for the same reasons, and its messages get
// the same flags and dates, whatever the backend.
package batchappend

import (
	"time"

	"github.com/mailyard/mailyard/store"
)

// Prepare checks a batch of msgs for the mailbox named mailbox: the
// name (store.CleanMailboxName, whose clean form it returns) and every
// message's flags (store.NormalizeFlags: ErrInvalid for a bad one). It
// returns one store.Message per message, in order, holding only its
// normalised flags and its INTERNALDATE: the date given, or now() for
// a zero one (Append's rule), as stored turns it (the backend's
// INTERNALDATE with its zone kept). The rest is the backend's to fill.
func Prepare(mailbox string, msgs []store.AppendMessage, now func() time.Time, stored func(time.Time) time.Time) (string, []store.Message, error) {
	name, err := store.CleanMailboxName(mailbox)
	if err != nil {
		return "", nil, err
	}
	out := make([]store.Message, len(msgs))
	for i, m := range msgs {
		if out[i].Flags, err = store.NormalizeFlags(m.Options.Flags); err != nil {
			return "", nil, err
		}
		date := m.Options.InternalDate
		if date.IsZero() {
			date = now()
		}
		out[i].InternalDate = stored(date)
	}
	return name, out, nil
}

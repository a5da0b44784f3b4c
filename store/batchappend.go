package store

import (
	"context"
	"io"
)

// AppendMessage is one message of an [BatchAppender.AppendBatch]: its
// body and the options [Messages.Append] would take for it.
type AppendMessage struct {
	Body    io.Reader
	Options AppendOptions
}

// BatchAppender is an optional interface of a backend: it appends many
// messages to one mailbox in one durable write, for bulk copies
// (migrations) where a write per message costs more than the messages.
// It is not part of [Store]; find it by type assertion and fall back to
// [Messages.Append] one message at a time. store/sqlite, store/postgres
// and store/memstore implement it.
type BatchAppender interface {
	// AppendBatch appends msgs to the mailbox, all or none: it returns
	// once every body is durable and every row committed, the messages
	// with ascending UIDs in the order given and one MODSEQ, as Append
	// returns each. Each message is what Append would make of it (flags
	// normalised, INTERNALDATE zero meaning now, its zone kept). Quota is
	// checked for the batch as a whole (*QuotaError, nothing appended);
	// an invalid flag is ErrInvalid, a missing mailbox ErrNoMailbox, a
	// body's read error that error, each with nothing appended.
	// Subscribers of the feed see one ChangeMessagesAdded with every
	// UID. An empty batch does nothing and returns nil.
	AppendBatch(ctx context.Context, account, mailbox string, msgs []AppendMessage) ([]Message, error)
}

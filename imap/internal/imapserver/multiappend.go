package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"github.com/emersion/go-imap/v2"
)

// mailyard: MULTIAPPEND (RFC 3502).

// SessionMultiAppend is an IMAP session which supports MULTIAPPEND. The
// connection appends each message of the command with Session.Append as
// it arrives; when one of them fails (a NO from the store, a literal
// over the limit, a syntax error, the connection's end), it calls
// UndoAppend with the UIDs appended before, so that none is kept (RFC
// 3502 §6.3.11), and answers with the failure.
type SessionMultiAppend interface {
	Session

	// UndoAppend removes the messages with the given UIDs, appended by
	// the failed command, from mailbox.
	UndoAppend(mailbox string, uids []imap.UID) error
}

// undoAppend removes what an APPEND that fails with err appended before
// and returns err.
func (c *Conn) undoAppend(multi SessionMultiAppend, mailbox string, uids []imap.UID, err error) error {
	if multi == nil || len(uids) == 0 {
		return err
	}
	if uerr := multi.UndoAppend(mailbox, uids); uerr != nil {
		c.log.Error("imapserver: MULTIAPPEND failed and its messages could not be removed", "mailbox", mailbox, "uids", len(uids), "err", uerr)
	}
	return err
}

package imapserver

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func (c *Conn) handleMove(dec *imapwire.Decoder, numKind NumKind) error {
	numSet, dest, err := readCopy(numKind, dec)
	if err != nil {
		return err
	}
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	session, ok := c.session.(SessionMove)
	if !ok {
		return newClientBugError("MOVE is not supported")
	}
	w := &MoveWriter{conn: c}
	if err := session.Move(w, numSet, dest); err != nil {
		return err
	}
	// mailyard: with QRESYNC, the new HIGHESTMODSEQ of the source mailbox
	// in the tagged OK, as for EXPUNGE (RFC 7162 §3.2.7).
	if !w.expunged {
		return nil
	}
	return c.okWithHighestModSeq()
}

// MoveWriter writes responses for the MOVE command.
//
// Servers must first call WriteCopyData once, then call WriteExpunge any
// number of times.
type MoveWriter struct {
	conn     *Conn
	expunged bool // mailyard: something was reported
}

// WriteCopyData writes the untagged COPYUID response for a MOVE command.
func (w *MoveWriter) WriteCopyData(data *imap.CopyData) error {
	return w.conn.writeCopyOK("", data)
}

// WriteExpunge writes an EXPUNGE response for a MOVE command.
func (w *MoveWriter) WriteExpunge(seqNum uint32) error {
	w.expunged = true
	return w.conn.writeExpunge(seqNum)
}

// WriteVanished reports the moved messages as expunged by UID, as VANISHED
// does in place of EXPUNGE once QRESYNC is enabled (RFC 7162 §3.2.10.2).
//
// mailyard: added for QRESYNC.
func (w *MoveWriter) WriteVanished(uids imap.UIDSet) error {
	w.expunged = true
	return w.conn.writeVanished(uids, false)
}

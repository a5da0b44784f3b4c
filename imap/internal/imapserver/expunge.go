package imapserver

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func (c *Conn) handleExpunge(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	return c.expunge(nil)
}

func (c *Conn) handleUIDExpunge(dec *imapwire.Decoder) error {
	var uidSet imap.UIDSet
	if !dec.ExpectSP() || !dec.ExpectUIDSet(&uidSet) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	return c.expunge(&uidSet)
}

func (c *Conn) expunge(uids *imap.UIDSet) error {
	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}
	w := &ExpungeWriter{conn: c}
	if err := c.session.Expunge(w, uids); err != nil {
		return err
	}
	// mailyard: RFC 7162 §3.2.7, §3.2.9: with QRESYNC, an EXPUNGE that
	// removed messages reports the new HIGHESTMODSEQ in its tagged OK.
	if !w.expunged {
		return nil
	}
	return c.okWithHighestModSeq()
}

// okWithHighestModSeq ends a command that expunged messages with OK
// [HIGHESTMODSEQ n] once QRESYNC is enabled (RFC 7162 §3.2.7), n being
// taken after the poll that follows the command.
//
// mailyard: added for QRESYNC.
func (c *Conn) okWithHighestModSeq() error {
	sess, ok := c.session.(SessionCondStore)
	if !ok || !c.Enabled(imap.CapQResync) {
		return nil
	}
	return &okAfterPoll{code: func() imap.ResponseCode {
		return imap.ResponseCode(fmt.Sprintf("HIGHESTMODSEQ %d", sess.HighestModSeq()))
	}}
}

func (c *Conn) writeExpunge(seqNum uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Number(seqNum).SP().Atom("EXPUNGE")
	return enc.CRLF()
}

// ExpungeWriter writes EXPUNGE updates.
type ExpungeWriter struct {
	conn     *Conn
	expunged bool // mailyard: something was reported
}

// WriteExpunge notifies the client that the message with the provided sequence
// number has been deleted.
func (w *ExpungeWriter) WriteExpunge(seqNum uint32) error {
	if w.conn == nil {
		return nil
	}
	w.expunged = true
	return w.conn.writeExpunge(seqNum)
}

// WriteVanished reports expunged messages by UID, as VANISHED does in
// place of EXPUNGE once QRESYNC is enabled (RFC 7162 §3.2.10.2).
//
// mailyard: added for QRESYNC.
func (w *ExpungeWriter) WriteVanished(uids imap.UIDSet) error {
	if w.conn == nil {
		return nil
	}
	w.expunged = true
	return w.conn.writeVanished(uids, false)
}

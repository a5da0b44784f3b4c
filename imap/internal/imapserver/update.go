package imapserver

import (
	"fmt"

	"github.com/emersion/go-imap/v2"
)

// UpdateWriter writes status updates.
type UpdateWriter struct {
	conn         *Conn
	allowExpunge bool
}

// WriteExpunge writes an EXPUNGE response.
func (w *UpdateWriter) WriteExpunge(seqNum uint32) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: EXPUNGE updates are not allowed in this context")
	}
	return w.conn.writeExpunge(seqNum)
}

// WriteNumMessages writes an EXISTS response.
func (w *UpdateWriter) WriteNumMessages(n uint32) error {
	return w.conn.writeExists(n)
}

// WriteNumRecent writes an RECENT response (not used in IMAP4rev2, will be ignored).
func (w *UpdateWriter) WriteNumRecent(n uint32) error {
	if w.conn.enabled.Has(imap.CapIMAP4rev2) || !w.conn.server.options.caps().Has(imap.CapIMAP4rev1) {
		return nil
	}
	return w.conn.writeObsoleteRecent(n)
}

// WriteMailboxFlags writes a FLAGS response and, unless permanent is
// nil, an untagged OK [PERMANENTFLAGS ...]: the mailbox's flags changed
// (a new keyword is in use).
//
// mailyard: PERMANENTFLAGS added, as Dovecot sends both.
func (w *UpdateWriter) WriteMailboxFlags(flags, permanent []imap.Flag) error {
	return w.conn.writeMailboxFlags(flags, permanent)
}

// WriteMailboxFlags is UpdateWriter.WriteMailboxFlags for STORE: a
// keyword new to the mailbox is announced before the FETCH responses
// that carry it (RFC 9051 §7.3.5).
//
// mailyard: not in upstream, whose STORE leaves FLAGS to the poll after
// its FETCH responses.
func (w *FetchWriter) WriteMailboxFlags(flags, permanent []imap.Flag) error {
	return w.conn.writeMailboxFlags(flags, permanent)
}

func (c *Conn) writeMailboxFlags(flags, permanent []imap.Flag) error {
	if err := c.writeFlags(flags); err != nil {
		return err
	}
	if permanent == nil {
		return nil
	}
	return c.writePermanentFlags(permanent)
}

// WriteMessageFlags writes a FETCH response with FLAGS, and the UID and
// MODSEQ unless they are 0.
//
// mailyard: modSeq added for CONDSTORE (RFC 7162 §3.1: once enabled, with
// every FLAGS).
func (w *UpdateWriter) WriteMessageFlags(seqNum uint32, uid imap.UID, flags []imap.Flag, modSeq uint64) error {
	fetchWriter := &FetchWriter{conn: w.conn}
	respWriter := fetchWriter.CreateMessage(seqNum)
	if uid != 0 {
		respWriter.WriteUID(uid)
	}
	respWriter.WriteFlags(flags)
	if modSeq != 0 {
		respWriter.WriteModSeq(modSeq)
	}
	return respWriter.Close()
}

// mailyard: CONDSTORE and QRESYNC (RFC 7162).

// WriteVanished writes a VANISHED response (RFC 7162 §3.2.10.2), which
// replaces EXPUNGE once QRESYNC is enabled: the messages are removed and
// the sequence numbers of those after them shift down.
func (w *UpdateWriter) WriteVanished(uids imap.UIDSet) error {
	if !w.allowExpunge {
		return fmt.Errorf("imapserver: VANISHED updates are not allowed in this context")
	}
	return w.conn.writeVanished(uids, false)
}

// WriteVanishedEarlier writes a VANISHED (EARLIER) response (RFC 7162
// §3.2.10.1): messages expunged before, which the client may still have
// cached; sequence numbers do not change.
func (w *UpdateWriter) WriteVanishedEarlier(uids imap.UIDSet) error {
	return w.conn.writeVanished(uids, true)
}

func (c *Conn) writeVanished(uids imap.UIDSet, earlier bool) error {
	if len(uids) == 0 {
		return nil
	}
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("VANISHED").SP()
	if earlier {
		enc.Atom("(EARLIER)").SP()
	}
	enc.NumSet(uids)
	return enc.CRLF()
}

// WriteHighestModSeq writes an untagged OK [HIGHESTMODSEQ n] (RFC 7162
// §3.1.2.1, §3.2).
func (w *UpdateWriter) WriteHighestModSeq(modSeq uint64) error {
	return w.conn.writeHighestModSeqValue(modSeq)
}

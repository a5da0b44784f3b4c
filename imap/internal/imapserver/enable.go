package imapserver

import (
	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
)

func (c *Conn) handleEnable(dec *imapwire.Decoder) error {
	var requested []imap.Cap
	for dec.SP() {
		cap, err := proto.ExpectCap(dec)
		if err != nil {
			return err
		}
		requested = append(requested, cap)
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}

	var enabled []imap.Cap
	for _, req := range requested {
		switch req {
		case imap.CapIMAP4rev2, imap.CapUTF8Accept:
			enabled = append(enabled, req)
		case imap.CapCondStore, imap.CapQResync: // mailyard: RFC 7162 §3.1, §3.2.3
			if c.condStoreAvailable() {
				enabled = append(enabled, req)
			}
		}
	}

	c.mutex.Lock()
	hadCondStore := c.enabled.Has(imap.CapCondStore)
	for _, e := range enabled {
		c.enabled[e] = struct{}{}
	}
	newCondStore := !hadCondStore && c.enabled.Has(imap.CapCondStore)
	c.mutex.Unlock()

	enc := newResponseEncoder(c)
	enc.Atom("*").SP().Atom("ENABLED")
	for _, c := range enabled {
		enc.SP().Atom(string(c))
	}
	err := enc.CRLF()
	enc.end()
	if err != nil {
		return err
	}
	// mailyard: ENABLE CONDSTORE (or QRESYNC) is a CONDSTORE enabling
	// command; issued with a mailbox selected, it tells the client the
	// HIGHESTMODSEQ it would have got from SELECT (RFC 7162 §3.1).
	if newCondStore && c.state == imap.ConnStateSelected {
		return c.writeHighestModSeq()
	}
	return nil
}

// mailyard: the rest of this file is CONDSTORE/QRESYNC (RFC 7162) state.

// Enabled reports whether the client has enabled cap on this connection,
// by ENABLE (RFC 5161) or, for CONDSTORE, by any CONDSTORE enabling command
// (RFC 7162 §3.1). QRESYNC implies CONDSTORE.
func (c *Conn) Enabled(cap imap.Cap) bool {
	c.mutex.Lock()
	defer c.mutex.Unlock()
	return c.enabled.Has(cap)
}

// condStoreAvailable reports whether the server announces CONDSTORE (or
// QRESYNC) and the session implements it.
func (c *Conn) condStoreAvailable() bool {
	if _, ok := c.session.(SessionCondStore); !ok {
		return false
	}
	caps := c.server.options.caps()
	return caps.Has(imap.CapCondStore)
}

// enableCondStore records a CONDSTORE enabling command (RFC 7162 §3.1:
// SELECT/EXAMINE (CONDSTORE), FETCH MODSEQ or CHANGEDSINCE, STORE
// UNCHANGEDSINCE, SEARCH MODSEQ). From then on every FETCH response with
// FLAGS carries MODSEQ. The first one issued with a mailbox selected also
// reports the mailbox's HIGHESTMODSEQ, as SELECT would have.
func (c *Conn) enableCondStore() error {
	if !c.condStoreAvailable() {
		return newClientBugError("CONDSTORE is not supported")
	}
	c.mutex.Lock()
	had := c.enabled.Has(imap.CapCondStore)
	c.enabled[imap.CapCondStore] = struct{}{}
	c.mutex.Unlock()
	if had || c.state != imap.ConnStateSelected {
		return nil
	}
	return c.writeHighestModSeq()
}

// writeHighestModSeq writes the untagged OK [HIGHESTMODSEQ n] of the
// selected mailbox (RFC 7162 §3.1.2.1).
func (c *Conn) writeHighestModSeq() error {
	sess, ok := c.session.(SessionCondStore)
	if !ok {
		return nil
	}
	return c.writeHighestModSeqValue(sess.HighestModSeq())
}

func (c *Conn) writeHighestModSeqValue(modSeq uint64) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("HIGHESTMODSEQ").SP().ModSeq(modSeq).Special(']')
	enc.SP().Text("Highest")
	return enc.CRLF()
}

// maxModSeq is the largest mod-sequence-value (RFC 7162 §7: an unsigned
// 63-bit integer).
const maxModSeq = 1<<63 - 1

// expectNonZeroModSeq reads a mod-sequence-value, which unlike
// mod-sequence-valzer cannot be 0 (RFC 7162 §7: QRESYNC and CHANGEDSINCE).
func expectNonZeroModSeq(dec *imapwire.Decoder, ptr *uint64) error {
	if err := expectModSeq(dec, ptr); err != nil {
		return err
	}
	if *ptr == 0 {
		return newClientBugError("mod-sequence value must be at least 1")
	}
	return nil
}

// expectModSeq reads a mod-sequence-value or mod-sequence-valzer.
func expectModSeq(dec *imapwire.Decoder, ptr *uint64) error {
	if !dec.ExpectModSeq(ptr) {
		return dec.Err()
	}
	if *ptr > maxModSeq {
		return newClientBugError("mod-sequence value out of range")
	}
	return nil
}

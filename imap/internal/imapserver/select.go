package imapserver

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func (c *Conn) handleSelect(tag string, dec *imapwire.Decoder, readOnly bool) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) {
		return dec.Err()
	}
	// mailyard: select parameters (RFC 4466 §2.1): CONDSTORE and QRESYNC
	// (RFC 7162 §3.1.8, §3.2.5).
	var params selectParams
	if dec.SP() {
		if err := readSelectParams(dec, &params); err != nil {
			return err
		}
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	// mailyard: SELECT (CONDSTORE) is a CONDSTORE enabling command (RFC
	// 7162 §3.1.8).
	if params.condStore || params.qresync != nil {
		if !c.condStoreAvailable() {
			return newClientBugError("CONDSTORE is not supported")
		}
		// RFC 7162 §3.2.5: QRESYNC only after ENABLE QRESYNC.
		if params.qresync != nil && !c.Enabled(imap.CapQResync) {
			return newClientBugError("QRESYNC must be enabled first")
		}
		// SELECT reports HIGHESTMODSEQ itself, below.
		c.mutex.Lock()
		c.enabled[imap.CapCondStore] = struct{}{}
		c.mutex.Unlock()
	}

	if c.state == imap.ConnStateSelected {
		if err := c.session.Unselect(); err != nil {
			return err
		}
		c.state = imap.ConnStateAuthenticated
		err := c.writeStatusResp("", &imap.StatusResponse{
			Type: imap.StatusResponseTypeOK,
			Code: "CLOSED",
			Text: "Previous mailbox is now closed",
		})
		if err != nil {
			return err
		}
	}

	options := imap.SelectOptions{ReadOnly: readOnly, CondStore: params.condStore || params.qresync != nil}
	data, err := c.session.Select(mailbox, &options)
	if err != nil {
		return err
	}
	if data == nil {
		return errNoData("SELECT") // mailyard: upstream dereferenced nil
	}

	if err := c.writeExists(data.NumMessages); err != nil {
		return err
	}
	if !c.enabled.Has(imap.CapIMAP4rev2) && c.server.options.caps().Has(imap.CapIMAP4rev1) {
		if err := c.writeObsoleteRecent(data.NumRecent); err != nil {
			return err
		}
		if data.FirstUnseenSeqNum != 0 {
			if err := c.writeObsoleteUnseen(data.FirstUnseenSeqNum); err != nil {
				return err
			}
		}
	}
	if err := c.writeUIDValidity(data.UIDValidity); err != nil {
		return err
	}
	if err := c.writeUIDNext(data.UIDNext); err != nil {
		return err
	}
	if err := c.writeFlags(data.Flags); err != nil {
		return err
	}
	if err := c.writePermanentFlags(data.PermanentFlags); err != nil {
		return err
	}
	if data.List != nil {
		if err := c.writeList(data.List); err != nil {
			return err
		}
	}
	// mailyard: RFC 8474, see msgext.go.
	if err := c.writeSelectedMailboxID(mailbox); err != nil {
		_ = c.session.Unselect() // no mailbox is selected after a failed SELECT
		return err
	}

	c.state = imap.ConnStateSelected
	// TODO: forbid write commands in read-only mode

	// mailyard: RFC 7162 §3.1.2.1, §3.2.5.1.
	if c.Enabled(imap.CapCondStore) {
		if err := c.writeHighestModSeqValue(data.HighestModSeq); err != nil {
			return err
		}
	}
	if qr := params.qresync; qr != nil && qr.UIDValidity == data.UIDValidity {
		// A different UIDVALIDITY: the client's cache is void, and the
		// rest of the parameter is ignored (RFC 7162 §3.2.5).
		w := &UpdateWriter{conn: c, allowExpunge: true}
		if err := c.session.(SessionCondStore).QResync(w, qr); err != nil {
			// A failed SELECT leaves no mailbox selected (RFC 9051
			// §6.3.2).
			_ = c.session.Unselect()
			c.state = imap.ConnStateAuthenticated
			return err
		}
	}

	var (
		cmdName string
		code    imap.ResponseCode
	)
	if readOnly {
		cmdName = "EXAMINE"
		code = "READ-ONLY"
	} else {
		cmdName = "SELECT"
		code = "READ-WRITE"
	}
	return c.writeStatusResp(tag, &imap.StatusResponse{
		Type: imap.StatusResponseTypeOK,
		Code: code,
		Text: fmt.Sprintf("%v completed", cmdName),
	})
}

func (c *Conn) handleUnselect(dec *imapwire.Decoder, expunge bool) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}

	if expunge {
		w := &ExpungeWriter{}
		if err := c.session.Expunge(w, nil); err != nil {
			return err
		}
	}

	if err := c.session.Unselect(); err != nil {
		return err
	}

	c.state = imap.ConnStateAuthenticated
	return nil
}

func (c *Conn) writeExists(numMessages uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return enc.Atom("*").SP().Number(numMessages).SP().Atom("EXISTS").CRLF()
}

func (c *Conn) writeObsoleteRecent(n uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	return enc.Atom("*").SP().Number(n).SP().Atom("RECENT").CRLF()
}

func (c *Conn) writeObsoleteUnseen(n uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("UNSEEN").SP().Number(n).Special(']')
	enc.SP().Text("First unseen message")
	return enc.CRLF()
}

func (c *Conn) writeUIDValidity(uidValidity uint32) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("UIDVALIDITY").SP().Number(uidValidity).Special(']')
	enc.SP().Text("UIDs valid")
	return enc.CRLF()
}

func (c *Conn) writeUIDNext(uidNext imap.UID) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("UIDNEXT").SP().UID(uidNext).Special(']')
	enc.SP().Text("Predicted next UID")
	return enc.CRLF()
}

func (c *Conn) writeFlags(flags []imap.Flag) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("FLAGS").SP().List(len(flags), func(i int) {
		enc.Flag(flags[i])
	})
	return enc.CRLF()
}

func (c *Conn) writePermanentFlags(flags []imap.Flag) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("OK").SP()
	enc.Special('[').Atom("PERMANENTFLAGS").SP().List(len(flags), func(i int) {
		enc.Flag(flags[i])
	}).Special(']')
	enc.SP().Text("Permanent flags")
	return enc.CRLF()
}

// mailyard: the rest of this file parses select parameters.

type selectParams struct {
	condStore bool
	qresync   *QResyncParams
}

// readSelectParams reads the parenthesized select-param list (RFC 4466
// §2.1; RFC 7162 §7):
//
//	select-param =/ "CONDSTORE" / "QRESYNC" SP "(" uidvalidity SP
//	                mod-sequence-value [SP known-uids] [SP seq-match-data] ")"
func readSelectParams(dec *imapwire.Decoder, params *selectParams) error {
	n := 0
	err := dec.ExpectList(func() error {
		n++
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CONDSTORE":
			params.condStore = true
		case "QRESYNC":
			if params.qresync != nil {
				return newClientBugError("QRESYNC given twice")
			}
			qr, err := readQResyncParam(dec)
			if err != nil {
				return err
			}
			params.qresync = qr
		default:
			return newClientBugError("Unknown SELECT parameter")
		}
		return nil
	})
	if err == nil && n == 0 {
		err = newClientBugError("Empty SELECT parameter list")
	}
	return err
}

func readQResyncParam(dec *imapwire.Decoder) (*QResyncParams, error) {
	var qr QResyncParams
	if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectNumber(&qr.UIDValidity) || !dec.ExpectSP() {
		return nil, dec.Err()
	}
	if qr.UIDValidity == 0 {
		return nil, newClientBugError("Invalid UIDVALIDITY in QRESYNC")
	}
	if err := expectNonZeroModSeq(dec, &qr.ModSeq); err != nil {
		return nil, err
	}
	if dec.SP() {
		seqMatch := dec.Special('(')
		if !seqMatch {
			if !dec.ExpectUIDSet(&qr.KnownUIDs) {
				return nil, dec.Err()
			}
			if qr.KnownUIDs.Dynamic() {
				return nil, newClientBugError("\"*\" is not allowed in known-uids")
			}
			if dec.SP() {
				if !dec.ExpectSpecial('(') {
					return nil, dec.Err()
				}
				seqMatch = true
			}
		}
		if seqMatch {
			var seqs imap.NumSet
			if !dec.ExpectNumSet(imapwire.NumKindSeq, &seqs) || !dec.ExpectSP() || !dec.ExpectUIDSet(&qr.SeqMatchUIDs) || !dec.ExpectSpecial(')') {
				return nil, dec.Err()
			}
			var ok bool
			if qr.SeqMatchSeqs, ok = seqs.(imap.SeqSet); !ok {
				return nil, newClientBugError("Invalid seq-match-data")
			}
			// RFC 7162 §3.2.5.2: pairwise, so of the same size.
			if qr.SeqMatchSeqs.Dynamic() || qr.SeqMatchUIDs.Dynamic() ||
				setSize(qr.SeqMatchSeqs) != setSize(imap.SeqSet(uidRanges(qr.SeqMatchUIDs))) {
				return nil, newClientBugError("Invalid seq-match-data: the two sets differ in size or use \"*\"")
			}
		}
	}
	if !dec.ExpectSpecial(')') {
		return nil, dec.Err()
	}
	return &qr, nil
}

// setSize is the number of values in a set without "*".
func setSize(s imap.SeqSet) uint64 {
	var n uint64
	for _, r := range s {
		lo, hi := min(r.Start, r.Stop), max(r.Start, r.Stop)
		n += uint64(hi-lo) + 1
	}
	return n
}

func uidRanges(s imap.UIDSet) []imap.SeqRange {
	out := make([]imap.SeqRange, len(s))
	for i, r := range s {
		out[i] = imap.SeqRange{Start: uint32(r.Start), Stop: uint32(r.Stop)}
	}
	return out
}

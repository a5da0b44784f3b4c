package imapserver

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func (c *Conn) handleStatus(dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}

	var options imap.StatusOptions
	var ext statusExtra // mailyard: items of extensions, msgext.go
	err := dec.ExpectList(func() error {
		err := readStatusItem(dec, &options, &ext)
		if err != nil {
			return err
		}
		return nil
	})
	if err != nil {
		return err
	}

	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if options.NumRecent && !c.server.options.caps().Has(imap.CapIMAP4rev1) {
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Unknown STATUS data item",
		}
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	// mailyard: RFC 7162 §3.1.7; a CONDSTORE enabling command (§3.1).
	if options.HighestModSeq {
		if err := c.enableCondStore(); err != nil {
			return err
		}
	}

	data, err := c.session.Status(mailbox, &options)
	if err != nil {
		return err
	}
	if err := checkStatusData(data, &options); err != nil {
		return err
	}
	if err := c.statusExtraData(data, &ext); err != nil {
		return err
	}

	return c.writeStatus(data, &options, &ext)
}

// checkStatusData returns an error if data lacks an item that options
// asks for, before any of the response is written.
//
// mailyard: added; upstream dereferenced the nil pointer.
func checkStatusData(data *imap.StatusData, options *imap.StatusOptions) error {
	if data == nil {
		return errNoData("STATUS")
	}
	for _, item := range []struct {
		name   string
		wanted bool
		given  bool
	}{
		{"MESSAGES", options.NumMessages, data.NumMessages != nil},
		{"UNSEEN", options.NumUnseen, data.NumUnseen != nil},
		{"DELETED", options.NumDeleted, data.NumDeleted != nil},
		{"SIZE", options.Size, data.Size != nil},
		{"DELETED-STORAGE", options.DeletedStorage, data.DeletedStorage != nil},
		{"RECENT", options.NumRecent, data.NumRecent != nil},
	} {
		if item.wanted && !item.given {
			return fmt.Errorf("imapserver: session returned STATUS data without %s", item.name)
		}
	}
	return nil
}

func (c *Conn) writeStatus(data *imap.StatusData, options *imap.StatusOptions, ext *statusExtra) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom("*").SP().Atom("STATUS").SP().Mailbox(data.Mailbox).SP()
	listEnc := enc.BeginList()
	if options.NumMessages {
		listEnc.Item().Atom("MESSAGES").SP().Number(*data.NumMessages)
	}
	if options.UIDNext {
		listEnc.Item().Atom("UIDNEXT").SP().UID(data.UIDNext)
	}
	if options.UIDValidity {
		listEnc.Item().Atom("UIDVALIDITY").SP().Number(data.UIDValidity)
	}
	if options.NumUnseen {
		listEnc.Item().Atom("UNSEEN").SP().Number(*data.NumUnseen)
	}
	if options.NumDeleted {
		listEnc.Item().Atom("DELETED").SP().Number(*data.NumDeleted)
	}
	if options.Size {
		listEnc.Item().Atom("SIZE").SP().Number64(*data.Size)
	}
	if options.AppendLimit {
		listEnc.Item().Atom("APPENDLIMIT").SP()
		if data.AppendLimit != nil {
			enc.Number(*data.AppendLimit)
		} else {
			enc.NIL()
		}
	}
	if options.DeletedStorage {
		listEnc.Item().Atom("DELETED-STORAGE").SP().Number64(*data.DeletedStorage)
	}
	if options.NumRecent {
		listEnc.Item().Atom("RECENT").SP().Number(*data.NumRecent)
	}
	if options.HighestModSeq { // mailyard: RFC 7162 §3.1.7
		listEnc.Item().Atom("HIGHESTMODSEQ").SP().ModSeq(data.HighestModSeq)
	}
	if ext != nil && ext.mailboxID != "" { // mailyard: RFC 8474
		listEnc.Item().Atom("MAILBOXID").SP().Special('(').Atom(ext.mailboxID).Special(')')
	}
	listEnc.End()

	return enc.CRLF()
}

// readStatusItem reads one status-att into options, or into ext for the
// items of extensions.
func readStatusItem(dec *imapwire.Decoder, options *imap.StatusOptions, ext *statusExtra) error {
	var name string
	if !dec.ExpectAtom(&name) {
		return dec.Err()
	}
	switch strings.ToUpper(name) {
	case "MESSAGES":
		options.NumMessages = true
	case "UIDNEXT":
		options.UIDNext = true
	case "UIDVALIDITY":
		options.UIDValidity = true
	case "UNSEEN":
		options.NumUnseen = true
	case "DELETED":
		options.NumDeleted = true
	case "SIZE":
		options.Size = true
	case "APPENDLIMIT":
		options.AppendLimit = true
	case "DELETED-STORAGE":
		options.DeletedStorage = true
	case "RECENT":
		options.NumRecent = true
	case "HIGHESTMODSEQ": // mailyard: RFC 7162 §3.1.7
		options.HighestModSeq = true
	case "MAILBOXID": // mailyard: RFC 8474, see msgext.go
		ext.wantMailboxID = true
	default:
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Unknown STATUS data item",
		}
	}
	return nil
}

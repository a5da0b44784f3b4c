package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
)

// mailyard: the message items of OBJECTID (RFC 8474), SAVEDATE (RFC
// 8514) and PREVIEW (RFC 8970), whose FETCH and SEARCH forms upstream's
// option types have no field for.

// FetchExtra are the FETCH items of extensions that imap.FetchOptions
// cannot hold. The session finds them with FetchWriter.Extra and writes
// them with the FetchResponseWriter methods below.
type FetchExtra struct {
	EmailID  bool // EMAILID (RFC 8474)
	ThreadID bool // THREADID (RFC 8474)
	SaveDate bool // SAVEDATE (RFC 8514)
	Preview  bool // PREVIEW (RFC 8970)
	// PreviewLazy is PREVIEW's LAZY modifier: a preview that would be
	// costly may be NIL (RFC 8970).
	PreviewLazy bool
}

// Any reports whether any item is asked for.
func (x FetchExtra) Any() bool { return x.EmailID || x.ThreadID || x.SaveDate || x.Preview }

// Extra returns the extension items the FETCH command asked for.
func (cmd *FetchWriter) Extra() FetchExtra { return cmd.options.extra }

// handleFetchExtra reads the extension FETCH item name, if it is one
// the server announces; ok is false for a name it does not know.
func (c *Conn) handleFetchExtra(dec *imapwire.Decoder, name string, o *fetchWriterOptions) (ok bool, err error) {
	caps := c.server.options.caps()
	switch {
	case name == "PREVIEW" && caps.Has(imap.CapPreview):
		// RFC 8970:
		//	fetch-att   =/ "PREVIEW" [SP "(" preview-mod *(SP preview-mod) ")"]
		//	preview-mod =  "LAZY"
		o.extra.Preview = true
		if dec.SPListOf("LAZY") {
			mods := 0
			err := dec.ExpectList(func() error {
				mods++
				var mod string
				if !dec.ExpectAtom(&mod) {
					return dec.Err()
				}
				if !strings.EqualFold(mod, "LAZY") {
					return newClientBugError("Unknown PREVIEW modifier")
				}
				o.extra.PreviewLazy = true
				return nil
			})
			if err != nil {
				return true, err
			}
			if mods == 0 {
				return true, newClientBugError("Empty PREVIEW modifier list")
			}
		}
	case name == "EMAILID" && caps.Has(imap.CapObjectID):
		o.extra.EmailID = true
	case name == "THREADID" && caps.Has(imap.CapObjectID):
		o.extra.ThreadID = true
	case name == "SAVEDATE" && caps.Has(imap.CapSaveDate):
		o.extra.SaveDate = true
	default:
		return false, nil
	}
	return true, nil
}

// WriteEmailID writes the EMAILID item (RFC 8474):
//
//	fetch-emailid-resp = "EMAILID" SP "(" objectid ")"
func (w *FetchResponseWriter) WriteEmailID(id string) {
	w.writeItemSep()
	w.enc.Atom("EMAILID").SP().Special('(').Atom(id).Special(')')
}

// WriteThreadID writes the THREADID item (RFC 8474); an empty id is
// NIL, the answer of a server that does not group messages in threads
// (RFC 8474):
//
//	fetch-threadid-resp = "THREADID" SP ( "(" objectid ")" / nil )
func (w *FetchResponseWriter) WriteThreadID(id string) {
	w.writeItemSep()
	w.enc.Atom("THREADID").SP()
	if id == "" {
		w.enc.NIL()
		return
	}
	w.enc.Special('(').Atom(id).Special(')')
}

// WriteSaveDate writes the SAVEDATE item (RFC 8514); the zero time
// is NIL, for a message whose save date is not known:
//
//	msg-att-static =/ "SAVEDATE" SP (date-time / nil)
func (w *FetchResponseWriter) WriteSaveDate(t time.Time) {
	w.writeItemSep()
	w.enc.Atom("SAVEDATE").SP()
	if t.IsZero() {
		w.enc.NIL()
		return
	}
	w.enc.String(t.Format(proto.DateTimeLayout))
}

// WritePreview writes the PREVIEW item (RFC 8970) with its text
// (the NIL of the syntax is for a lazy request the server does not
// answer, which this server does not do):
//
//	msg-att-dynamic =/ "PREVIEW" SP nstring
func (w *FetchResponseWriter) WritePreview(text string) {
	w.writeItemSep()
	w.enc.Atom("PREVIEW").SP().String(text)
}

// Search keys that imap.SearchCriteria has no field for arrive, as
// OLDER and YOUNGER do (within.go), as header fields with names no
// client can send:
//
//   - SearchKeySavedBefore and SearchKeySavedSince carry a date as
//     "2006-01-02" (SAVEDON is both, a day apart), RFC 8514;
//   - SearchKeySaveDateSupported has an empty value (RFC 8514);
//   - SearchKeyEmailID and SearchKeyThreadID carry the object ID
//     (RFC 8474).
const (
	SearchKeySavedBefore       = "\x00SAVEDBEFORE"
	SearchKeySavedSince        = "\x00SAVEDSINCE"
	SearchKeySaveDateSupported = "\x00SAVEDATESUPPORTED"
	SearchKeyEmailID           = "\x00EMAILID"
	SearchKeyThreadID          = "\x00THREADID"
	searchDateLayout           = "2006-01-02"
	maxObjectIDLength          = 255 // RFC 8474: objectid = 1*255(...)
)

// readSearchExtra reads a search key of SAVEDATE or OBJECTID (key, in
// upper case). The search parser knows no connection, so they are read
// whatever the server announces.
func readSearchExtra(criteria *imap.SearchCriteria, dec *imapwire.Decoder, key string) error {
	add := func(name, value string) {
		criteria.Header = append(criteria.Header, imap.SearchCriteriaHeaderField{Key: name, Value: value})
	}
	switch {
	case (key == "SAVEDBEFORE" || key == "SAVEDON" || key == "SAVEDSINCE"):
		if !dec.ExpectSP() {
			return dec.Err()
		}
		t, err := proto.ExpectDate(dec)
		if err != nil {
			return err
		}
		if key != "SAVEDBEFORE" {
			add(SearchKeySavedSince, t.Format(searchDateLayout))
		}
		if key == "SAVEDON" {
			t = t.AddDate(0, 0, 1)
		}
		if key != "SAVEDSINCE" {
			add(SearchKeySavedBefore, t.Format(searchDateLayout))
		}
	case key == "SAVEDATESUPPORTED":
		add(SearchKeySaveDateSupported, "")
	case (key == "EMAILID" || key == "THREADID"):
		var id string
		if !dec.ExpectSP() || !dec.ExpectAtom(&id) {
			return dec.Err()
		}
		if !validObjectID(id) {
			return newClientBugError(key + " needs an object ID of letters, digits, \"-\" and \"_\"")
		}
		name := SearchKeyEmailID
		if key == "THREADID" {
			name = SearchKeyThreadID
		}
		add(name, id)
	default:
		return newClientBugError("Unknown search key " + key)
	}
	return nil
}

// validObjectID reports whether id is an objectid (RFC 8474):
//
//	objectid = 1*255(ALPHA / DIGIT / "_" / "-")
func validObjectID(id string) bool {
	if id == "" || len(id) > maxObjectIDLength {
		return false
	}
	return strings.IndexFunc(id, func(r rune) bool {
		return !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-')
	}) < 0
}

// SessionObjectID is a session that gives mailboxes a MAILBOXID (RFC
// 8474): in the tagged OK of CREATE, in an untagged OK of SELECT and
// EXAMINE, and as a STATUS item. Without it, or when the server does not
// announce OBJECTID, none of them is sent and STATUS MAILBOXID is BAD.
type SessionObjectID interface {
	Session
	// MailboxID returns the MAILBOXID of a mailbox, named as the client
	// named it.
	MailboxID(mailbox string) (string, error)
}

// objectIDSession returns the session as a SessionObjectID when the
// server announces OBJECTID.
func (c *Conn) objectIDSession() (SessionObjectID, bool) {
	s, ok := c.session.(SessionObjectID)
	return s, ok && c.server.options.caps().Has(imap.CapObjectID)
}

// createdMailboxID is the result of a CREATE that succeeded: OK with the
// new mailbox's MAILBOXID (RFC 8474), or a plain OK when it cannot
// be had (the mailbox exists; the client can ask STATUS).
func (c *Conn) createdMailboxID(name string) error {
	s, ok := c.objectIDSession()
	if !ok {
		return nil
	}
	id, err := s.MailboxID(name)
	if err != nil {
		c.log.Warn("imapserver: no MAILBOXID for a created mailbox", "err", err)
		return nil
	}
	return &okAfterPoll{code: func() imap.ResponseCode { return imap.ResponseCode("MAILBOXID (" + id + ")") }}
}

// writeSelectedMailboxID writes the untagged OK [MAILBOXID (...)] of
// SELECT and EXAMINE (RFC 8474).
func (c *Conn) writeSelectedMailboxID(name string) error {
	s, ok := c.objectIDSession()
	if !ok {
		return nil
	}
	id, err := s.MailboxID(name)
	if err != nil {
		return err
	}
	return c.writeStatusResp("", &imap.StatusResponse{
		Type: imap.StatusResponseTypeOK,
		Code: imap.ResponseCode("MAILBOXID (" + id + ")"),
		Text: "Ok",
	})
}

// statusExtra are the STATUS items of extensions that imap.StatusOptions
// and imap.StatusData cannot hold.
type statusExtra struct {
	wantMailboxID bool   // MAILBOXID asked for (RFC 8474)
	mailboxID     string // its value, filled by statusExtraData
}

// statusExtraData fills the values of the items ext asks for, before
// any of the response is written.
func (c *Conn) statusExtraData(data *imap.StatusData, ext *statusExtra) error {
	if !ext.wantMailboxID {
		return nil
	}
	s, ok := c.objectIDSession()
	if !ok {
		return newClientBugError("Unknown STATUS data item")
	}
	id, err := s.MailboxID(data.Mailbox)
	if err != nil {
		return err
	}
	ext.mailboxID = id
	return nil
}

package imapserver

// mailyard: this file is ours, not upstream's: the ID command (RFC 2971).

import (
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// IDField is one field-value pair of an ID command or response
// (RFC 2971 §3.3). A nil Value is NIL.
type IDField struct {
	Name  string
	Value *string
}

// SessionID is a session that answers the ID command (RFC 2971). The
// command is valid in every state.
type SessionID interface {
	// ID receives the client's fields (nil for ID NIL) and returns the
	// server's; a nil result is sent as ID NIL.
	ID(client []IDField) []IDField
}

// RFC 2971 §3.3: field names at most 30 octets, values at most 1024, at
// most 30 pairs, and no field twice.
const (
	maxIDFields     = 30
	maxIDNameSize   = 30
	maxIDValueSize  = 1024
	idCommandSyntax = "ID takes NIL or a list of field-value pairs (RFC 2971)"
)

func (c *Conn) handleID(dec *imapwire.Decoder) error {
	sess, ok := c.session.(SessionID)
	if !ok {
		return &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
	}
	if !dec.ExpectSP() {
		return dec.Err()
	}
	var fields []IDField
	seen := make(map[string]bool)
	var bad string
	var err error
	var nilAtom string
	if dec.Atom(&nilAtom) {
		// NIL, in any case (RFC 9051 §4.5).
		if !strings.EqualFold(nilAtom, "NIL") {
			return newClientBugError(idCommandSyntax)
		}
	} else {
		err = dec.ExpectList(func() error {
			var name, value string
			if !dec.ExpectString(&name) || !dec.ExpectSP() {
				return dec.Err()
			}
			var f IDField
			if !dec.Atom(&value) {
				if !dec.ExpectString(&value) {
					return dec.Err()
				}
				f.Value = &value
			} else if !strings.EqualFold(value, "NIL") {
				return newClientBugError(idCommandSyntax)
			}
			f.Name = name
			key := strings.ToLower(name)
			switch {
			case len(fields) == maxIDFields:
				bad = "ID: at most 30 field-value pairs (RFC 2971 §3.3)"
			case len(name) > maxIDNameSize:
				bad = "ID: field names are at most 30 octets (RFC 2971 §3.3)"
			case f.Value != nil && len(*f.Value) > maxIDValueSize:
				bad = "ID: values are at most 1024 octets (RFC 2971 §3.3)"
			case seen[key]:
				bad = "ID: a field may occur only once (RFC 2971 §3.3)"
			}
			seen[key] = true
			fields = append(fields, f)
			return nil
		})
	}
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if bad != "" {
		return newClientBugError(bad)
	}

	server := sess.ID(fields)
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("ID").SP()
	if server == nil {
		enc.NIL()
	} else {
		enc.List(len(server), func(i int) {
			enc.String(server[i].Name).SP()
			if v := server[i].Value; v != nil {
				enc.String(*v)
			} else {
				enc.NIL()
			}
		})
	}
	return enc.CRLF()
}

package imapserver

// mailyard: this file is ours, not upstream's: LIST's METADATA return
// option (RFC 9590, LIST-METADATA).

import (
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// listMetadata is a LIST's RETURN (METADATA ...): the entries asked for
// each listed mailbox, the MAXSIZE to apply to their values (-1 for
// none), and the size of the longest value MAXSIZE left out so far.
type listMetadata struct {
	entries []string
	maxSize int64
	long    int64
}

// readListMetadata reads the METADATA return option's argument after
// its name (RFC 9590 §3): a parenthesised list of entry names and,
// optionally, GETMETADATA's MAXSIZE option (RFC 5464 §4.2.2). The
// entries and the option are taken in either order, each bare or in a
// list of its own, as "(/a /b MAXSIZE 10)", "((MAXSIZE 10) (/a /b))"
// or "(/a (MAXSIZE 10))": an entry name starts with "/" (RFC 5464
// §3.2), so the two never mix up, and a client's spelling of the
// option's place is accepted whichever it is. DEPTH is not offered
// (BAD), nor is an empty list.
func readListMetadata(dec *imapwire.Decoder) (*listMetadata, error) {
	if !dec.ExpectSP() {
		return nil, dec.Err()
	}
	var items []string
	item := func() error {
		var s string
		if !dec.ExpectAString(&s) {
			return dec.Err()
		}
		items = append(items, s)
		return nil
	}
	err := dec.ExpectList(func() error {
		isList, err := dec.List(item)
		if err != nil || isList {
			return err
		}
		return item()
	})
	if err != nil {
		return nil, err
	}
	m := &listMetadata{maxSize: -1, long: -1}
	var opts []string
	for i := 0; i < len(items); i++ {
		if strings.HasPrefix(items[i], "/") {
			m.entries = append(m.entries, items[i])
			continue
		}
		if !strings.EqualFold(items[i], "MAXSIZE") || i+1 == len(items) {
			return nil, newClientBugError("LIST RETURN METADATA takes entry names and MAXSIZE n")
		}
		opts = append(opts, items[i], items[i+1])
		i++
	}
	if len(m.entries) == 0 {
		return nil, newClientBugError("LIST RETURN METADATA needs at least one entry")
	}
	var unused MetadataOptions
	if err := parseMetadataOptions(opts, &unused, &m.maxSize); err != nil {
		return nil, err
	}
	return m, nil
}

// listMetadataAvailable reports whether this connection offers
// LIST-METADATA: the session has METADATA and the server announces it.
func (c *Conn) listMetadataAvailable() bool {
	_, ok := c.session.(SessionMetadata)
	return ok && c.server.options.caps().Has(imap.CapListMetadata)
}

// MetadataEntries returns the entry names of the LIST's METADATA return
// option (RFC 9590), as the client sent them, or nil when it asked for
// none. A session that gets a list answers each listed mailbox with
// WriteMetadata after its WriteList.
func (w *ListWriter) MetadataEntries() []string {
	if w.meta == nil {
		return nil
	}
	return w.meta.entries
}

// WriteMetadata writes the METADATA response of one listed mailbox
// (RFC 9590 §3), after its LIST response: entries as GETMETADATA
// returns them, a missing one with a nil Value. Values over the
// option's MAXSIZE are left out, as GETMETADATA leaves them out, and
// the command's OK then carries [METADATA LONGENTRIES n] (RFC 5464
// §4.2.2); when every entry is left out no response is written.
func (w *ListWriter) WriteMetadata(mailbox string, entries []MetadataEntry) error {
	if w.meta == nil {
		return nil
	}
	out, long := dropLongEntries(entries, w.meta.maxSize)
	w.meta.long = max(w.meta.long, long)
	if len(out) == 0 {
		return nil
	}
	return w.conn.writeMetadata(mailbox, out)
}

// listMetadataDone is the LIST's completion: OK with LONGENTRIES when
// MAXSIZE left a value out.
func (w *ListWriter) listMetadataDone() error {
	if w.meta == nil || w.meta.long < 0 {
		return nil
	}
	return &imap.Error{
		Type: imap.StatusResponseTypeOK,
		Code: imap.ResponseCode("METADATA LONGENTRIES " + strconv.FormatInt(w.meta.long, 10)),
		Text: "LIST completed",
	}
}

// dropLongEntries leaves out the entries whose values are over maxSize
// (none when it is negative) and returns the size of the longest it
// left out, -1 for none (RFC 5464 §4.2.2). It filters in place.
func dropLongEntries(entries []MetadataEntry, maxSize int64) (out []MetadataEntry, long int64) {
	long = -1
	out = entries[:0]
	for _, e := range entries {
		if maxSize >= 0 && e.Value != nil && int64(len(e.Value)) > maxSize {
			long = max(long, int64(len(e.Value)))
			continue
		}
		out = append(out, e)
	}
	return out, long
}

package imapserver

// mailyard: this file is ours, not upstream's: GETMETADATA and SETMETADATA
// (RFC 5464).

import (
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// MetadataEntry is one entry of a METADATA response or of SETMETADATA.
// A nil Value is NIL: a missing entry in a response, a deletion in
// SETMETADATA (RFC 5464 §4.3).
type MetadataEntry struct {
	Name  string
	Value []byte
}

// DepthInfinity is MetadataOptions.Depth for DEPTH infinity.
const DepthInfinity = -1

// MetadataOptions are GETMETADATA's options (RFC 5464 §4.2.2, §4.2.3).
// MAXSIZE is applied by the server, not the session.
type MetadataOptions struct {
	// Depth is 0 (the entries themselves), 1 (and their children) or
	// DepthInfinity (and all their descendants).
	Depth int
}

// SessionMetadata is a session that supports the METADATA extension
// (RFC 5464): annotations of mailboxes and, with mailbox "", of the
// server. Mailbox names reach it decoded, as for other commands.
type SessionMetadata interface {
	// GetMetadata returns the entries named and, with a depth, those
	// below them; a named entry that does not exist has a nil Value.
	// An invalid entry name is a BAD error (RFC 5464 §3.2).
	GetMetadata(mailbox string, entries []string, options *MetadataOptions) ([]MetadataEntry, error)
	// SetMetadata sets the entries with a value and deletes those with
	// a nil one, all or none (RFC 5464 §4.3).
	SetMetadata(mailbox string, entries []MetadataEntry) error
	// MetadataMaxSize is the largest value SETMETADATA accepts. A
	// larger literal is refused before its data is read, with
	// NO [METADATA MAXSIZE n].
	MetadataMaxSize() int64
}

// metadataCommandBytes bounds the values of one SETMETADATA together
// (literals and quoted strings), which are held in memory until the
// session stores them: no more than this, or one value's limit, is
// read before the command is refused.
const metadataCommandBytes = 256 << 10

// metadataSession returns the session for a METADATA command; without
// METADATA in Options.Caps the commands are unknown.
func (c *Conn) metadataSession() (SessionMetadata, error) {
	if sess, ok := c.session.(SessionMetadata); ok && c.server.options.caps().Has(imap.CapMetadata) {
		return sess, nil
	}
	return nil, &imap.Error{Type: imap.StatusResponseTypeBad, Text: "Unknown command"}
}

// handleGetMetadata reads (RFC 5464 §5, with erratum 1743's placement of
// the options after the mailbox, which the RFC's own examples use, also
// accepted):
//
//	getmetadata = "GETMETADATA" [SP getmetadata-options] SP mailbox SP entries
//	entries     = entry / "(" entry *(SP entry) ")"
func (c *Conn) handleGetMetadata(dec *imapwire.Decoder) error {
	sess, err := c.metadataSession()
	if err != nil {
		return err
	}
	var (
		mailbox string
		opts    MetadataOptions
		maxSize int64 = -1
		entries []string
		sawOpts bool
	)
	// readList reads a parenthesised list: options when it starts with
	// an option name, else the entries (whose names start with "/").
	// It reports whether the next token was a list at all.
	readList := func() (isList bool, err error) {
		var items []string
		isList, err = dec.List(func() error {
			var s string
			if !dec.ExpectAString(&s) {
				return dec.Err()
			}
			items = append(items, s)
			return nil
		})
		if err != nil || !isList {
			return isList, err
		}
		if len(items) > 0 && !strings.HasPrefix(items[0], "/") {
			if sawOpts {
				return true, newClientBugError("GETMETADATA options given twice")
			}
			sawOpts = true
			if err := parseMetadataOptions(items, &opts, &maxSize); err != nil {
				return true, err
			}
			if !dec.ExpectSP() {
				return true, dec.Err()
			}
			return true, nil
		}
		if len(items) == 0 {
			return true, newClientBugError("GETMETADATA needs at least one entry")
		}
		entries = items
		return true, nil
	}
	if !dec.ExpectSP() {
		return dec.Err()
	}
	// Options before the mailbox (RFC 5464 §5); a mailbox name never
	// starts with "(".
	if _, err := readList(); err != nil {
		return err
	}
	if entries != nil {
		return newClientBugError("GETMETADATA takes the mailbox before the entries")
	}
	if !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}
	for entries == nil {
		isList, err := readList()
		if err != nil {
			return err
		}
		if !isList {
			var s string
			if !dec.ExpectAString(&s) {
				return dec.Err()
			}
			entries = []string{s}
		}
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	got, err := sess.GetMetadata(mailbox, entries, &opts)
	if err != nil {
		return err
	}
	// RFC 5464 §4.2.2: entries over MAXSIZE are left out, and the OK
	// says how large the largest of them is.
	out, long := dropLongEntries(got, maxSize)
	if len(out) > 0 {
		if err := c.writeMetadata(mailbox, out); err != nil {
			return err
		}
	}
	if long >= 0 {
		return &imap.Error{
			Type: imap.StatusResponseTypeOK,
			Code: imap.ResponseCode("METADATA LONGENTRIES " + strconv.FormatInt(long, 10)),
			Text: "GETMETADATA completed",
		}
	}
	return nil
}

// parseMetadataOptions reads "MAXSIZE n" and "DEPTH 0/1/infinity"
// (RFC 5464 §4.2.2, §4.2.3); another option is BAD.
func parseMetadataOptions(items []string, opts *MetadataOptions, maxSize *int64) error {
	if len(items)%2 != 0 {
		return newClientBugError("GETMETADATA options are name and value pairs")
	}
	for i := 0; i < len(items); i += 2 {
		name, v := strings.ToUpper(items[i]), items[i+1]
		switch name {
		case "MAXSIZE":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return newClientBugError("MAXSIZE takes a number")
			}
			*maxSize = int64(n)
		case "DEPTH":
			switch strings.ToLower(v) {
			case "0":
				opts.Depth = 0
			case "1":
				opts.Depth = 1
			case "infinity":
				opts.Depth = DepthInfinity
			default:
				return newClientBugError("DEPTH is 0, 1 or infinity")
			}
		default:
			return newClientBugError("Unknown GETMETADATA option " + strconv.Quote(items[i]))
		}
	}
	return nil
}

// writeMetadata writes a METADATA response (RFC 5464 §4.4.1):
//
//	metadata-resp = "METADATA" SP mailbox SP (entry-values / entry-list)
//
// A value holding NUL goes as a literal8 (value = nstring / literal8).
func (c *Conn) writeMetadata(mailbox string, entries []MetadataEntry) error {
	enc := newResponseEncoder(c)
	defer enc.end()
	enc.Atom("*").SP().Atom("METADATA").SP().Mailbox(mailbox).SP()
	enc.List(len(entries), func(i int) {
		e := entries[i]
		if isAtom(e.Name) {
			enc.Atom(e.Name).SP()
		} else {
			enc.String(e.Name).SP()
		}
		switch {
		case e.Value == nil:
			enc.NIL()
		case strings.IndexByte(string(e.Value), 0) >= 0:
			enc.Special('~')
			wc := enc.Literal(int64(len(e.Value)))
			_, _ = wc.Write(e.Value) // an error is the encoder's, returned by CRLF
			_ = wc.Close()
		default:
			enc.String(string(e.Value))
		}
	})
	return enc.CRLF()
}

// isAtom reports whether s can go as an atom: RFC 5464's examples send
// entry names so.
func isAtom(s string) bool {
	for i := 0; i < len(s); i++ {
		if !imapwire.IsAtomChar(s[i]) {
			return false
		}
	}
	return s != ""
}

// handleSetMetadata reads (RFC 5464 §5):
//
//	setmetadata = "SETMETADATA" SP mailbox SP entry-values
//	entry-values = "(" entry-value *(SP entry-value) ")"
//	entry-value  = entry SP value
//	value        = nstring / literal8
//
// A literal value larger than the session's MetadataMaxSize is refused
// before its continuation request, as APPEND refuses one over
// APPENDLIMIT; its data, if the client sends it anyway (LITERAL+), is
// skipped and the connection stays usable.
func (c *Conn) handleSetMetadata(dec *imapwire.Decoder) error {
	sess, err := c.metadataSession()
	if err != nil {
		return err
	}
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	limit := sess.MetadataMaxSize()
	var entries []MetadataEntry
	var total int64
	err = dec.ExpectList(func() error {
		var e MetadataEntry
		if !dec.ExpectAString(&e.Name) || !dec.ExpectSP() {
			return dec.Err()
		}
		v, err := c.readMetadataValue(dec, limit, metadataCommandBytes-total)
		if err != nil {
			return err
		}
		e.Value = v
		total += int64(len(v))
		entries = append(entries, e)
		return nil
	})
	if err != nil {
		return err
	}
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if len(entries) == 0 {
		return newClientBugError("SETMETADATA needs at least one entry")
	}
	return sess.SetMetadata(mailbox, entries)
}

// readMetadataValue reads an nstring or literal8: nil for NIL, else the
// value, at most limit bytes and at most left for the command.
func (c *Conn) readMetadataValue(dec *imapwire.Decoder, limit, left int64) ([]byte, error) {
	tooLarge := func(n int64) error {
		if n > left {
			return &imap.Error{
				Type: imap.StatusResponseTypeNo,
				Code: imap.ResponseCodeTooBig,
				Text: fmt.Sprintf("The values of one SETMETADATA are limited to %d bytes together", metadataCommandBytes),
			}
		}
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCode("METADATA MAXSIZE " + strconv.FormatInt(limit, 10)),
			Text: "Metadata value too large",
		}
	}
	literal8 := dec.Special('~')
	lit, nonSync, ok := dec.LiteralReader()
	if !ok {
		if err := dec.Err(); err != nil {
			return nil, err
		}
		if literal8 {
			return nil, newClientBugError("~ starts a literal8")
		}
		var s string
		if dec.Quoted(&s) {
			if n := int64(len(s)); n > limit || n > left {
				return nil, tooLarge(n)
			}
			return []byte(s), nil
		}
		var atom string
		if !dec.ExpectAtom(&atom) {
			return nil, dec.Err()
		}
		if !strings.EqualFold(atom, "NIL") {
			return nil, newClientBugError("A metadata value is a string, a literal or NIL")
		}
		return nil, nil
	}
	size := lit.Size()
	if err := c.checkNonSyncLiteral(size, nonSync); err != nil {
		return nil, err
	}
	if size > limit || size > left {
		return nil, c.refuseLiteral(size, nonSync, tooLarge(size).(*imap.Error))
	}
	if err := c.acceptLiteral(size, nonSync); err != nil {
		return nil, err
	}
	lit.Accept()
	c.setReadTimeout(literalReadTimeout)
	defer c.setReadTimeout(cmdReadTimeout)
	// Read to the literal's EOF, which closes it in the decoder.
	buf := bytes.NewBuffer(make([]byte, 0, size))
	if _, err := buf.ReadFrom(lit); err != nil {
		return nil, err
	}
	if int64(buf.Len()) != size {
		return nil, io.ErrUnexpectedEOF
	}
	return buf.Bytes(), nil
}

package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"sort"
	"strings"
	"time"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
	"github.com/mailyard/mailyard/internal/iobuf"
	"github.com/mailyard/mailyard/internal/msgheader"
)

const envelopeDateLayout = "Mon, 02 Jan 2006 15:04:05 -0700"

type fetchWriterOptions struct {
	bodyStructure struct {
		extended    bool // BODYSTRUCTURE
		nonExtended bool // BODY
	}
	obsolete map[*imap.FetchItemBodySection]string

	// mailyard: the section-text of BINARY items, see readSectionBinary.
	binary     map[*imap.FetchItemBinarySection]*imap.FetchItemBodySection
	binarySize map[*imap.FetchItemBinarySectionSize]*imap.FetchItemBodySection

	extra FetchExtra // mailyard: OBJECTID and SAVEDATE items, msgext.go
}

func (c *Conn) handleFetch(dec *imapwire.Decoder, numKind NumKind) error {
	var numSet imap.NumSet
	if !dec.ExpectSP() || !dec.ExpectNumSet(numKind.wire(), &numSet) || !dec.ExpectSP() {
		return dec.Err()
	}

	var options imap.FetchOptions
	writerOptions := fetchWriterOptions{obsolete: make(map[*imap.FetchItemBodySection]string)}
	isList, err := dec.List(func() error {
		name, err := readFetchAttName(dec)
		if err != nil {
			return err
		}
		switch name {
		case "ALL", "FAST", "FULL":
			return newClientBugError("FETCH macros are not allowed in a list")
		}
		if ok, err := c.handleFetchExtra(dec, name, &writerOptions); ok { // mailyard
			return err
		}
		return handleFetchAtt(dec, name, &options, &writerOptions)
	})
	if err != nil {
		return err
	}
	if !isList {
		name, err := readFetchAttName(dec)
		if err != nil {
			return err
		}

		// Handle macros
		switch name {
		case "ALL":
			options.Flags = true
			options.InternalDate = true
			options.RFC822Size = true
			options.Envelope = true
		case "FAST":
			options.Flags = true
			options.InternalDate = true
			options.RFC822Size = true
		case "FULL":
			options.Flags = true
			options.InternalDate = true
			options.RFC822Size = true
			options.Envelope = true
			handleFetchBodyStructure(&options, &writerOptions, false)
		default:
			if ok, err := c.handleFetchExtra(dec, name, &writerOptions); ok { // mailyard
				if err != nil {
					return err
				}
				break
			}
			if err := handleFetchAtt(dec, name, &options, &writerOptions); err != nil {
				return err
			}
		}
	}

	// mailyard: fetch modifiers (RFC 4466 §2.4): CHANGEDSINCE (RFC 7162
	// §3.1.4.1) and VANISHED (§3.2.6).
	var vanished bool
	if dec.SP() {
		var err error
		if vanished, err = readFetchModifiers(dec, &options); err != nil {
			return err
		}
	}

	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateSelected); err != nil {
		return err
	}

	if numKind == NumKindUID {
		options.UID = true
	}

	if vanished {
		// mailyard: RFC 7162 §3.2.6: UID FETCH only, with CHANGEDSINCE,
		// after ENABLE QRESYNC; BAD otherwise.
		switch {
		case numKind != NumKindUID:
			return newClientBugError("VANISHED is only allowed with UID FETCH")
		case !c.Enabled(imap.CapQResync):
			return newClientBugError("QRESYNC must be enabled first")
		}
	}
	// mailyard: RFC 7162 §3.1: a CONDSTORE enabling command.
	if options.ModSeq {
		if err := c.enableCondStore(); err != nil {
			return err
		}
	}

	w := &FetchWriter{conn: c, options: writerOptions, vanished: vanished}
	if err := c.session.Fetch(w, numSet, &options); err != nil {
		return err
	}
	return nil
}

func handleFetchAtt(dec *imapwire.Decoder, attName string, options *imap.FetchOptions, writerOptions *fetchWriterOptions) error {
	switch attName {
	case "BODYSTRUCTURE":
		handleFetchBodyStructure(options, writerOptions, true)
	case "ENVELOPE":
		options.Envelope = true
	case "FLAGS":
		options.Flags = true
	case "INTERNALDATE":
		options.InternalDate = true
	case "RFC822.SIZE":
		options.RFC822Size = true
	case "UID":
		options.UID = true
	case "MODSEQ": // mailyard: RFC 7162 §3.1.4.2
		options.ModSeq = true
	case "RFC822": // equivalent to BODY[]
		bs := &imap.FetchItemBodySection{}
		writerOptions.obsolete[bs] = attName
		options.BodySection = append(options.BodySection, bs)
	case "RFC822.PEEK": // obsolete, equivalent to BODY.PEEK[], used by Outlook
		bs := &imap.FetchItemBodySection{Peek: true}
		writerOptions.obsolete[bs] = attName
		options.BodySection = append(options.BodySection, bs)
	case "RFC822.HEADER": // equivalent to BODY.PEEK[HEADER]
		bs := &imap.FetchItemBodySection{
			Specifier: imap.PartSpecifierHeader,
			Peek:      true,
		}
		writerOptions.obsolete[bs] = attName
		options.BodySection = append(options.BodySection, bs)
	case "RFC822.TEXT": // equivalent to BODY[TEXT]
		bs := &imap.FetchItemBodySection{
			Specifier: imap.PartSpecifierText,
		}
		writerOptions.obsolete[bs] = attName
		options.BodySection = append(options.BodySection, bs)
	case "BINARY", "BINARY.PEEK":
		section, err := readSectionBinary(dec)
		if err != nil {
			return err
		}
		section.Partial, err = maybeReadPartial(dec)
		if err != nil {
			return err
		}
		section.Peek = attName == "BINARY.PEEK"
		bs := &imap.FetchItemBinarySection{
			Part:    section.Part,
			Partial: section.Partial,
			Peek:    section.Peek,
		}
		if section.Specifier != imap.PartSpecifierNone { // mailyard
			if writerOptions.binary == nil {
				writerOptions.binary = make(map[*imap.FetchItemBinarySection]*imap.FetchItemBodySection)
			}
			writerOptions.binary[bs] = section
		}
		options.BinarySection = append(options.BinarySection, bs)
	case "BINARY.SIZE":
		section, err := readSectionBinary(dec)
		if err != nil {
			return err
		}
		bss := &imap.FetchItemBinarySectionSize{Part: section.Part}
		if section.Specifier != imap.PartSpecifierNone { // mailyard
			if writerOptions.binarySize == nil {
				writerOptions.binarySize = make(map[*imap.FetchItemBinarySectionSize]*imap.FetchItemBodySection)
			}
			writerOptions.binarySize[bss] = section
		}
		options.BinarySectionSize = append(options.BinarySectionSize, bss)
	case "BODY":
		if !dec.Special('[') {
			handleFetchBodyStructure(options, writerOptions, false)
			return nil
		}
		section := imap.FetchItemBodySection{}
		err := readSection(dec, &section)
		if err != nil {
			return err
		}
		section.Partial, err = maybeReadPartial(dec)
		if err != nil {
			return err
		}
		options.BodySection = append(options.BodySection, &section)
	case "BODY.PEEK":
		if !dec.ExpectSpecial('[') {
			return dec.Err()
		}
		section := imap.FetchItemBodySection{Peek: true}
		err := readSection(dec, &section)
		if err != nil {
			return err
		}
		section.Partial, err = maybeReadPartial(dec)
		if err != nil {
			return err
		}
		options.BodySection = append(options.BodySection, &section)
	default:
		return newClientBugError("Unknown FETCH data item")
	}
	return nil
}

func handleFetchBodyStructure(options *imap.FetchOptions, writerOptions *fetchWriterOptions, extended bool) {
	if options.BodyStructure == nil || extended {
		options.BodyStructure = &imap.FetchItemBodyStructure{Extended: extended}
	}
	if extended {
		writerOptions.bodyStructure.extended = true
	} else {
		writerOptions.bodyStructure.nonExtended = true
	}
}

func readFetchAttName(dec *imapwire.Decoder) (string, error) {
	var attName string
	if !dec.Expect(dec.Func(&attName, isMsgAttNameChar), "msg-att name") {
		return "", dec.Err()
	}
	return strings.ToUpper(attName), nil
}

func isMsgAttNameChar(ch byte) bool {
	return ch != '[' && imapwire.IsAtomChar(ch)
}

func readSection(dec *imapwire.Decoder, section *imap.FetchItemBodySection) error {
	if dec.Special(']') {
		return nil
	}

	var dot bool
	section.Part, dot = readSectionPart(dec)
	if dot || len(section.Part) == 0 {
		var specifier string
		if dot {
			if !dec.ExpectAtom(&specifier) {
				return dec.Err()
			}
		} else {
			dec.Atom(&specifier)
		}

		switch specifier := imap.PartSpecifier(strings.ToUpper(specifier)); specifier {
		case imap.PartSpecifierNone, imap.PartSpecifierHeader, imap.PartSpecifierMIME, imap.PartSpecifierText:
			section.Specifier = specifier
		case "HEADER.FIELDS", "HEADER.FIELDS.NOT":
			if !dec.ExpectSP() {
				return dec.Err()
			}
			var err error
			headerList, err := readHeaderList(dec)
			if err != nil {
				return err
			}
			section.Specifier = imap.PartSpecifierHeader
			if specifier == "HEADER.FIELDS" {
				section.HeaderFields = headerList
			} else {
				section.HeaderFieldsNot = headerList
			}
		default:
			return newClientBugError("unknown body section specifier")
		}
	}

	if !dec.ExpectSpecial(']') {
		return dec.Err()
	}

	return nil
}

func readSectionPart(dec *imapwire.Decoder) (part []int, dot bool) {
	for {
		dot = len(part) > 0
		if dot && !dec.Special('.') {
			return part, false
		}

		var num uint32
		if !dec.Number(&num) {
			return part, dot
		}
		part = append(part, int(num))
	}
}

func readHeaderList(dec *imapwire.Decoder) ([]string, error) {
	var l []string
	err := dec.ExpectList(func() error {
		var s string
		if !dec.ExpectAString(&s) {
			return dec.Err()
		}
		l = append(l, s)
		return nil
	})
	return l, err
}

// readSectionBinary reads the section of a BINARY or BINARY.SIZE item.
//
// mailyard: section-binary (RFC 3516, RFC 9051 §9) is part numbers
// only. Dovecot also takes BODY's section-text there (HEADER,
// HEADER.FIELDS[.NOT], MIME, TEXT), and imaptest's fetch-binary-mime
// expects it, so the section is read as BODY's is. The public item
// types have no room for the specifier: handleFetchAtt keeps it in
// fetchWriterOptions, where FetchWriter.BinarySection finds it.
func readSectionBinary(dec *imapwire.Decoder) (*imap.FetchItemBodySection, error) {
	if !dec.ExpectSpecial('[') {
		return nil, dec.Err()
	}
	var section imap.FetchItemBodySection
	if err := readSection(dec, &section); err != nil {
		return nil, err
	}
	return &section, nil
}

func maybeReadPartial(dec *imapwire.Decoder) (*imap.SectionPartial, error) {
	if !dec.Special('<') {
		return nil, nil
	}
	var partial imap.SectionPartial
	if !dec.ExpectNumber64(&partial.Offset) || !dec.ExpectSpecial('.') || !dec.ExpectNumber64(&partial.Size) || !dec.ExpectSpecial('>') {
		return nil, dec.Err()
	}
	return &partial, nil
}

// FetchWriter writes FETCH responses.
type FetchWriter struct {
	conn    *Conn
	options fetchWriterOptions

	vanished bool // mailyard: UID FETCH (VANISHED), RFC 7162 §3.2.6
}

// mailyard: CONDSTORE and QRESYNC (RFC 7162).

// ReportVanished reports whether the client asked for the messages of the
// UID set expunged since CHANGEDSINCE (the VANISHED modifier, RFC 7162
// §3.2.6); they are to be written with WriteVanished before any FETCH
// response.
func (cmd *FetchWriter) ReportVanished() bool {
	return cmd.vanished
}

// WriteVanished writes a VANISHED (EARLIER) response (RFC 7162 §3.2.10.1).
func (cmd *FetchWriter) WriteVanished(uids imap.UIDSet) error {
	return cmd.conn.writeVanished(uids, true)
}

// mailyard: BINARY with BODY's section-text (see readSectionBinary).

// BinarySection returns the section a BINARY item names, as a body
// section: its part numbers, the section-text that followed them if any,
// Partial and Peek. WriteBinary takes it.
func (cmd *FetchWriter) BinarySection(item *imap.FetchItemBinarySection) *imap.FetchItemBodySection {
	if section := cmd.options.binary[item]; section != nil {
		return section
	}
	return &imap.FetchItemBodySection{Part: item.Part, Partial: item.Partial, Peek: item.Peek}
}

// BinarySectionSize is BinarySection for a BINARY.SIZE item.
func (cmd *FetchWriter) BinarySectionSize(item *imap.FetchItemBinarySectionSize) *imap.FetchItemBodySection {
	if section := cmd.options.binarySize[item]; section != nil {
		return section
	}
	return &imap.FetchItemBodySection{Part: item.Part}
}

// ErrUnknownCTE is returned by WriteBinary for a section whose
// Content-Transfer-Encoding it cannot decode; the command then fails
// with NO [UNKNOWN-CTE] (RFC 9051 §6.4.5, as RFC 3516).
var ErrUnknownCTE = errors.New("imapserver: unknown content transfer encoding")

// WriteBinary writes a BINARY section (see FetchWriter.BinarySection)
// of a message to w, without its partial range (see SectionWindow): the
// part's content with its transfer encoding decoded (RFC 3516; RFC 9051
// §6.4.5), charset left as it is. It streams, as WriteBodySection does.
// Header sections (HEADER, HEADER.FIELDS[.NOT], MIME) are BODY's. TEXT
// is the part's body, decoded when it is a leaf (a message/rfc822 part
// is opened first, as BODY's TEXT does): so BINARY[TEXT] of a
// single-part message is its decoded content, and TEXT of a multipart
// is as stored. BINARY[] is the message's header and its body, decoded
// when it is a leaf. A part that does not exist is empty. A part in an
// encoding it cannot decode gives ErrUnknownCTE before anything is
// written; otherwise the error is w's.
//
// mailyard: streaming form of the library's ExtractBinary.
func WriteBinary(w io.Writer, r io.Reader, section *imap.FetchItemBodySection) error {
	switch section.Specifier {
	case imap.PartSpecifierHeader, imap.PartSpecifierMIME:
		return WriteBodySection(w, r, section)
	}
	br := bufio.NewReader(r)
	block, header, err := msgheader.ReadHeader(br)
	if err != nil {
		return nil
	}
	parentMediaType, header, body, leaf := findMessagePart(header, br, section.Part)
	if body == nil {
		return nil
	}
	if section.Specifier == imap.PartSpecifierText && len(section.Part) > 0 && !leaf {
		_, header, body = openMessagePart(header, body, parentMediaType)
	}

	// go-message leaves a multipart's encoding alone (RFC 2046 §5.1: only
	// 7bit, 8bit or binary). Given the encoding alone, it converts no
	// charset.
	if mediaType, _, _ := (&gomessage.Header{Header: header}).ContentType(); !strings.HasPrefix(mediaType, "multipart/") {
		var cte gomessage.Header
		cte.Set("Content-Transfer-Encoding", header.Get("Content-Transfer-Encoding"))
		e, err := gomessage.New(cte, body)
		if gomessage.IsUnknownEncoding(err) {
			return ErrUnknownCTE
		}
		body = e.Body
	}
	ew := &errWriter{w: w}
	if len(section.Part) == 0 && section.Specifier == imap.PartSpecifierNone {
		if _, err := ew.Write(block); err != nil {
			return err
		}
	}
	iobuf.Copy(ew, body)
	return ew.err
}

// readFetchModifiers reads the parenthesized fetch-modifier list (RFC 7162
// §7):
//
//	fetch-modifier =/ chgsince-fetch-mod / rexpunges-fetch-mod
//	chgsince-fetch-mod = "CHANGEDSINCE" SP mod-sequence-value
//	rexpunges-fetch-mod = "VANISHED"
func readFetchModifiers(dec *imapwire.Decoder, options *imap.FetchOptions) (vanished bool, err error) {
	var changedSince bool
	n := 0
	err = dec.ExpectList(func() error {
		n++
		var name string
		if !dec.ExpectAtom(&name) {
			return dec.Err()
		}
		switch strings.ToUpper(name) {
		case "CHANGEDSINCE":
			if changedSince {
				return newClientBugError("CHANGEDSINCE given twice")
			}
			changedSince = true
			if !dec.ExpectSP() {
				return dec.Err()
			}
			if err := expectNonZeroModSeq(dec, &options.ChangedSince); err != nil {
				return err
			}
			// RFC 7162 §3.1.4.1: CHANGEDSINCE implies the MODSEQ item.
			options.ModSeq = true
		case "VANISHED":
			vanished = true
		default:
			return newClientBugError("Unknown FETCH modifier")
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	if n == 0 {
		return false, newClientBugError("Empty FETCH modifier list")
	}
	if vanished && !changedSince {
		// RFC 7162 §3.2.6.
		return false, newClientBugError("VANISHED requires CHANGEDSINCE")
	}
	return vanished, nil
}

// CreateMessage writes a FETCH response for a message.
//
// FetchResponseWriter.Close must be called.
func (cmd *FetchWriter) CreateMessage(seqNum uint32) *FetchResponseWriter {
	enc := newResponseEncoder(cmd.conn)
	enc.Atom("*").SP().Number(seqNum).SP().Atom("FETCH").SP().Special('(')
	return &FetchResponseWriter{enc: enc, options: cmd.options}
}

// FetchResponseWriter writes a single FETCH response for a message.
type FetchResponseWriter struct {
	enc     *responseEncoder
	options fetchWriterOptions

	hasItem bool
	// err is the first item that could not be written (mailyard).
	err error
}

func (w *FetchResponseWriter) writeItemSep() {
	if w.hasItem {
		w.enc.SP()
	}
	w.hasItem = true
}

// WriteUID writes the message's UID.
func (w *FetchResponseWriter) WriteUID(uid imap.UID) {
	w.writeItemSep()
	w.enc.Atom("UID").SP().UID(uid)
}

// WriteFlags writes the message's flags.
func (w *FetchResponseWriter) WriteFlags(flags []imap.Flag) {
	w.writeItemSep()
	w.enc.Atom("FLAGS").SP().List(len(flags), func(i int) {
		w.enc.Flag(flags[i])
	})
}

// WriteModSeq writes the message's mod-sequence (RFC 7162 §3.1.4.2).
//
// mailyard: added for CONDSTORE.
func (w *FetchResponseWriter) WriteModSeq(modSeq uint64) {
	w.writeItemSep()
	w.enc.Atom("MODSEQ").SP().Special('(').ModSeq(modSeq).Special(')')
}

// WriteRFC822Size writes the message's full size.
func (w *FetchResponseWriter) WriteRFC822Size(size int64) {
	w.writeItemSep()
	w.enc.Atom("RFC822.SIZE").SP().Number64(size)
}

// WriteInternalDate writes the message's internal date.
func (w *FetchResponseWriter) WriteInternalDate(t time.Time) {
	w.writeItemSep()
	w.enc.Atom("INTERNALDATE").SP().String(t.Format(proto.DateTimeLayout))
}

// WriteBodySection writes a body section.
//
// The returned io.WriteCloser must be closed before writing any more message
// data items.
func (w *FetchResponseWriter) WriteBodySection(section *imap.FetchItemBodySection, size int64) io.WriteCloser {
	w.writeItemSep()
	enc := w.enc.Encoder

	if obs, ok := w.options.obsolete[section]; ok {
		enc.Atom(obs)
	} else {
		writeItemBodySection(enc, section)
	}

	enc.SP()
	return nulFreeWriter{w.enc.Literal(size)}
}

// nulFreeWriter writes NUL as 0x80, which keeps the literal's length:
// a literal carries no NUL (RFC 9051 §4.3); a message with one is sent
// as Dovecot sends it. BINARY's literal8 carries NUL as it is (RFC 3516
// §4.2).
//
// mailyard: added.
type nulFreeWriter struct{ io.WriteCloser }

func (w nulFreeWriter) Write(p []byte) (int, error) {
	if bytes.IndexByte(p, 0) < 0 {
		return w.WriteCloser.Write(p)
	}
	var buf [4096]byte
	written := 0
	for len(p) > 0 {
		n := copy(buf[:], p)
		for i, b := range buf[:n] {
			if b == 0 {
				buf[i] = 0x80
			}
		}
		k, err := w.WriteCloser.Write(buf[:n])
		written += k
		if err != nil {
			return written, err
		}
		p = p[n:]
	}
	return written, nil
}

func writeItemBodySection(enc *imapwire.Encoder, section *imap.FetchItemBodySection) {
	enc.Atom("BODY")
	writeSection(enc, section)
	writePartialOrigin(enc, section.Partial)
}

// writePartialOrigin writes the origin octet of a partial fetch's
// response ("<" number ">"), if it is one.
//
// mailyard: shared by BODY and BINARY.
func writePartialOrigin(enc *imapwire.Encoder, partial *imap.SectionPartial) {
	if partial != nil {
		enc.Special('<').Number(uint32(partial.Offset)).Special('>')
	}
}

// writeSection writes a section in brackets, without the partial range.
//
// mailyard: split from writeItemBodySection for BINARY's section-text.
func writeSection(enc *imapwire.Encoder, section *imap.FetchItemBodySection) {
	enc.Special('[')
	writeSectionPart(enc, section.Part)
	if len(section.Part) > 0 && section.Specifier != imap.PartSpecifierNone {
		enc.Special('.')
	}
	if section.Specifier != imap.PartSpecifierNone {
		enc.Atom(string(section.Specifier))

		var headerList []string
		if len(section.HeaderFields) > 0 {
			headerList = section.HeaderFields
			enc.Atom(".FIELDS")
		} else if len(section.HeaderFieldsNot) > 0 {
			headerList = section.HeaderFieldsNot
			enc.Atom(".FIELDS.NOT")
		}

		if len(headerList) > 0 {
			enc.SP().List(len(headerList), func(i int) {
				enc.String(headerList[i])
			})
		}
	}
	enc.Special(']')
}

// WriteBinarySection writes a binary section.
//
// The returned io.WriteCloser must be closed before writing any more message
// data items.
func (w *FetchResponseWriter) WriteBinarySection(section *imap.FetchItemBinarySection, size int64) io.WriteCloser {
	w.writeItemSep()
	enc := w.enc.Encoder

	enc.Atom("BINARY")
	writeSectionBinary(enc, section.Part, w.options.binary[section]) // mailyard
	// mailyard: the origin of a partial fetch, as for BODY (RFC 3516 §6
	// and RFC 9051 §7.5.2: "BINARY" section-binary ["<" number ">"]).
	writePartialOrigin(enc, section.Partial)
	enc.SP()
	enc.Special('~') // indicates literal8
	return w.enc.Literal(size)
}

// WriteBinarySectionSize writes a binary section size.
func (w *FetchResponseWriter) WriteBinarySectionSize(section *imap.FetchItemBinarySectionSize, size uint32) {
	w.writeItemSep()
	enc := w.enc.Encoder

	enc.Atom("BINARY.SIZE")
	writeSectionBinary(enc, section.Part, w.options.binarySize[section]) // mailyard
	enc.SP().Number(size)
}

// writeSectionBinary writes the section of a BINARY item: the section
// read with it (see readSectionBinary), or else its part numbers.
//
// mailyard: added for BINARY's section-text.
func writeSectionBinary(enc *imapwire.Encoder, part []int, section *imap.FetchItemBodySection) {
	if section == nil {
		section = &imap.FetchItemBodySection{Part: part}
	}
	writeSection(enc, section)
}

// WriteEnvelope writes the message's envelope.
func (w *FetchResponseWriter) WriteEnvelope(envelope *Envelope) {
	w.writeItemSep()
	enc := w.enc.Encoder
	enc.Atom("ENVELOPE").SP()
	writeEnvelope(enc, envelope)
}

// WriteBodyStructure writes the message's body structure (either BODYSTRUCTURE
// or BODY).
//
// mailyard: a structure that cannot be written (a part of an unknown
// type, a multipart without parts) is not: Close returns the error, and
// the command ends with NO [SERVERBUG]. Extension data that the
// structure lacks is left out, as body-type-1part and body-type-mpart
// allow (RFC 9051 §9). Upstream panicked in both cases.
func (w *FetchResponseWriter) WriteBodyStructure(bs imap.BodyStructure) {
	if err := checkBodyStructure(bs); err != nil {
		if w.err == nil {
			w.err = err
		}
		return
	}

	if w.options.bodyStructure.nonExtended {
		w.writeBodyStructure(bs, false)
	}

	if w.options.bodyStructure.extended {
		w.writeBodyStructure(bs, true)
	}
}

// checkBodyStructure returns an error if bs cannot be written: it holds
// a part that is nil or of an unknown type, or a multipart without
// parts, which body-type-mpart does not allow (RFC 9051 §9).
//
// mailyard: added.
func checkBodyStructure(bs imap.BodyStructure) error {
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		if bs == nil {
			break
		}
		if msg := bs.MessageRFC822; msg != nil {
			_, body := messageEnvelope(msg)
			return checkBodyStructure(body)
		}
		return nil
	case *imap.BodyStructureMultiPart:
		if bs == nil {
			break
		}
		if len(bs.Children) == 0 {
			return fmt.Errorf("imapserver: body structure: multipart/%s without parts", bs.Subtype)
		}
		for _, child := range bs.Children {
			if err := checkBodyStructure(child); err != nil {
				return err
			}
		}
		return nil
	}
	return fmt.Errorf("imapserver: body structure: unknown part type %T", bs)
}

func (w *FetchResponseWriter) writeBodyStructure(bs imap.BodyStructure, extended bool) {
	item := "BODY"
	if extended {
		item = "BODYSTRUCTURE"
	}

	w.writeItemSep()
	enc := w.enc.Encoder
	enc.Atom(item).SP()
	writeBodyStructure(enc, bs, extended)
}

// Close closes the FETCH message writer.
func (w *FetchResponseWriter) Close() error {
	if w.enc == nil {
		return fmt.Errorf("imapserver: FetchResponseWriter already closed")
	}
	err := w.enc.Special(')').CRLF()
	w.enc.end()
	w.enc = nil
	if w.err != nil {
		return w.err
	}
	return err
}

// mailyard: the ENVELOPE is written from the header's strings as they
// are (RFC 9051 §7.5.2); see envelope.go.
func writeEnvelope(enc *imapwire.Encoder, envelope *Envelope) {
	if envelope == nil {
		envelope = new(Envelope)
	}
	enc.Special('(')
	writeEnvelopeString(enc, envelope.Date)
	enc.SP()
	writeEnvelopeString(enc, envelope.Subject)
	for _, l := range [][]Address{envelope.From, envelope.Sender, envelope.ReplyTo, envelope.To, envelope.Cc, envelope.Bcc} {
		enc.SP()
		writeAddressList(enc, l)
	}
	enc.SP()
	writeEnvelopeString(enc, envelope.InReplyTo)
	enc.SP()
	writeEnvelopeString(enc, envelope.MessageID)
	enc.Special(')')
}

// writeEnvelopeString writes a header string, or NIL for none. Raw
// 8-bit text (RFC 6532 headers) goes as it is to a client that has
// enabled UTF8=ACCEPT and as an RFC 2047 encoded-word to others, which
// expect ASCII there; ASCII text, encoded-words included, is unchanged.
func writeEnvelopeString(enc *imapwire.Encoder, s string) {
	// mailyard: a NUL would be hidden in an encoded-word as "=00"; it
	// becomes U+FFFD first, as enc.String does (RFC 9051 §4.3).
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if !enc.QuotedUTF8 {
		s = mime.QEncoding.Encode("utf-8", s)
	}
	writeNString(enc, s)
}

func writeAddressList(enc *imapwire.Encoder, l []Address) {
	if len(l) == 0 {
		enc.NIL()
		return
	}

	enc.List(len(l), func(i int) {
		addr := l[i]
		enc.Special('(')
		writeEnvelopeString(enc, addr.Name)
		enc.SP()
		writeNString(enc, addr.ADL)
		enc.SP()
		writeNString(enc, addr.Mailbox)
		enc.SP()
		writeNString(enc, addr.Host)
		enc.Special(')')
	})
}

func writeNString(enc *imapwire.Encoder, s string) {
	if s == "" {
		enc.NIL()
	} else {
		enc.String(s)
	}
}

func writeSectionPart(enc *imapwire.Encoder, part []int) {
	if len(part) == 0 {
		return
	}

	var l []string
	for _, num := range part {
		l = append(l, fmt.Sprintf("%v", num))
	}
	enc.Atom(strings.Join(l, "."))
}

func writeBodyStructure(enc *imapwire.Encoder, bs imap.BodyStructure, extended bool) {
	enc.Special('(')
	switch bs := bs.(type) {
	case *imap.BodyStructureSinglePart:
		writeBodyType1part(enc, bs, extended)
	case *imap.BodyStructureMultiPart:
		writeBodyTypeMpart(enc, bs, extended)
	default:
		// mailyard: not reached, checkBodyStructure refuses it (upstream
		// panicked); NIL keeps the line well-formed.
		enc.NIL()
	}
	enc.Special(')')
}

func writeBodyType1part(enc *imapwire.Encoder, bs *imap.BodyStructureSinglePart, extended bool) {
	enc.String(bs.Type).SP().String(bs.Subtype).SP()
	writeBodyFldParam(enc, bs.Params)
	enc.SP()
	writeNString(enc, bs.ID)
	enc.SP()
	writeNString(enc, bs.Description)
	enc.SP()
	if bs.Encoding == "" {
		enc.String("7bit")
	} else {
		// Outlook for iOS chokes on upper-case encodings
		enc.String(strings.ToLower(bs.Encoding))
	}
	enc.SP().Number(bs.Size)

	if msg := bs.MessageRFC822; msg != nil {
		env, body := messageEnvelope(msg) // mailyard
		enc.SP()
		writeEnvelope(enc, env)
		enc.SP()
		writeBodyStructure(enc, body, extended)
		enc.SP().Number64(msg.NumLines)
	} else if text := bs.Text; text != nil {
		enc.SP().Number64(text.NumLines)
	}

	ext := bs.Extended
	if !extended || ext == nil { // mailyard: none to write
		return
	}

	enc.SP()
	enc.NIL() // MD5
	enc.SP()
	writeBodyFldDsp(enc, ext.Disposition)
	enc.SP()
	writeBodyFldLang(enc, ext.Language)
	enc.SP()
	writeNString(enc, ext.Location)
}

func writeBodyTypeMpart(enc *imapwire.Encoder, bs *imap.BodyStructureMultiPart, extended bool) {
	// mailyard: checkBodyStructure has made sure there is a child
	// (upstream panicked here).
	for _, child := range bs.Children {
		// ABNF for body-type-mpart doesn't have SP between body entries, and
		// Outlook for iOS chokes on SP
		writeBodyStructure(enc, child, extended)
	}

	enc.SP().String(bs.Subtype)

	ext := bs.Extended
	if !extended || ext == nil { // mailyard: none to write
		return
	}

	enc.SP()
	writeBodyFldParam(enc, ext.Params)
	enc.SP()
	writeBodyFldDsp(enc, ext.Disposition)
	enc.SP()
	writeBodyFldLang(enc, ext.Language)
	enc.SP()
	writeNString(enc, ext.Location)
}

func writeBodyFldParam(enc *imapwire.Encoder, params map[string]string) {
	if len(params) == 0 {
		enc.NIL()
		return
	}

	var l []string
	for k := range params {
		l = append(l, k)
	}
	sort.Strings(l)

	enc.List(len(l), func(i int) {
		k := l[i]
		v := params[k]
		enc.String(k).SP().String(v)
	})
}

func writeBodyFldDsp(enc *imapwire.Encoder, disp *imap.BodyStructureDisposition) {
	if disp == nil {
		enc.NIL()
		return
	}

	enc.Special('(').String(disp.Value).SP()
	writeBodyFldParam(enc, disp.Params)
	enc.Special(')')
}

func writeBodyFldLang(enc *imapwire.Encoder, l []string) {
	if len(l) == 0 {
		enc.NIL()
	} else {
		enc.List(len(l), func(i int) {
			enc.String(l[i])
		})
	}
}

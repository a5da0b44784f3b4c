package imapserver

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"math"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/internal/iobuf"
	"github.com/mailyard/mailyard/internal/msgheader"
)

// MaxMIMEDepth is how deep BODYSTRUCTURE and section numbers go into a
// message: the message itself is at depth 1, each multipart part and
// each message/rfc822 part's message one deeper. A multipart or
// message/* part at this depth is not opened: BODYSTRUCTURE describes
// it as an application/octet-stream leaf holding its whole body, and its
// section numbers address it as a leaf. Dovecot 2.3 does the same with
// the same depth (message-parser.h,
// MESSAGE_PARSER_DEFAULT_MAX_NESTED_MIME_PARTS; checked against 2.3.19).
// The bound keeps one hostile message from costing a stack and a reader
// per level, and from failing a FETCH over the whole mailbox.
const MaxMIMEDepth = 100

// MaxMIMEParts bounds the parts BODYSTRUCTURE describes in one message,
// as Dovecot's MESSAGE_PARSER_DEFAULT_MAX_TOTAL_MIME_PARTS: a multipart
// lists no more parts once the message has this many.
const MaxMIMEParts = 10000

// WriteBodySection writes a section of a message body to w: the section
// item names, without its partial range (see SectionWindow). It streams:
// only header blocks are held. A section that does not exist is empty; a
// malformed message gives what could be read of the section before the
// fault (RFC 9051 §7.5.2 asks for a best effort). The error is w's.
//
// mailyard: streaming form of the library's ExtractBodySection.
func WriteBodySection(w io.Writer, r io.Reader, item *imap.FetchItemBodySection) error {
	ew := &errWriter{w: w}
	writeBodySection(ew, r, item)
	return ew.err
}

func writeBodySection(w io.Writer, r io.Reader, item *imap.FetchItemBodySection) {
	// mailyard: block is the header as stored (msgheader.ReadHeader), written as
	// it is unless fields are picked; nil for a part's MIME header.
	br := bufio.NewReader(r)
	block, header, err := msgheader.ReadHeader(br)
	if err != nil {
		return
	}
	parentMediaType, header, body, leaf := findMessagePart(header, br, item.Part)
	if body == nil {
		return
	}

	if len(item.Part) > 0 {
		block = nil
		if !leaf {
			switch item.Specifier {
			case imap.PartSpecifierHeader, imap.PartSpecifierText:
				block, header, body = openMessagePart(header, body, parentMediaType)
			}
		}
	}

	// Filter header fields
	if len(item.HeaderFields) > 0 {
		keep := make(map[string]struct{})
		for _, k := range item.HeaderFields {
			keep[strings.ToLower(k)] = struct{}{}
		}
		for field := header.Fields(); field.Next(); {
			if _, ok := keep[strings.ToLower(field.Key())]; !ok {
				field.Del()
			}
		}
	}
	for _, k := range item.HeaderFieldsNot {
		header.Del(k)
	}

	writeHeader := true
	switch item.Specifier {
	case imap.PartSpecifierNone:
		writeHeader = len(item.Part) == 0
	case imap.PartSpecifierText:
		writeHeader = false
	}
	switch {
	case !writeHeader:
	case block != nil && len(item.HeaderFields) == 0 && len(item.HeaderFieldsNot) == 0:
		if _, err := w.Write(block); err != nil {
			return
		}
	default:
		if err := textproto.WriteHeader(w, header); err != nil {
			return
		}
	}

	switch item.Specifier {
	case imap.PartSpecifierNone, imap.PartSpecifierText:
		// Pooled buffer: neither end of the copy lends one.
		iobuf.Copy(w, body)
	}
}

// errWriter keeps the first error of w, which the section writers return
// as theirs: read errors of a malformed message end a section early
// without failing it, write errors fail it.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) Write(p []byte) (int, error) {
	if e.err != nil {
		return 0, e.err
	}
	n, err := e.w.Write(p)
	e.err = err
	return n, err
}

// ErrWindowFull is returned by a SectionWindow's Write once the window
// has all it wants, so that a section writer stops reading.
var ErrWindowFull = errors.New("imapserver: section window full")

// SectionWindow passes to W the bytes of a section that a partial fetch
// (RFC 9051 §6.4.5, "<" offset "." size ">") asks for: it skips Skip
// bytes, then writes up to N, then fails with ErrWindowFull.
type SectionWindow struct {
	W       io.Writer
	Skip, N int64
}

// NewSectionWindow returns the window of partial, or of the whole
// section when partial is nil.
func NewSectionWindow(w io.Writer, partial *imap.SectionPartial) *SectionWindow {
	if partial == nil {
		return &SectionWindow{W: w, N: math.MaxInt64}
	}
	return &SectionWindow{W: w, Skip: partial.Offset, N: partial.Size}
}

func (sw *SectionWindow) Write(p []byte) (int, error) {
	total := len(p)
	if sw.Skip > 0 {
		k := min(int64(len(p)), sw.Skip)
		p = p[k:]
		sw.Skip -= k
	}
	if len(p) > 0 && sw.N == 0 {
		return 0, ErrWindowFull
	}
	if int64(len(p)) > sw.N {
		p = p[:sw.N]
	}
	if len(p) > 0 {
		n, err := sw.W.Write(p)
		sw.N -= int64(n)
		if err != nil {
			return 0, err
		}
	}
	return total, nil
}

// findMessagePart finds the part partPath names. leaf reports that the
// part was not opened as a multipart or message because it is at
// MaxMIMEDepth; its body is then the part's whole body, as
// BODYSTRUCTURE describes it.
func findMessagePart(header textproto.Header, body io.Reader, partPath []int) (string, textproto.Header, io.Reader, bool) {
	// First part of non-multipart message refers to the message itself
	msgHeader := gomessage.Header{Header: header}
	mediaType, _, _ := msgHeader.ContentType()
	if !strings.HasPrefix(mediaType, "multipart/") && len(partPath) > 0 && partPath[0] == 1 {
		partPath = partPath[1:]
	}

	var parentMediaType string
	depth := 1 // mailyard: of header's part, see MaxMIMEDepth
	leaf := false
	for i := 0; i < len(partPath); i++ {
		partNum := partPath[i]

		if !leaf && depth < MaxMIMEDepth {
			var opened bool
			_, header, body, opened = openPart(header, body, parentMediaType)
			if opened {
				depth++
			}
		}
		msgHeader := gomessage.Header{Header: header}
		mediaType, typeParams, _ := msgHeader.ContentType()
		leaf = leaf || depth >= MaxMIMEDepth
		if leaf || !strings.HasPrefix(mediaType, "multipart/") {
			if partNum != 1 {
				return "", textproto.Header{}, nil, false
			}
			continue
		}

		mr := NewMultipartReader(body, typeParams["boundary"])
		found := false
		for j := 1; j <= partNum; j++ {
			p, err := mr.NextPart()
			if err != nil {
				return "", textproto.Header{}, nil, false
			}

			if j == partNum {
				parentMediaType = mediaType
				header = p.Header
				body = p
				found = true
				depth++
				break
			}
		}
		if !found {
			return "", textproto.Header{}, nil, false
		}
	}

	return parentMediaType, header, body, leaf || depth >= MaxMIMEDepth
}

// openMessagePart is openPart without its opened.
func openMessagePart(header textproto.Header, body io.Reader, parentMediaType string) ([]byte, textproto.Header, io.Reader) {
	block, header, body, _ := openPart(header, body, parentMediaType)
	return block, header, body
}

// openPart opens a message/rfc822 or message/global part (or a part of
// a multipart/digest without Content-Type): the header block and fields
// of the message it holds, its body, and opened true. Other parts are
// returned as they are, with a nil block.
func openPart(header textproto.Header, body io.Reader, parentMediaType string) ([]byte, textproto.Header, io.Reader, bool) {
	msgHeader := gomessage.Header{Header: header}
	mediaType, _, _ := msgHeader.ContentType()
	if !msgHeader.Has("Content-Type") && parentMediaType == "multipart/digest" {
		mediaType = "message/rfc822"
	}
	if mediaType == "message/rfc822" || mediaType == "message/global" {
		br := bufio.NewReader(body)
		block, header, _ := msgheader.ReadHeader(br)
		return block, header, br, true
	}
	return nil, header, body, false
}

// ExtractBodyStructure extracts the structure of a message body.
//
// mailyard: it streams, holding only header blocks: sizes and line
// counts are counted as the body goes by. It goes MaxMIMEDepth deep and
// describes at most MaxMIMEParts parts.
func ExtractBodyStructure(r io.Reader) imap.BodyStructure {
	br := bufio.NewReader(r)
	_, header, _ := msgheader.ReadHeader(br)
	return (&structureWalk{}).extract(header, br, 1)
}

// structureWalk is the state of one ExtractBodyStructure.
type structureWalk struct {
	parts int
}

func (sw *structureWalk) extract(rawHeader textproto.Header, r io.Reader, depth int) imap.BodyStructure {
	sw.parts++
	header := gomessage.Header{Header: rawHeader}

	mediaType, typeParams, _ := header.ContentType()
	primaryType, subType, _ := strings.Cut(mediaType, "/")
	isMessage := mediaType == "message/rfc822" || mediaType == "message/global"
	if depth >= MaxMIMEDepth && (primaryType == "multipart" || isMessage) {
		// mailyard: too deep to open (see MaxMIMEDepth): a leaf of
		// its whole body, as Dovecot describes it.
		primaryType, subType, isMessage = "application", "octet-stream", false
	}

	if primaryType == "multipart" {
		bs := &imap.BodyStructureMultiPart{Subtype: subType}
		mr := NewMultipartReader(r, typeParams["boundary"])
		for sw.parts < MaxMIMEParts {
			part, _ := mr.NextPart()
			if part == nil {
				break
			}
			bs.Children = append(bs.Children, sw.extract(part.Header, part, depth+1))
		}
		if len(bs.Children) == 0 {
			// mailyard: body-type-mpart needs at least one body (RFC 9051
			// §9); a multipart without parts (no or wrong boundary) gets
			// one empty text/plain part. Done here rather than by the
			// caller, which cannot see into a message/rfc822 part's
			// structure (see envelopedBody).
			bs.Children = []imap.BodyStructure{&imap.BodyStructureSinglePart{
				Type: "text", Subtype: "plain", Params: map[string]string{"charset": "us-ascii"},
				Text: &imap.BodyStructureText{}, Extended: &imap.BodyStructureSinglePartExt{},
			}}
		}
		bs.Extended = &imap.BodyStructureMultiPartExt{
			Params:      typeParams,
			Disposition: getContentDisposition(header),
			Language:    getContentLanguage(header),
			Location:    header.Get("Content-Location"),
		}
		return bs
	}

	// mailyard: the body streams through a counter rather than being
	// read whole.
	body := &lineCounter{r: r}
	bs := &imap.BodyStructureSinglePart{
		Type:        primaryType,
		Subtype:     subType,
		Params:      typeParams,
		ID:          header.Get("Content-Id"),
		Description: header.Get("Content-Description"),
		Encoding:    header.Get("Content-Transfer-Encoding"),
	}
	var msg *imap.BodyStructureMessageRFC822
	if isMessage {
		br := bufio.NewReader(body)
		block, childHeader, _ := msgheader.ReadHeader(br)
		// mailyard: the part's ENVELOPE rides with its structure, as
		// imap.Envelope cannot hold it (see envelope.go).
		msg = &imap.BodyStructureMessageRFC822{
			BodyStructure: &envelopedBody{
				BodyStructure: sw.extract(childHeader, br, depth+1),
				envelope:      ExtractEnvelope(block),
			},
		}
	}
	io.Copy(io.Discard, body)
	bs.Size = uint32(body.n)
	if msg != nil {
		msg.NumLines = body.lines
		bs.MessageRFC822 = msg
	}
	if primaryType == "text" {
		// mailyard: RFC 2045 §5.2's default charset, said explicitly.
		if _, ok := typeParams["charset"]; !ok {
			if bs.Params == nil {
				bs.Params = make(map[string]string)
			}
			bs.Params["charset"] = "us-ascii"
		}
		bs.Text = &imap.BodyStructureText{NumLines: body.lines}
	}
	bs.Extended = &imap.BodyStructureSinglePartExt{
		Disposition: getContentDisposition(header),
		Language:    getContentLanguage(header),
		Location:    header.Get("Content-Location"),
	}
	return bs
}

// lineCounter counts the bytes and the LFs read through it.
type lineCounter struct {
	r     io.Reader
	n     int64
	lines int64
}

func (c *lineCounter) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.lines += int64(bytes.Count(p[:n], []byte("\n")))
	return n, err
}

func getContentDisposition(header gomessage.Header) *imap.BodyStructureDisposition {
	disp, dispParams, _ := header.ContentDisposition()
	if disp == "" {
		return nil
	}
	return &imap.BodyStructureDisposition{
		Value:  disp,
		Params: dispParams,
	}
}

func getContentLanguage(header gomessage.Header) []string {
	v := header.Get("Content-Language")
	if v == "" {
		return nil
	}
	// TODO: handle CFWS
	l := strings.Split(v, ",")
	for i, lang := range l {
		l[i] = strings.TrimSpace(lang)
	}
	return l
}

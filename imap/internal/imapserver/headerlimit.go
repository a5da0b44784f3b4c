package imapserver

import (
	"bufio"
	"bytes"
	"io"

	"github.com/emersion/go-message/textproto"
)

// MaxHeaderBlockBytes and MaxHeaderBlockLines bound one header block
// (a message's, or a MIME part's) that is parsed for BODYSTRUCTURE,
// sections and SEARCH. go-message reads a header block whole, at about
// 80 bytes of memory per byte of short fields: an 8 MiB part header,
// which anyone can send through the MX, would cost 640 MiB. Past the
// bounds, a message's own header is cut (the rest is read as its body),
// and a multipart ends with the part: it has the fields read within the
// bounds and an empty body. Go's mime/multipart bounds part headers too
// (10 MiB, 1000 fields).
const (
	MaxHeaderBlockBytes = 256 << 10
	MaxHeaderBlockLines = 2000
)

// ReadHeader reads the header block at the start of r, within the
// bounds above, and returns it with a reader of what follows.
func ReadHeader(r io.Reader) (textproto.Header, *bufio.Reader, error) {
	lim := &headerLimiter{r: r, inHeader: true, prevNL: "\n"}
	br := bufio.NewReader(lim)
	h, err := textproto.ReadHeader(br)
	lim.lift()
	return h, br, err
}

// NewMultipartReader is textproto.NewMultipartReader over r with its part
// headers bounded as above.
func NewMultipartReader(r io.Reader, boundary string) *textproto.MultipartReader {
	lim := &headerLimiter{r: r, dashBoundary: []byte("--" + boundary), prevNL: "\r\n"}
	return textproto.NewMultipartReader(lim, boundary)
}

// headerLimiter passes r through and follows its lines to find the
// header blocks go-message will parse: the one at the start (no
// dashBoundary), or each one after a multipart boundary delimiter line
// as textproto.MultipartReader recognizes it (RFC 2046 §5.1.1: "--"
// boundary, optional LWSP, the line ending of the first delimiter line;
// after the first, preceded by that line ending). Once a block passes
// the bounds, it reads as the end of the stream: for a multipart, for
// good; for a message header, until lift.
type headerLimiter struct {
	r            io.Reader
	dashBoundary []byte

	inHeader     bool
	n, lines     int    // of the header block so far
	last         byte   // the last byte of the current line so far
	line         []byte // the current line's first bytes
	lineLen      int    // the current line's length so far
	prevNL       string // the line ending of the previous line
	nl           string // the delimiters' line ending, once one was seen
	ended        bool   // no more header blocks to follow
	full, lifted bool
	rest         []byte // read past the cut, for after lift
	restErr      error  // the error that came with rest
}

func (h *headerLimiter) Read(p []byte) (int, error) {
	switch {
	case h.full && !h.lifted:
		return 0, io.EOF
	case len(h.rest) > 0:
		n := copy(p, h.rest)
		h.rest = h.rest[n:]
		if len(h.rest) == 0 {
			return n, h.restErr
		}
		return n, nil
	}
	k, err := h.r.Read(p)
	if h.ended {
		return k, err
	}
	for i := 0; i < k; {
		j := bytes.IndexByte(p[i:k], '\n')
		end := k
		if j >= 0 {
			end = i + j + 1
		}
		if h.inHeader && h.n+end-i > MaxHeaderBlockBytes {
			return h.cut(p, i+MaxHeaderBlockBytes-h.n, k, err)
		}
		h.n += end - i
		if keep := len(h.dashBoundary) + 80; len(h.line) < keep {
			h.line = append(h.line, p[i:min(end, i+keep-len(h.line))]...)
		}
		if j < 0 {
			h.lineLen += end - i
			h.last = p[end-1]
			break
		}
		crlf := end-i >= 2 && p[end-2] == '\r' || end-i == 1 && h.lineLen > 0 && h.last == '\r'
		h.lineLen += end - i
		h.endLine(crlf)
		if h.full {
			return h.cut(p, end, k, err)
		}
		i = end
	}
	return k, err
}

// endLine classifies the line just read, which ends in CRLF or LF.
func (h *headerLimiter) endLine(crlf bool) {
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	line := h.line
	if h.lineLen > len(line) {
		line = nil // too long to be an empty line or a delimiter
	}
	switch {
	case h.inHeader:
		h.lines++
		if line != nil && len(line) == len(nl) {
			h.inHeader = false // the empty line ends the block
			h.ended = h.dashBoundary == nil
		} else if h.lines >= MaxHeaderBlockLines {
			h.full = true
		}
	case line == nil || h.dashBoundary == nil || !bytes.HasPrefix(line, h.dashBoundary):
	case bytes.HasPrefix(line[len(h.dashBoundary):], []byte("--")):
		// The close delimiter: go-message reads no further, so
		// neither does this.
		h.ended = true
	case string(skipLWSP(line[len(h.dashBoundary):])) != nl:
	case h.nl == "":
		// The first delimiter line sets the line ending, as
		// textproto.MultipartReader does.
		h.nl = nl
		h.startHeader()
	case nl == h.nl && (nl == "\n" || h.prevNL == "\r\n"):
		h.startHeader()
	}
	h.prevNL = nl
	h.line = h.line[:0]
	h.lineLen = 0
}

// cut ends the header block at p[at] of the k bytes read: what follows
// is kept for after lift.
func (h *headerLimiter) cut(p []byte, at, k int, err error) (int, error) {
	h.full = true
	h.rest = append(h.rest[:0], p[at:k]...)
	h.restErr = err
	if len(h.rest) == 0 && err != nil {
		h.restErr = nil
		return at, err
	}
	return at, nil
}

func (h *headerLimiter) startHeader() {
	h.inHeader = true
	h.n, h.lines = 0, 0
}

// lift ends the header at the start: what follows passes through.
func (h *headerLimiter) lift() {
	h.lifted = true
	h.ended = true
}

func skipLWSP(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t') {
		b = b[1:]
	}
	return b
}

package msgheader

import (
	"bufio"
	"bytes"
	"errors"
	"io"
)

// MaxBlockBytes and MaxBlockLines bound one header block (a message's,
// or a MIME part's) as ReadBlock reads it. Unbounded, the block is held
// whole, and its fields take several times its size again once parsed
// (ParseHeader: a textproto field, map entry and strings per field): an
// 8 MiB part header of short fields, which anyone can send through the
// MX, or a message that is all header, would be held and parsed whole on
// every IMAP FETCH and SEARCH. Past the bounds, the block is cut (after
// the last whole line within MaxBlockLines, at the byte within
// MaxBlockBytes) and the rest is read as the body of the message or
// part. Go's mime/multipart bounds part headers too (10 MiB, 1000
// fields).
const (
	MaxBlockBytes = 256 << 10
	MaxBlockLines = 2000
)

// ErrTooLarge: the header block holds more bytes than AppendBlock's
// bound.
var ErrTooLarge = errors.New("msgheader: header block too large")

// ReadBlock reads a header block from br: up to and including the first
// empty line, which ends the header (RFC 5322 §2.1), or to the end of the
// input for a message that is all header. A line that is not a header
// field does not end it. The block is cut at MaxBlockBytes and
// MaxBlockLines, the rest left in br as the body. Only a read error
// other than io.EOF is returned. The block is not nil, even when empty.
func ReadBlock(br *bufio.Reader) ([]byte, error) {
	return read([]byte{}, br, bounds{bytes: MaxBlockBytes, lines: MaxBlockLines})
}

// ReadBlockUntil is ReadBlock that also ends the block before a line for
// which stop is true, leaving that line in br: a multipart boundary ends
// a part's header (RFC 2046 §5.1.1: a part may be headers alone, without
// the empty line). Lines that do not fit br's buffer are not given to
// stop.
func ReadBlockUntil(br *bufio.Reader, stop func(line []byte) bool) ([]byte, error) {
	return read([]byte{}, br, bounds{bytes: MaxBlockBytes, lines: MaxBlockLines, stop: stop})
}

// ReadBlockMax is ReadBlock cut at max bytes and at no line count: for a
// caller that needs only the start of a long header (a DSN's copy of it,
// a Message-ID found in it).
func ReadBlockMax(br *bufio.Reader, max int) ([]byte, error) {
	return read([]byte{}, br, bounds{bytes: max})
}

// AppendBlock reads a whole header block from br, as ReadBlock does but
// not cut, and appends it to dst: dst may be a buffer kept for reuse. A
// block of more than max bytes is ErrTooLarge, with what br held of it
// partly read. A read error other than io.EOF is returned as it is.
func AppendBlock(dst []byte, br *bufio.Reader, max int) ([]byte, error) {
	return read(dst, br, bounds{bytes: max, strict: true})
}

// bounds are how a block is bounded: at most bytes of it (cut there, or
// ErrTooLarge if strict), at most lines whole lines (0: any number), and
// ended before a line for which stop is true.
type bounds struct {
	bytes, lines int
	strict       bool
	stop         func(line []byte) bool
}

func read(hdr []byte, br *bufio.Reader, b bounds) ([]byte, error) {
	start := len(hdr)
	lineStart, lines := start, 0
	for {
		if b.stop != nil && lineStart == len(hdr) {
			p, err := br.Peek(br.Size())
			if err != nil && err != io.EOF {
				return nil, err
			}
			if i := bytes.IndexByte(p, '\n'); i >= 0 {
				p = p[:i+1]
			}
			if len(p) > 0 && b.stop(p) {
				return hdr, nil
			}
		}
		room := b.bytes - (len(hdr) - start)
		if b.strict {
			room++ // one byte more than the bound tells a block too large
		} else if room <= 0 || b.lines > 0 && lines >= b.lines {
			return hdr, nil // cut, see MaxBlockBytes
		}
		chunk, err := nextChunk(br, room)
		switch {
		case err == io.EOF:
			return hdr, nil
		case err != nil:
			return nil, err
		}
		hdr = append(hdr, chunk...)
		br.Discard(len(chunk))
		if b.strict && len(hdr)-start > b.bytes {
			return nil, ErrTooLarge
		}
		if chunk[len(chunk)-1] != '\n' {
			continue // the same line goes on
		}
		if isBlankLine(hdr[lineStart:]) {
			return hdr, nil
		}
		lineStart = len(hdr)
		lines++
	}
}

// isBlankLine reports whether line, with its line end, is the empty line
// that ends a header: "\r\n" or "\n". A line "\r\r\n" is not empty (a CR
// before the CRLF is part of the line, as in Dovecot).
func isBlankLine(line []byte) bool {
	return len(line) == 1 && line[0] == '\n' || len(line) == 2 && line[0] == '\r' && line[1] == '\n'
}

// nextChunk returns the next bytes of br, up to max of them and up to
// and including the next LF if br holds one, without consuming them; a
// nil chunk with io.EOF at the end of the input. A chunk that does not
// end in LF is part of a line that goes on.
func nextChunk(br *bufio.Reader, max int) ([]byte, error) {
	if br.Buffered() == 0 {
		if _, err := br.Peek(1); err != nil {
			return nil, err
		}
	}
	b, _ := br.Peek(min(br.Buffered(), max))
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		b = b[:i+1]
	}
	return b, nil
}

package imapserver

import (
	"bufio"
	"bytes"
	"io"

	"github.com/emersion/go-message/textproto"
)

// mailyard: the one place that splits a message (or a message/rfc822
// part) into header and body, for BODY[HEADER], BODY[TEXT],
// HEADER.FIELDS, BINARY, BODYSTRUCTURE, ENVELOPE and SEARCH. Upstream used
// go-message's textproto.ReadHeader, which stops at the first line that
// is not a header field: the rest of the header then counted as body, or
// the section came out empty, while BODY[] showed the message.

// ReadHeaderBlock reads a header block from br: up to and including the
// first empty line, which ends the header (RFC 5322 §2.1), or to the end
// of the input for a message that is all header. A line that is not a
// header field (no colon, a control character or space in the name, white
// space at the start of the header) does not end it, as in Dovecot:
// BODY[HEADER] and BODY[TEXT] together are BODY[]. The block is cut at
// MaxHeaderBlockBytes and MaxHeaderBlockLines, the rest left in br as the
// body. Only a read error other than io.EOF is returned. The block is not
// nil, even when empty.
func ReadHeaderBlock(br *bufio.Reader) ([]byte, error) {
	return readHeaderBlockUntil(br, nil)
}

// readHeaderBlockUntil is ReadHeaderBlock that also ends the block before
// a line for which stop (if not nil) is true, leaving that line in br: a
// multipart boundary ends a part's header (RFC 2046 §5.1.1: a part may be
// headers alone, without the empty line). Lines that do not fit br's
// buffer are not given to stop.
func readHeaderBlockUntil(br *bufio.Reader, stop func(line []byte) bool) ([]byte, error) {
	hdr := []byte{}
	lineStart, lines := 0, 0
	for {
		if stop != nil && lineStart == len(hdr) {
			b, err := br.Peek(br.Size())
			if err != nil && err != io.EOF {
				return nil, err
			}
			if i := bytes.IndexByte(b, '\n'); i >= 0 {
				b = b[:i+1]
			}
			if len(b) > 0 && stop(b) {
				return hdr, nil
			}
		}
		if len(hdr) >= MaxHeaderBlockBytes || lines >= MaxHeaderBlockLines {
			return hdr, nil // mailyard: cut, see MaxHeaderBlockBytes
		}
		chunk, err := nextHeaderChunk(br, MaxHeaderBlockBytes-len(hdr))
		switch {
		case err == io.EOF:
			return hdr, nil
		case err != nil:
			return nil, err
		}
		hdr = append(hdr, chunk...)
		br.Discard(len(chunk))
		if chunk[len(chunk)-1] != '\n' {
			continue // the same line goes on
		}
		if line := hdr[lineStart:]; len(line) == 1 || len(line) == 2 && line[0] == '\r' {
			return hdr, nil
		}
		lineStart = len(hdr)
		lines++
	}
}

// ParseHeader returns the fields of a header block (as ReadHeaderBlock
// reads it), each with its raw bytes, so that textproto.WriteHeader gives
// them back as they were. Lines that are not fields are skipped, as for
// ENVELOPE (scanHeader): they are part of the block but of no field.
func ParseHeader(block []byte) textproto.Header {
	var fields [][]byte
	scanHeader(block, func(field, _, _ []byte) {
		if !bytes.HasSuffix(field, []byte("\n")) {
			// The last line of a message that is all header: ended, so
			// that a field written after it stays on its own line.
			field = append(field[:len(field):len(field)], '\r', '\n')
		}
		fields = append(fields, field)
	})
	var h textproto.Header
	// AddRaw puts each field before the others.
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw(fields[i])
	}
	return h
}

// ReadHeader reads a header block from br (ReadHeaderBlock) and parses
// it (ParseHeader); the body is what br holds after it.
func ReadHeader(br *bufio.Reader) (block []byte, h textproto.Header, err error) {
	block, err = ReadHeaderBlock(br)
	if err != nil {
		return nil, textproto.Header{}, err
	}
	return block, ParseHeader(block), nil
}

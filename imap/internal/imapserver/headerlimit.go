package imapserver

import (
	"bufio"
	"bytes"
)

// MaxHeaderBlockBytes and MaxHeaderBlockLines bound one header block (a
// message's, or a MIME part's) as ReadHeaderBlock reads it for
// BODYSTRUCTURE, sections and SEARCH. Unbounded, the block is held
// whole, and its fields take several times its size again once parsed
// (ParseHeader: a textproto field, map entry and strings per field):
// an 8 MiB part header of short fields, which anyone can send through
// the MX, or a message that is all header, would be held and parsed
// whole on every FETCH and SEARCH. Past the bounds, the block is cut
// (after the last whole line within MaxHeaderBlockLines, at the byte
// within MaxHeaderBlockBytes) and the rest is read as the body of the
// message or part; a multipart boundary still ends a part. Go's
// mime/multipart bounds part headers too (10 MiB, 1000 fields).
const (
	MaxHeaderBlockBytes = 256 << 10
	MaxHeaderBlockLines = 2000
)

// nextHeaderChunk returns the next bytes of br, up to max of them and up
// to and including the next LF if br holds one, without consuming them;
// a nil chunk with io.EOF at the end of the input. A chunk that does
// not end in LF is part of a line that goes on.
func nextHeaderChunk(br *bufio.Reader, max int) ([]byte, error) {
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

package smtp

import "io"

// lineNormalizer rewrites every bare CR and every bare LF of a message to
// CRLF while streaming it.
//
// Why: the DATA reader (dotReader) ends a message only at <CRLF>.<CRLF>,
// so the SMTP smuggling end-of-data variants ("\n.\n", "\n.\r\n",
// "\r.\r\n", ...) cannot split a message on the way in. They do survive as content,
// though, and a later hop that is lenient about line endings (a forward,
// a relay, an IMAP client re-submitting it) could then read them as the end
// of the message. RFC 5322 §2.3 forbids CR and LF outside CRLF in a
// message, so normalising costs nothing legitimate and leaves every stored
// message with one unambiguous line structure, where a "." line is plain
// text that any SMTP client dot-stuffs.
type lineNormalizer struct {
	src     io.Reader
	in      [4096]byte
	out     []byte // converted bytes not yet returned
	pending []byte // unread part of out
	prevCR  bool   // the last byte read was a CR whose LF has not been seen
	err     error
	// fixed counts the bare CRs and LFs rewritten.
	fixed int
}

func newLineNormalizer(src io.Reader) *lineNormalizer {
	return &lineNormalizer{src: src, out: make([]byte, 0, 2*4096+1)}
}

// Read implements io.Reader.
func (n *lineNormalizer) Read(p []byte) (int, error) {
	for len(n.pending) == 0 {
		if n.err != nil {
			return 0, n.err
		}
		k, err := n.src.Read(n.in[:])
		n.out = n.convert(n.out[:0], n.in[:k])
		if err != nil {
			if err == io.EOF && n.prevCR {
				n.out = append(n.out, '\n')
				n.prevCR = false
				n.fixed++
			}
			n.err = err
		}
		n.pending = n.out
	}
	c := copy(p, n.pending)
	n.pending = n.pending[c:]
	return c, nil
}

// convert appends the normalised form of b to dst. Each input byte yields
// at most two output bytes.
func (n *lineNormalizer) convert(dst, b []byte) []byte {
	for _, c := range b {
		switch c {
		case '\r':
			if n.prevCR {
				dst = append(dst, '\n') // the previous CR was bare
				n.fixed++
			}
			dst = append(dst, '\r')
			n.prevCR = true
		case '\n':
			if !n.prevCR {
				dst = append(dst, '\r') // bare LF
				n.fixed++
			}
			dst = append(dst, '\n')
			n.prevCR = false
		default:
			if n.prevCR {
				dst = append(dst, '\n') // bare CR
				n.fixed++
			}
			dst = append(dst, c)
			n.prevCR = false
		}
	}
	return dst
}

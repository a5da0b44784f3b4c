package dkim

import (
	"bytes"
	"hash"
	"strings"
)

// Canonicalisation (RFC 6376 §3.4), the one the signer and the verifier
// share: streaming, with no allocation per write, and with go-msgauth's
// treatment of line ends (a bare LF counts as CRLF, a bare CR is an
// ordinary character). go-msgauth is the independent check in the tests:
// TestCanonicalisationMatchesGoMsgauth and FuzzVerifyMatchesGoMsgauth
// verify its signatures with ours, TestSignVerifiesWithGoMsgauth and
// FuzzSignMatchesGoMsgauth verify ours with it and compare body hashes.

// Canonicalisation algorithm names (RFC 6376 §3.4, c= tag).
const (
	canonSimple  = "simple"
	canonRelaxed = "relaxed"
)

// bodyCanon writes the canonical form of a body into a hash. Write
// never fails; Close flushes what the end of the body decides (trailing
// empty lines are dropped in both algorithms).
type bodyCanon struct {
	h       hash.Hash
	relaxed bool
	out     [2048]byte
	n       int // bytes pending in out
	prevCR  bool
	// simple: held-back CRLFs (trailing empty lines are ignored) and a CR
	// that may start one.
	crlfs int
	// relaxed: held-back line-end bytes, a whitespace run, and whether
	// anything but line ends was written (an empty body stays empty).
	ends    []byte
	wsp     bool
	written bool
}

func (c *bodyCanon) reset(h hash.Hash, relaxed bool) {
	ends := c.ends[:0]
	if cap(ends) > 64<<10 {
		ends = nil // a body of many empty lines: do not keep its memory
	}
	*c = bodyCanon{h: h, relaxed: relaxed, ends: ends}
}

func (c *bodyCanon) emit(b byte) {
	if c.n == len(c.out) {
		c.h.Write(c.out[:])
		c.n = 0
	}
	c.out[c.n] = b
	c.n++
}

func (c *bodyCanon) emitCRLFs(k int) {
	for ; k > 0; k-- {
		c.emit('\r')
		c.emit('\n')
	}
}

// Write implements io.Writer.
func (c *bodyCanon) Write(p []byte) (int, error) {
	if c.relaxed {
		c.writeRelaxed(p)
	} else {
		c.writeSimple(p)
	}
	return len(p), nil
}

// writeSimple: RFC 6376 §3.4.3, the body as is except for trailing empty
// lines. A CRLF is held back until a byte other than a line end follows.
func (c *bodyCanon) writeSimple(p []byte) {
	for _, b := range p {
		switch b {
		case '\n':
			// CRLF, or a bare LF counted as one.
			c.crlfs++
			c.prevCR = false
			continue
		case '\r':
			if c.prevCR { // the held CR was bare
				c.emitCRLFs(c.crlfs)
				c.crlfs = 0
				c.emit('\r')
			}
			c.prevCR = true
			continue
		}
		c.emitCRLFs(c.crlfs)
		c.crlfs = 0
		if c.prevCR {
			c.emit('\r')
			c.prevCR = false
		}
		c.emit(b)
	}
}

// emitBytes appends a run of bytes.
func (c *bodyCanon) emitBytes(p []byte) {
	for len(p) > 0 {
		if c.n == len(c.out) {
			c.h.Write(c.out[:])
			c.n = 0
		}
		k := copy(c.out[c.n:], p)
		c.n += k
		p = p[k:]
	}
}

// lineSpace marks the bytes relaxed body canonicalisation treats apart.
var lineSpace = [256]bool{' ': true, '\t': true, '\r': true, '\n': true}

// writeRelaxed: RFC 6376 §3.4.4, whitespace runs become one SP,
// whitespace at line end goes, trailing empty lines go.
func (c *bodyCanon) writeRelaxed(p []byte) {
	for i := 0; i < len(p); i++ {
		b := p[i]
		if !lineSpace[b] {
			// A run of ordinary bytes goes out in one piece, after
			// the line ends and the space held before it.
			j := i + 1
			for j < len(p) && !lineSpace[p[j]] {
				j++
			}
			if len(c.ends) > 0 {
				c.emitBytes(c.ends)
				c.ends = c.ends[:0]
			}
			if c.wsp {
				c.emit(' ')
				c.wsp = false
			}
			c.emitBytes(p[i:j])
			c.prevCR = false
			c.written = true
			i = j - 1
			continue
		}
		switch b {
		case ' ', '\t':
			c.wsp = true
			c.prevCR = false
			continue
		case '\r':
			c.wsp = false
			c.prevCR = true
			c.ends = append(c.ends, '\r')
			continue
		case '\n':
			c.wsp = false
			if !c.prevCR {
				c.ends = append(c.ends, '\r') // bare LF
			}
			c.prevCR = false
			c.ends = append(c.ends, '\n')
		}
	}
}

// Close ends the body and flushes into the hash.
func (c *bodyCanon) Close() error {
	if c.relaxed {
		if c.written {
			c.emitCRLFs(1)
		}
	} else {
		if c.prevCR {
			// A final bare CR is content: what is held before it too.
			c.emitCRLFs(c.crlfs)
			c.emit('\r')
		}
		c.emitCRLFs(1)
	}
	c.h.Write(c.out[:c.n])
	c.n = 0
	return nil
}

// writeCanonHeader writes one header field (raw, as received, line end
// included) in canonical form (RFC 6376 §3.4.1, §3.4.2) to buf. A bare
// LF counts as CRLF, as for the body.
func writeCanonHeader(buf *bytes.Buffer, raw []byte, relaxed bool) {
	if !relaxed {
		// simple: unchanged, but every line ends in CRLF.
		for len(raw) > 0 {
			i := bytes.IndexByte(raw, '\n')
			if i < 0 {
				buf.Write(raw)
				buf.WriteString("\r\n")
				return
			}
			line := raw[:i]
			raw = raw[i+1:]
			line = bytes.TrimSuffix(line, []byte("\r"))
			buf.Write(line)
			buf.WriteString("\r\n")
		}
		return
	}
	name, value, ok := bytes.Cut(raw, []byte(":"))
	if !ok {
		writeLowerTrimmed(buf, raw)
		buf.WriteString(":\r\n")
		return
	}
	// relaxed: lower-case name without surrounding whitespace, then the
	// value unfolded, whitespace runs as one SP, none at either end.
	writeLowerTrimmed(buf, name)
	buf.WriteByte(':')
	space := false
	first := true
	for _, b := range value {
		switch b {
		case ' ', '\t', '\r', '\n':
			space = true
			continue
		}
		if space && !first {
			buf.WriteByte(' ')
		}
		space, first = false, false
		buf.WriteByte(b)
	}
	buf.WriteString("\r\n")
}

// writeLowerTrimmed writes b without surrounding whitespace, lower case.
func writeLowerTrimmed(buf *bytes.Buffer, b []byte) {
	s := strings.TrimSpace(string(b))
	for i := 0; i < len(s); i++ {
		if s[i] >= 0x80 {
			buf.WriteString(strings.ToLower(s))
			return
		}
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		buf.WriteByte(c)
	}
}

// withoutSignature returns a DKIM-Signature field with the value of its
// b= tag removed (RFC 6376 §3.5 b=: the signature itself is hashed as the
// empty string; whitespace before the "=" stays, everything after it up
// to the next ";" goes).
func withoutSignature(raw []byte) []byte {
	colon := bytes.IndexByte(raw, ':')
	if colon < 0 {
		return raw
	}
	out := make([]byte, 0, len(raw))
	out = append(out, raw[:colon+1]...)
	rest := raw[colon+1:]
	for len(rest) > 0 {
		spec := rest
		next := []byte(nil)
		if i := bytes.IndexByte(rest, ';'); i >= 0 {
			spec, next = rest[:i], rest[i:]
		}
		name, _, ok := bytes.Cut(spec, []byte("="))
		if ok && string(bytes.Trim(name, " \t\r\n")) == "b" {
			eq := bytes.IndexByte(spec, '=')
			out = append(out, spec[:eq+1]...)
		} else {
			out = append(out, spec...)
		}
		if next == nil {
			break
		}
		out = append(out, ';')
		rest = next[1:]
	}
	return out
}

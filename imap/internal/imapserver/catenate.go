package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// CapCatenate is the CATENATE capability (RFC 4469).
const CapCatenate imap.Cap = "CATENATE"

// MaxCatenateParts bounds the parts (TEXT and URL) of one CATENATE
// (RFC 4469 sets no limit; Dovecot's is in the same range).
const MaxCatenateParts = 64

// SessionCatenate is an IMAP session which supports CATENATE (RFC 4469):
// APPEND builds its message from TEXT literals and URL parts. The
// connection parses the parts as the message is read and bounds their
// number and total size (APPENDLIMIT); the session resolves each URL.
type SessionCatenate interface {
	Session

	// CatenateURL opens the data that url (an IMAP URL, RFC 5092) names.
	// A URL the session cannot or will not resolve is an *imap.Error
	// with the BADURL code (see BadURLError).
	CatenateURL(url string) (io.ReadCloser, error)
}

// BadURLError is the NO [BADURL url] answer of RFC 4469 §5 for url. The
// code carries the URL only when it is url-resp-text (TEXT-CHAR but "]",
// RFC 4469 errata 2002); else the NO has no code.
func BadURLError(url, text string) *imap.Error {
	e := &imap.Error{Type: imap.StatusResponseTypeNo, Text: text}
	if url != "" && !strings.ContainsFunc(url, func(r rune) bool { return r < 0x20 || r == ']' || r >= 0x7f }) {
		e.Code = imap.ResponseCode("BADURL " + url)
	}
	return e
}

// errCatenateSyntax answers a CATENATE whose parts do not parse.
var errCatenateSyntax = &imap.Error{
	Type: imap.StatusResponseTypeBad,
	Code: imap.ResponseCodeClientBug,
	Text: "Syntax error in CATENATE",
}

// catenation is the message of an APPEND with CATENATE as the store reads
// it: each part in turn, parsed from the command when the one before is
// read whole (RFC 4469 §5):
//
//	append-data =/ "CATENATE" SP "(" cat-part *(SP cat-part) ")"
//	cat-part    = text-literal / url
//	text-literal = "TEXT" SP literal
//	url          = "URL" SP astring
//
// Read returns io.EOF after the ")" that ends the list, and an error,
// never a shorter message, on anything else: the store then gives the
// message up. A TEXT literal is refused (no continuation request, RFC
// 7888 for a non-synchronising one) like APPEND's own when it would take
// the message over the limit.
type catenation struct {
	c       *Conn
	sess    SessionCatenate
	dec     *imapwire.Decoder
	limit   int64
	total   int64 // bytes of the message given so far
	parts   int
	cur     io.Reader // the part being read
	closer  io.Closer // of a URL part
	lit     *imapwire.LiteralReader
	litLeft int64
	err     error
}

func (ct *catenation) Read(p []byte) (int, error) {
	if ct.err != nil {
		return 0, ct.err
	}
	for {
		if ct.cur == nil {
			if err := ct.next(); err != nil {
				ct.err = err
				return 0, err
			}
			continue
		}
		n, err := ct.cur.Read(p)
		ct.total += int64(n)
		if ct.lit != nil {
			ct.litLeft -= int64(n)
			if err == io.EOF && ct.litLeft > 0 {
				err = io.ErrUnexpectedEOF
			}
		}
		if (err == nil || err == io.EOF) && ct.total > ct.limit {
			err = ct.tooBig()
		}
		if err == io.EOF {
			err = ct.closePart()
		}
		if err != nil {
			ct.closePart()
			ct.err = err
			return 0, err
		}
		if n > 0 {
			return n, nil
		}
	}
}

// Close releases the URL part being read, if any.
func (ct *catenation) Close() error {
	return ct.closePart()
}

func (ct *catenation) closePart() error {
	var err error
	if ct.closer != nil {
		err = ct.closer.Close()
	}
	ct.cur, ct.closer, ct.lit = nil, nil, nil
	return err
}

func (ct *catenation) tooBig() *imap.Error {
	return &imap.Error{
		Type: imap.StatusResponseTypeNo,
		Code: imap.ResponseCodeTooBig,
		Text: fmt.Sprintf("CATENATE message over %v bytes", ct.limit),
	}
}

// next parses the next part and opens it, or returns io.EOF at the end of
// the list.
func (ct *catenation) next() error {
	dec := ct.dec
	if ct.parts > 0 {
		if dec.Special(')') {
			return io.EOF
		}
		if !dec.ExpectSP() {
			return ct.syntaxErr()
		}
	}
	if ct.parts == MaxCatenateParts {
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeLimit,
			Text: fmt.Sprintf("CATENATE takes at most %d parts", MaxCatenateParts),
		}
	}
	var kind string
	if !dec.ExpectAtom(&kind) || !dec.ExpectSP() {
		return ct.syntaxErr()
	}
	switch strings.ToUpper(kind) {
	case "TEXT":
		lit, nonSync, err := dec.ExpectLiteralReader()
		if err != nil {
			return ct.syntaxErr()
		}
		// As APPEND's literal (readAppendMessage): refused before the
		// continuation request, its data then skipped by Conn.skipCommand.
		if err := ct.c.checkNonSyncLiteral(lit.Size(), nonSync); err != nil {
			return err
		}
		if lit.Size() > ct.limit-ct.total {
			return ct.c.refuseLiteral(lit.Size(), nonSync, ct.tooBig())
		}
		if err := ct.c.acceptLiteral(lit.Size(), nonSync); err != nil {
			return err
		}
		lit.Accept()
		ct.cur, ct.lit, ct.litLeft = lit, lit, lit.Size()
	case "URL":
		var url string
		if !dec.ExpectAString(&url) {
			return ct.syntaxErr()
		}
		rc, err := ct.sess.CatenateURL(url)
		if err != nil {
			return err
		}
		ct.cur, ct.closer = rc, rc
	default:
		return errCatenateSyntax
	}
	ct.parts++
	return nil
}

// syntaxErr is the decoder's error, or errCatenateSyntax when it is a
// syntax error (the client's: BAD).
func (ct *catenation) syntaxErr() error {
	var expectErr *imapwire.DecoderExpectError
	if err := ct.dec.Err(); err != nil && !errors.As(err, &expectErr) {
		return err
	}
	return errCatenateSyntax
}

package imapserver

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
)

// defaultAppendLimit is the default maximum size of an APPEND payload.
const defaultAppendLimit = 100 * 1024 * 1024 // 100MiB

func (c *Conn) handleAppend(tag string, dec *imapwire.Decoder) error {
	var mailbox string
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}
	// mailyard: MULTIAPPEND (RFC 3502), see multiappend.go: each message
	// is appended as it arrives; a failure removes those appended before.
	multi, _ := c.session.(SessionMultiAppend)
	var appended []imap.UID
	var data *imap.AppendData
	body, options, err := c.readAppendMessage(dec, multi != nil)
	if err != nil {
		return err
	}
	for body != nil {
		data, err = c.appendOne(mailbox, body, options)
		if err != nil {
			if next := body.next; next != nil {
				// Its literal was accepted: read it, and no more.
				next.stop = true
				if _, derr := io.Copy(io.Discard, next); derr != nil && dec.Err() != nil {
					err = dec.Err()
				}
			}
			return c.undoAppend(multi, mailbox, appended, err)
		}
		if data != nil {
			appended = append(appended, data.UID)
		}
		body, options = body.next, body.nextOptions
	}
	if err := c.poll("APPEND"); err != nil {
		return err
	}
	return c.writeAppendOK(tag, data, appended)
}

// readAppendMessage reads an append-message up to its literal and
// accepts the literal (RFC 9051 §9, RFC 3502 §6):
//
//	append-message = SP [flag-list SP] [date-time SP] literal
//
// (the SP before it already read). With multi, another append-message
// may follow the literal.
func (c *Conn) readAppendMessage(dec *imapwire.Decoder, multi bool) (*appendBody, *imap.AppendOptions, error) {
	var options imap.AppendOptions
	hasFlagList, err := dec.List(func() error {
		flag, err := proto.ExpectFlag(dec)
		if err != nil {
			return err
		}
		options.Flags = append(options.Flags, flag)
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if hasFlagList && !dec.ExpectSP() {
		return nil, nil, dec.Err()
	}

	t, err := proto.DecodeDateTime(dec)
	if err != nil {
		return nil, nil, err
	}
	if !t.IsZero() && !dec.ExpectSP() {
		return nil, nil, dec.Err()
	}
	options.Time = t

	var dataExt string
	if !dec.Special('~') && dec.Atom(&dataExt) { // ignore literal8 prefix if any for BINARY
		switch strings.ToUpper(dataExt) {
		case "CATENATE":
			return c.readCatenate(dec, multi, &options)
		case "UTF8":
			// '~' is the literal8 prefix
			if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectSpecial('~') {
				return nil, nil, dec.Err()
			}
		default:
			return nil, nil, newClientBugError("Unknown APPEND data extension")
		}
	}

	lit, nonSync, err := dec.ExpectLiteralReader()
	if err != nil {
		return nil, nil, err
	}

	appendLimit := int64(defaultAppendLimit)
	if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
		appendLimit = int64(appendLimitSession.AppendLimit())
	}

	// mailyard: every refusal comes before the continuation request, the
	// state check included (upstream read the whole literal of an APPEND
	// before login); the data of a refused non-synchronising literal is
	// skipped by the caller (Conn.skipCommand), RFC 7888 §4.
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return nil, nil, err
	}
	if err := c.checkNonSyncLiteral(lit.Size(), nonSync); err != nil {
		return nil, nil, err
	}
	if lit.Size() > appendLimit {
		return nil, nil, c.refuseLiteral(lit.Size(), nonSync, &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Literals are limited to %v bytes for this command", appendLimit),
		})
	}
	if err := c.acceptLiteral(lit.Size(), nonSync); err != nil {
		return nil, nil, err
	}
	lit.Accept()
	body := &appendBody{lit: lit, dec: dec, left: lit.Size(), paren: dataExt != ""}
	if multi {
		body.readNext = func() (*appendBody, *imap.AppendOptions, error) { return c.readAppendMessage(dec, true) }
	}
	return body, &options, nil
}

// readCatenate reads the start of a CATENATE append-data, "CATENATE"
// already read, and returns the message whose parts are read as the
// session reads it (RFC 4469 §5; see catenation).
func (c *Conn) readCatenate(dec *imapwire.Decoder, multi bool, options *imap.AppendOptions) (*appendBody, *imap.AppendOptions, error) {
	sess, ok := c.session.(SessionCatenate)
	if !ok {
		return nil, nil, newClientBugError("Unknown APPEND data extension")
	}
	if !dec.ExpectSP() || !dec.ExpectSpecial('(') {
		return nil, nil, dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return nil, nil, err
	}
	appendLimit := int64(defaultAppendLimit)
	if appendLimitSession, ok := c.session.(SessionAppendLimit); ok {
		appendLimit = int64(appendLimitSession.AppendLimit())
	}
	body := &appendBody{dec: dec, cat: &catenation{c: c, sess: sess, dec: dec, limit: appendLimit}}
	if multi {
		body.readNext = func() (*appendBody, *imap.AppendOptions, error) { return c.readAppendMessage(dec, true) }
	}
	return body, options, nil
}

// appendOne gives one message to the session.
func (c *Conn) appendOne(mailbox string, body *appendBody, options *imap.AppendOptions) (*imap.AppendData, error) {
	c.setReadTimeout(literalReadTimeout)
	defer c.setReadTimeout(cmdReadTimeout)

	// mailyard: upstream gave the session the literal itself and checked
	// the end of the command afterwards, so that a message was stored and
	// the command answered BAD (or, before that, not at all) when
	// something followed the literal. The session now reads it through
	// appendBody, which fails instead of reporting the message's end
	// unless the command ends there: the store then gives up the message
	// (no UID used, nothing to roll back).
	if body.cat != nil {
		defer body.cat.Close()
	}
	data, appendErr := c.session.Append(mailbox, body, options)
	if appendErr != nil {
		body.stop = true // no further message is read (MULTIAPPEND)
		if body.cat != nil && body.cat.err == nil {
			// No further part is read: what is left of the command,
			// an accepted TEXT literal's data included, is skipped.
			body.cat.err = appendErr
		}
	}
	// The session may have stopped reading early (a NO before the data).
	if _, err := io.Copy(io.Discard, body); err != nil {
		if dec := body.dec; dec.Err() != nil {
			return nil, dec.Err()
		}
		return nil, err
	}
	return data, appendErr
}

// errAppendEnd is what appendBody's Read returns when the command does
// not end right after the message. An *imap.Error, so that the session
// passes it through as the client's error; the command is answered with
// the Decoder's error (BAD).
var errAppendEnd = &imap.Error{
	Type: imap.StatusResponseTypeBad,
	Code: imap.ResponseCodeClientBug,
	Text: "Syntax error after the APPEND message",
}

// appendBody is the message of an APPEND as the session reads it (an
// imap.LiteralReader): the literal's data, streamed, except that the
// last of it is given only once the rest of the command is read and is
// just CRLF (after ")" for the UTF8 data extension, RFC 6855 §4). Else
// Read returns an error before the message is whole, so that the store
// gives up the message instead of committing it: bad input changes
// nothing. A connection that ends within the literal is an
// io.ErrUnexpectedEOF, never the end of a shorter message.
//
// mailyard: added.
type appendBody struct {
	lit   *imapwire.LiteralReader // nil with cat
	cat   *catenation             // CATENATE (RFC 4469): the parts, read in turn
	dec   *imapwire.Decoder
	left  int64 // bytes of the literal not yet read
	paren bool  // ")" comes before CRLF
	// MULTIAPPEND (RFC 3502): readNext, if set, reads the next message's
	// arguments when SP follows this one's literal. That is done before
	// this message's last byte is given, so that a syntax error or a
	// refused literal there keeps this message from being committed.
	// stop (the command failed) leaves the rest to be skipped.
	readNext    func() (*appendBody, *imap.AppendOptions, error)
	next        *appendBody
	nextOptions *imap.AppendOptions
	stop        bool
	done        bool // the end was checked; err is what Read returns now
	err         error
}

// Size returns the size of the message (imap.LiteralReader); -1 with
// CATENATE, whose size is known only once it is read.
func (b *appendBody) Size() int64 {
	if b.cat != nil {
		return -1
	}
	return b.lit.Size()
}

func (b *appendBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
	}
	if b.cat != nil {
		n, err := b.cat.Read(p)
		if err != io.EOF {
			return n, err
		}
		b.done = true
		if b.err = b.checkEnd(); b.err != nil {
			return 0, b.err
		}
		b.err = io.EOF
		return 0, io.EOF
	}
	n, err := b.lit.Read(p)
	b.left -= int64(n)
	if b.left > 0 {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return n, err
	}
	b.done = true
	b.err = b.checkEnd()
	if b.err != nil {
		return 0, b.err
	}
	b.err = io.EOF
	return n, nil
}

// checkEnd reads the end of the command after the literal's data.
func (b *appendBody) checkEnd() error {
	// A read at the literal's end closes it (imapwire: Decoder.Skip).
	if b.lit != nil {
		if _, err := io.Copy(io.Discard, b.lit); err != nil {
			return err
		}
	}
	if b.paren && !b.dec.ExpectSpecial(')') {
		return b.endErr()
	}
	if b.readNext != nil && b.dec.SP() {
		if b.stop {
			return nil
		}
		next, opts, err := b.readNext()
		if err != nil {
			return err
		}
		b.next, b.nextOptions = next, opts
		return nil
	}
	if !b.dec.ExpectCRLF() {
		return b.endErr()
	}
	return nil
}

// endErr is checkEnd's error for what follows the literal.
func (b *appendBody) endErr() error {
	var expectErr *imapwire.DecoderExpectError
	if errors.As(b.dec.Err(), &expectErr) {
		return errAppendEnd
	}
	return b.dec.Err()
}

// writeAppendOK writes the tagged OK with APPENDUID (RFC 4315 §3), of
// every message appended (RFC 3502 §6.3.11: uid-set).
func (c *Conn) writeAppendOK(tag string, data *imap.AppendData, uids []imap.UID) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom(tag).SP().Atom("OK").SP()
	if data != nil && len(uids) > 0 {
		enc.Special('[')
		enc.Atom("APPENDUID").SP().Number(data.UIDValidity).SP().NumSet(imap.UIDSetNum(uids...))
		enc.Special(']').SP()
	}
	enc.Text("APPEND completed")
	return enc.CRLF()
}

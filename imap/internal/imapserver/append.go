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
	var (
		mailbox string
		options imap.AppendOptions
	)
	if !dec.ExpectSP() || !dec.ExpectMailbox(&mailbox) || !dec.ExpectSP() {
		return dec.Err()
	}

	hasFlagList, err := dec.List(func() error {
		flag, err := proto.ExpectFlag(dec)
		if err != nil {
			return err
		}
		options.Flags = append(options.Flags, flag)
		return nil
	})
	if err != nil {
		return err
	}
	if hasFlagList && !dec.ExpectSP() {
		return dec.Err()
	}

	t, err := proto.DecodeDateTime(dec)
	if err != nil {
		return err
	}
	if !t.IsZero() && !dec.ExpectSP() {
		return dec.Err()
	}
	options.Time = t

	var dataExt string
	if !dec.Special('~') && dec.Atom(&dataExt) { // ignore literal8 prefix if any for BINARY
		switch strings.ToUpper(dataExt) {
		case "UTF8":
			// '~' is the literal8 prefix
			if !dec.ExpectSP() || !dec.ExpectSpecial('(') || !dec.ExpectSpecial('~') {
				return dec.Err()
			}
		default:
			return newClientBugError("Unknown APPEND data extension")
		}
	}

	lit, nonSync, err := dec.ExpectLiteralReader()
	if err != nil {
		return err
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
		return err
	}
	if err := c.checkNonSyncLiteral(lit.Size(), nonSync); err != nil {
		return err
	}
	if lit.Size() > appendLimit {
		return c.refuseLiteral(lit.Size(), nonSync, &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodeTooBig,
			Text: fmt.Sprintf("Literals are limited to %v bytes for this command", appendLimit),
		})
	}
	if err := c.acceptLiteral(lit.Size(), nonSync); err != nil {
		return err
	}
	lit.Accept()

	c.setReadTimeout(literalReadTimeout)
	defer c.setReadTimeout(cmdReadTimeout)

	// mailyard: upstream gave the session the literal itself and checked
	// the end of the command afterwards, so that a message was stored and
	// the command answered BAD (or, before that, not at all) when
	// something followed the literal. The session now reads it through
	// appendBody, which fails instead of reporting the message's end
	// unless the command ends there: the store then gives up the message
	// (no UID used, nothing to roll back).
	body := &appendBody{lit: lit, dec: dec, left: lit.Size(), paren: dataExt != ""}
	data, appendErr := c.session.Append(mailbox, body, &options)
	// The session may have stopped reading early (a NO before the data).
	if _, err := io.Copy(io.Discard, body); err != nil {
		if dec.Err() != nil {
			return dec.Err()
		}
		return err
	}
	if appendErr != nil {
		return appendErr
	}
	if err := c.poll("APPEND"); err != nil {
		return err
	}
	return c.writeAppendOK(tag, data)
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
	lit   *imapwire.LiteralReader
	dec   *imapwire.Decoder
	left  int64 // bytes of the literal not yet read
	paren bool  // ")" comes before CRLF
	done  bool  // the end was checked; err is what Read returns now
	err   error
}

// Size returns the size of the message (imap.LiteralReader).
func (b *appendBody) Size() int64 { return b.lit.Size() }

func (b *appendBody) Read(p []byte) (int, error) {
	if b.done {
		return 0, b.err
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
	if _, err := io.Copy(io.Discard, b.lit); err != nil {
		return err
	}
	if (b.paren && !b.dec.ExpectSpecial(')')) || !b.dec.ExpectCRLF() {
		var expectErr *imapwire.DecoderExpectError
		if errors.As(b.dec.Err(), &expectErr) {
			return errAppendEnd
		}
		return b.dec.Err()
	}
	return nil
}

func (c *Conn) writeAppendOK(tag string, data *imap.AppendData) error {
	enc := newResponseEncoder(c)
	defer enc.end()

	enc.Atom(tag).SP().Atom("OK").SP()
	if data != nil {
		enc.Special('[')
		enc.Atom("APPENDUID").SP().Number(data.UIDValidity).SP().UID(data.UID)
		enc.Special(']').SP()
	}
	enc.Text("APPEND completed")
	return enc.CRLF()
}

package imapserver

import (
	"errors"
	"fmt"
	"strings"

	"github.com/emersion/go-sasl"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/proto"
)

func (c *Conn) handleAuthenticate(tag string, dec *imapwire.Decoder) error {
	var mech string
	if !dec.ExpectSP() || !dec.ExpectAtom(&mech) {
		return dec.Err()
	}
	mech = strings.ToUpper(mech)

	var initialResp []byte
	if dec.SP() {
		var initialRespStr string
		if !dec.ExpectText(&initialRespStr) {
			return dec.Err()
		}
		var err error
		// mailyard: upstream answered a malformed initial response
		// (SASL-IR, RFC 4959) with NO [SERVERBUG]; it is BAD like any
		// other (RFC 9051 §6.2.2).
		initialResp, err = decodeSASL(initialRespStr)
		if err != nil {
			return err
		}
	}

	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateNotAuthenticated); err != nil {
		return err
	}
	if !c.canAuth() {
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Code: imap.ResponseCodePrivacyRequired,
			Text: "TLS is required to authenticate",
		}
	}

	var saslServer sasl.Server
	if authSess, ok := c.session.(SessionSASL); ok {
		var err error
		saslServer, err = authSess.Authenticate(mech)
		if err != nil {
			return err
		}
	} else {
		if mech != "PLAIN" {
			return &imap.Error{
				Type: imap.StatusResponseTypeNo,
				Text: "SASL mechanism not supported",
			}
		}
		saslServer = sasl.NewPlainServer(func(identity, username, password string) error {
			if identity != "" && identity != username {
				return &imap.Error{
					Type: imap.StatusResponseTypeNo,
					Code: imap.ResponseCodeAuthorizationFailed,
					Text: "SASL identity not supported",
				}
			}
			return c.session.Login(username, password)
		})
	}

	// mailyard: upstream held the response encoder, and with it the write
	// buffer, while it waited for the client's responses.
	resp := initialResp
	for {
		challenge, done, err := saslServer.Next(resp)
		if err != nil {
			return err
		} else if done {
			break
		}

		var challengeStr string
		if challenge != nil {
			challengeStr = proto.EncodeSASL(challenge)
		}
		if err := c.writeContReq(challengeStr); err != nil {
			return err
		}

		encodedResp, isPrefix, err := c.br.ReadLine()
		if err != nil {
			return err
		} else if isPrefix {
			// mailyard: upstream answered NO [SERVERBUG] and read the rest
			// of the line as the next command. The rest is skipped here,
			// as much as a failed command's (maxSkip); a response that does
			// not fit the read buffer is malformed, a client error (RFC
			// 9051 §6.2.2: BAD).
			return c.refuseLongLine(tag, int64(len(encodedResp)), &imap.Error{
				Type: imap.StatusResponseTypeBad,
				Code: imap.ResponseCodeClientBug,
				Text: "SASL response too long",
			})
		} else if string(encodedResp) == "*" {
			// RFC 9051 §6.2.2: a cancelled exchange is rejected with BAD.
			return &imap.Error{
				Type: imap.StatusResponseTypeBad,
				Text: "AUTHENTICATE cancelled",
			}
		}

		resp, err = decodeSASL(string(encodedResp))
		if err != nil {
			return err
		}
	}

	c.state = imap.ConnStateAuthenticated
	text := fmt.Sprintf("%v authentication successful", mech)
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeCapabilityOK(enc.Encoder, tag, c.availableCaps(), text)
}

// errLongLine is returned by discardLine for a line longer than its limit.
var errLongLine = errors.New("imapserver: line too long to skip")

// discardLine reads and throws away the rest of a line longer than the
// read buffer, of which read bytes were read already, up to limit bytes
// in all; beyond that it returns errLongLine (wrapped) and the line's end
// is not reached.
//
// mailyard: added.
func (c *Conn) discardLine(read, limit int64) error {
	for read <= limit {
		line, more, err := c.br.ReadLine()
		if err != nil {
			return err
		}
		read += int64(len(line))
		if !more {
			return nil
		}
	}
	return fmt.Errorf("%w: over %d bytes", errLongLine, limit)
}

// refuseLongLine refuses a line longer than the read buffer, of which
// read bytes were read already: it skips the rest of the line and returns
// resp, the command's answer. A line too long to skip (over maxSkip) is
// answered with resp and BYE, the connection closed and nil returned. A
// handler returns what refuseLongLine returns.
//
// mailyard: added.
func (c *Conn) refuseLongLine(tag string, read int64, resp *imap.Error) error {
	err := c.discardLine(read, maxSkip)
	if !errors.Is(err, errLongLine) {
		if err != nil {
			return err
		}
		return resp
	}
	c.server.logger().Printf("closing connection from %v: %v", c.conn.RemoteAddr(), err)
	c.state = imap.ConnStateLogout
	if err := c.writeStatusResp(tag, (*imap.StatusResponse)(resp)); err != nil {
		return err
	}
	_ = c.Bye("Cannot skip the rest of the line") // the connection is closed either way
	return nil
}

func decodeSASL(s string) ([]byte, error) {
	b, err := proto.DecodeSASL(s)
	if err != nil {
		return nil, &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "Malformed SASL response",
		}
	}
	return b, nil
}

func (c *Conn) handleUnauthenticate(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	session, ok := c.session.(SessionUnauthenticate)
	if !ok {
		return newClientBugError("UNAUTHENTICATE is not supported")
	}
	if err := session.Unauthenticate(); err != nil {
		return err
	}
	c.state = imap.ConnStateNotAuthenticated
	c.mutex.Lock()
	c.enabled = make(imap.CapSet)
	c.mutex.Unlock()
	return nil
}

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
			return c.refuseLine(tag, encodedResp, false, &imap.Error{
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
			// mailyard: a malformed response that ends in a literal's
			// header is skipped with the literal (upstream ran its data
			// as commands).
			var imapErr *imap.Error
			if errors.As(err, &imapErr) {
				return c.refuseLine(tag, encodedResp, true, imapErr)
			}
			return err
		}
	}

	c.state = imap.ConnStateAuthenticated
	text := fmt.Sprintf("%v authentication successful", mech)
	enc := newResponseEncoder(c)
	defer enc.end()
	return writeCapabilityOK(enc.Encoder, tag, c.availableCaps(), text)
}

// refuseLine refuses a line that is not decoded as a command (an
// AUTHENTICATE response, the line that should end IDLE), of which line
// was read (ended: with its line ending). The rest of what the client
// sent with it is skipped as a failed command's is (imapwire
// SkipAfterLine, up to maxSkip): the rest of a line longer than the read
// buffer, and the data of a non-synchronising literal announced at its
// end, which is never read as commands. Then it returns resp, the
// command's answer. What is too long to skip is answered with resp and
// BYE, the connection closed and nil returned. A handler returns what
// refuseLine returns.
//
// mailyard: added.
func (c *Conn) refuseLine(tag string, line []byte, ended bool, resp *imap.Error) error {
	err := imapwire.SkipAfterLine(c.br, line, ended, maxSkip)
	var skipErr *imapwire.SkipError
	if !errors.As(err, &skipErr) {
		if err != nil {
			return err
		}
		return resp
	}
	c.log.Info("imapserver: closing connection: cannot skip the rest of a refused line", "err", skipErr)
	c.state = imap.ConnStateLogout
	if err := c.writeStatusResp(tag, (*imap.StatusResponse)(resp)); err != nil {
		return err
	}
	_ = c.byeLingering("Cannot skip the rest of the line") // the connection is closed either way
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

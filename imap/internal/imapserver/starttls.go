package imapserver

import (
	"crypto/tls"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func (c *Conn) canStartTLS() bool {
	_, isTLS := c.conn.(*tls.Conn)
	return c.server.options.TLSConfig != nil && c.state == imap.ConnStateNotAuthenticated && !isTLS
}

func (c *Conn) handleStartTLS(tag string, dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if c.server.options.TLSConfig == nil {
		return &imap.Error{
			Type: imap.StatusResponseTypeNo,
			Text: "STARTTLS not supported",
		}
	}
	if !c.canStartTLS() {
		return &imap.Error{
			Type: imap.StatusResponseTypeBad,
			Text: "STARTTLS not available",
		}
	}

	// Do not allow to write cleartext data past this point: keep c.encMutex
	// locked until the end
	enc := newResponseEncoder(c)
	defer enc.end()

	err := writeStatusResp(enc.Encoder, tag, &imap.StatusResponse{
		Type: imap.StatusResponseTypeOK,
		Text: "Begin TLS negotiation now",
	})
	if err != nil {
		return err
	}

	// mailyard: what the client sent after the STARTTLS line is plaintext
	// that a man in the middle may have injected (RFC 9051 §11.1,
	// CVE-2011-0411); it is discarded, and the TLS handshake reads what
	// comes next. Upstream handed it to the handshake, which failed.
	// Discard of no more than the buffered bytes cannot fail
	// (bufio.Reader.Discard).
	if n, _ := c.br.Discard(c.br.Buffered()); n > 0 {
		c.log.Warn("imapserver: discarded plaintext sent after STARTTLS", "bytes", n)
	}
	tlsConn := tls.Server(c.conn, c.server.options.TLSConfig)

	c.mutex.Lock()
	c.conn = tlsConn
	c.mutex.Unlock()

	// mailyard: the buffers follow the new connection (buffers.go).
	c.setReadWriter(c.server.options.wrapReadWriter(tlsConn))

	return nil
}

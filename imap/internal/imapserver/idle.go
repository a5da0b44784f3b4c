package imapserver

import (
	"io"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: upstream runs Session.Idle in a second goroutine while this one
// reads DONE. Here the connection's own goroutine waits for DONE without a
// read buffer (waitInput), and the session writes updates as they come
// (Session.IdleStart, IdleStop): an idling client costs one parked
// goroutine and no buffers.
func (c *Conn) handleIdle(dec *imapwire.Decoder) error {
	if !dec.ExpectCRLF() {
		return dec.Err()
	}

	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}

	if err := c.writeContReq("idling"); err != nil {
		return err
	}

	w := &UpdateWriter{conn: c, allowExpunge: true}
	if err := c.session.IdleStart(w); err != nil {
		return err
	}
	c.setReadTimeout(idleReadTimeout)
	err := c.waitInput()
	var (
		line     []byte
		isPrefix bool
	)
	if err == nil {
		line, isPrefix, err = c.br.ReadLine()
	}
	stopErr := c.session.IdleStop()
	if err == io.EOF {
		return nil
	} else if err != nil {
		return err
	} else if isPrefix || !strings.EqualFold(string(line), "DONE") {
		// RFC 2177 §3: DONE, matched case-insensitively as all of IMAP's
		// keywords are (RFC 9051 §9).
		return newClientBugError("Syntax error: expected DONE to end IDLE command")
	}
	return stopErr
}

package imapserver

import (
	"fmt"
	"strings"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: upstream runs Session.Idle in a second goroutine while the
// connection's goroutine reads DONE. Here the session writes updates as
// they come (Session.IdleStart, IdleStop) and the connection's goroutine
// goes back to the top of its loop (Conn.serve), where it waits for DONE
// like for any command: without a read buffer (waitInput) and with the
// shallowest stack, which the runtime can then shrink to 4 KiB. An idling
// client costs one parked goroutine and no buffers.
func (c *Conn) handleIdle(tag string, dec *imapwire.Decoder) error {
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
	c.idleTag = tag
	return nil
}

// finishIdle reads the line that ends IDLE once the client has sent
// something, stops the session's updates and completes the command.
func (c *Conn) finishIdle() error {
	tag := c.idleTag
	c.idleTag = ""
	c.setReadTimeout(cmdReadTimeout)
	line, isPrefix, err := c.br.ReadLine()
	stopErr := c.session.IdleStop()
	if err != nil {
		return err
	}
	if isPrefix {
		// A line longer than the buffer: the rest of it is not a
		// command either. It is skipped up to maxCommandSize.
		if err := c.discardLine(int64(len(line)), maxCommandSize); err != nil {
			return fmt.Errorf("instead of DONE: %w", err)
		}
	}
	if isPrefix || !strings.EqualFold(string(line), "DONE") {
		// RFC 2177 §3: DONE, matched case-insensitively as all of IMAP's
		// keywords are (RFC 9051 §9).
		stopErr = newClientBugError("Syntax error: expected DONE to end IDLE command")
	}
	return c.complete(tag, "IDLE", stopErr, true)
}

// Package imapwire implements the IMAP wire protocol.
//
// The IMAP wire protocol is defined in RFC 9051 section 4.
//
// # Refused literals and failed commands (mailyard)
//
// A literal's data is never read as protocol. A command carries strings
// as literals, "{" size "}" CRLF followed by size octets (RFC 9051 §4.3);
// a client sends the octets of a synchronising literal only after the
// server's continuation request ("+"), those of a non-synchronising one,
// "{" size "+}" (RFC 7888), right away. The server side (imapserver)
// handles a literal it refuses as follows:
//
//   - Synchronising, over a limit: the command is answered with a tagged
//     NO [TOOBIG] (or BAD) and no "+" is sent, so the client sends no
//     data; the next line is its next command (RFC 9051 §4.3, §7.1).
//   - Non-synchronising, over a limit (more than 4096 bytes where only
//     LITERAL- is announced, i.e. before login: BAD [TOOBIG]; over the
//     4 KiB buffered limit or APPENDLIMIT: NO [TOOBIG]): the data is on
//     its way. RFC 7888 §4 leaves two choices, and both are used: the
//     data and the rest of the command are read and thrown away when
//     they are at most 1 MiB, else the server says BYE and closes the
//     connection.
//
// Every refusal is logged. Any other failed command is answered first
// and then skipped the same way: the rest of its line, the data of the
// non-synchronising literals announced at the end of that line and the
// lines after them, up to the same 1 MiB. A line that ends with a
// synchronising literal's header ends the command (no "+" follows). A
// literal size that cannot be read closes the connection, since where
// the command ends is then unknown.
//
// The Decoder keeps to this by recording the error of a refused literal
// (Decoder.Err) and by decoding nothing more once an error is recorded:
// only Decoder.Skip reads on, and it knows whether an open literal's data
// comes (LiteralReader.Accept). Nesting deeper than MaxDepth (lists,
// SEARCH's NOT and OR) is a DecoderExpectError too, answered BAD.
package imapwire

import (
	"fmt"
)

// ConnSide describes the side of a connection: client or server.
type ConnSide int

const (
	ConnSideClient ConnSide = 1 + iota
	ConnSideServer
)

// ContinuationRequest is a continuation request.
//
// The sender must call either Done or Cancel. The receiver must call Wait.
type ContinuationRequest struct {
	done chan struct{}
	err  error
	text string
}

func NewContinuationRequest() *ContinuationRequest {
	return &ContinuationRequest{done: make(chan struct{})}
}

func (cont *ContinuationRequest) Cancel(err error) {
	if err == nil {
		err = fmt.Errorf("imapwire: continuation request cancelled")
	}
	cont.err = err
	close(cont.done)
}

func (cont *ContinuationRequest) Done(text string) {
	cont.text = text
	close(cont.done)
}

func (cont *ContinuationRequest) Wait() (string, error) {
	<-cont.done
	return cont.text, cont.err
}

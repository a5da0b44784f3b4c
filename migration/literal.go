package migration

import (
	"io"

	"github.com/emersion/go-imap/v2/imapclient"
)

// A FETCH literal from go-imap's client (v2.0.0-beta.8) is read from the
// client's one bufio.Reader by the caller's goroutine while the client's
// reader goroutine waits for it (imapclient.fetchLiteralReader). It lets
// the reader goroutine go on at the literal's end, and also at the
// literal's first read error (earlier versions did at io.EOF only; the
// change answers emersion/go-imap#650, FetchCommand.Close hanging after
// a literal read timed out), which includes an io.EOF before the
// literal's end when the connection closes. The literal's rest is then
// unread, and FetchMessageData.Next, FetchMessageData.Collect and
// FetchCommand.Close discard it by reading it again on the caller's
// goroutine, while the released reader goroutine decodes on the same
// bufio.Reader (imapwire.Decoder.Expect reads Buffered, readByte fills):
// a data race, seen when a pass is cancelled mid-FETCH (the bandwidth
// wait or the closed connection fails the read) or the source drops the
// connection.
//
// literalGuard is the work-around: a literal is read through it, a read
// error is sticky (the literal is never read again through it), and
// when the literal ended early the caller closes the client with
// [sourceConn.abandon], which waits for the reader goroutine to end,
// before it touches the FETCH command again.
//
// A literal cut short by the connection reads as io.EOF from go-imap;
// literalGuard reports io.ErrUnexpectedEOF instead, so that a body
// streamed into store.Append fails rather than being stored, and
// checkpointed, truncated.

// literalGuard reads one FETCH literal and remembers how that ended.
type literalGuard struct {
	r    io.Reader
	size int64 // the literal's announced size
	n    int64 // octets read
	err  error // the first read error (io.EOF at the end)
}

func newLiteralGuard(lit imapclient.FetchItemDataBodySection) *literalGuard {
	return &literalGuard{r: lit.Literal, size: lit.Literal.Size()}
}

// Read reads the literal; once a read has failed, it returns that error
// again without reading. io.EOF before size octets is
// io.ErrUnexpectedEOF.
func (g *literalGuard) Read(p []byte) (int, error) {
	if g.err != nil {
		return 0, g.err
	}
	n, err := g.r.Read(p)
	g.n += int64(n)
	if err == io.EOF && g.n != g.size {
		err = io.ErrUnexpectedEOF
	}
	if err != nil {
		g.err = err
	}
	return n, err
}

// broken reports whether a read failed before the literal's end: the
// client's reader goroutine is then decoding again while the literal's
// rest is unread, and the client must be abandoned before the FETCH
// command is used again. A literal read to its exact size and not past
// it (io.ReadFull) is not broken: the reader goroutine still waits.
func (g *literalGuard) broken() bool {
	return g.err != nil && g.err != io.EOF
}

// abandon marks the connection unusable and closes the client, waiting
// for its reader goroutine to end (imapclient.Client.Close waits for it);
// after that, the caller's goroutine is the only one left that reads the
// connection, and the FETCH command may be closed. See literalGuard.
func (s *sourceConn) abandon() {
	s.dead = true
	_ = s.c.Close()
}

// broken reports whether the connection cannot be used again: dropped on
// purpose or closed (the client's reader goroutine ended).
func (s *sourceConn) broken() bool {
	if s.dead {
		return true
	}
	select {
	case <-s.c.Closed():
		return true
	default:
		return false
	}
}

// collectMessage is FetchMessageData.Collect for the items this package
// fetches (UID, FLAGS, RFC822.SIZE, INTERNALDATE, body sections), with
// each literal read through a literalGuard; a literal that fails midway
// abandons sc (see literalGuard), so that the caller may close the
// command.
func collectMessage(sc *sourceConn, md *imapclient.FetchMessageData) (*imapclient.FetchMessageBuffer, error) {
	buf := &imapclient.FetchMessageBuffer{SeqNum: md.SeqNum}
	for {
		item := md.Next()
		if item == nil {
			return buf, nil
		}
		switch it := item.(type) {
		case imapclient.FetchItemDataUID:
			buf.UID = it.UID
		case imapclient.FetchItemDataFlags:
			buf.Flags = it.Flags
		case imapclient.FetchItemDataRFC822Size:
			buf.RFC822Size = it.Size
		case imapclient.FetchItemDataInternalDate:
			buf.InternalDate = it.Time
		case imapclient.FetchItemDataBodySection:
			var b []byte
			if it.Literal != nil {
				g := newLiteralGuard(it)
				// io.ReadAll fails only where the guard is broken.
				if b, _ = io.ReadAll(g); g.broken() {
					sc.abandon()
					return buf, g.err
				}
			}
			buf.BodySection = append(buf.BodySection, imapclient.FetchBodySectionBuffer{Section: it.Section, Bytes: b})
		}
	}
}

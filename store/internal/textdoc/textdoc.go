// Package textdoc extracts what a backend's full-text index
// (store.TextSearcher) keeps of one message: its top-level header and its
// texts, as internal/msgtext reads them, lower-cased by strings.ToLower
// (as IMAP SEARCH lower-cases patterns, RFC 9051 §6.4.4) and joined by
// newlines, within fixed bounds. Both SQL backends index exactly this, so
// that they find the same messages a scan finds.
package textdoc

import (
	"bufio"
	"io"
	"strings"

	"github.com/mailyard/mailyard/internal/msgtext"
	"github.com/mailyard/mailyard/store"
)

// Bounds of what an index holds of one message: its first MaxRaw bytes
// are read, and of their text the first MaxText bytes of each of Header
// and Body kept. A message over either is not Whole.
const (
	MaxRaw  = store.MaxTextBytes
	MaxText = 1 << 20
)

// Doc is the text of one message.
type Doc struct {
	// Header is the top-level header fields (IMAP SEARCH TEXT), Body the
	// texts (BODY and TEXT), each lower-cased, texts joined by "\n".
	Header, Body string
	// Whole reports that Header and Body hold all of the message's
	// text: it was within the bounds and parsed.
	Whole bool
}

// Read reads a message's text from r, at most MaxRaw+1 bytes of it; the
// caller may need to drain the rest.
func Read(r io.Reader) Doc {
	lr := &io.LimitedReader{R: r, N: MaxRaw + 1}
	var header, body sink
	err := msgtext.Read(bufio.NewReader(lr), &header, &body)
	d := Doc{Header: header.String(), Body: body.String(), Whole: true}
	if err != nil || lr.N == 0 || header.cut || body.cut {
		d.Whole = false
	}
	return d
}

// sink collects texts lower-cased, newline-separated, up to MaxText
// bytes.
type sink struct {
	// Not embedded: its WriteString would bypass Write for
	// io.WriteString.
	sb      strings.Builder
	cut     bool // text was left out
	pending []byte
}

func (t *sink) Write(p []byte) (int, error) {
	if t.cut {
		return len(p), nil
	}
	if t.sb.Len()+len(t.pending)+len(p) > MaxText {
		t.cut = true
		return len(p), nil
	}
	t.pending = append(t.pending, p...)
	return len(p), nil
}

// Next ends a text: lower-cased whole, as the scan's window lower-cases
// it (imap's textScanner equals strings.ToLower of the whole text).
func (t *sink) Next() {
	if len(t.pending) > 0 {
		if t.sb.Len() > 0 {
			t.sb.WriteByte('\n')
		}
		t.sb.WriteString(strings.ToLower(string(t.pending)))
		t.pending = t.pending[:0]
	}
}

// String ends the last text and returns them all.
func (t *sink) String() string {
	t.Next()
	return t.sb.String()
}

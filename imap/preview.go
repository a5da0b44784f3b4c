package imap

import (
	"bufio"
	"io"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/mailyard/mailyard/internal/msgtext"
)

// PREVIEW (RFC 8970): a short plain-text view of a message, made when
// asked from the message's first texts as msgtext extracts them (text
// parts decoded to UTF-8, HTML without its markup), whitespace runs
// folded into one space, at most maxPreviewChars characters (at
// most 256). Only the first maxPreviewRead bytes of the message are
// read, so a preview costs a bounded read whatever the message's size,
// and PREVIEW (LAZY) gets it as well (RFC lets a server answer a lazy
// request whenever it can do so cheaply). A message without text has
// the empty preview.
const (
	maxPreviewChars = 256
	maxPreviewRead  = 64 << 10
)

// preview returns the preview of the message r reads.
func preview(r io.Reader) string {
	p := &previewSink{}
	_ = msgtext.Read(bufio.NewReader(io.LimitReader(r, maxPreviewRead)), discardSink{}, p)
	return strings.TrimRightFunc(p.sb.String(), unicode.IsSpace)
}

// previewSink keeps the start of the texts written to it, whitespace
// folded, up to maxPreviewChars characters.
type previewSink struct {
	sb    strings.Builder
	n     int    // characters kept
	space bool   // a space is due before the next character
	part  []byte // the start of a character the last Write cut off
}

// Next separates texts by a space; a character cut off at the end of
// the text before is dropped.
func (p *previewSink) Next() {
	p.part = nil
	p.space = p.n > 0
}

func (p *previewSink) Write(b []byte) (int, error) {
	n := len(b)
	if len(p.part) > 0 {
		b = append(p.part, b...)
		p.part = nil
	}
	for i := 0; i < len(b) && p.n < maxPreviewChars; {
		if !utf8.FullRune(b[i:]) {
			p.part = append([]byte(nil), b[i:]...) // at most 3 bytes
			break
		}
		r, size := utf8.DecodeRune(b[i:])
		i += size
		switch {
		case unicode.IsSpace(r):
			p.space = p.n > 0
			continue
		case !unicode.IsGraphic(r):
			continue // controls, invalid bytes (U+FFFD is kept: it is graphic)
		}
		if p.space {
			p.sb.WriteByte(' ')
			p.n++
			p.space = false
			if p.n == maxPreviewChars {
				break
			}
		}
		p.sb.WriteRune(r)
		p.n++
	}
	return n, nil
}

// discardSink drops the header's text: a preview is of the body.
type discardSink struct{}

func (discardSink) Write(b []byte) (int, error) { return len(b), nil }
func (discardSink) Next()                       {}

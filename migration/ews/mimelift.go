package ews

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
)

// A GetItem answer with MIME content is mostly base64 text, and
// encoding/xml reads character data a byte at a time (a tenth of the
// migration's CPU went there). mimeLifter takes the text of each
// MimeContent element out of the stream before the XML decoder sees it,
// in one copy, and leaves a reference (liftMark and an index) as the
// element's text; the decoded response puts the text back by reference
// (takeMIME). Only text of base64 characters, '=' and blanks (no CR,
// which XML would turn into LF, no entity, no CDATA) is lifted, so
// MimeContent.Base64 reads exactly as the XML decoder would have made
// it; any other text, or text beside other nodes, stays in the stream,
// untouched.

// liftMark starts the text left in a lifted MimeContent element, then
// the lifter's nonce, "." and the index of the text. "*" is not a base64
// character, so no text a server sends is lifted and looks like one; and
// text that was not lifted (not base64) cannot name a lifted one without
// the nonce.
const liftMark = "*"

// mimeLifter passes an XML stream through, lifting MimeContent text out
// (see above). parts holds the texts, in the order of the references.
type mimeLifter struct {
	r     *bufio.Reader
	out   []byte // bytes ready for Read
	parts []string
	text  []byte // scratch for one element's text
	nonce string
	err   error
}

func newMIMELifter(r io.Reader) *mimeLifter {
	return &mimeLifter{r: bufio.NewReaderSize(r, 64<<10), nonce: strconv.FormatUint(rand.Uint64(), 36)}
}

// ref is the reference left for the text of index k.
func (l *mimeLifter) ref(k int) string { return liftMark + l.nonce + "." + strconv.Itoa(k) }

func (l *mimeLifter) Read(p []byte) (int, error) {
	for len(l.out) == 0 {
		if l.err != nil {
			return 0, l.err
		}
		l.fill()
	}
	n := copy(p, l.out)
	l.out = l.out[n:]
	return n, nil
}

// fill moves the stream up to and including the next '<' into out and,
// if a MimeContent start tag follows, that tag and its lifted text.
func (l *mimeLifter) fill() {
	data, err := l.r.ReadSlice('<')
	l.out = append(l.out[:0], data...)
	switch {
	case err == bufio.ErrBufferFull:
		return
	case err != nil:
		l.err = err
		return
	}
	if l.mimeTag() {
		l.err = l.lift()
	}
}

// mimeTag reports whether the element whose '<' was just read is a
// MimeContent start tag (in any namespace prefix).
func (l *mimeLifter) mimeTag() bool {
	const name = "MimeContent"
	head, _ := l.r.Peek(64)
	end := bytes.IndexAny(head, " \t\r\n/>")
	if end < 0 {
		return false
	}
	tag := head[:end]
	if i := bytes.LastIndexByte(tag, ':'); i >= 0 {
		tag = tag[i+1:]
	}
	return string(tag) == name
}

// lift copies the rest of the start tag into out and replaces the
// element's text by a reference when it is plain base64.
func (l *mimeLifter) lift() error {
	quote := byte(0)
	for { // the start tag, up to its '>' outside quoted attribute values
		c, err := l.r.ReadByte()
		if err != nil {
			return err
		}
		l.out = append(l.out, c)
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '>':
			if len(l.out) >= 2 && l.out[len(l.out)-2] == '/' {
				return nil // <MimeContent/>: no text
			}
			return l.liftText()
		}
	}
}

// liftText reads the element's text up to the next '<' (left in the
// stream) and lifts it, or passes it on as it is.
func (l *mimeLifter) liftText() error {
	l.text = l.text[:0]
	for {
		data, err := l.r.ReadSlice('<')
		if err == nil {
			l.text = append(l.text, data[:len(data)-1]...)
			if err := l.r.UnreadByte(); err != nil {
				return err
			}
			break
		}
		l.text = append(l.text, data...)
		if err != bufio.ErrBufferFull {
			l.out = append(l.out, l.text...)
			return err
		}
	}
	// Lifted only when the element ends here: text around a comment or
	// another node is several pieces to the decoder, joined.
	if end, _ := l.r.Peek(2); string(end) != "</" || !plainBase64(l.text) {
		l.out = append(l.out, l.text...)
		return nil
	}
	l.out = append(l.out, l.ref(len(l.parts))...)
	l.parts = append(l.parts, string(l.text))
	return nil
}

// base64Text marks the bytes of lifted text: the base64 alphabet and
// padding (RFC 4648 §4) and the blanks and LF servers wrap it with.
var base64Text = func() (t [256]bool) {
	for _, c := range []byte("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/= \t\n") {
		t[c] = true
	}
	return t
}()

// plainBase64 reports whether text is non-empty and only of base64Text.
func plainBase64(text []byte) bool {
	for _, c := range text {
		if !base64Text[c] {
			return false
		}
	}
	return len(text) > 0
}

// mimeTaker is a response decoded from a stream through a mimeLifter:
// it takes the lifted bytes back after decoding.
type mimeTaker interface{ takeMIME(l *mimeLifter) }

// mimeItems is a GetItem answer with MIME content, lifted.
type mimeItems struct {
	itemsResponse
}

// takeMIME puts each message's lifted MimeContent text back.
func (r *mimeItems) takeMIME(l *mimeLifter) {
	prefix := l.ref(0)
	prefix = prefix[:len(prefix)-1]
	for _, msg := range r.Messages.List {
		for _, it := range msg.Items {
			var mc *MimeContent
			switch {
			case it.Message != nil:
				mc = it.Message.MimeContent
			case it.Meeting != nil:
				mc = it.Meeting.MimeContent
			}
			if mc == nil || !strings.HasPrefix(mc.Base64, prefix) {
				continue
			}
			k, err := strconv.Atoi(mc.Base64[len(prefix):])
			if err != nil || k < 0 || k >= len(l.parts) {
				continue
			}
			mc.Base64 = l.parts[k]
		}
	}
}

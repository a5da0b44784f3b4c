package msgtext

import (
	"bufio"
	"fmt"
	"io"
	"mime"
	"strings"

	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
	"golang.org/x/net/html"
	"golang.org/x/text/encoding/htmlindex"

	"github.com/mailyard/mailyard/internal/iobuf"
	"github.com/mailyard/mailyard/internal/msgheader"
)

// MaxDepth bounds recursion into nested multiparts and messages.
const MaxDepth = 20

// Sink receives the texts of a message. Next starts a new text: a
// pattern found across two texts is not in the message.
type Sink interface {
	io.Writer
	Next()
}

// Read reads a message from br: the text of its header block goes to
// header (one text), the texts of its body to body (each after a call
// of body.Next). An error reading the header block is returned; a body
// that is not usable MIME is written to body as it is.
func Read(br *bufio.Reader, header, body Sink) error {
	_, h, err := msgheader.ReadHeader(br)
	if err != nil {
		return err
	}
	header.Next()
	io.WriteString(header, HeaderText(h))
	e, _ := gomessage.New(gomessage.Header{Header: h}, br)
	if e == nil {
		// Unusable MIME (bad transfer encoding): the raw body.
		body.Next()
		iobuf.Copy(body, br)
		return nil
	}
	// An unknown charset or transfer encoding still gives a usable
	// entity; the charset is handled in writeText.
	writeText(e, body, 0)
	return nil
}

// HeaderText is the header fields as "Key: decoded value" lines.
func HeaderText(h textproto.Header) string {
	var sb strings.Builder
	dec := mime.WordDecoder{CharsetReader: CharsetReader}
	for f := h.Fields(); f.Next(); {
		val, err := dec.DecodeHeader(f.Value())
		if err != nil {
			val = f.Value()
		}
		sb.WriteString(f.Key())
		sb.WriteString(": ")
		sb.WriteString(val)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// CharsetReader converts r from the named charset (a MIME or WHATWG
// label, any case) to UTF-8, without installing a process-wide hook as
// go-message/charset does.
func CharsetReader(charset string, r io.Reader) (io.Reader, error) {
	enc, err := htmlindex.Get(charset)
	if err != nil {
		return nil, fmt.Errorf("msgtext: unknown charset %q", charset)
	}
	return enc.NewDecoder().Reader(r), nil
}

func writeText(e *gomessage.Entity, out Sink, depth int) {
	if depth > MaxDepth {
		return
	}
	t, params, _ := e.Header.ContentType()
	if strings.HasPrefix(t, "multipart/") {
		mr := NewMultipartReader(e.Body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				return
			}
			child, err := gomessage.New(gomessage.Header{Header: p.Header}, p)
			if child == nil || (err != nil && !gomessage.IsUnknownCharset(err) && !gomessage.IsUnknownEncoding(err)) {
				return
			}
			writeText(child, out, depth+1)
		}
	}
	switch {
	case t == "" || strings.HasPrefix(t, "text/"):
		body := e.Body
		if cs := strings.ToLower(params["charset"]); cs != "" && cs != "utf-8" && cs != "us-ascii" {
			// go-message left it as stored: it converts only with a
			// process-wide CharsetReader, which is not set.
			if r, err := CharsetReader(cs, body); err == nil {
				body = r
			}
		}
		out.Next()
		if t == "text/html" {
			writeHTML(body, out)
		} else {
			iobuf.Copy(out, body)
		}
	case t == "message/rfc822" || t == "message/global":
		br := bufio.NewReader(e.Body)
		_, h, err := msgheader.ReadHeader(br)
		if err != nil {
			return
		}
		out.Next()
		io.WriteString(out, HeaderText(h))
		inner, _ := gomessage.New(gomessage.Header{Header: h}, br)
		if inner != nil {
			writeText(inner, out, depth+1)
		}
	}
}

// writeHTML writes the text of an HTML document: text nodes with their
// character references decoded, outside script and style elements.
// Tags that break words where a browser shows them (all but the inline
// ones of inlineTags) are written as one space, so "a<p>b" reads "a b"
// and "a<b>b</b>" reads "ab". Attribute values are not text.
func writeHTML(r io.Reader, out io.Writer) {
	z := html.NewTokenizer(r)
	skip := 0 // inside script or style
	for {
		tt := z.Next()
		switch tt {
		case html.ErrorToken:
			return
		case html.TextToken:
			if skip == 0 {
				out.Write(z.Text())
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			tag := string(name)
			if tag == "script" || tag == "style" {
				switch {
				case tt == html.StartTagToken:
					skip++
				case tt == html.EndTagToken && skip > 0:
					skip--
				}
			}
			if !inlineTags[tag] {
				out.Write(space)
			}
		}
	}
}

// inlineTags are the phrasing elements that do not separate words.
var inlineTags = map[string]bool{
	"a": true, "abbr": true, "b": true, "bdi": true, "bdo": true, "big": true, "cite": true, "code": true,
	"em": true, "font": true, "i": true, "kbd": true, "mark": true, "q": true, "s": true, "samp": true,
	"small": true, "span": true, "strike": true, "strong": true, "sub": true, "sup": true, "tt": true,
	"u": true, "var": true,
}

var space = []byte(" ")

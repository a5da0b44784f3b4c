package dav

import (
	"bufio"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
)

// XML namespaces of the protocol.
const (
	nsDAV     = "DAV:"
	nsCalDAV  = "urn:ietf:params:xml:ns:caldav"
	nsCardDAV = "urn:ietf:params:xml:ns:carddav"
	nsCS      = "http://calendarserver.org/ns/"
	nsApple   = "http://apple.com/ns/ical/"
)

// prefixes are the prefixes declared on every response's root element.
var prefixes = []struct{ prefix, space string }{
	{"D", nsDAV}, {"C", nsCalDAV}, {"CR", nsCardDAV}, {"CS", nsCS}, {"A", nsApple},
}

// node is one XML element: the parsed form of a request body and the
// form every response element is written from.
type node struct {
	Name  xml.Name
	Attrs []xml.Attr
	Text  string
	// Raw is text written after Text, escaped alike, as bytes: an
	// object's stored data goes out without a copy into a string (a
	// REPORT writes thousands). Only the writer reads it.
	Raw      []byte
	Children []*node
}

// el returns an element with children.
func el(space, local string, children ...*node) *node {
	return &node{Name: xml.Name{Space: space, Local: local}, Children: children}
}

// textEl returns an element holding text.
func textEl(space, local, text string) *node {
	return &node{Name: xml.Name{Space: space, Local: local}, Text: text}
}

// href is a DAV:href element.
func href(p string) *node { return textEl(nsDAV, "href", p) }

// child returns the first child element named space:local, or nil.
func (n *node) child(space, local string) *node {
	if n == nil {
		return nil
	}
	for _, c := range n.Children {
		if c.Name.Space == space && c.Name.Local == local {
			return c
		}
	}
	return nil
}

// attr returns the value of the unqualified attribute local.
func (n *node) attr(local string) (string, bool) {
	for _, a := range n.Attrs {
		if a.Name.Space == "" && a.Name.Local == local {
			return a.Value, true
		}
	}
	return "", false
}

// is reports whether n is named space:local.
func (n *node) is(space, local string) bool {
	return n != nil && n.Name.Space == space && n.Name.Local == local
}

// Errors of request-body parsing; each answers 400 except errBodyTooLarge.
var (
	errBodyTooLarge = errors.New("request body too large")
	errXMLDoctype   = errors.New("DOCTYPE and entity declarations are not accepted")
	errXMLDepth     = errors.New("XML nested too deeply")
	errXMLElements  = errors.New("XML has too many elements")
)

// parseXML reads one XML document into a tree, bounded by the limits:
// at most lim.MaxXMLDepth levels and lim.MaxXMLElements elements (the
// body size is bounded by the caller's http.MaxBytesReader). A DOCTYPE
// (and so any entity declaration) is refused outright; encoding/xml in
// strict mode knows only the five predefined entities and refuses any
// other reference, so nothing is ever expanded. A nil tree and a nil
// error mean an empty body.
func parseXML(r io.Reader, lim Limits) (*node, error) {
	d := xml.NewDecoder(r)
	d.Strict = true
	var (
		root  *node
		stack []*node
		texts [][]byte
		count int
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
				return nil, errBodyTooLarge
			}
			return nil, fmt.Errorf("malformed XML: %w", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			count++
			if count > lim.MaxXMLElements {
				return nil, errXMLElements
			}
			if len(stack) >= lim.MaxXMLDepth {
				return nil, errXMLDepth
			}
			n := &node{Name: t.Name, Attrs: t.Copy().Attr}
			if len(stack) == 0 {
				if root != nil {
					return nil, errors.New("malformed XML: more than one root element")
				}
				root = n
			} else {
				p := stack[len(stack)-1]
				p.Children = append(p.Children, n)
			}
			stack = append(stack, n)
			texts = append(texts, nil)
		case xml.EndElement:
			top := len(stack) - 1
			stack[top].Text = string(texts[top])
			stack, texts = stack[:top], texts[:top]
		case xml.CharData:
			if len(stack) > 0 {
				texts[len(texts)-1] = append(texts[len(texts)-1], t...)
			} else if len(strings.TrimSpace(string(t))) > 0 {
				return nil, errors.New("malformed XML: text outside the root element")
			}
		case xml.Directive:
			return nil, errXMLDoctype
		}
	}
	if root == nil && count == 0 {
		return nil, nil
	}
	return root, nil
}

// readXML parses a request body bounded by the handler's limits. An
// empty body gives a nil tree.
func (h *Handler) readXML(w http.ResponseWriter, r *http.Request) (*node, error) {
	body := http.MaxBytesReader(serverWriter(w), r.Body, h.opts.Limits.MaxRequestBody)
	n, err := parseXML(body, h.opts.Limits)
	switch {
	case errors.Is(err, errBodyTooLarge):
		return nil, &httpError{status: http.StatusRequestEntityTooLarge, msg: err.Error()}
	case errors.Is(err, os.ErrDeadlineExceeded):
		return nil, bodyTimeout()
	case err != nil:
		return nil, &httpError{status: http.StatusBadRequest, msg: err.Error()}
	}
	return n, nil
}

// serverWriter returns the writer under w's wrappers (this package's
// gzipWriter, an embedder's writer with an Unwrap method) for
// http.MaxBytesReader: net/http learns that a body was too large only
// through its own writer, and then closes the HTTP/1.x connection after
// the answer instead of reading on what the client still sends (RFC
// 9110 §15.5.14 allows either; a client that is past the limit may have
// far more to send).
func serverWriter(w http.ResponseWriter) http.ResponseWriter {
	for {
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return w
		}
		w = u.Unwrap()
	}
}

// bodyTimeout answers a request whose body did not arrive before the
// server's read deadline (set by whoever serves the handler, e.g.
// through http.ResponseController): 408 (RFC 9110 §15.5.9), and the
// connection is closed.
func bodyTimeout() *httpError {
	return &httpError{status: http.StatusRequestTimeout, msg: "the request body arrived too slowly"}
}

// xmlWriter writes elements with fixed prefixes for the protocol's
// namespaces (declared once on the root element) straight to the
// response, so that a long multistatus is never held in memory.
type xmlWriter struct {
	w   *bufio.Writer
	err error
}

func newXMLWriter(w io.Writer) *xmlWriter {
	return &xmlWriter{w: bufio.NewWriterSize(w, 16<<10)}
}

func (x *xmlWriter) str(s string) {
	if x.err == nil {
		_, x.err = x.w.WriteString(s)
	}
}

// escaped writes s as character data or an attribute value. Unlike
// xml.EscapeText it keeps line feeds as they are (calendar data is made
// of lines) but escapes carriage returns, which XML parsers would
// otherwise fold away (XML 1.0 §2.11).
func (x *xmlWriter) escaped(s string) {
	last := 0
	for i := 0; i < len(s); i++ {
		var esc string
		switch s[i] {
		case '&':
			esc = "&amp;"
		case '<':
			esc = "&lt;"
		case '>':
			esc = "&gt;"
		case '"':
			esc = "&quot;"
		case '\r':
			esc = "&#xD;"
		default:
			continue
		}
		x.str(s[last:i])
		x.str(esc)
		last = i + 1
	}
	x.str(s[last:])
}

// escapedBytes is escaped for text held as bytes, escaped straight into
// the writer's buffer: calendar data has a CR to escape on every line,
// and a write of each piece between them cost more than the escaping (a
// REPORT writes the data of thousands of objects).
func (x *xmlWriter) escapedBytes(s []byte) {
	for len(s) > 0 && x.err == nil {
		// n bytes of s fit the buffer's room however many are escaped.
		n := min(len(s), x.w.Available()/maxEscape)
		if n == 0 {
			x.err = x.w.Flush()
			continue
		}
		b := x.w.AvailableBuffer()
		last := 0
		for i, c := range s[:n] {
			if esc := xmlEscapes[c]; esc != "" {
				b = append(b, s[last:i]...)
				b = append(b, esc...)
				last = i + 1
			}
		}
		b = append(b, s[last:n]...)
		_, x.err = x.w.Write(b)
		s = s[n:]
	}
}

// xmlEscapes are escaped's replacements by byte; "" for a byte written
// as it is. maxEscape is the longest.
var xmlEscapes = [256]string{'&': "&amp;", '<': "&lt;", '>': "&gt;", '"': "&quot;", '\r': "&#xD;"}

const maxEscape = len("&quot;")

// name writes a qualified name; an element in a namespace without a
// fixed prefix declares its own as xmlns:x.
func (x *xmlWriter) name(n xml.Name) (declare string) {
	for _, p := range prefixes {
		if p.space == n.Space {
			x.str(p.prefix) // in pieces: a concatenation allocated per element
			x.str(":")
			x.str(n.Local)
			return ""
		}
	}
	if n.Space == "" {
		x.str(n.Local)
		return ""
	}
	x.str("x:")
	x.str(n.Local)
	return n.Space
}

// open starts the document's root element, declaring every prefix.
func (x *xmlWriter) open(space, local string) {
	x.str(`<?xml version="1.0" encoding="UTF-8"?>` + "\n<")
	x.name(xml.Name{Space: space, Local: local})
	for _, p := range prefixes {
		x.str(` xmlns:` + p.prefix + `="` + p.space + `"`)
	}
	x.str(">")
}

// close ends the root element and flushes.
func (x *xmlWriter) close(space, local string) error {
	x.str("</")
	x.name(xml.Name{Space: space, Local: local})
	x.str(">\n")
	return x.flush()
}

func (x *xmlWriter) flush() error {
	if x.err == nil {
		x.err = x.w.Flush()
	}
	return x.err
}

// node writes one element and its children.
func (x *xmlWriter) node(n *node) {
	x.str("<")
	if ns := x.name(n.Name); ns != "" {
		x.str(` xmlns:x="`)
		x.escaped(ns)
		x.str(`"`)
	}
	for _, a := range n.Attrs {
		x.str(" ")
		x.str(a.Name.Local)
		x.str(`="`)
		x.escaped(a.Value) // only names and numbers: no line breaks to keep
		x.str(`"`)
	}
	if n.Text == "" && len(n.Raw) == 0 && len(n.Children) == 0 {
		x.str("/>")
		return
	}
	x.str(">")
	x.escaped(n.Text)
	x.escapedBytes(n.Raw)
	for _, c := range n.Children {
		x.node(c)
	}
	x.str("</")
	x.name(n.Name)
	x.str(">")
}

// href writes a DAV:href element as node(href(p)) does.
func (x *xmlWriter) href(p string) {
	if p == "" {
		x.str("<D:href/>")
		return
	}
	x.str("<D:href>")
	x.escaped(p)
	x.str("</D:href>")
}

// status writes a DAV:status element as node(statusEl(code)) does.
func (x *xmlWriter) status(code int) {
	x.str("<D:status>")
	x.escaped(statusText(code))
	x.str("</D:status>")
}

// writeXML answers with one complete XML document.
func writeXML(w http.ResponseWriter, status int, root *node) error {
	w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	w.WriteHeader(status)
	x := newXMLWriter(w)
	x.open(root.Name.Space, root.Name.Local)
	for _, c := range root.Children {
		x.node(c)
	}
	return x.close(root.Name.Space, root.Name.Local)
}

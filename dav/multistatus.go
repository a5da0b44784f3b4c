package dav

import (
	"encoding/xml"
	"fmt"
	"net/http"
)

// multistatus streams a 207 Multi-Status body (RFC 4918 §13): the status
// line and the root element are written by the first response, and each
// response goes to the client as it is made, so a long listing is never
// held whole.
type multistatus struct {
	w       http.ResponseWriter
	x       *xmlWriter
	started bool
	n       int
}

func newMultistatus(w http.ResponseWriter) *multistatus {
	return &multistatus{w: w}
}

func (m *multistatus) start() {
	if m.started {
		return
	}
	m.started = true
	m.w.Header().Set("Content-Type", `application/xml; charset="utf-8"`)
	m.w.WriteHeader(http.StatusMultiStatus)
	m.x = newXMLWriter(m.w)
	m.x.open(nsDAV, "multistatus")
}

// propstat is the properties of one status within a response.
type propstat struct {
	status int
	props  []*node
}

// response writes one DAV:response with its propstats; propstats
// without properties are left out.
func (m *multistatus) response(href string, stats ...propstat) error {
	r := el(nsDAV, "response", textEl(nsDAV, "href", href))
	for _, s := range stats {
		if len(s.props) == 0 {
			continue
		}
		r.Children = append(r.Children, el(nsDAV, "propstat",
			el(nsDAV, "prop", s.props...), statusEl(s.status)))
	}
	return m.write(r)
}

// status writes a DAV:response with a status and no properties
// (RFC 4918 §14.24), with an optional DAV:error.
func (m *multistatus) status(href string, status int, cond *node) error {
	r := el(nsDAV, "response", textEl(nsDAV, "href", href), statusEl(status))
	if cond != nil {
		r.Children = append(r.Children, el(nsDAV, "error", cond))
	}
	return m.write(r)
}

// extra writes an element after the responses (sync-token, RFC 6578 §6.4).
func (m *multistatus) extra(n *node) {
	m.start()
	m.x.node(n)
}

func (m *multistatus) write(n *node) error {
	m.start()
	m.x.node(n)
	m.n++
	if m.n%64 == 0 {
		return m.x.flush()
	}
	return m.x.err
}

// close ends the body; a multistatus without responses is still one.
func (m *multistatus) close() error {
	m.start()
	return m.x.close(nsDAV, "multistatus")
}

// statusLines are the DAV:status texts of the statuses a multistatus
// says for every object, made once rather than per response.
var statusLines = map[int]string{
	http.StatusOK:       statusLine(http.StatusOK),
	http.StatusNotFound: statusLine(http.StatusNotFound),
}

func statusLine(code int) string {
	return fmt.Sprintf("HTTP/1.1 %d %s", code, http.StatusText(code))
}

func statusEl(code int) *node {
	s, ok := statusLines[code]
	if !ok {
		s = statusLine(code)
	}
	return textEl(nsDAV, "status", s)
}

// names lists the elements of a DAV:prop.
func names(prop *node) []xml.Name {
	out := make([]xml.Name, 0, len(prop.Children))
	for _, c := range prop.Children {
		out = append(out, c.Name)
	}
	return out
}

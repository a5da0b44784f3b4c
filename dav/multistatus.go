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
// without properties are left out. The envelope (response, href,
// propstat, prop, status) is written as it goes rather than built as
// elements: a REPORT writes thousands of them
// (TestResponseEnvelopeEqualsElements holds it to the elements' bytes).
func (m *multistatus) response(href string, stats ...propstat) error {
	m.start()
	x := m.x
	x.str("<D:response>")
	x.href(href)
	for _, s := range stats {
		if len(s.props) == 0 {
			continue
		}
		x.str("<D:propstat><D:prop>")
		for _, p := range s.props {
			x.node(p)
		}
		x.str("</D:prop>")
		x.status(s.status)
		x.str("</D:propstat>")
	}
	x.str("</D:response>")
	return m.wrote()
}

// objectData writes the DAV:response of one object of a report that
// asks for its data and at most its DAV:getetag (withETag), all found:
// one 200 propstat holding the ETag and the data as the element
// space:local (calendar-data or address-data), the same bytes
// response writes for those properties without an element made per
// object (TestObjectDataEqualsResponse).
func (m *multistatus) objectData(href string, withETag bool, etag string, space, local string, data []byte) error {
	m.start()
	x := m.x
	x.str("<D:response>")
	x.href(href)
	x.str("<D:propstat><D:prop>")
	if withETag {
		x.str(`<D:getetag>&quot;`) // quoteETag, escaped
		x.escaped(etag)
		x.str(`&quot;</D:getetag>`)
	}
	n := xml.Name{Space: space, Local: local}
	x.str("<")
	x.name(n)
	if len(data) == 0 {
		x.str("/>")
	} else {
		x.str(">")
		x.escapedBytes(data)
		x.str("</")
		x.name(n)
		x.str(">")
	}
	x.str("</D:prop>")
	x.status(http.StatusOK)
	x.str("</D:propstat></D:response>")
	return m.wrote()
}

// status writes a DAV:response with a status and no properties
// (RFC 4918 §14.24), with an optional DAV:error.
func (m *multistatus) status(href string, status int, cond *node) error {
	m.start()
	x := m.x
	x.str("<D:response>")
	x.href(href)
	x.status(status)
	if cond != nil {
		x.node(el(nsDAV, "error", cond))
	}
	x.str("</D:response>")
	return m.wrote()
}

// extra writes an element after the responses (sync-token, RFC 6578 §6.4).
func (m *multistatus) extra(n *node) {
	m.start()
	m.x.node(n)
}

// wrote counts a response written and flushes the buffered writer
// every 64 responses, so the client gets the answer as it is made.
func (m *multistatus) wrote() error {
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
	return textEl(nsDAV, "status", statusText(code))
}

// statusText is the DAV:status text of a code.
func statusText(code int) string {
	s, ok := statusLines[code]
	if !ok {
		s = statusLine(code)
	}
	return s
}

// names lists the elements of a DAV:prop.
func names(prop *node) []xml.Name {
	out := make([]xml.Name, 0, len(prop.Children))
	for _, c := range prop.Children {
		out = append(out, c.Name)
	}
	return out
}

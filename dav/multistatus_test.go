package dav

import (
	"context"
	"encoding/xml"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/store"
)

// elementsResponse is a DAV:response built as elements, the way
// multistatus.response made it before it wrote the envelope directly.
func elementsResponse(href string, stats ...propstat) *node {
	r := el(nsDAV, "response", textEl(nsDAV, "href", href))
	for _, s := range stats {
		if len(s.props) == 0 {
			continue
		}
		r.Children = append(r.Children, el(nsDAV, "propstat", el(nsDAV, "prop", s.props...), statusEl(s.status)))
	}
	return r
}

// elementsStatus is multistatus.status's answer built as elements.
func elementsStatus(href string, status int, cond *node) *node {
	r := el(nsDAV, "response", textEl(nsDAV, "href", href), statusEl(status))
	if cond != nil {
		r.Children = append(r.Children, el(nsDAV, "error", cond))
	}
	return r
}

// written returns what fn writes into a multistatus, after the root
// element's start.
func written(t *rapid.T, fn func(m *multistatus) error) string {
	rec := httptest.NewRecorder()
	m := newMultistatus(rec)
	if err := fn(m); err != nil {
		t.Fatal(err)
	}
	if err := m.close(); err != nil {
		t.Fatal(err)
	}
	return rec.Body.String()
}

// textGen draws text with the characters the writer escapes, line
// breaks, and multi-byte UTF-8.
func textGen() *rapid.Generator[string] {
	return rapid.StringOfN(rapid.SampledFrom([]rune{'a', 'Z', '0', ' ', '&', '<', '>', '"', '\'', '\r', '\n', '/', '%', 'é', '日'}), 0, 40, -1)
}

// TestResponseEnvelopeEqualsElements: the directly written envelope of
// a response and of a status-only response are the bytes of the
// elements they replaced, for any href, properties and statuses.
func TestResponseEnvelopeEqualsElements(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		href := textGen().Draw(t, "href")
		codes := []int{http.StatusOK, http.StatusNotFound, http.StatusForbidden, http.StatusInsufficientStorage}
		var stats []propstat
		for range rapid.IntRange(0, 3).Draw(t, "propstats") {
			s := propstat{status: rapid.SampledFrom(codes).Draw(t, "status")}
			for range rapid.IntRange(0, 3).Draw(t, "props") {
				text := textGen().Draw(t, "text")
				switch rapid.IntRange(0, 2).Draw(t, "kind") {
				case 0:
					s.props = append(s.props, textEl(nsDAV, "getetag", text))
				case 1:
					s.props = append(s.props, &node{Name: xml.Name{Space: nsCalDAV, Local: "calendar-data"}, Raw: []byte(text)})
				default:
					s.props = append(s.props, el("urn:x-other", "p", textEl(nsDAV, "href", text)))
				}
			}
			stats = append(stats, s)
		}
		got := written(t, func(m *multistatus) error { return m.response(href, stats...) })
		want := written(t, func(m *multistatus) error { m.start(); m.x.node(elementsResponse(href, stats...)); return m.x.err })
		if got != want {
			t.Fatalf("response:\n got %q\nwant %q", got, want)
		}
		code := rapid.SampledFrom(codes).Draw(t, "code")
		var cond *node
		if rapid.Bool().Draw(t, "cond") {
			cond = el(nsCalDAV, "valid-calendar-data")
		}
		got = written(t, func(m *multistatus) error { return m.status(href, code, cond) })
		want = written(t, func(m *multistatus) error { m.start(); m.x.node(elementsStatus(href, code, cond)); return m.x.err })
		if got != want {
			t.Fatalf("status:\n got %q\nwant %q", got, want)
		}
	})
}

// TestObjectDataEqualsResponse: a report's object written through
// multistatus.objectData (reportProps.etagOnly) is the answer the
// general path (props, addData, response) gives for the same request,
// for calendar and address data, with and without DAV:getetag, for
// any object name, ETag and data; and requests the shortcut does not
// serve (other properties, allprop, a repeated getetag) are left to the
// general path.
func TestObjectDataEqualsResponse(t *testing.T) {
	h := newEnv(t).h
	rapid.Check(t, func(t *rapid.T) {
		card := rapid.Bool().Draw(t, "card")
		props := rapid.SampledFrom([]string{"", "<D:getetag/>", "<D:getetag/><D:getetag/>", "<D:getcontenttype/>",
			"<D:getetag/><D:getlastmodified/>"}).Draw(t, "props")
		allprop := rapid.Bool().Draw(t, "allprop")
		dataEl := "<C:calendar-data/>"
		kind, coll := kindCalObject, "calendar"
		if card {
			dataEl, kind, coll = "<CR:address-data/>", kindCard, "contacts"
		}
		body := `<C:calendar-query ` + reportNS + `><D:prop>` + props + dataEl + `</D:prop></C:calendar-query>`
		if allprop {
			body = `<C:calendar-query ` + reportNS + `><D:allprop/><D:prop>` + dataEl + `</D:prop></C:calendar-query>`
		}
		tree, err := parseXML(strings.NewReader(body), h.opts.Limits)
		if err != nil {
			t.Fatal(err)
		}
		rp, err := parseReportProps(tree)
		if err != nil {
			t.Fatal(err)
		}
		if want := !allprop && (props == "" || props == "<D:getetag/>"); rp.etagOnly != want {
			t.Fatalf("etagOnly = %v for %s", rp.etagOnly, body)
		}
		o := store.Object{
			Name:        textGen().Filter(func(s string) bool { return s != "" }).Draw(t, "name"),
			ETag:        textGen().Draw(t, "etag"),
			ContentType: "text/calendar; charset=utf-8",
			Data:        []byte(textGen().Draw(t, "data")),
			Size:        10,
			Modified:    time.Date(2026, 6, 1, 12, 0, 0, 0, time.UTC),
		}
		rq := &request{ctx: context.Background(), log: slog.New(slog.NewTextHandler(io.Discard, nil))}
		res := &resource{t: target{kind: kind, user: "u1", coll: coll, name: o.Name}, coll: &store.Collection{ID: 1, Name: coll}, obj: &o}
		got := written(t, func(m *multistatus) error { return h.objectResponse(rq, m, res, rp, nil) })
		general := rp
		general.etagOnly = false
		want := written(t, func(m *multistatus) error { return h.objectResponse(rq, m, res, general, nil) })
		if got != want {
			t.Fatalf("object %q etag %q:\n got %q\nwant %q", o.Name, o.ETag, got, want)
		}
	})
}

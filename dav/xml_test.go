package dav

import (
	"net/http"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// TestXMLBombs: hostile request bodies get clear 4xx answers and nothing
// is expanded or held beyond the limits.
func TestXMLBombs(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxRequestBody = 64 << 10 })
	laughs := `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;">]>` +
		`<D:propfind xmlns:D="DAV:"><D:prop><D:displayname>&lol2;</D:displayname></D:prop></D:propfind>`
	external := `<?xml version="1.0"?><!DOCTYPE x [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><D:propfind xmlns:D="DAV:"><D:prop>&xxe;</D:prop></D:propfind>`
	deep := `<D:propfind xmlns:D="DAV:">` + strings.Repeat("<D:prop>", 100) + strings.Repeat("</D:prop>", 100) + `</D:propfind>`
	huge := `<D:propfind xmlns:D="DAV:"><D:prop>` + strings.Repeat("<D:displayname/>", 10000) + `</D:prop></D:propfind>`
	cases := []struct {
		name, body string
		status     int
		msg        string
	}{
		{"billion laughs", laughs, http.StatusBadRequest, "DOCTYPE"},
		{"external entity", external, http.StatusBadRequest, "DOCTYPE"},
		{"undeclared entity", `<D:propfind xmlns:D="DAV:"><D:prop>&foo;</D:prop></D:propfind>`, http.StatusBadRequest, "malformed XML"},
		{"deep nesting", deep, http.StatusBadRequest, "nested too deeply"},
		{"huge body", huge, http.StatusRequestEntityTooLarge, "too large"},
		{"malformed", `<D:propfind xmlns:D="DAV:"><D:prop>`, http.StatusBadRequest, "malformed XML"},
		{"two roots", `<D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind><D:propfind xmlns:D="DAV:"/>`, http.StatusBadRequest, "more than one root"},
		{"wrong root", `<D:propertyupdate xmlns:D="DAV:"/>`, http.StatusBadRequest, "DAV:propfind"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("PROPFIND", "/dav/", c.body, "Depth", "0").expect(t, c.status)
			if !strings.Contains(string(r.body), c.msg) {
				t.Fatalf("body %q lacks %q", r.body, c.msg)
			}
		})
	}
}

func TestXMLElementLimit(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxXMLElements = 50 })
	body := `<D:propfind xmlns:D="DAV:"><D:prop>` + strings.Repeat("<D:displayname/>", 60) + `</D:prop></D:propfind>`
	r := e.do("PROPFIND", "/dav/", body, "Depth", "0").expect(t, http.StatusBadRequest)
	if !strings.Contains(string(r.body), "too many elements") {
		t.Fatalf("body %q", r.body)
	}
}

func TestXMLWriterEscapes(t *testing.T) {
	var b strings.Builder
	x := newXMLWriter(&b)
	x.open(nsDAV, "multistatus")
	x.node(textEl(nsCalDAV, "calendar-data", "BEGIN:VCALENDAR\r\nSUMMARY:a<b>&\"c\"\r\nEND:VCALENDAR\r\n"))
	x.node(textEl("urn:x-other", "thing", "v"))
	if err := x.close(nsDAV, "multistatus"); err != nil {
		t.Fatal(err)
	}
	n, err := parseXML(strings.NewReader(b.String()), Limits{MaxXMLDepth: 10, MaxXMLElements: 10})
	if err != nil {
		t.Fatal(err, b.String())
	}
	cd := n.child(nsCalDAV, "calendar-data")
	if cd == nil || cd.Text != "BEGIN:VCALENDAR\r\nSUMMARY:a<b>&\"c\"\r\nEND:VCALENDAR\r\n" {
		t.Fatalf("calendar-data did not survive: %q", b.String())
	}
	if n.child("urn:x-other", "thing") == nil {
		t.Fatalf("foreign namespace lost: %s", b.String())
	}
}

// TestXMLWriterRawEqualsText: text given as bytes (node.Raw, the stored
// data of a REPORT's objects) is written exactly as the same text given
// as a string, and reads back as that text.
func TestXMLWriterRawEqualsText(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		text := rapid.StringOf(rapid.SampledFrom([]rune("aZ:;=\r\n\t &<>\"'é€"))).Draw(t, "text")
		write := func(n *node) string {
			var b strings.Builder
			x := newXMLWriter(&b)
			x.open(nsDAV, "multistatus")
			x.node(n)
			if err := x.close(nsDAV, "multistatus"); err != nil {
				t.Fatal(err)
			}
			return b.String()
		}
		asText := write(textEl(nsCalDAV, "calendar-data", text))
		asRaw := write(&node{Name: textEl(nsCalDAV, "calendar-data", "").Name, Raw: []byte(text)})
		if asText != asRaw {
			t.Fatalf("text %q:\nas a string %q\nas bytes    %q", text, asText, asRaw)
		}
		n, err := parseXML(strings.NewReader(asRaw), Limits{MaxXMLDepth: 10, MaxXMLElements: 10})
		if err != nil {
			t.Fatal(err)
		}
		if cd := n.child(nsCalDAV, "calendar-data"); cd == nil || cd.Text != text {
			t.Fatalf("text %q did not survive: %q", text, asRaw)
		}
	})
}

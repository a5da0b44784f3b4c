package main

import (
	"strings"
	"testing"
)

// TestCheckObjects: checkObjects accepts an answer with exactly the
// objects asked for, each 200 with its data, in either server's
// spelling of the XML, and refuses a missing, extra, repeated or 404
// object and data of another object.
func TestCheckObjects(t *testing.T) {
	want := map[string]string{"a.ics": "a@x", "b c.ics": "b@x"}
	ours := func(responses ...string) string {
		return `<?xml version="1.0" encoding="UTF-8"?>` + "\n" + `<D:multistatus xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">` +
			strings.Join(responses, "") + `</D:multistatus>`
	}
	ok := func(href, uid string) string {
		return `<D:response><D:href>/dav/calendars/u/cal/` + href + `</D:href><D:propstat><D:prop><D:getetag>&quot;1&quot;</D:getetag>` +
			`<C:calendar-data>BEGIN:VCALENDAR&#xD;` + "\n" + `UID:` + uid + `&#xD;` + "\n" + `END:VCALENDAR</C:calendar-data></D:prop>` +
			`<D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`
	}
	radicale := `<?xml version='1.0' encoding='utf-8'?>` + "\n" + `<multistatus xmlns="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">` +
		`<response><href>/user0%40bench.test/cal/a.ics</href><propstat><prop><getetag>"x"</getetag><C:calendar-data>UID:a@x` + "\n" +
		`</C:calendar-data></prop><status>HTTP/1.1 200 OK</status></propstat></response>` +
		`<response><href>/user0%40bench.test/cal/b%20c.ics</href><propstat><prop><C:calendar-data>UID:b@x</C:calendar-data></prop>` +
		`<status>HTTP/1.1 200 OK</status></propstat></response></multistatus>`
	cases := []struct {
		name, body, err string
	}{
		{"ours", ours(ok("a.ics", "a@x"), ok("b%20c.ics", "b@x")), ""},
		{"radicale", radicale, ""},
		{"missing", ours(ok("a.ics", "a@x")), "1 objects, want 2"},
		{"extra", ours(ok("a.ics", "a@x"), ok("b%20c.ics", "b@x"), ok("z.ics", "z@x")), "not asked for"},
		{"twice", ours(ok("a.ics", "a@x"), ok("a.ics", "a@x"), ok("b%20c.ics", "b@x")), "twice"},
		{"other data", ours(ok("a.ics", "b@x"), ok("b%20c.ics", "b@x")), "without UID:a@x"},
		{"404", ours(ok("a.ics", "a@x"), `<D:response><D:href>/dav/calendars/u/cal/b%20c.ics</D:href><D:propstat><D:prop><C:calendar-data/></D:prop>`+
			`<D:status>HTTP/1.1 404 Not Found</D:status></D:propstat></D:response>`), "without a 200 propstat"},
		{"data outside prop", ours(ok("a.ics", "a@x"), `<D:response><D:href>/dav/calendars/u/cal/b%20c.ics</D:href><D:propstat>`+
			`<C:calendar-data>UID:b@x</C:calendar-data><D:status>HTTP/1.1 200 OK</D:status></D:propstat></D:response>`), "without a 200 propstat"},
		{"malformed", ours(ok("a.ics", "a@x")) + "<", "multistatus"},
	}
	for _, c := range cases {
		err := checkObjects([]byte(c.body), want)
		switch {
		case c.err == "" && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.err != "" && (err == nil || !strings.Contains(err.Error(), c.err)):
			t.Errorf("%s: error %v, want one with %q", c.name, err, c.err)
		}
	}
}

package dav

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
)

const patchNS = `xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/" xmlns:A="http://apple.com/ns/ical/" xmlns:X="urn:x-test"`

func propSet(props string) string {
	return `<?xml version="1.0"?><D:propertyupdate ` + patchNS + `><D:set><D:prop>` + props + `</D:prop></D:set></D:propertyupdate>`
}

func propRemove(props string) string {
	return `<?xml version="1.0"?><D:propertyupdate ` + patchNS + `><D:remove><D:prop>` + props + `</D:prop></D:remove></D:propertyupdate>`
}

// TestDeadProperties: properties of other namespaces (Apple's
// calendar-order, a client's own) set by PROPPATCH are returned by
// PROPFIND (by name, allprop, propname), removed by PROPPATCH, bounded
// in count and size (507, all or nothing), and gone with the
// collection; protected properties are still refused.
func TestDeadProperties(t *testing.T) {
	e := newEnv(t)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	ms := e.do("PROPPATCH", cal, propSet(`<A:calendar-order>3</A:calendar-order><X:state kind="a"><X:item>one</X:item><X:item>two</X:item></X:state>`)).multistatus(t)
	if st := ms[cal].props; st["http://apple.com/ns/ical/ calendar-order"] != 200 || st["urn:x-test state"] != 200 {
		t.Fatalf("PROPPATCH of dead properties: %v", st)
	}
	got := e.do("PROPFIND", cal, propfindBody("A:calendar-order", "X:state", "X:absent"), "Depth", "0").multistatus(t)[cal]
	if v := got.prop(t, nsApple, "calendar-order").Text; v != "3" {
		t.Fatalf("calendar-order %q", v)
	}
	state := got.prop(t, "urn:x-test", "state")
	if a, _ := state.attr("kind"); a != "a" || len(state.Children) != 2 || state.Children[1].Text != "two" {
		t.Fatalf("X:state came back as %+v", state)
	}
	if got.props["urn:x-test absent"] != http.StatusNotFound {
		t.Fatalf("unset dead property: %v", got.props)
	}
	all := e.do("PROPFIND", cal, `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:allprop/></D:propfind>`, "Depth", "0").multistatus(t)[cal]
	names := e.do("PROPFIND", cal, `<?xml version="1.0"?><D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`, "Depth", "0").multistatus(t)[cal]
	for _, k := range []string{"http://apple.com/ns/ical/ calendar-order", "urn:x-test state"} {
		if all.props[k] != 200 || names.props[k] != 200 {
			t.Fatalf("%s: allprop %d, propname %d", k, all.props[k], names.props[k])
		}
	}

	// Protected and unknown properties of the protocol namespaces.
	for _, p := range []string{`<CS:getctag>1</CS:getctag>`, `<D:getetag>x</D:getetag>`, `<C:no-such>x</C:no-such>`} {
		if st := e.do("PROPPATCH", cal, propSet(p)).multistatus(t)[cal].props; slices.Contains(mapValues(st), 200) {
			t.Fatalf("PROPPATCH %s: %v", p, st)
		}
	}

	// Bounds: the 33rd property and an oversized one get 507, and the
	// other properties of the same PROPPATCH are not applied (424).
	var many strings.Builder
	for i := range maxDeadProps - 2 {
		fmt.Fprintf(&many, "<X:p%d>%d</X:p%d>", i, i, i)
	}
	if st := e.do("PROPPATCH", cal, propSet(many.String())).multistatus(t)[cal].props; st["urn:x-test p0"] != 200 {
		t.Fatalf("%d dead properties: %v", maxDeadProps, st)
	}
	st := e.do("PROPPATCH", cal, propSet(`<A:calendar-order>4</A:calendar-order><X:one-too-many/>`)).multistatus(t)[cal].props
	if st["urn:x-test one-too-many"] != http.StatusInsufficientStorage || st["http://apple.com/ns/ical/ calendar-order"] != http.StatusFailedDependency {
		t.Fatalf("property beyond the count: %v", st)
	}
	st = e.do("PROPPATCH", cal, propSet(`<X:p0>`+strings.Repeat("x", maxDeadPropSize)+`</X:p0>`)).multistatus(t)[cal].props
	if st["urn:x-test p0"] != http.StatusInsufficientStorage {
		t.Fatalf("oversized property: %v", st)
	}
	got = e.do("PROPFIND", cal, propfindBody("A:calendar-order", "X:p0"), "Depth", "0").multistatus(t)[cal]
	if got.prop(t, nsApple, "calendar-order").Text != "3" || got.prop(t, "urn:x-test", "p0").Text != "0" {
		t.Fatal("a refused PROPPATCH changed stored properties")
	}

	// Remove.
	e.do("PROPPATCH", cal, propRemove(`<A:calendar-order/>`)).multistatus(t)
	if got := e.do("PROPFIND", cal, propfindBody("A:calendar-order"), "Depth", "0").multistatus(t)[cal]; got.props[nsApple+" calendar-order"] != http.StatusNotFound {
		t.Fatalf("removed property: %v", got.props)
	}

	// MKCALENDAR sets them too; a new calendar of a deleted one's name
	// starts without them.
	fresh := "/dav/calendars/" + e.aliceID + "/work/"
	mk := `<?xml version="1.0"?><C:mkcalendar ` + patchNS + `><D:set><D:prop><A:calendar-order>7</A:calendar-order></D:prop></D:set></C:mkcalendar>`
	e.do("MKCALENDAR", fresh, mk).expect(t, http.StatusCreated)
	if got := e.do("PROPFIND", fresh, propfindBody("A:calendar-order"), "Depth", "0").multistatus(t)[fresh]; got.prop(t, nsApple, "calendar-order").Text != "7" {
		t.Fatal("MKCALENDAR's calendar-order not kept")
	}
	e.do("DELETE", fresh, "").expect(t, http.StatusNoContent)
	e.do("MKCALENDAR", fresh, "").expect(t, http.StatusCreated)
	if got := e.do("PROPFIND", fresh, propfindBody("A:calendar-order"), "Depth", "0").multistatus(t)[fresh]; got.props[nsApple+" calendar-order"] != http.StatusNotFound {
		t.Fatal("a deleted calendar's dead property came back")
	}
}

func mapValues(m map[string]int) []int {
	var out []int
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

// vtimezoneNY is America/New_York as one VTIMEZONE.
const vtimezoneNY = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTIMEZONE\r\nTZID:America/New_York\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:19701101T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=1SU\r\nTZOFFSETFROM:-0400\r\nTZOFFSETTO:-0500\r\nEND:STANDARD\r\n" +
	"BEGIN:DAYLIGHT\r\nDTSTART:19700308T020000\r\nRRULE:FREQ=YEARLY;BYMONTH=3;BYDAY=2SU\r\nTZOFFSETFROM:-0500\r\nTZOFFSETTO:-0400\r\nEND:DAYLIGHT\r\n" +
	"END:VTIMEZONE\r\nEND:VCALENDAR\r\n"

// vtimezoneUTC is a VTIMEZONE at UTC+0.
const vtimezoneUTC = "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTIMEZONE\r\nTZID:Zulu\r\n" +
	"BEGIN:STANDARD\r\nDTSTART:19700101T000000\r\nTZOFFSETFROM:+0000\r\nTZOFFSETTO:+0000\r\nEND:STANDARD\r\nEND:VTIMEZONE\r\nEND:VCALENDAR\r\n"

// TestCalendarTimezone: calendar-timezone (RFC 4791 §5.2.2) is stored
// and returned; a value that is not one VTIMEZONE gets 409; a
// calendar-query without a timezone reads floating times in it (§7.3),
// and the query's own CALDAV:timezone wins over it.
func TestCalendarTimezone(t *testing.T) {
	e := newEnv(t)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	// Floating 10:00-11:00: 10:00Z in UTC, 15:00Z in New York (EST).
	e.do("PUT", e.calPath("floating.ics"), event("floating", "20270110T100000")).expect(t, http.StatusCreated)
	query := func(tz string) []string {
		el := ""
		if tz != "" {
			el = "<C:timezone>" + xmlEscape(tz) + "</C:timezone>"
		}
		q := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">` +
			`<C:time-range start="20270110T143000Z" end="20270110T153000Z"/></C:comp-filter></C:comp-filter></C:filter>` + el + `</C:calendar-query>`
		return hrefs(e.do("REPORT", cal, q, "Depth", "1").multistatus(t))
	}
	if got := query(""); len(got) != 0 {
		t.Fatalf("floating event read in UTC matched 14:30-15:30Z: %v", got)
	}
	st := e.do("PROPPATCH", cal, propSet(`<C:calendar-timezone>`+xmlEscape(event("x", "20270101T000000Z"))+`</C:calendar-timezone>`)).multistatus(t)[cal].props
	if st[nsCalDAV+" calendar-timezone"] != http.StatusConflict {
		t.Fatalf("calendar-timezone holding a VEVENT: %v", st)
	}
	st = e.do("PROPPATCH", cal, propSet(`<C:calendar-timezone>`+xmlEscape(vtimezoneNY)+`</C:calendar-timezone>`)).multistatus(t)[cal].props
	if st[nsCalDAV+" calendar-timezone"] != http.StatusOK {
		t.Fatalf("PROPPATCH calendar-timezone: %v", st)
	}
	got := e.do("PROPFIND", cal, propfindBody("C:calendar-timezone"), "Depth", "0").multistatus(t)[cal]
	if v := got.prop(t, nsCalDAV, "calendar-timezone").Text; !strings.Contains(v, "TZID:America/New_York") {
		t.Fatalf("calendar-timezone came back as %q", v)
	}
	if got := query(""); !slices.Equal(got, []string{e.calPath("floating.ics")}) {
		t.Fatalf("floating event read in the calendar's New York zone: %v", got)
	}
	if got := query(vtimezoneUTC); len(got) != 0 {
		t.Fatalf("the query's UTC timezone did not win: %v", got)
	}
	// free-busy-query reads floating times in it too (§5.2.2).
	fb := e.do("REPORT", cal, `<C:free-busy-query `+reportNS+`><C:time-range start="20270110T000000Z" end="20270111T000000Z"/></C:free-busy-query>`, "Depth", "1").expect(t, http.StatusOK)
	if !strings.Contains(string(fb.body), "FREEBUSY:20270110T150000Z/20270110T160000Z") {
		t.Fatalf("free-busy-query of the floating event in New York time:\n%s", fb.body)
	}
	e.do("REPORT", cal, `<C:calendar-query `+reportNS+`><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter><C:timezone>junk</C:timezone></C:calendar-query>`, "Depth", "1").expect(t, http.StatusForbidden)
}

func xmlEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;", "\r", "&#13;").Replace(s)
}

package dav

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/store"
)

// event returns a VEVENT calendar object; extra lines go into the VEVENT.
func event(uid, start string, extra ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:" + start + "\r\nDURATION:PT1H\r\nSUMMARY:Event " + uid + "\r\n" +
		strings.Join(append(extra, ""), "\r\n") + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

func todo(uid string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VTODO\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nSUMMARY:Todo " + uid + "\r\nEND:VTODO\r\nEND:VCALENDAR\r\n"
}

func vcardText(uid, fn, email string) string {
	return "BEGIN:VCARD\r\nVERSION:4.0\r\nUID:" + uid + "\r\nFN:" + fn + "\r\nEMAIL:" + email + "\r\nEND:VCARD\r\n"
}

func (e *env) calPath(name string) string { return "/dav/calendars/" + e.aliceID + "/calendar/" + name }
func (e *env) cardPath(name string) string {
	return "/dav/addressbooks/" + e.aliceID + "/contacts/" + name
}

func TestPutGetDelete(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := e.calPath("a.ics")
	r := e.do("PUT", p, event("a", "20270105T100000Z"), "Content-Type", "text/calendar", "If-None-Match", "*").expect(t, http.StatusCreated)
	etag := r.Header.Get("ETag")
	if !strings.HasPrefix(etag, `"`) {
		t.Fatalf("ETag %q", etag)
	}
	e.do("PUT", p, event("a", "20270105T100000Z"), "If-None-Match", "*").expect(t, http.StatusPreconditionFailed)
	g := e.do("GET", p, "").expect(t, http.StatusOK)
	if g.Header.Get("ETag") != etag || !strings.HasPrefix(g.Header.Get("Content-Type"), "text/calendar") || string(g.body) != event("a", "20270105T100000Z") {
		t.Fatalf("GET: %v %q", g.Header, g.body)
	}
	e.do("GET", p, "", "If-None-Match", etag).expect(t, http.StatusNotModified)
	if h := e.do("HEAD", p, "").expect(t, http.StatusOK); len(h.body) != 0 || h.Header.Get("ETag") != etag {
		t.Fatal("HEAD")
	}
	// The index fields come from the parsed object.
	c, _ := e.st.Collection(ctx, e.aliceID, store.KindCalendar, "calendar")
	o, err := e.st.GetObject(ctx, c.ID, "a.ics")
	if err != nil || o.Component != "VEVENT" || !o.Start.Equal(time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC)) || !o.End.Equal(time.Date(2027, 1, 5, 11, 0, 0, 0, time.UTC)) {
		t.Fatalf("stored %+v %v", o, err)
	}
	e.do("PUT", p, event("a", "20270106T100000Z"), "If-Match", `"nope"`).expect(t, http.StatusPreconditionFailed)
	r = e.do("PUT", p, event("a", "20270106T100000Z"), "If-Match", etag).expect(t, http.StatusNoContent)
	if r.Header.Get("ETag") == etag || r.Header.Get("ETag") == "" {
		t.Fatal("ETag did not change")
	}
	e.do("DELETE", p, "", "If-Match", etag).expect(t, http.StatusPreconditionFailed)
	e.do("DELETE", p, "", "If-Match", r.Header.Get("ETag")).expect(t, http.StatusNoContent)
	e.do("GET", p, "").expect(t, http.StatusNotFound)
	e.do("DELETE", p, "").expect(t, http.StatusNotFound)
	e.do("GET", "/dav/calendars/"+e.aliceID+"/calendar/", "").expect(t, http.StatusMethodNotAllowed)
	e.do("PUT", e.calPath("t.ics"), todo("t")).expect(t, http.StatusCreated)
	if o, _ := e.st.GetObject(ctx, c.ID, "t.ics"); o.Component != "VTODO" || !o.Start.IsZero() || !o.End.IsZero() {
		t.Fatalf("todo stored as %+v", o)
	}
	e.do("PUT", "/dav/calendars/"+e.aliceID+"/nope/x.ics", event("x", "20270105T100000Z")).expect(t, http.StatusConflict)
}

// TestPutPreconditions: invalid data is refused with the RFC's
// precondition element, and nothing is stored.
func TestPutPreconditions(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxResourceSize = 4096 })
	ctx := context.Background()
	e.do("PUT", e.calPath("a.ics"), event("a", "20270105T100000Z")).expect(t, http.StatusCreated)
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/events/", mkcalendarBody).expect(t, http.StatusCreated) // VTODO only
	cases := []struct {
		name, path, body, ctype string
		status                  int
		space, cond             string
	}{
		{"garbage", e.calPath("g.ics"), "not a calendar", "text/calendar", 403, nsCalDAV, "valid-calendar-data"},
		{"two uids", e.calPath("t.ics"), strings.Replace(event("b", "20270105T100000Z"), "END:VCALENDAR", "BEGIN:VEVENT\r\nUID:c\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:20270105T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR", 1), "text/calendar", 403, nsCalDAV, "valid-calendar-object-resource"},
		{"uid conflict", e.calPath("other.ics"), event("a", "20270105T100000Z"), "text/calendar", 409, nsCalDAV, "no-uid-conflict"},
		{"component", "/dav/calendars/" + e.aliceID + "/events/e.ics", event("e", "20270105T100000Z"), "text/calendar", 403, nsCalDAV, "supported-calendar-component"},
		{"too large", e.calPath("big.ics"), event("big", "20270105T100000Z", "DESCRIPTION:"+strings.Repeat("x", 5000)), "text/calendar", 403, nsCalDAV, "max-resource-size"},
		{"media type", e.calPath("m.ics"), event("m", "20270105T100000Z"), "text/plain", 415, nsCalDAV, "supported-calendar-data"},
		{"bad vcard", e.cardPath("v.vcf"), "BEGIN:VCARD\r\nVERSION:4.0\r\nFN:x\r\nEND:VCARD\r\n", "text/vcard", 403, nsCardDAV, "valid-address-data"},
		{"vcard 2.1", e.cardPath("v.vcf"), "BEGIN:VCARD\r\nVERSION:2.1\r\nUID:x\r\nFN:x\r\nN:x;;;;\r\nEND:VCARD\r\n", "text/vcard", 403, nsCardDAV, "supported-address-data"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := e.do("PUT", c.path, c.body, "Content-Type", c.ctype).expect(t, c.status)
			root := r.tree(t)
			cond := root.child(c.space, c.cond)
			if !root.is(nsDAV, "error") || cond == nil {
				t.Fatalf("body %s", r.body)
			}
			if c.cond == "no-uid-conflict" && cond.child(nsDAV, "href").Text != e.calPath("a.ics") {
				t.Fatalf("no-uid-conflict href: %s", r.body)
			}
			e.do("GET", c.path, "").expect(t, http.StatusNotFound)
		})
	}
	cal, _ := e.st.Collection(ctx, e.aliceID, store.KindCalendar, "calendar")
	if objs, _ := e.st.ListObjects(ctx, cal.ID); len(objs) != 1 {
		t.Fatalf("%d objects stored", len(objs))
	}
}

func TestPutVCard(t *testing.T) {
	e := newEnv(t)
	p := e.cardPath("bob.vcf")
	e.do("PUT", p, vcardText("bob-1", "Bob", bob), "Content-Type", "text/vcard; charset=utf-8").expect(t, http.StatusCreated)
	g := e.do("GET", p, "").expect(t, http.StatusOK)
	if !strings.HasPrefix(g.Header.Get("Content-Type"), "text/vcard") {
		t.Fatalf("Content-Type %q", g.Header.Get("Content-Type"))
	}
	e.do("PUT", p, vcardText("bob-1", "Bobby", bob)).expect(t, http.StatusNoContent)
	e.do("PUT", e.cardPath("x.vcf"), vcardText("bob-1", "Other", bob)).expect(t, http.StatusConflict)
}

func TestMaxObjectsPerCollection(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxObjectsPerCollection = 3 })
	for i := range 3 {
		e.do("PUT", e.calPath(fmt.Sprintf("%d.ics", i)), event(fmt.Sprint(i), "20270105T100000Z")).expect(t, http.StatusCreated)
	}
	e.do("PUT", e.calPath("3.ics"), event("3", "20270105T100000Z")).expect(t, http.StatusInsufficientStorage)
	e.do("PUT", e.calPath("0.ics"), event("0", "20270107T100000Z")).expect(t, http.StatusNoContent)
	e.do("DELETE", e.calPath("1.ics"), "").expect(t, http.StatusNoContent)
	e.do("PUT", e.calPath("3.ics"), event("3", "20270105T100000Z")).expect(t, http.StatusCreated)
}

// TestGoWebdavObjects: go-webdav's client stores and reads an event.
func TestGoWebdavObjects(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cc := e.calClient(alice, alicePW)
	cal, err := ical.NewDecoder(strings.NewReader(event("gw", "20270105T100000Z"))).Decode()
	if err != nil {
		t.Fatal(err)
	}
	p := e.calPath("gw.ics")
	put, err := cc.PutCalendarObject(ctx, p, cal)
	if err != nil {
		t.Fatal(err)
	}
	got, err := cc.GetCalendarObject(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	if got.ETag != put.ETag || got.Data.Children[0].Props.Get(ical.PropUID).Value != "gw" {
		t.Fatalf("got %+v, put %+v", got, put)
	}
}

func TestGALReadOnly(t *testing.T) {
	e := newEnv(t)
	p := "/dav/addressbooks/" + e.aliceID + "/gal/x.vcf"
	r := e.do("PUT", p, vcardText("x", "X", "x@example.com")).expect(t, http.StatusForbidden)
	if r.tree(t).child(nsDAV, "need-privileges") == nil {
		t.Fatalf("body %s", r.body)
	}
	e.do("DELETE", p, "").expect(t, http.StatusForbidden)
	e.do("DELETE", "/dav/addressbooks/"+e.aliceID+"/gal/", "").expect(t, http.StatusForbidden)
}

// TestMaxAttendees: a PUT of an event with more attendees than
// Limits.MaxAttendees gets 403 max-attendees-per-instance (RFC 4791
// §5.3.2.1) and stores nothing; one at the limit is stored.
func TestMaxAttendees(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxAttendees = 2 })
	att := func(n int) []string {
		out := []string{"ORGANIZER:mailto:" + alice}
		for i := range n {
			out = append(out, fmt.Sprintf("ATTENDEE;SCHEDULE-AGENT=CLIENT:mailto:guest%d@elsewhere.test", i))
		}
		return out
	}
	r := e.do("PUT", e.calPath("many.ics"), event("many", "20270110T100000Z", att(3)...)).expect(t, http.StatusForbidden)
	if !strings.Contains(string(r.body), "max-attendees-per-instance") {
		t.Fatalf("refusal names no max-attendees-per-instance: %s", r.body)
	}
	e.do("GET", e.calPath("many.ics"), "").expect(t, http.StatusNotFound)
	e.do("PUT", e.calPath("two.ics"), event("two", "20270110T100000Z", att(2)...)).expect(t, http.StatusCreated)
}

package dav

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

const room = "room1@example.com"

// schedEnv is an env with a room resource.
type schedEnv struct {
	*env
	roomID string
}

func newSchedEnv(t *testing.T, opts ...envOption) *schedEnv {
	t.Helper()
	e := newEnv(t, opts...)
	r, err := e.dir.CreateResource(context.Background(), directory.Resource{Address: room, DisplayName: "Room 1", Kind: directory.ResourceRoom})
	if err != nil {
		t.Fatal(err)
	}
	return &schedEnv{env: e, roomID: r.ID}
}

// putAs stores an event as user (password pw) in their default calendar.
func (e *schedEnv) putAs(user, pw, id, name, ics string) resp {
	e.t.Helper()
	return e.do(http.MethodPut, "/dav/calendars/"+id+"/calendar/"+name, ics, "Auth", user+":"+pw, "Content-Type", "text/calendar")
}

// storeEvent stores an event directly in an account's default calendar
// (for resources, which do not log in).
func (e *schedEnv) storeEvent(account, name, ics string) {
	e.t.Helper()
	def, _, err := e.h.ensureCalendarHome(context.Background(), account)
	if err != nil {
		e.t.Fatal(err)
	}
	p, err := e.h.validate([]byte(ics), true, def)
	if err != nil {
		e.t.Fatal(err)
	}
	o := store.Object{Name: name, UID: p.uid, ContentType: p.mediaType, Data: []byte(ics), Component: p.component, Start: p.start, End: p.end}
	if _, err := e.st.PutObject(context.Background(), def.ID, o, store.PutOptions{}); err != nil {
		e.t.Fatal(err)
	}
}

func ev(uid, start, end string, extra ...string) string {
	return "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:" + start + "\r\nDTEND:" + end + "\r\nSUMMARY:x\r\n" +
		strings.Join(extra, "") + "END:VEVENT\r\nEND:VCALENDAR\r\n"
}

func fbRequestBody(organizer string, attendees ...string) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nMETHOD:REQUEST\r\nBEGIN:VFREEBUSY\r\nUID:fb-1\r\n" +
		"DTSTAMP:20260101T000000Z\r\nDTSTART:20260301T000000Z\r\nDTEND:20260401T000000Z\r\nORGANIZER:mailto:" + organizer + "\r\n")
	for _, a := range attendees {
		b.WriteString("ATTENDEE:mailto:" + a + "\r\n")
	}
	b.WriteString("END:VFREEBUSY\r\nEND:VCALENDAR\r\n")
	return b.String()
}

// scheduleResponse parses a schedule-response into recipient ->
// (request-status, calendar-data).
func scheduleResponse(t *testing.T, r resp) map[string][2]string {
	t.Helper()
	r.expect(t, http.StatusOK)
	root := r.tree(t)
	if !root.is(nsCalDAV, "schedule-response") {
		t.Fatalf("root %v", root.Name)
	}
	out := map[string][2]string{}
	for _, c := range root.Children {
		rcpt := c.child(nsCalDAV, "recipient").child(nsDAV, "href").Text
		var data string
		if d := c.child(nsCalDAV, "calendar-data"); d != nil {
			data = d.Text
		}
		out[strings.TrimPrefix(rcpt, "mailto:")] = [2]string{c.child(nsCalDAV, "request-status").Text, data}
	}
	return out
}

func TestSchedulingProperties(t *testing.T) {
	e := newSchedEnv(t)
	ms := e.do("PROPFIND", "/dav/principals/"+e.aliceID+"/", propfindBody("C:schedule-inbox-URL", "C:schedule-outbox-URL", "C:calendar-user-type"), "Depth", "0").multistatus(t)
	p := ms["/dav/principals/"+e.aliceID+"/"]
	if got := p.prop(t, nsCalDAV, "schedule-inbox-URL").child(nsDAV, "href").Text; got != "/dav/calendars/"+e.aliceID+"/inbox/" {
		t.Errorf("inbox URL %q", got)
	}
	if got := p.prop(t, nsCalDAV, "schedule-outbox-URL").child(nsDAV, "href").Text; got != "/dav/calendars/"+e.aliceID+"/outbox/" {
		t.Errorf("outbox URL %q", got)
	}
	if got := p.prop(t, nsCalDAV, "calendar-user-type").Text; got != "INDIVIDUAL" {
		t.Errorf("calendar-user-type %q", got)
	}
	inbox := "/dav/calendars/" + e.aliceID + "/inbox/"
	ms = e.do("PROPFIND", inbox, propfindBody("D:resourcetype", "C:schedule-default-calendar-URL", "D:sync-token"), "Depth", "0").multistatus(t)
	in := ms[inbox]
	if in.prop(t, nsDAV, "resourcetype").child(nsCalDAV, "schedule-inbox") == nil {
		t.Error("inbox resourcetype lacks schedule-inbox")
	}
	if got := in.prop(t, nsCalDAV, "schedule-default-calendar-URL").child(nsDAV, "href").Text; got != "/dav/calendars/"+e.aliceID+"/calendar/" {
		t.Errorf("default calendar %q", got)
	}
	outbox := "/dav/calendars/" + e.aliceID + "/outbox/"
	ms = e.do("PROPFIND", outbox, propfindBody("D:resourcetype", "D:current-user-privilege-set"), "Depth", "0").multistatus(t)
	if ms[outbox].prop(t, nsDAV, "resourcetype").child(nsCalDAV, "schedule-outbox") == nil {
		t.Error("outbox resourcetype lacks schedule-outbox")
	}
	// The home lists the inbox and the outbox.
	ms = e.do("PROPFIND", "/dav/calendars/"+e.aliceID+"/", propfindBody("D:resourcetype"), "Depth", "1").multistatus(t)
	if _, ok := ms[inbox]; !ok {
		t.Error("home does not list the inbox")
	}
	if _, ok := ms[outbox]; !ok {
		t.Error("home does not list the outbox")
	}
	// Clients cannot write into the inbox or delete it.
	e.do(http.MethodPut, inbox+"x.ics", ev("x", "20260301T100000Z", "20260301T110000Z"), "Content-Type", "text/calendar").expect(t, http.StatusForbidden)
	e.do(http.MethodDelete, inbox, "").expect(t, http.StatusForbidden)
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/outbox/", "").expect(t, http.StatusForbidden)
	// The outbox holds nothing and has nothing to change.
	e.do(http.MethodGet, outbox+"x.ics", "").expect(t, http.StatusNotFound)
	e.do(http.MethodDelete, outbox, "").expect(t, http.StatusForbidden)
	e.do("PROPPATCH", outbox, `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set></D:propertyupdate>`).expect(t, http.StatusForbidden)
	for _, body := range []string{
		`<C:calendar-query xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>`,
		`<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><D:href>` + outbox + `x.ics</D:href></C:calendar-multiget>`,
		`<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`,
	} {
		if r := e.do("REPORT", outbox, body); r.StatusCode >= 500 {
			t.Errorf("REPORT on the outbox: %d %s", r.StatusCode, r.body)
		}
	}
}

func TestOutboxFreeBusy(t *testing.T) {
	e := newSchedEnv(t)
	e.putAs(bob, bobPW, e.bobID, "a.ics", ev("b1", "20260301T090000Z", "20260301T100000Z")).expect(t, http.StatusCreated)
	e.putAs(bob, bobPW, e.bobID, "t.ics", ev("b2", "20260301T120000Z", "20260301T130000Z", "TRANSP:TRANSPARENT\r\n")).expect(t, http.StatusCreated)
	e.putAs(bob, bobPW, e.bobID, "p.ics", ev("b3", "20260301T140000Z", "20260301T150000Z", "CLASS:PRIVATE\r\nSTATUS:TENTATIVE\r\n")).expect(t, http.StatusCreated)
	e.storeEvent(e.roomID, "r.ics", ev("r1", "20260301T110000Z", "20260301T113000Z"))
	body := fbRequestBody(alice, alice, bob, room, "nobody@example.com", "someone@elsewhere.org")
	got := scheduleResponse(t, e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/outbox/", body, "Content-Type", "text/calendar"))
	want := map[string]string{alice: "2.0", bob: "2.0", room: "2.0", "nobody@example.com": "3.7", "someone@elsewhere.org": "3.7"}
	for who, code := range want {
		if !strings.HasPrefix(got[who][0], code+";") {
			t.Errorf("%s: request-status %q, want %s", who, got[who][0], code)
		}
	}
	bobFB := got[bob][1]
	for _, s := range []string{"METHOD:REPLY", "FREEBUSY:20260301T090000Z/20260301T100000Z", "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20260301T140000Z/20260301T150000Z", "ATTENDEE:mailto:" + bob} {
		if !strings.Contains(bobFB, s) {
			t.Errorf("bob's reply lacks %q:\n%s", s, bobFB)
		}
	}
	if strings.Contains(bobFB, "T120000Z") || strings.Contains(bobFB, "SUMMARY") {
		t.Errorf("bob's reply shows a transparent event or details:\n%s", bobFB)
	}
	if !strings.Contains(got[room][1], "FREEBUSY:20260301T110000Z/20260301T113000Z") {
		t.Errorf("room's reply:\n%s", got[room][1])
	}
	if strings.Contains(got[alice][1], "FREEBUSY:") {
		t.Errorf("alice has no busy time:\n%s", got[alice][1])
	}
}

func TestOutboxRefusals(t *testing.T) {
	e := newSchedEnv(t, func(o *Options) { o.Limits.MaxRecipients = 2 })
	outbox := "/dav/calendars/" + e.aliceID + "/outbox/"
	post := func(body string, hdr ...string) resp {
		return e.do(http.MethodPost, outbox, body, append([]string{"Content-Type", "text/calendar"}, hdr...)...)
	}
	post(fbRequestBody(bob, bob)).expect(t, http.StatusForbidden)                // not her ORGANIZER
	post(fbRequestBody("al@example.com", bob)).expect(t, http.StatusOK)          // an alias is hers
	post(fbRequestBody(alice)).expect(t, http.StatusForbidden)                   // no recipient
	post(fbRequestBody(alice, bob, room, alice)).expect(t, http.StatusForbidden) // too many
	post("not ical").expect(t, http.StatusBadRequest)                            // no iCalendar
	post(strings.Replace(fbRequestBody(alice, bob), "METHOD:REQUEST", "METHOD:PUBLISH", 1)).expect(t, http.StatusForbidden)
	post(strings.Replace(fbRequestBody(alice, bob), "DTEND:20260401", "DTEND:20260201", 1)).expect(t, http.StatusBadRequest)
	post(fbRequestBody(alice, bob), "Content-Type", "text/plain").expect(t, http.StatusUnsupportedMediaType)
	// Only the owner's outbox, only the outbox.
	e.do(http.MethodPost, "/dav/calendars/"+e.bobID+"/outbox/", fbRequestBody(alice, bob), "Content-Type", "text/calendar").expect(t, http.StatusForbidden)
	e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/calendar/", fbRequestBody(alice, bob), "Content-Type", "text/calendar").expect(t, http.StatusMethodNotAllowed)
}

func TestInboxCollection(t *testing.T) {
	e := newSchedEnv(t)
	e.do(http.MethodPut, "/dav/calendars/"+e.aliceID+"/calendar/i1.ics", meeting("i1", "20260313T100000Z", "20260313T110000Z", alice, 0, bob),
		"Content-Type", "text/calendar").expect(t, http.StatusCreated)
	inbox := "/dav/calendars/" + e.bobID + "/inbox/"
	as := []string{"Auth", bob + ":" + bobPW}
	ms := e.do("PROPFIND", inbox, propfindBody("D:getetag"), append(as, "Depth", "1")...).multistatus(t)
	var msgHref string
	for h := range ms {
		if h != inbox {
			msgHref = h
		}
	}
	if len(ms) != 2 || msgHref == "" {
		t.Fatalf("inbox listing: %v", ms)
	}
	r := e.do(http.MethodGet, msgHref, "", as...).expect(t, http.StatusOK)
	if !strings.Contains(string(r.body), "METHOD:REQUEST") || !strings.Contains(string(r.body), "UID:i1") {
		t.Errorf("inbox message:\n%s", r.body)
	}
	sync := `<D:sync-collection xmlns:D="DAV:"><D:sync-token/><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`
	if got := e.do("REPORT", inbox, sync, as...).multistatus(t); len(got) != 1 {
		t.Errorf("sync-collection of the inbox: %v", got)
	}
	e.do(http.MethodDelete, msgHref, "", as...).expect(t, http.StatusNoContent)
	if ms := e.do("PROPFIND", inbox, propfindBody("D:getetag"), append(as, "Depth", "1")...).multistatus(t); len(ms) != 1 {
		t.Errorf("inbox after DELETE: %v", ms)
	}
	// Bob's busy time does not count his inbox, only his calendar copy.
	got := scheduleResponse(t, e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/outbox/", fbRequestBody(alice, bob), "Content-Type", "text/calendar"))
	if n := strings.Count(got[bob][1], "FREEBUSY:"); n != 1 {
		t.Errorf("bob's busy periods %d, want 1:\n%s", n, got[bob][1])
	}
}

// TestOutboxRemoteFreeBusy: recipients that are not calendar users here
// are asked of Options.RemoteFreeBusy in one call; its periods become
// their 2.0 replies, an address it leaves out is 3.7, and when it fails
// the addresses it did not answer are 5.1 while local recipients are
// still answered.
func TestOutboxRemoteFreeBusy(t *testing.T) {
	var mu sync.Mutex // the handler runs on the test server's goroutines
	var calls [][]string
	var fail bool
	remote := func(_ context.Context, addrs []string, from, to time.Time) (map[string][]BusyPeriod, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, slices.Clone(addrs))
		if !from.Equal(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)) || !to.Equal(time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)) {
			t.Errorf("remote asked for [%v, %v)", from, to)
		}
		out := map[string][]BusyPeriod{"ann@paris.example": {{Start: time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 2, 9, 30, 0, 0, time.UTC), Type: "BUSY"}}}
		if fail {
			return out, errors.New("site lyon did not answer")
		}
		return out, nil
	}
	e := newSchedEnv(t, func(o *Options) { o.RemoteFreeBusy = remote })
	e.putAs(bob, bobPW, e.bobID, "a.ics", ev("b1", "20260301T090000Z", "20260301T100000Z")).expect(t, http.StatusCreated)
	outbox := "/dav/calendars/" + e.aliceID + "/outbox/"
	body := fbRequestBody(alice, bob, "ann@paris.example", "gone@lyon.example", "nobody@example.com")
	got := scheduleResponse(t, e.do(http.MethodPost, outbox, body, "Content-Type", "text/calendar"))
	mu.Lock()
	defer mu.Unlock()
	if len(calls) != 1 || !slices.Equal(calls[0], []string{"ann@paris.example", "gone@lyon.example", "nobody@example.com"}) {
		t.Fatalf("RemoteFreeBusy calls %v, want one for the three addresses not here", calls)
	}
	want := map[string]string{bob: "2.0", "ann@paris.example": "2.0", "gone@lyon.example": "3.7", "nobody@example.com": "3.7"}
	for who, code := range want {
		if !strings.HasPrefix(got[who][0], code+";") {
			t.Errorf("%s: request-status %q, want %s", who, got[who][0], code)
		}
	}
	ann := got["ann@paris.example"][1]
	for _, s := range []string{"METHOD:REPLY", "FREEBUSY:20260302T080000Z/20260302T093000Z", "ATTENDEE:mailto:ann@paris.example", "ORGANIZER:mailto:" + alice} {
		if !strings.Contains(ann, s) {
			t.Errorf("ann's reply lacks %q:\n%s", s, ann)
		}
	}
	if !strings.Contains(got[bob][1], "FREEBUSY:20260301T090000Z/20260301T100000Z") {
		t.Errorf("bob's reply:\n%s", got[bob][1])
	}

	fail = true
	mu.Unlock()
	got = scheduleResponse(t, e.do(http.MethodPost, outbox, body, "Content-Type", "text/calendar"))
	want = map[string]string{bob: "2.0", "ann@paris.example": "2.0", "gone@lyon.example": "5.1", "nobody@example.com": "5.1"}
	for who, code := range want {
		if !strings.HasPrefix(got[who][0], code+";") {
			t.Errorf("remote failing: %s: request-status %q, want %s", who, got[who][0], code)
		}
	}
	// Only local recipients: the remote resolver is not asked.
	scheduleResponse(t, e.do(http.MethodPost, outbox, fbRequestBody(alice, bob, room), "Content-Type", "text/calendar"))
	mu.Lock()
	if len(calls) != 2 {
		t.Errorf("RemoteFreeBusy called %d times, want 2 (not for local recipients only)", len(calls))
	}
}

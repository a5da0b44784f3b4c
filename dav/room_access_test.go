package dav

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// bookRoom has alice book the room for m1 (auto-accepted) and returns
// the href of the booking in the room's calendar.
func (e *roomEnv) bookRoom(t *testing.T) string {
	t.Helper()
	def, _, err := e.h.ensureCalendarHome(context.Background(), e.aliceID)
	if err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodPut, "/dav/calendars/"+e.aliceID+"/"+def.Name+"/m1.ics",
		meeting("m1", "20260310T100000Z", "20260310T110000Z", alice, 0, e.room.Address), "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	c, o, found, err := e.h.findByUID(context.Background(), e.room.ID, "m1")
	if err != nil || !found {
		t.Fatalf("the room has no booking: %v", err)
	}
	return "/dav/calendars/" + e.room.ID + "/" + c.Name + "/" + o.Name
}

// TestRoomCalendarShare: an administrator shares a room's calendar
// ([Handler.Share] with the room's address as owner) as any user's: the
// grantee finds it in their own home as shared-<hex>-<name> and reads
// the bookings; a read grantee's PUT gets 403 need-privileges, a
// read-write grantee's is stored in the room's calendar. Everyone else
// still sees only free/busy: 403 at the room's URLs, 404 for the share
// name in their own home; another tenant's user too.
func TestRoomCalendarShare(t *testing.T) {
	e := newRoomEnv(t)
	ctx := context.Background()
	booking := e.bookRoom(t)
	coll := strings.Split(strings.TrimPrefix(booking, "/dav/calendars/"+e.room.ID+"/"), "/")[0]

	if _, err := e.h.Share(ctx, e.room.Address, store.KindCalendar, coll, bob, AccessRead); err != nil {
		t.Fatalf("sharing the room's calendar: %v", err)
	}
	shared := "/dav/calendars/" + e.bobID + "/" + shareName(e.room.ID, coll) + "/"
	ms := e.do("PROPFIND", "/dav/calendars/"+e.bobID+"/", propfindBody("D:displayname"), "Depth", "1", "Auth", bob+":"+bobPW).multistatus(t)
	if _, ok := ms[shared]; !ok {
		t.Fatalf("bob's home does not list the room's calendar: %v", responseHrefs(ms))
	}
	obj := shared + booking[strings.LastIndexByte(booking, '/')+1:]
	if r := e.do(http.MethodGet, obj, "", "Auth", bob+":"+bobPW).expect(t, http.StatusOK); !strings.Contains(string(r.body), "UID:m1") {
		t.Errorf("bob reads no booking:\n%s", r.body)
	}
	e.do(http.MethodPut, shared+"x.ics", event("x1", "20260311T100000Z"), "Content-Type", "text/calendar", "Auth", bob+":"+bobPW).
		expect(t, http.StatusForbidden)

	// alice (no grant) and eve (another tenant) see nothing.
	aliceShared := "/dav/calendars/" + e.aliceID + "/" + shareName(e.room.ID, coll) + "/"
	e.do("PROPFIND", aliceShared, "", "Depth", "0").expect(t, http.StatusNotFound)
	e.do(http.MethodGet, booking, "").expect(t, http.StatusForbidden)
	e.do(http.MethodGet, booking, "", "Auth", "eve@other.org:"+evePW).expect(t, http.StatusForbidden)

	if _, err := e.h.Share(ctx, e.room.Address, store.KindCalendar, coll, bob, AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodPut, shared+"x.ics", event("x1", "20260311T100000Z"), "Content-Type", "text/calendar", "Auth", bob+":"+bobPW).
		expect(t, http.StatusCreated)
	if _, _, found, err := e.h.findByUID(ctx, e.room.ID, "x1"); err != nil || !found {
		t.Fatalf("bob's write is not in the room's calendar: %v", err)
	}
	// Another tenant's user is no grantee of the room.
	if _, err := e.h.Share(ctx, e.room.Address, store.KindCalendar, coll, "eve@other.org", AccessRead); err == nil {
		t.Error("a room's calendar was shared with another tenant's user")
	}
	if err := e.h.Unshare(ctx, e.room.Address, store.KindCalendar, coll, bob); err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodGet, obj, "", "Auth", bob+":"+bobPW).expect(t, http.StatusNotFound)
}

// TestRoomCalendarDelegates: an administrator makes bob a calendar
// proxy of the room ([Handler.Delegate]), as a user makes a delegate
// by group-member-set; bob then opens the room's calendar home at the
// room's own URLs (delegate.go), reads its bookings, and is listed as
// the room's proxy on his principal (CS:calendar-proxy-read-for). A
// read proxy's PUT gets 403; a write proxy's is stored, and a write
// proxy's change of the room's PARTSTAT is scheduled as the room's
// REPLY to the organizer (as the owner's, delegate.go).
// alice (no grant) and eve (another tenant) get 403 throughout, and so
// does bob once the grant is taken back.
func TestRoomCalendarDelegates(t *testing.T) {
	e := newRoomEnv(t)
	ctx := context.Background()
	booking := e.bookRoom(t)
	home := "/dav/calendars/" + e.room.ID + "/"
	coll := home + strings.Split(strings.TrimPrefix(booking, home), "/")[0] + "/"
	asBob, asEve := []string{"Auth", bob + ":" + bobPW}, []string{"Auth", "eve@other.org:" + evePW}
	closed := func(who []string) {
		t.Helper()
		e.do("PROPFIND", home, "", append([]string{"Depth", "1"}, who...)...).expect(t, http.StatusForbidden)
		e.do(http.MethodGet, booking, "", who...).expect(t, http.StatusForbidden)
		e.do("REPORT", coll, calQueryAll, append([]string{"Depth", "1"}, who...)...).expect(t, http.StatusForbidden)
	}
	closed(asBob)

	if _, err := e.h.Delegate(ctx, e.room.Address, bob, AccessRead); err != nil {
		t.Fatalf("delegating the room: %v", err)
	}
	ms := e.do("PROPFIND", home, propfindBody("D:resourcetype"), append([]string{"Depth", "1"}, asBob...)...).multistatus(t)
	if _, ok := ms[coll]; !ok {
		t.Fatalf("bob's PROPFIND of the room's home does not list %s: %v", coll, responseHrefs(ms))
	}
	if r := e.do(http.MethodGet, booking, "", asBob...).expect(t, http.StatusOK); !strings.Contains(string(r.body), "UID:m1") {
		t.Errorf("bob reads no booking:\n%s", r.body)
	}
	if ms := e.do("REPORT", coll, calQueryAll, append([]string{"Depth", "1"}, asBob...)...).multistatus(t); len(ms) != 1 {
		t.Errorf("calendar-query of the room's calendar: %v", responseHrefs(ms))
	}
	e.do(http.MethodPut, coll+"x.ics", event("x1", "20260311T100000Z"), append([]string{"Content-Type", "text/calendar"}, asBob...)...).
		expect(t, http.StatusForbidden)
	bobPrin := principalPath(e.bobID)
	ms = e.do("PROPFIND", bobPrin, propfindBody("CS:calendar-proxy-read-for"), append([]string{"Depth", "0"}, asBob...)...).multistatus(t)
	if f := ms[bobPrin].prop(t, nsCS, "calendar-proxy-read-for"); len(f.Children) != 1 || f.Children[0].Text != principalPath(e.room.ID) {
		t.Errorf("bob's calendar-proxy-read-for does not name the room: %+v", f.Children)
	}
	// Apple Calendar's expand-property of calendar-proxy-read-for names
	// the room with its name and calendar home.
	const expand = `<?xml version="1.0"?><A:expand-property xmlns:A="DAV:">` +
		`<A:property name="calendar-proxy-read-for" namespace="http://calendarserver.org/ns/">` +
		`<A:property name="displayname"/><A:property name="calendar-home-set" namespace="urn:ietf:params:xml:ns:caldav"/></A:property>` +
		`</A:expand-property>`
	rf := e.do("REPORT", bobPrin, expand, append([]string{"Depth", "0"}, asBob...)...).multistatus(t)[bobPrin].prop(t, nsCS, "calendar-proxy-read-for")
	if len(rf.Children) != 1 || !rf.Children[0].is(nsDAV, "response") {
		t.Fatalf("expanded calendar-proxy-read-for: %+v", rf.Children)
	}
	var okProps []string
	for _, ps := range rf.Children[0].Children {
		if ps.is(nsDAV, "propstat") && strings.Contains(ps.child(nsDAV, "status").Text, "200") {
			for _, pp := range ps.child(nsDAV, "prop").Children {
				v := pp.Text
				if h := pp.child(nsDAV, "href"); h != nil {
					v = h.Text
				}
				okProps = append(okProps, pp.Name.Local+"="+v)
			}
		}
	}
	if strings.Join(okProps, ",") != "displayname=Board Room,calendar-home-set="+home {
		t.Errorf("the room expanded for bob: %v", okProps)
	}
	closed(nil) // alice
	closed(asEve)
	if _, err := e.h.Delegate(ctx, e.room.Address, "eve@other.org", AccessRead); err == nil {
		t.Error("another tenant's user was made the room's proxy")
	}

	if _, err := e.h.Delegate(ctx, e.room.Address, bob, AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodPut, coll+"x.ics", event("x1", "20260311T100000Z"), append([]string{"Content-Type", "text/calendar"}, asBob...)...).
		expect(t, http.StatusCreated)
	if _, _, found, err := e.h.findByUID(ctx, e.room.ID, "x1"); err != nil || !found {
		t.Fatalf("bob's write is not in the room's calendar: %v", err)
	}
	// bob declines the booking for the room: alice's copy hears it.
	data := string(e.do(http.MethodGet, booking, "", asBob...).expect(t, http.StatusOK).body)
	declined := strings.Replace(data, "PARTSTAT=ACCEPTED", "PARTSTAT=DECLINED", 1)
	if declined == data {
		t.Fatalf("the room's copy has no ACCEPTED:\n%s", data)
	}
	e.do(http.MethodPut, booking, declined, append([]string{"Content-Type", "text/calendar"}, asBob...)...).expect(t, http.StatusNoContent)
	_, org, found, err := e.h.findByUID(ctx, e.aliceID, "m1")
	if err != nil || !found {
		t.Fatal("alice's copy is gone", err)
	}
	if got := attendeeParam(t, string(org.Data), e.room.Address, "PARTSTAT"); got != "DECLINED" {
		t.Errorf("alice's copy: room PARTSTAT %q, want DECLINED", got)
	}

	if err := e.h.Undelegate(ctx, e.room.Address, bob); err != nil {
		t.Fatal(err)
	}
	closed(asBob)
}

// calQueryAll is a calendar-query for every event.
const calQueryAll = `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"/></C:comp-filter></C:filter></C:calendar-query>`

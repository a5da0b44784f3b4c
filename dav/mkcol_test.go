package dav

import (
	"context"
	"net/http"
	"slices"
	"strconv"
	"testing"
)

const mkcalendarBody = `<?xml version="1.0" encoding="utf-8"?>
<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/">
  <D:set><D:prop>
    <D:displayname>Work</D:displayname>
    <C:calendar-description>Meetings</C:calendar-description>
    <A:calendar-color>#3a87adff</A:calendar-color>
    <C:supported-calendar-component-set><C:comp name="VTODO"/></C:supported-calendar-component-set>
  </D:prop></D:set>
</C:mkcalendar>`

func TestMkcalendar(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := "/dav/calendars/" + e.aliceID + "/work/"
	r := e.do("MKCALENDAR", p, mkcalendarBody).expect(t, http.StatusCreated)
	if r.Header.Get("Location") != p {
		t.Errorf("Location %q", r.Header.Get("Location"))
	}
	c, err := e.st.Collection(ctx, e.aliceID, "calendar", "work")
	if err != nil {
		t.Fatal(err)
	}
	if c.DisplayName != "Work" || c.Description != "Meetings" || c.Color != "#3a87adff" || !slices.Equal(c.Components, []string{"VTODO"}) {
		t.Fatalf("stored %+v", c)
	}
	r = e.do("MKCALENDAR", p, "").expect(t, http.StatusMethodNotAllowed)
	if r.tree(t).child(nsDAV, "resource-must-be-null") == nil {
		t.Errorf("exists: %s", r.body)
	}
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/empty/", "").expect(t, http.StatusCreated)
	e.do("MKCALENDAR", "/dav/addressbooks/"+e.aliceID+"/x/", "").expect(t, http.StatusForbidden)
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/", "").expect(t, http.StatusForbidden)
	for _, reserved := range []string{"gal", "inbox", "Outbox"} {
		e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/"+reserved+"/", "").expect(t, http.StatusForbidden)
	}
}

// TestMkcalendarAllOrNothing: one property that cannot be set fails the
// whole request, the others get 424, and nothing is created.
func TestMkcalendarAllOrNothing(t *testing.T) {
	e := newEnv(t)
	body := `<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/"><D:set><D:prop>
<D:displayname>Bad</D:displayname><A:calendar-color>not-a-colour</A:calendar-color></D:prop></D:set></C:mkcalendar>`
	r := e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/bad/", body).expect(t, http.StatusForbidden)
	root := r.tree(t)
	if !root.is(nsCalDAV, "mkcalendar-response") {
		t.Fatalf("body %s", r.body)
	}
	got := map[string]int{}
	for _, ps := range root.Children {
		for _, p := range ps.child(nsDAV, "prop").Children {
			got[p.Name.Local] = statusCode(t, ps.child(nsDAV, "status").Text)
		}
	}
	if got["displayname"] != http.StatusFailedDependency || got["calendar-color"] != http.StatusConflict {
		t.Fatalf("statuses %v", got)
	}
	if _, err := e.st.Collection(context.Background(), e.aliceID, "calendar", "bad"); err == nil {
		t.Fatal("failed MKCALENDAR created the calendar")
	}
}

func TestExtendedMkcol(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	book := `<D:mkcol xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop>
<D:resourcetype><D:collection/><CR:addressbook/></D:resourcetype><D:displayname>Friends</D:displayname>
<CR:addressbook-description>people</CR:addressbook-description></D:prop></D:set></D:mkcol>`
	e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/friends/", book).expect(t, http.StatusCreated)
	c, err := e.st.Collection(ctx, e.aliceID, "addressbook", "friends")
	if err != nil || c.DisplayName != "Friends" || c.Description != "people" {
		t.Fatalf("%+v %v", c, err)
	}
	cal := `<D:mkcol xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:set><D:prop>
<D:resourcetype><D:collection/><C:calendar/></D:resourcetype><D:displayname>Home</D:displayname></D:prop></D:set></D:mkcol>`
	e.do("MKCOL", "/dav/calendars/"+e.aliceID+"/home/", cal).expect(t, http.StatusCreated)
	r := e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/wrong/", cal).expect(t, http.StatusForbidden)
	if r.tree(t).child(nsDAV, "valid-resourcetype") == nil {
		t.Errorf("body %s", r.body)
	}
	e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/plain/", "").expect(t, http.StatusCreated)
	e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/gal/", "").expect(t, http.StatusForbidden)
	e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/", "").expect(t, http.StatusForbidden)
	e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/x/", `<D:propfind xmlns:D="DAV:"/>`).expect(t, http.StatusUnsupportedMediaType)

	e.do("DELETE", "/dav/addressbooks/"+e.aliceID+"/friends/", "").expect(t, http.StatusNoContent)
	e.do("DELETE", "/dav/addressbooks/"+e.aliceID+"/friends/", "").expect(t, http.StatusNotFound)
	e.do("DELETE", "/dav/addressbooks/"+e.aliceID+"/", "").expect(t, http.StatusForbidden)
}

func TestMaxCollections(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxCollections = 3 })
	for i := 0; i < 2; i++ { // with the store's own "calendar": 3
		e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/c"+strconv.Itoa(i)+"/", "").expect(t, http.StatusCreated)
	}
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/c9/", "").expect(t, http.StatusInsufficientStorage)
	e.do("MKCOL", "/dav/addressbooks/"+e.aliceID+"/b1/", "").expect(t, http.StatusCreated)
}

func TestProppatch(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	p := "/dav/calendars/" + e.aliceID + "/calendar/"
	body := `<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:A="http://apple.com/ns/ical/">
<D:set><D:prop><D:displayname>Renamed</D:displayname><A:calendar-color>#112233</A:calendar-color>
<C:calendar-description>desc</C:calendar-description></D:prop></D:set></D:propertyupdate>`
	ms := e.do("PROPPATCH", p, body).multistatus(t)
	if st := ms[p].props; st[nsDAV+" displayname"] != 200 || st[nsApple+" calendar-color"] != 200 || st[nsCalDAV+" calendar-description"] != 200 {
		t.Fatalf("statuses %v", st)
	}
	c, _ := e.st.Collection(ctx, e.aliceID, "calendar", "calendar")
	if c.DisplayName != "Renamed" || c.Color != "#112233" || c.Description != "desc" {
		t.Fatalf("stored %+v", c)
	}
	// All or nothing: a protected property fails the batch (RFC 4918 §9.2).
	body = `<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">
<D:set><D:prop><D:displayname>Again</D:displayname></D:prop></D:set>
<D:set><D:prop><C:supported-calendar-component-set><C:comp name="VEVENT"/></C:supported-calendar-component-set></D:prop></D:set>
<D:remove><D:prop><C:calendar-description/></D:prop></D:remove></D:propertyupdate>`
	st := e.do("PROPPATCH", p, body).multistatus(t)[p].props
	if st[nsDAV+" displayname"] != http.StatusFailedDependency || st[nsCalDAV+" supported-calendar-component-set"] != http.StatusForbidden || st[nsCalDAV+" calendar-description"] != http.StatusFailedDependency {
		t.Fatalf("statuses %v", st)
	}
	c, _ = e.st.Collection(ctx, e.aliceID, "calendar", "calendar")
	if c.DisplayName != "Renamed" || c.Description != "desc" {
		t.Fatalf("a failed PROPPATCH changed %+v", c)
	}
	body = `<D:propertyupdate xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:remove><D:prop><C:calendar-description/></D:prop></D:remove></D:propertyupdate>`
	e.do("PROPPATCH", p, body).multistatus(t)
	if c, _ = e.st.Collection(ctx, e.aliceID, "calendar", "calendar"); c.Description != "" {
		t.Fatal("remove did not clear the description")
	}
	bp := "/dav/addressbooks/" + e.aliceID + "/contacts/"
	body = `<D:propertyupdate xmlns:D="DAV:" xmlns:CR="urn:ietf:params:xml:ns:carddav"><D:set><D:prop><CR:addressbook-description>mine</CR:addressbook-description></D:prop></D:set></D:propertyupdate>`
	if e.do("PROPPATCH", bp, body).multistatus(t)[bp].props[nsCardDAV+" addressbook-description"] != 200 {
		t.Fatal("addressbook-description")
	}
	e.do("PROPPATCH", "/dav/principals/"+e.aliceID+"/", body).expect(t, http.StatusForbidden)
	e.do("PROPPATCH", "/dav/calendars/"+e.aliceID+"/nope/", body).expect(t, http.StatusNotFound)
	e.do("PROPPATCH", p, "").expect(t, http.StatusBadRequest)
}

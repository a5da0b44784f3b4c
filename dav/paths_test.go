package dav

import (
	"net/http"
	"testing"
)

// TestPathTraversal: dot segments, encoded slashes and other users'
// homes never reach another user's data.
func TestPathTraversal(t *testing.T) {
	e := newEnv(t)
	a, b := e.aliceID, e.bobID
	// Bob gets his default calendar so there is something to reach.
	e.do("PROPFIND", "/dav/calendars/"+b+"/", "", "Auth", bob+":"+bobPW, "Depth", "1").expect(t, http.StatusMultiStatus)
	cases := []struct {
		path   string
		status int
	}{
		{"/dav/calendars/" + a + "/../" + b + "/", http.StatusBadRequest},
		{"/dav/calendars/" + a + "/%2e%2e/" + b + "/calendar/", http.StatusBadRequest},
		{"/dav/calendars/" + a + "%2F..%2F" + b + "/", http.StatusBadRequest},
		{"/dav/calendars/" + a + "/calendar%2Fx/", http.StatusBadRequest},
		{"/dav/calendars/" + a + "/cal%00endar/", http.StatusBadRequest},
		{"/dav/calendars/" + a + "/cal%5Cendar/", http.StatusBadRequest},
		{"/dav/calendars/" + b + "/", http.StatusForbidden},
		{"/dav/calendars/" + b + "/calendar/", http.StatusForbidden},
		// A colleague's principal shows only name and addresses
		// (TestPeerPrincipal); its proxy groups stay closed.
		{"/dav/principals/" + b + "/calendar-proxy-write/", http.StatusForbidden},
		{"/dav/addressbooks/" + b + "/contacts/", http.StatusForbidden},
		{"/dav/calendars/" + a + "/calendar/x.ics/more", http.StatusNotFound},
		{"/dav/nothing/", http.StatusNotFound},
	}
	for _, c := range cases {
		t.Run(c.path, func(t *testing.T) {
			e.do("PROPFIND", c.path, "", "Depth", "0").expect(t, c.status)
		})
	}
	e.do("DELETE", "/dav/calendars/"+b+"/calendar/", "").expect(t, http.StatusForbidden)
	e.do("PROPFIND", "/dav/calendars/"+b+"/calendar/", "", "Auth", bob+":"+bobPW, "Depth", "0").expect(t, http.StatusMultiStatus)
}

func TestHrefRoundTrip(t *testing.T) {
	h, err := NewHandler(Options{Store: nil, Directory: nil})
	if err == nil || h != nil {
		t.Fatal("NewHandler accepted missing Store and Directory")
	}
	e := newEnv(t)
	for _, tg := range []target{
		{kind: kindRoot}, {kind: kindPrincipals}, {kind: kindPrincipal, user: "u1"},
		{kind: kindCalHome, user: "u1"}, {kind: kindCalendar, user: "u1", coll: "work cal"},
		{kind: kindCalObject, user: "u1", coll: "c", name: "a b?#%.ics"},
		{kind: kindBookHome, user: "u1"}, {kind: kindBook, user: "u1", coll: "b"},
		{kind: kindCard, user: "u1", coll: "b", name: "x.vcf"},
	} {
		got, err := e.h.hrefTarget(e.h.hrefOf(tg))
		if err != nil || got != tg {
			t.Errorf("%+v -> %q -> %+v, %v", tg, e.h.hrefOf(tg), got, err)
		}
	}
}

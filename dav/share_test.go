package dav

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

const (
	dave   = "dave@example.com"
	davePW = "dave-secret"
	team   = "team@example.com"
)

// shareEnv is a schedEnv with alice's calendar "work" holding one event,
// a fourth user dave and a group team of which dave is a member.
type shareEnv struct {
	*schedEnv
	daveID  string
	groupID string
}

func newShareEnv(t *testing.T, opts ...envOption) *shareEnv {
	t.Helper()
	e := newSchedEnv(t, opts...)
	ctx := context.Background()
	d, err := e.dir.CreateUser(ctx, directory.User{Address: dave}, davePW)
	if err != nil {
		t.Fatal(err)
	}
	g, err := e.dir.CreateGroup(ctx, directory.Group{Address: team, Members: []string{dave}})
	if err != nil {
		t.Fatal(err)
	}
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/work/", "").expect(t, http.StatusCreated)
	e.do(http.MethodPut, "/dav/calendars/"+e.aliceID+"/work/e1.ics", event("e1", "20260310T100000Z"),
		"Content-Type", "text/calendar").expect(t, http.StatusCreated)
	return &shareEnv{schedEnv: e, daveID: d.ID, groupID: g.ID}
}

// sharedPath is where alice's calendar "work" appears in a user's home.
func (e *shareEnv) sharedPath(userID string) string {
	return "/dav/calendars/" + userID + "/" + shareName(e.aliceID, "work") + "/"
}

// homeListing is the hrefs of a user's calendar home at Depth 1 with
// the properties asked for.
func (e *shareEnv) homeListing(user, pw, userID string, props ...string) map[string]msResponse {
	e.t.Helper()
	return e.do("PROPFIND", "/dav/calendars/"+userID+"/", propfindBody(props...), "Depth", "1", "Auth", user+":"+pw).multistatus(e.t)
}

// privilegeNames lists the DAV privileges in a current-user-privilege-set.
func privilegeNames(n *node) []string {
	var out []string
	for _, p := range n.Children {
		for _, c := range p.Children {
			out = append(out, c.Name.Local)
		}
	}
	return out
}

func hasPrivilege(n *node, name string) bool {
	for _, p := range privilegeNames(n) {
		if p == name {
			return true
		}
	}
	return false
}

func TestShareReadOnlyThenReadWrite(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	bobAuth := bob + ":" + bobPW
	path := e.sharedPath(e.bobID)
	if _, ok := e.homeListing(bob, bobPW, e.bobID, "D:resourcetype")[path]; ok {
		t.Fatal("the share is listed before it is granted")
	}
	e.do("PROPFIND", path, propfindBody("D:displayname"), "Depth", "0", "Auth", bobAuth).expect(t, http.StatusNotFound)

	if _, err := e.h.Share(ctx, alice, store.KindCalendar, "work", bob, AccessRead); err != nil {
		t.Fatal(err)
	}
	home := e.homeListing(bob, bobPW, e.bobID, "D:resourcetype", "D:current-user-privilege-set", "D:owner", "D:share-access", "CS:invite")
	m, ok := home[path]
	if !ok {
		t.Fatalf("bob's home does not list the share at %s: %v", path, hrefs(home))
	}
	if m.prop(t, nsDAV, "resourcetype").child(nsCS, "shared") == nil || m.prop(t, nsDAV, "resourcetype").child(nsCalDAV, "calendar") == nil {
		t.Errorf("resourcetype of the share: %+v", m.values)
	}
	privs := m.prop(t, nsDAV, "current-user-privilege-set")
	if !hasPrivilege(privs, "read") || hasPrivilege(privs, "write") || hasPrivilege(privs, "write-content") {
		t.Errorf("read-only grantee's privileges: %v", privilegeNames(privs))
	}
	if got := m.prop(t, nsDAV, "owner").child(nsDAV, "href").Text; got != "/dav/principals/"+e.aliceID+"/" {
		t.Errorf("owner %q", got)
	}
	if m.prop(t, nsDAV, "share-access").child(nsDAV, "read") == nil {
		t.Errorf("share-access: %+v", m.prop(t, nsDAV, "share-access"))
	}
	if org := m.prop(t, nsCS, "invite").child(nsCS, "organizer"); org == nil || org.child(nsDAV, "href").Text != "mailto:"+alice {
		t.Errorf("CS:invite of the sharee has no organizer alice")
	}

	// Reading works; writing is refused with need-privileges.
	r := e.do(http.MethodGet, path+"e1.ics", "", "Auth", bobAuth).expect(t, http.StatusOK)
	if !strings.Contains(string(r.body), "UID:e1") {
		t.Fatalf("GET through the share: %s", r.body)
	}
	for _, w := range []struct{ method, path, body string }{
		{http.MethodPut, path + "e2.ics", event("e2", "20260311T100000Z")},
		{http.MethodPut, path + "e1.ics", event("e1", "20260312T100000Z")},
		{http.MethodDelete, path + "e1.ics", ""},
		{"PROPPATCH", path, `<D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set></D:propertyupdate>`},
	} {
		r := e.do(w.method, w.path, w.body, "Auth", bobAuth, "Content-Type", "text/calendar")
		r.expect(t, http.StatusForbidden)
		if r.tree(t).child(nsDAV, "need-privileges") == nil {
			t.Errorf("%s %s: %s", w.method, w.path, r.body)
		}
	}
	// The owner's own path stays the owner's.
	e.do("PROPFIND", "/dav/calendars/"+e.aliceID+"/work/", propfindBody("D:displayname"), "Depth", "0", "Auth", bobAuth).expect(t, http.StatusForbidden)

	// The owner upgrades the grant with CalendarServer's CS:share POST.
	e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/work/", `<?xml version="1.0"?><CS:share xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">`+
		`<CS:set><D:href>mailto:`+bob+`</D:href><CS:summary>Work</CS:summary><CS:read-write/></CS:set></CS:share>`,
		"Content-Type", "application/xml").expect(t, http.StatusOK)
	own := e.do("PROPFIND", "/dav/calendars/"+e.aliceID+"/work/", propfindBody("CS:invite", "D:resourcetype", "CS:allowed-sharing-modes"), "Depth", "0").multistatus(t)
	om := own["/dav/calendars/"+e.aliceID+"/work/"]
	inv := om.prop(t, nsCS, "invite").child(nsCS, "user")
	if inv == nil || inv.child(nsDAV, "href").Text != "mailto:"+bob || inv.child(nsCS, "access").child(nsCS, "read-write") == nil {
		t.Fatalf("owner's CS:invite: %+v", om.values)
	}
	if om.prop(t, nsDAV, "resourcetype").child(nsCS, "shared-owner") == nil || om.prop(t, nsCS, "allowed-sharing-modes").child(nsCS, "can-be-shared") == nil {
		t.Errorf("owner's resourcetype or sharing modes: %+v", om.values)
	}

	privs = e.homeListing(bob, bobPW, e.bobID, "D:current-user-privilege-set")[path].prop(t, nsDAV, "current-user-privilege-set")
	if !hasPrivilege(privs, "write-content") {
		t.Errorf("read-write grantee's privileges: %v", privilegeNames(privs))
	}
	e.do(http.MethodPut, path+"e2.ics", event("e2", "20260311T100000Z"), "Auth", bobAuth, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	r = e.do(http.MethodGet, "/dav/calendars/"+e.aliceID+"/work/e2.ics", "").expect(t, http.StatusOK)
	if !strings.Contains(string(r.body), "UID:e2") {
		t.Fatalf("alice does not see bob's event: %s", r.body)
	}
	e.do(http.MethodDelete, path+"e1.ics", "", "Auth", bobAuth).expect(t, http.StatusNoContent)
	e.do(http.MethodGet, "/dav/calendars/"+e.aliceID+"/work/e1.ics", "").expect(t, http.StatusNotFound)

	// Revoked with draft-pot's share-resource and DAV:no-access.
	e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/work/", `<?xml version="1.0"?><D:share-resource xmlns:D="DAV:">`+
		`<D:sharee><D:href>mailto:`+bob+`</D:href><D:share-access><D:no-access/></D:share-access></D:sharee></D:share-resource>`,
		"Content-Type", "application/davsharing+xml").expect(t, http.StatusOK)
	if _, ok := e.homeListing(bob, bobPW, e.bobID, "D:resourcetype")[path]; ok {
		t.Error("the share is still listed after it was revoked")
	}
	e.do(http.MethodGet, path+"e2.ics", "", "Auth", bobAuth).expect(t, http.StatusNotFound)
	if shares, err := e.h.Shares(ctx, alice); err != nil || len(shares) != 0 {
		t.Errorf("grants after the revocation: %v %v", shares, err)
	}
}

// Deleting a shared collection takes its grants with it: a new one of
// the same name is not shared.
func TestShareDroppedWithCollection(t *testing.T) {
	e := newShareEnv(t)
	if _, err := e.h.Share(context.Background(), alice, store.KindCalendar, "work", bob, AccessRead); err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodDelete, "/dav/calendars/"+e.aliceID+"/work/", "").expect(t, http.StatusNoContent)
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/work/", "").expect(t, http.StatusCreated)
	e.do("PROPFIND", e.sharedPath(e.bobID), propfindBody("D:displayname"), "Depth", "0", "Auth", bob+":"+bobPW).expect(t, http.StatusNotFound)
	if shares, err := e.h.Shares(context.Background(), alice); err != nil || len(shares) != 0 {
		t.Fatalf("grants after the delete: %v %v", shares, err)
	}
}

func TestShareRefusals(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	for _, tc := range []struct {
		owner, coll, grantee string
		access               Access
	}{
		{alice, "work", bob, "write"},
		{alice, "nope", bob, AccessRead},
		{alice, "inbox", bob, AccessRead},
		{alice, "work", alice, AccessRead},
		{alice, "work", "nobody@example.com", AccessRead},
		{team, "work", bob, AccessRead},
	} {
		if _, err := e.h.Share(ctx, tc.owner, store.KindCalendar, tc.coll, tc.grantee, tc.access); err == nil {
			t.Errorf("Share(%s, %s, %s, %s) succeeded", tc.owner, tc.coll, tc.grantee, tc.access)
		}
	}
	// A sharing POST naming a stranger changes nothing.
	e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/work/", `<CS:share xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">`+
		`<CS:set><D:href>mailto:`+bob+`</D:href><CS:read/></CS:set><CS:set><D:href>mailto:x@elsewhere.org</D:href><CS:read/></CS:set></CS:share>`).
		expect(t, http.StatusForbidden)
	if shares, _ := e.h.Shares(ctx, alice); len(shares) != 0 {
		t.Errorf("a refused POST granted %v", shares)
	}
	e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/work/", `<D:propfind xmlns:D="DAV:"/>`).expect(t, http.StatusBadRequest)
	// A client may not create a collection with a share's name.
	e.do("MKCALENDAR", "/dav/calendars/"+e.aliceID+"/"+shareName(e.bobID, "x")+"/", "").expect(t, http.StatusForbidden)
	// A made-up share name is no way into another user's calendar.
	e.do("PROPFIND", e.sharedPath(e.bobID), propfindBody("D:displayname"), "Depth", "1", "Auth", bob+":"+bobPW).expect(t, http.StatusNotFound)
}

func TestShareWithGroupFollowsMembership(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	if _, err := e.h.Share(ctx, alice, store.KindCalendar, "work", team, AccessRead); err != nil {
		t.Fatal(err)
	}
	davePath, bobPath := e.sharedPath(e.daveID), e.sharedPath(e.bobID)
	if _, ok := e.homeListing(dave, davePW, e.daveID, "D:resourcetype")[davePath]; !ok {
		t.Fatal("a member of the group does not see the share")
	}
	e.do(http.MethodGet, davePath+"e1.ics", "", "Auth", dave+":"+davePW).expect(t, http.StatusOK)
	// Address books are shared alike.
	if _, err := e.h.Share(ctx, alice, store.KindAddressBook, "contacts", team, AccessRead); err != nil {
		t.Fatal(err)
	}
	bookPath := "/dav/addressbooks/" + e.daveID + "/" + shareName(e.aliceID, "contacts") + "/"
	books := e.do("PROPFIND", "/dav/addressbooks/"+e.daveID+"/", propfindBody("D:displayname", "D:resourcetype"), "Depth", "1", "Auth", dave+":"+davePW).multistatus(t)
	if b, ok := books[bookPath]; !ok || b.prop(t, nsDAV, "displayname").Text != "Contacts ("+alice+")" || b.prop(t, nsDAV, "resourcetype").child(nsCardDAV, "addressbook") == nil {
		t.Fatalf("dave's address-book home: %+v", books)
	}
	e.do(http.MethodPut, bookPath+"c1.vcf", vcardText("c1", "Carl", "carl@example.org"), "Auth", dave+":"+davePW, "Content-Type", "text/vcard").expect(t, http.StatusForbidden)
	// A group's grant is the group's: a member cannot decline it alone.
	e.do(http.MethodDelete, davePath, "", "Auth", dave+":"+davePW).expect(t, http.StatusForbidden)
	if _, ok := e.homeListing(bob, bobPW, e.bobID, "D:resourcetype")[bobPath]; ok {
		t.Fatal("a non-member sees the group's share")
	}
	e.do(http.MethodGet, bobPath+"e1.ics", "", "Auth", bob+":"+bobPW).expect(t, http.StatusNotFound)

	if _, err := e.dir.AddGroupMember(ctx, e.groupID, bob); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.homeListing(bob, bobPW, e.bobID, "D:resourcetype")[bobPath]; !ok {
		t.Fatal("a new member does not see the group's share")
	}
	// A direct read-write grant beside the group's read grant wins.
	if _, err := e.h.Share(ctx, alice, store.KindCalendar, "work", bob, AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	e.do(http.MethodPut, bobPath+"e3.ics", event("e3", "20260313T100000Z"), "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	e.do(http.MethodPut, davePath+"e4.ics", event("e4", "20260313T100000Z"), "Auth", dave+":"+davePW, "Content-Type", "text/calendar").expect(t, http.StatusForbidden)
	// Bob declines his own grant; the group's still reaches him until he leaves.
	e.do(http.MethodDelete, bobPath, "", "Auth", bob+":"+bobPW).expect(t, http.StatusNoContent)
	e.do(http.MethodPut, bobPath+"e5.ics", event("e5", "20260313T100000Z"), "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusForbidden)
	if _, err := e.dir.RemoveGroupMember(ctx, e.groupID, bob); err != nil {
		t.Fatal(err)
	}
	if _, ok := e.homeListing(bob, bobPW, e.bobID, "D:resourcetype")[bobPath]; ok {
		t.Fatal("a former member still sees the group's share")
	}
	e.do(http.MethodGet, bobPath+"e1.ics", "", "Auth", bob+":"+bobPW).expect(t, http.StatusNotFound)
}

func TestShareSyncCollection(t *testing.T) {
	e := newShareEnv(t)
	if _, err := e.h.Share(context.Background(), alice, store.KindCalendar, "work", bob, AccessRead); err != nil {
		t.Fatal(err)
	}
	path := e.sharedPath(e.bobID)
	sync := func(token string) resp {
		return e.do("REPORT", path, `<D:sync-collection xmlns:D="DAV:"><D:sync-token>`+token+`</D:sync-token><D:sync-level>1</D:sync-level><D:prop><D:getetag/></D:prop></D:sync-collection>`,
			"Auth", bob+":"+bobPW)
	}
	r := sync("")
	ms := r.multistatus(t)
	if _, ok := ms[path+"e1.ics"]; !ok || len(ms) != 1 {
		t.Fatalf("initial sync of the share: %v", hrefs(ms))
	}
	tok := r.tree(t).child(nsDAV, "sync-token").Text
	e.do(http.MethodPut, "/dav/calendars/"+e.aliceID+"/work/e2.ics", event("e2", "20260311T100000Z"), "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	e.do(http.MethodDelete, "/dav/calendars/"+e.aliceID+"/work/e1.ics", "").expect(t, http.StatusNoContent)
	ms = sync(tok).multistatus(t)
	if len(ms) != 2 || ms[path+"e2.ics"].props[nsDAV+" getetag"] != http.StatusOK || ms[path+"e1.ics"].status != http.StatusNotFound {
		t.Fatalf("sync after the owner's changes: %+v", ms)
	}
	// calendar-multiget through the share.
	mg := e.do("REPORT", path, `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><C:calendar-data/></D:prop><D:href>`+path+`e2.ics</D:href></C:calendar-multiget>`,
		"Auth", bob+":"+bobPW).multistatus(t)
	if !strings.Contains(mg[path+"e2.ics"].prop(t, nsCalDAV, "calendar-data").Text, "UID:e2") {
		t.Fatalf("multiget through the share: %+v", mg)
	}
}

// Free/busy of a colleague needs no grant; the calendar itself does.
func TestShareFreeBusyWithoutGrant(t *testing.T) {
	e := newShareEnv(t)
	e.do("PROPFIND", "/dav/calendars/"+e.aliceID+"/work/", propfindBody("D:displayname"), "Depth", "0", "Auth", bob+":"+bobPW).expect(t, http.StatusForbidden)
	e.do(http.MethodGet, "/dav/calendars/"+e.aliceID+"/work/e1.ics", "", "Auth", bob+":"+bobPW).expect(t, http.StatusForbidden)
	fb := scheduleResponse(t, e.do(http.MethodPost, "/dav/calendars/"+e.bobID+"/outbox/", fbRequestBody(bob, alice),
		"Auth", bob+":"+bobPW, "Content-Type", "text/calendar"))
	if got := fb[alice]; !strings.HasPrefix(got[0], "2.0") || !strings.Contains(got[1], "FREEBUSY") || strings.Contains(got[1], "Event e1") {
		t.Fatalf("bob's free/busy of alice: %v", got)
	}
}

// A delegate with read-write access answers an invitation in the
// owner's calendar, and the REPLY goes out as the owner's.
func TestShareDelegateAnswersInvitation(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	e.putAs(bob, bobPW, e.bobID, "m1.ics", meeting("m1", "20260320T100000Z", "20260320T110000Z", bob, 0, alice)).expect(t, http.StatusCreated)
	c, copyObj, found, err := e.h.findByUID(ctx, e.aliceID, "m1")
	if err != nil || !found {
		t.Fatalf("alice got no copy: %v", err)
	}
	if _, err := e.h.Share(ctx, alice, store.KindCalendar, c.Name, dave, AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	accepted := strings.Replace(string(copyObj.Data), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1)
	p := "/dav/calendars/" + e.daveID + "/" + shareName(e.aliceID, c.Name) + "/" + copyObj.Name
	e.do(http.MethodPut, p, accepted, "Auth", dave+":"+davePW, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	bobCopy := string(e.do(http.MethodGet, "/dav/calendars/"+e.bobID+"/calendar/m1.ics", "", "Auth", bob+":"+bobPW).expect(t, http.StatusOK).body)
	if got := attendeeParam(t, bobCopy, alice, "PARTSTAT"); got != "ACCEPTED" {
		t.Fatalf("the organizer sees alice's PARTSTAT %q after her delegate accepted", got)
	}
}

func TestShareName(t *testing.T) {
	for _, tc := range []struct{ owner, coll string }{{"abc123", "work"}, {"id-with-dash", "a-b"}, {"x", "shared-y"}} {
		o, c, ok := parseShareName(shareName(tc.owner, tc.coll))
		if !ok || o != tc.owner || c != tc.coll {
			t.Errorf("%v: got %q %q %v", tc, o, c, ok)
		}
	}
	for _, bad := range []string{"work", "shared-", "shared-zz-work", "shared-61", "shared-61-", "shared--x"} {
		if _, _, ok := parseShareName(bad); ok {
			t.Errorf("%q parsed as a share name", bad)
		}
	}
	if !reservedName("Shared-61-x") {
		t.Error("share names are not reserved")
	}
}

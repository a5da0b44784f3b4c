package dav

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/directory"
)

const (
	frank   = "frank@example.com" // a colleague without any grant
	frankPW = "frank-secret"
)

// proxyEnv is a shareEnv in which alice made dave her write proxy and
// bob her read proxy by PROPPATCH of group-member-set, as Apple
// Calendar does, and frank is a colleague with no grant.
type proxyEnv struct {
	*shareEnv
	imip    *recordingIMIP
	frankID string
}

func newProxyEnv(t *testing.T) *proxyEnv {
	t.Helper()
	imip := &recordingIMIP{}
	e := newShareEnv(t, func(o *Options) { o.IMIP = imip })
	f, err := e.dir.CreateUser(context.Background(), directory.User{Address: frank}, frankPW)
	if err != nil {
		t.Fatal(err)
	}
	prin := "/dav/principals/" + e.aliceID + "/"
	for proxy, member := range map[string]string{proxyWrite: e.daveID, proxyRead: e.bobID} {
		path := prin + proxy + "/"
		st := e.do("PROPPATCH", path, groupMemberSetBody("/dav/principals/"+member+"/")).multistatus(t)[path].props
		if st[nsDAV+" group-member-set"] != http.StatusOK {
			t.Fatalf("PROPPATCH %s: %v", proxy, st)
		}
	}
	return &proxyEnv{shareEnv: e, imip: imip, frankID: f.ID}
}

// as is the Auth pseudo-header of a user.
func as(user, pw string) []string { return []string{"Auth", user + ":" + pw} }

// propOf parses an iCalendar object and returns the first property of a
// name (ORGANIZER, or the ATTENDEE of addr) of its first event.
func propOf(t *testing.T, data, name, addr string) *ical.Prop {
	t.Helper()
	cal := decodeCal(t, data)
	for _, c := range scheduledComponents(cal) {
		for _, p := range c.Props[name] {
			if addr == "" || addrKey(p.Value) == addrKey("mailto:"+addr) {
				return &p
			}
		}
	}
	t.Fatalf("no %s %s in\n%s", name, addr, data)
	return nil
}

// TestProxyOpensOwnersHome: a calendar proxy made by group-member-set
// reaches the owner's calendar home at the owner's own URLs, as Apple
// Calendar does after expand-property of calendar-proxy-write-for: the
// owner's principal shows the proxy its calendar-home-set, a Depth 1
// PROPFIND of the home lists every calendar (one made after the grant
// too), the inbox and the outbox, and objects are read by GET, multiget
// and sync-collection; a write proxy PUTs and DELETEs objects, a read
// proxy gets 403 need-privileges for that; collections stay the owner's.
// Colleagues without a grant, and a proxy whose grant crosses tenants,
// get 403.
func TestProxyOpensOwnersHome(t *testing.T) {
	e := newProxyEnv(t)
	home := "/dav/calendars/" + e.aliceID + "/"
	asDave, asBob, asFrank := as(dave, davePW), as(bob, bobPW), as(frank, frankPW)

	// A calendar made after the grants is covered by them.
	e.do("MKCALENDAR", home+"later/", "").expect(t, http.StatusCreated)
	e.do(http.MethodPut, home+"later/l1.ics", event("l1", "20260312T100000Z"), "Content-Type", "text/calendar").expect(t, http.StatusCreated)

	// The owner's principal shows a proxy where the home is.
	alicePrin := "/dav/principals/" + e.aliceID + "/"
	for _, who := range [][]string{asDave, asBob} {
		m := e.do("PROPFIND", alicePrin, propfindBody("C:calendar-home-set", "C:schedule-inbox-URL", "C:schedule-outbox-URL"),
			append([]string{"Depth", "0"}, who...)...).multistatus(t)[alicePrin]
		if got := hrefsOf(m.prop(t, nsCalDAV, "calendar-home-set")); !slices.Equal(got, []string{home}) {
			t.Fatalf("%s: alice's calendar-home-set %v", who[1], got)
		}
		if got := hrefsOf(m.prop(t, nsCalDAV, "schedule-inbox-URL")); !slices.Equal(got, []string{home + "inbox/"}) {
			t.Fatalf("%s: alice's schedule-inbox-URL %v", who[1], got)
		}
	}
	m := e.do("PROPFIND", alicePrin, propfindBody("C:calendar-home-set"), append([]string{"Depth", "0"}, asFrank...)...).multistatus(t)[alicePrin]
	if m.props[nsCalDAV+" calendar-home-set"] != http.StatusNotFound {
		t.Fatalf("frank, no proxy, reads alice's calendar-home-set: %v", m.props)
	}

	// Depth 1 of the home lists the owner's collections, not the
	// proxy's, with what the proxy may do in each.
	list := e.do("PROPFIND", home, propfindBody("D:resourcetype", "D:current-user-privilege-set", "D:owner"),
		append([]string{"Depth", "1"}, asDave...)...).multistatus(t)
	for _, want := range []string{home, home + "calendar/", home + "work/", home + "later/", home + "inbox/", home + "outbox/"} {
		if _, ok := list[want]; !ok {
			t.Fatalf("dave's listing of alice's home lacks %s: %v", want, hrefs(list))
		}
	}
	if len(list) != 6 {
		t.Fatalf("dave's listing of alice's home: %v", hrefs(list))
	}
	if got := list[home].prop(t, nsDAV, "owner").child(nsDAV, "href").Text; got != alicePrin {
		t.Errorf("owner of alice's home for dave: %q", got)
	}
	privs := list[home+"later/"].prop(t, nsDAV, "current-user-privilege-set")
	if !hasPrivilege(privs, "write-content") || !hasPrivilege(privs, "bind") || hasPrivilege(privs, "write-properties") {
		t.Errorf("write proxy's privileges on alice's calendar: %v", privilegeNames(privs))
	}
	privs = e.do("PROPFIND", home+"later/", propfindBody("D:current-user-privilege-set"), append([]string{"Depth", "0"}, asBob...)...).
		multistatus(t)[home+"later/"].prop(t, nsDAV, "current-user-privilege-set")
	if !hasPrivilege(privs, "read") || hasPrivilege(privs, "write-content") {
		t.Errorf("read proxy's privileges on alice's calendar: %v", privilegeNames(privs))
	}

	// Reading: GET, Depth 1, multiget, sync-collection.
	for _, who := range [][]string{asDave, asBob} {
		if r := e.do(http.MethodGet, home+"later/l1.ics", "", who...).expect(t, http.StatusOK); !strings.Contains(string(r.body), "UID:l1") {
			t.Fatalf("GET through the proxy grant: %s", r.body)
		}
	}
	if ms := e.do("PROPFIND", home+"work/", propfindBody("D:getetag"), append([]string{"Depth", "1"}, asBob...)...).multistatus(t); len(ms) != 2 {
		t.Fatalf("bob's Depth 1 of alice's work: %v", hrefs(ms))
	}
	mg := `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop>` +
		`<D:href>` + home + `later/l1.ics</D:href><D:href>` + home + `work/e1.ics</D:href></C:calendar-multiget>`
	ms := e.do("REPORT", home+"later/", mg, asBob...).multistatus(t)
	if ms[home+"later/l1.ics"].props[nsDAV+" getetag"] != http.StatusOK || ms[home+"work/e1.ics"].props[nsDAV+" getetag"] != http.StatusOK {
		t.Fatalf("bob's multiget in alice's home: %+v", ms)
	}
	if sp := e.syncPageAs(t, home+"later/", asDave); !slices.Contains(sp, home+"later/l1.ics") {
		t.Fatalf("dave's sync-collection of alice's later: %v", sp)
	}

	// Writing: the write proxy may change objects, the read proxy not.
	e.do(http.MethodPut, home+"later/d2.ics", event("d2", "20260313T100000Z"), append([]string{"Content-Type", "text/calendar"}, asDave...)...).
		expect(t, http.StatusCreated)
	if _, ok := e.copyOf(e.aliceID, "d2"); !ok {
		t.Fatal("dave's PUT did not land in alice's calendar")
	}
	e.do(http.MethodDelete, home+"later/d2.ics", "", asDave...).expect(t, http.StatusNoContent)
	for _, w := range []struct{ method, path, body, priv string }{
		{http.MethodPut, home + "later/b.ics", event("b", "20260313T100000Z"), "write-content"},
		{http.MethodDelete, home + "later/l1.ics", "", "unbind"},
		{http.MethodPost, home + "outbox/", fbRequestBody(alice, bob), "schedule-send"},
	} {
		r := e.do(w.method, w.path, w.body, append([]string{"Content-Type", "text/calendar"}, asBob...)...).expect(t, http.StatusForbidden)
		if !strings.Contains(string(r.body), "need-privileges") || !strings.Contains(string(r.body), w.priv) {
			t.Errorf("read proxy's %s %s: %s", w.method, w.path, r.body)
		}
	}
	// Collections stay the owner's, even for the write proxy.
	for _, w := range []struct{ method, path, body string }{
		{"MKCALENDAR", home + "new/", ""},
		{"PROPPATCH", home + "later/", propSet(`<D:displayname>x</D:displayname>`)},
		{http.MethodDelete, home + "later/", ""},
		{http.MethodPost, home + "later/", `<CS:share xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><CS:set><D:href>mailto:` + frank + `</D:href><CS:read/></CS:set></CS:share>`},
		{http.MethodPut, home + "inbox/x.ics", event("x", "20260313T100000Z")},
	} {
		e.do(w.method, w.path, w.body, append([]string{"Content-Type", "text/calendar"}, asDave...)...).expect(t, http.StatusForbidden)
	}
	if _, err := e.st.Collection(context.Background(), e.aliceID, storeKind("calendar"), "later"); err != nil {
		t.Fatalf("alice's calendar after the proxies' refused writes: %v", err)
	}
	// The address books are not delegated.
	e.do("PROPFIND", "/dav/addressbooks/"+e.aliceID+"/", propfindBody("D:displayname"), append([]string{"Depth", "0"}, asDave...)...).
		expect(t, http.StatusForbidden)

	// The new calendar is in the proxy's own home too.
	if _, ok := e.homeListing(dave, davePW, e.daveID, "D:displayname")["/dav/calendars/"+e.daveID+"/"+shareName(e.aliceID, "later")+"/"]; !ok {
		t.Fatal("dave's home lacks alice's calendar made after the grant")
	}

	// A colleague without a grant gets 403 everywhere in alice's home,
	// and cannot multiget alice's objects through his own calendar.
	for _, p := range []string{home, home + "work/", home + "work/e1.ics", home + "inbox/", home + "outbox/"} {
		e.do("PROPFIND", p, propfindBody("D:displayname"), append([]string{"Depth", "0"}, asFrank...)...).expect(t, http.StatusForbidden)
	}
	e.do(http.MethodGet, home+"work/e1.ics", "", asFrank...).expect(t, http.StatusForbidden)
	own := "/dav/calendars/" + e.frankID + "/calendar/"
	e.do("PROPFIND", "/dav/calendars/"+e.frankID+"/", propfindBody("D:displayname"), append([]string{"Depth", "0"}, asFrank...)...).expect(t, http.StatusMultiStatus)
	mg = `<C:calendar-multiget xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"><D:prop><D:getetag/></D:prop><D:href>` + home + `work/e1.ics</D:href></C:calendar-multiget>`
	if st := e.do("REPORT", own, mg, asFrank...).multistatus(t)[home+"work/e1.ics"].status; st != http.StatusForbidden {
		t.Fatalf("frank's multiget of alice's object: status %d", st)
	}
	// Bob, a read proxy, cannot multiget through his own calendar either.
	if st := e.do("REPORT", "/dav/calendars/"+e.bobID+"/calendar/", mg, asBob...).multistatus(t)[home+"work/e1.ics"].status; st != http.StatusForbidden {
		t.Fatalf("bob's multiget of alice's object from his own calendar: status %d", st)
	}

	// A proxy grant across tenants (left by a tenant move) opens nothing.
	ctx := context.Background()
	ten, err := e.dir.CreateTenant(ctx, directory.Tenant{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateDomain(ctx, directory.Domain{Name: "other.org", Tenant: ten.ID}); err != nil {
		t.Fatal(err)
	}
	eve, err := e.dir.CreateUser(ctx, directory.User{Address: "eve@other.org"}, "eve-secret")
	if err != nil {
		t.Fatal(err)
	}
	aliceUser, err := e.dir.User(ctx, e.aliceID)
	if err != nil {
		t.Fatal(err)
	}
	if err := putHomeGrant(ctx, e.st, aliceUser, eve, AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	e.do("PROPFIND", home, propfindBody("D:displayname"), "Depth", "1", "Auth", "eve@other.org:eve-secret").expect(t, http.StatusForbidden)
	e.do(http.MethodGet, home+"work/e1.ics", "", "Auth", "eve@other.org:eve-secret").expect(t, http.StatusForbidden)

	// Removing dave from the write proxies closes the home to him.
	path := alicePrin + proxyWrite + "/"
	e.do("PROPPATCH", path, groupMemberSetBody()).expect(t, http.StatusMultiStatus)
	e.do(http.MethodGet, home+"later/l1.ics", "", asDave...).expect(t, http.StatusForbidden)
	e.do("PROPFIND", home, propfindBody("D:displayname"), append([]string{"Depth", "1"}, asDave...)...).expect(t, http.StatusForbidden)
}

// syncPageAs runs an initial sync-collection of a collection as a user
// and returns the hrefs it lists.
func (e *proxyEnv) syncPageAs(t *testing.T, path string, who []string) []string {
	t.Helper()
	ms := e.do("REPORT", path, syncBody("", ""), who...).multistatus(t)
	return hrefs(ms)
}

// TestProxyAnswersForOwner: a write proxy answers invitations in the
// owner's calendar at the owner's URLs, the REPLY going out as the
// owner's with the proxy named in SENT-BY (RFC 5545 §3.2.18), to a
// local organizer and by iMIP to a remote one; an invitation the proxy
// sends from the owner's calendar names the proxy in the ORGANIZER's
// SENT-BY, and one the owner sends herself has none, whatever her client
// wrote. The proxy reads and clears the owner's schedule inbox and asks
// free/busy through her outbox; a read proxy may do neither.
func TestProxyAnswersForOwner(t *testing.T) {
	e := newProxyEnv(t)
	ctx := context.Background()
	home := "/dav/calendars/" + e.aliceID + "/"
	asDave, asBob := as(dave, davePW), as(bob, bobPW)
	ct := []string{"Content-Type", "text/calendar"}

	// An invitation from another domain is in alice's inbox only; dave
	// reads it there and accepts it into her calendar.
	remote := meeting("r1", "20260320T100000Z", "20260320T110000Z", "org@elsewhere.org", 0, alice)
	if _, err := e.h.ReceiveIMIP(ctx, "org@elsewhere.org", alice, decodeCal(t, withMethod(remote, "REQUEST"))); err != nil {
		t.Fatal(err)
	}
	inbox := e.do("PROPFIND", home+"inbox/", propfindBody("D:getetag"), append([]string{"Depth", "1"}, asDave...)...).multistatus(t)
	var msgPath string
	for h := range inbox {
		if h != home+"inbox/" {
			msgPath = h
		}
	}
	if len(inbox) != 2 || msgPath == "" {
		t.Fatalf("dave's listing of alice's inbox: %v", hrefs(inbox))
	}
	e.do(http.MethodGet, msgPath, "", asBob...).expect(t, http.StatusOK)
	accepted := strings.Replace(remote, "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1)
	e.do(http.MethodPut, home+"calendar/r1.ics", accepted, append(ct, asDave...)...).expect(t, http.StatusCreated)
	sent := e.imip.messages()
	if len(sent) != 1 || sent[0].method != methodReply || sent[0].from != alice || !slices.Equal(sent[0].to, []string{"org@elsewhere.org"}) {
		t.Fatalf("IMIP got %+v", sent)
	}
	att := propOf(t, sent[0].data, ical.PropAttendee, alice)
	if got := att.Params.Get(paramSentBy); got != "mailto:"+dave {
		t.Fatalf("REPLY's ATTENDEE SENT-BY %q, want dave:\n%s", got, sent[0].data)
	}
	if got := att.Params.Get(ical.ParamParticipationStatus); got != "ACCEPTED" {
		t.Fatalf("REPLY's PARTSTAT %q", got)
	}
	// Dave clears the processed message; bob may not.
	e.do(http.MethodDelete, msgPath, "", asBob...).expect(t, http.StatusForbidden)
	e.do(http.MethodDelete, msgPath, "", asDave...).expect(t, http.StatusNoContent)

	// A local organizer: bob invites alice, dave accepts for her.
	e.putAs(bob, bobPW, e.bobID, "m1.ics", meeting("m1", "20260321T100000Z", "20260321T110000Z", bob, 0, alice)).expect(t, http.StatusCreated)
	c, cp, found, err := e.h.findByUID(ctx, e.aliceID, "m1")
	if err != nil || !found {
		t.Fatalf("alice got no copy: %v", err)
	}
	accepted = strings.Replace(string(cp.Data), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1)
	e.do(http.MethodPut, home+c.Name+"/"+cp.Name, accepted, append(ct, asDave...)...).expect(t, http.StatusNoContent)
	bobCopy := string(e.do(http.MethodGet, "/dav/calendars/"+e.bobID+"/calendar/m1.ics", "", asBob...).expect(t, http.StatusOK).body)
	if got := attendeeParam(t, bobCopy, alice, "PARTSTAT"); got != "ACCEPTED" {
		t.Fatalf("bob sees alice's PARTSTAT %q after her proxy accepted", got)
	}
	reply, ok := e.inboxMessage(e.bobID, "m1")
	if !ok || !strings.Contains(reply, "METHOD:REPLY") {
		t.Fatalf("bob's inbox: %s", reply)
	}
	if got := propOf(t, reply, ical.PropAttendee, alice).Params.Get(paramSentBy); got != "mailto:"+dave {
		t.Fatalf("REPLY in bob's inbox: SENT-BY %q\n%s", got, reply)
	}

	// Dave invites bob from alice's calendar: the REQUEST is alice's,
	// sent by dave.
	e.do(http.MethodPut, home+"work/m2.ics", meeting("m2", "20260322T100000Z", "20260322T110000Z", alice, 0, bob), append(ct, asDave...)...).
		expect(t, http.StatusCreated)
	req, ok := e.inboxMessage(e.bobID, "m2")
	if !ok || !strings.Contains(req, "METHOD:REQUEST") {
		t.Fatalf("bob's inbox after dave's invitation: %s", req)
	}
	if got := propOf(t, req, ical.PropOrganizer, "").Params.Get(paramSentBy); got != "mailto:"+dave {
		t.Fatalf("REQUEST's ORGANIZER SENT-BY %q\n%s", got, req)
	}
	// Alice updates it herself, her client keeping dave's SENT-BY: the
	// server says she sent it.
	own := strings.Replace(meeting("m2", "20260322T120000Z", "20260322T130000Z", alice, 1, bob), "ORGANIZER:", `ORGANIZER;SENT-BY="mailto:`+dave+`":`, 1)
	e.do(http.MethodPut, home+"work/m2.ics", own, ct...).expect(t, http.StatusNoContent)
	req, _ = e.inboxMessage(e.bobID, "m2")
	if got := propOf(t, req, ical.PropOrganizer, "").Params.Get(paramSentBy); got != "" || !strings.Contains(req, "SEQUENCE:1") {
		t.Fatalf("alice's own update: ORGANIZER SENT-BY %q\n%s", got, req)
	}

	// Free/busy through alice's outbox, as alice: dave may, bob may not.
	r := e.do(http.MethodPost, home+"outbox/", fbRequestBody(alice, bob), append(ct, asDave...)...)
	if got := scheduleResponse(t, r)[bob][0]; !strings.HasPrefix(got, "2.0") {
		t.Fatalf("dave's free/busy through alice's outbox: %q", got)
	}
	e.do(http.MethodPost, home+"outbox/", fbRequestBody(dave, bob), append(ct, asDave...)...).expect(t, http.StatusForbidden)
	e.do(http.MethodPost, home+"outbox/", fbRequestBody(alice, bob), append(ct, asBob...)...).expect(t, http.StatusForbidden)
}

package dav

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// hrefsOf lists the DAV:href children of a property value.
func hrefsOf(n *node) []string {
	var out []string
	for _, c := range n.Children {
		if c.is(nsDAV, "href") {
			out = append(out, c.Text)
		}
	}
	return out
}

func groupMemberSetBody(hrefs ...string) string {
	b := `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:group-member-set>`
	for _, h := range hrefs {
		b += "<D:href>" + h + "</D:href>"
	}
	return b + `</D:group-member-set></D:prop></D:set></D:propertyupdate>`
}

// TestCalendarProxyPrincipals: the calendar-proxy-read and -write child
// principals (caldav-proxy §5.2) list the owner's delegates from the
// grants, the delegate's principal says for whom it is a proxy (§5.3)
// and in which proxy groups (RFC 3744 §4.4), and the owner's PROPPATCH
// of group-member-set (§4.3) grants and revokes access to every
// calendar of the owner; nobody else may change it, and no user of
// another tenant can be made a member.
func TestCalendarProxyPrincipals(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	alicePrin := "/dav/principals/" + e.aliceID + "/"
	bobPrin := "/dav/principals/" + e.bobID + "/"
	davePrin := "/dav/principals/" + e.daveID + "/"
	readProxy, writeProxy := alicePrin+"calendar-proxy-read/", alicePrin+"calendar-proxy-write/"
	asBob := []string{"Auth", bob + ":" + bobPW}

	if r := e.do("OPTIONS", alicePrin, ""); !slices.Contains(splitList(r.Header.Get("DAV")), "calendar-proxy") {
		t.Fatalf("DAV header %q lacks calendar-proxy", r.Header.Get("DAV"))
	}
	// A read grant of "work" makes bob a read proxy of alice.
	if _, err := e.h.Share(ctx, alice, store.KindCalendar, "work", bob, AccessRead); err != nil {
		t.Fatal(err)
	}
	ms := e.do("PROPFIND", alicePrin, propfindBody("D:resourcetype", "D:group-member-set", "D:displayname"), "Depth", "1").multistatus(t)
	for _, p := range []string{readProxy, writeProxy} {
		rt := ms[p].prop(t, nsDAV, "resourcetype")
		if rt.child(nsDAV, "principal") == nil || rt.child(nsCS, p[len(alicePrin):len(p)-1]) == nil {
			t.Fatalf("%s resourcetype: %+v", p, rt.Children)
		}
	}
	if got := hrefsOf(ms[readProxy].prop(t, nsDAV, "group-member-set")); !slices.Equal(got, []string{bobPrin}) {
		t.Fatalf("read proxies %v, want bob", got)
	}
	if got := hrefsOf(ms[writeProxy].prop(t, nsDAV, "group-member-set")); len(got) != 0 {
		t.Fatalf("write proxies %v, want none", got)
	}
	forProps := func(user, pw, prin string) (read, write, groups []string) {
		t.Helper()
		m := e.do("PROPFIND", prin, propfindBody("CS:calendar-proxy-read-for", "CS:calendar-proxy-write-for", "D:group-membership"),
			"Depth", "0", "Auth", user+":"+pw).multistatus(t)[prin]
		return hrefsOf(m.prop(t, nsCS, "calendar-proxy-read-for")), hrefsOf(m.prop(t, nsCS, "calendar-proxy-write-for")),
			hrefsOf(m.prop(t, nsDAV, "group-membership"))
	}
	r, w, g := forProps(bob, bobPW, bobPrin)
	if !slices.Equal(r, []string{alicePrin}) || len(w) != 0 || !slices.Equal(g, []string{readProxy}) {
		t.Fatalf("bob: read-for %v, write-for %v, group-membership %v", r, w, g)
	}

	// Bob may neither read nor change alice's proxies.
	e.do("PROPPATCH", writeProxy, groupMemberSetBody(bobPrin), asBob...).expect(t, http.StatusForbidden)
	e.do("PROPFIND", writeProxy, propfindBody("D:group-member-set"), append([]string{"Depth", "0"}, asBob...)...).expect(t, http.StatusForbidden)

	// A user of another tenant cannot be a member: nothing changes.
	ten, err := e.dir.CreateTenant(ctx, directory.Tenant{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateDomain(ctx, directory.Domain{Name: "other.org", Tenant: ten.ID}); err != nil {
		t.Fatal(err)
	}
	stranger, err := e.dir.CreateUser(ctx, directory.User{Address: "eve@other.org"}, "eve-secret")
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{groupMemberSetBody(davePrin, "/dav/principals/"+stranger.ID+"/"), groupMemberSetBody("mailto:eve@other.org"),
		groupMemberSetBody("/dav/principals/no-such-user/"), groupMemberSetBody(alicePrin)} {
		st := e.do("PROPPATCH", writeProxy, body).multistatus(t)[writeProxy].props
		if st[nsDAV+" group-member-set"] != http.StatusForbidden {
			t.Fatalf("PROPPATCH %s: %v", body, st)
		}
	}
	if got, _ := e.h.Shares(ctx, alice); len(got) != 1 {
		t.Fatalf("refused PROPPATCHes changed the grants: %+v", got)
	}

	// Alice makes dave (by principal URL) and bob (by address) her write
	// proxies: both get read-write access to each of her calendars.
	st := e.do("PROPPATCH", writeProxy, groupMemberSetBody(davePrin, "mailto:"+bob)).multistatus(t)[writeProxy].props
	if st[nsDAV+" group-member-set"] != http.StatusOK {
		t.Fatalf("PROPPATCH group-member-set: %v", st)
	}
	ms = e.do("PROPFIND", alicePrin, propfindBody("D:group-member-set"), "Depth", "1").multistatus(t)
	if got := hrefsOf(ms[writeProxy].prop(t, nsDAV, "group-member-set")); !slices.Equal(got, []string{bobPrin, davePrin}) &&
		!slices.Equal(got, []string{davePrin, bobPrin}) {
		t.Fatalf("write proxies %v, want bob and dave", got)
	}
	if got := hrefsOf(ms[readProxy].prop(t, nsDAV, "group-member-set")); len(got) != 0 {
		t.Fatalf("read proxies %v, want none after bob's move to write", got)
	}
	r, w, g = forProps(dave, davePW, davePrin)
	if len(r) != 0 || !slices.Equal(w, []string{alicePrin}) || !slices.Equal(g, []string{writeProxy}) {
		t.Fatalf("dave: read-for %v, write-for %v, group-membership %v", r, w, g)
	}
	// Dave finds both of alice's calendars in his home and may write there.
	home := e.homeListing(dave, davePW, e.daveID, "D:displayname")
	defPath := "/dav/calendars/" + e.daveID + "/" + shareName(e.aliceID, "calendar") + "/"
	if _, ok := home[defPath]; !ok {
		t.Fatalf("dave's home lacks alice's default calendar: %v", hrefs(home))
	}
	e.do(http.MethodPut, e.sharedPath(e.daveID)+"d.ics", event("d1", "20260311T100000Z"), "Content-Type", "text/calendar",
		"Auth", dave+":"+davePW).expect(t, http.StatusCreated)

	// Emptying the set revokes the write grants.
	e.do("PROPPATCH", writeProxy, `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:remove><D:prop><D:group-member-set/></D:prop></D:remove></D:propertyupdate>`).
		expect(t, http.StatusMultiStatus)
	if got, _ := e.h.Shares(ctx, alice); len(got) != 0 {
		t.Fatalf("grants left after emptying the write proxies: %+v", got)
	}
	r, w, g = forProps(dave, davePW, davePrin)
	if len(r)+len(w)+len(g) != 0 {
		t.Fatalf("dave after revocation: read-for %v, write-for %v, group-membership %v", r, w, g)
	}
	e.do("PROPFIND", e.sharedPath(e.daveID), propfindBody("D:displayname"), "Depth", "0", "Auth", dave+":"+davePW).expect(t, http.StatusNotFound)
}

// TestPeerPrincipal: a user reads a colleague's principal (name,
// addresses, type: what a client shows for a group-member-set or
// calendar-proxy-*-for href) and nothing that leads into the colleague's
// data; a user of another tenant gets 403, and so does any other
// method.
func TestPeerPrincipal(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	alicePrin := "/dav/principals/" + e.aliceID + "/"
	asBob := []string{"Auth", bob + ":" + bobPW}
	m := e.do("PROPFIND", alicePrin, propfindBody("D:displayname", "C:calendar-user-address-set", "D:principal-URL", "D:resourcetype",
		"C:calendar-home-set", "CS:calendar-proxy-read-for", "D:group-membership", "C:schedule-inbox-URL"), append([]string{"Depth", "1"}, asBob...)...).multistatus(t)
	if len(m) != 1 {
		t.Fatalf("Depth 1 listed %v", hrefs(m))
	}
	p := m[alicePrin]
	if got := p.prop(t, nsDAV, "displayname").Text; got != "Alice Liddell" {
		t.Fatalf("displayname %q", got)
	}
	if got := hrefsOf(p.prop(t, nsCalDAV, "calendar-user-address-set")); !slices.Equal(got, []string{"mailto:" + alice, "mailto:al@example.com"}) {
		t.Fatalf("calendar-user-address-set %v", got)
	}
	if got := hrefsOf(p.prop(t, nsDAV, "principal-URL")); !slices.Equal(got, []string{alicePrin}) {
		t.Fatalf("principal-URL %v", got)
	}
	for _, k := range []string{nsCalDAV + " calendar-home-set", nsCS + " calendar-proxy-read-for", nsDAV + " group-membership", nsCalDAV + " schedule-inbox-URL"} {
		if p.props[k] != http.StatusNotFound {
			t.Errorf("%s of alice's principal, read by bob: status %d", k, p.props[k])
		}
	}
	e.do("PROPPATCH", alicePrin, groupMemberSetBody(), asBob...).expect(t, http.StatusForbidden)
	e.do("PROPFIND", alicePrin+"calendar-proxy-read/", propfindBody("D:group-member-set"), append([]string{"Depth", "0"}, asBob...)...).expect(t, http.StatusForbidden)

	ten, err := e.dir.CreateTenant(ctx, directory.Tenant{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateDomain(ctx, directory.Domain{Name: "other.org", Tenant: ten.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateUser(ctx, directory.User{Address: "eve@other.org"}, "eve-secret"); err != nil {
		t.Fatal(err)
	}
	e.do("PROPFIND", alicePrin, propfindBody("D:displayname"), "Depth", "0", "Auth", "eve@other.org:eve-secret").expect(t, http.StatusForbidden)
	e.do("PROPFIND", "/dav/principals/no-such-user/", propfindBody("D:displayname"), append([]string{"Depth", "0"}, asBob...)...).expect(t, http.StatusForbidden)
}

// TestExpandPropertyProxies: the expand-property REPORT (RFC 3253 §3.8)
// Apple clients send to the principal returns the principals of
// calendar-proxy-write-for with their names and addresses, and on a
// proxy principal the members of group-member-set; a group grant makes
// its members proxies too (in calendar-proxy-read-for) without being
// listed in group-member-set.
func TestExpandPropertyProxies(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	alicePrin := "/dav/principals/" + e.aliceID + "/"
	bobPrin := "/dav/principals/" + e.bobID + "/"
	davePrin := "/dav/principals/" + e.daveID + "/"
	if _, err := e.h.Share(ctx, alice, store.KindCalendar, "work", bob, AccessReadWrite); err != nil {
		t.Fatal(err)
	}
	if _, err := e.h.Share(ctx, alice, store.KindCalendar, "work", team, AccessRead); err != nil {
		t.Fatal(err)
	}
	const body = `<?xml version="1.0"?><A:expand-property xmlns:A="DAV:">` +
		`<A:property name="calendar-proxy-write-for" namespace="http://calendarserver.org/ns/">` +
		`<A:property name="displayname" namespace="DAV:"/><A:property name="calendar-user-address-set" namespace="urn:ietf:params:xml:ns:caldav"/>` +
		`<A:property name="calendar-home-set" namespace="urn:ietf:params:xml:ns:caldav"/></A:property>` +
		`<A:property name="calendar-proxy-read-for" namespace="http://calendarserver.org/ns/"><A:property name="displayname"/></A:property>` +
		`</A:expand-property>`
	p := e.do("REPORT", bobPrin, body, "Depth", "0", "Auth", bob+":"+bobPW).multistatus(t)[bobPrin]
	wf := p.prop(t, nsCS, "calendar-proxy-write-for")
	if len(wf.Children) != 1 || !wf.Children[0].is(nsDAV, "response") {
		t.Fatalf("calendar-proxy-write-for: %+v", wf.Children)
	}
	r := wf.Children[0]
	if r.child(nsDAV, "href").Text != alicePrin {
		t.Fatalf("expanded href %q", r.child(nsDAV, "href").Text)
	}
	got := map[string]string{}
	for _, ps := range r.Children {
		if ps.is(nsDAV, "propstat") {
			for _, pp := range ps.child(nsDAV, "prop").Children {
				v := pp.Text
				if h := pp.child(nsDAV, "href"); h != nil {
					v = h.Text
				}
				got[pp.Name.Local] = ps.child(nsDAV, "status").Text + " " + v
			}
		}
	}
	if !strings.Contains(got["displayname"], "200") || !strings.HasSuffix(got["displayname"], "Alice Liddell") ||
		!strings.HasSuffix(got["calendar-user-address-set"], "mailto:"+alice) || !strings.Contains(got["calendar-home-set"], "404") {
		t.Fatalf("alice's principal expanded for bob: %v", got)
	}
	if rf := p.prop(t, nsCS, "calendar-proxy-read-for"); len(rf.Children) != 0 {
		t.Fatalf("bob is no read proxy: %+v", rf.Children)
	}
	// Dave is a read proxy through the group.
	p = e.do("REPORT", davePrin, body, "Depth", "0", "Auth", dave+":"+davePW).multistatus(t)[davePrin]
	if rf := p.prop(t, nsCS, "calendar-proxy-read-for"); len(rf.Children) != 1 || rf.Children[0].child(nsDAV, "href").Text != alicePrin {
		t.Fatalf("dave's calendar-proxy-read-for: %+v", rf.Children)
	}
	// Alice's proxy groups: bob writes; the group is no member.
	for proxy, want := range map[string][]string{"calendar-proxy-write": {bobPrin}, "calendar-proxy-read": nil} {
		path := alicePrin + proxy + "/"
		m := e.do("REPORT", path, `<A:expand-property xmlns:A="DAV:"><A:property name="group-member-set"><A:property name="displayname"/></A:property></A:expand-property>`,
			"Depth", "0").multistatus(t)[path]
		var members []string
		for _, c := range m.prop(t, nsDAV, "group-member-set").Children {
			members = append(members, c.child(nsDAV, "href").Text)
		}
		if !slices.Equal(members, want) {
			t.Fatalf("%s members %v, want %v", proxy, members, want)
		}
	}
	// Not on collections.
	e.do("REPORT", "/dav/calendars/"+e.aliceID+"/work/", `<A:expand-property xmlns:A="DAV:"><A:property name="owner"/></A:expand-property>`, "Depth", "0").
		expect(t, http.StatusForbidden)
}

// noIDDirectory hides every method of a directory but Directory's, so
// users cannot be found by ID.
type noIDDirectory struct{ Directory }

// TestProxyWithoutUserByID: over a directory that cannot find users by
// ID, proxy members are named by mailto: only and colleagues'
// principals stay closed.
func TestProxyWithoutUserByID(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Directory = noIDDirectory{o.Directory} })
	writeProxy := "/dav/principals/" + e.aliceID + "/calendar-proxy-write/"
	st := e.do("PROPPATCH", writeProxy, groupMemberSetBody("/dav/principals/"+e.bobID+"/")).multistatus(t)[writeProxy].props
	if st[nsDAV+" group-member-set"] != http.StatusForbidden {
		t.Fatalf("principal URL member without User by ID: %v", st)
	}
	st = e.do("PROPPATCH", writeProxy, groupMemberSetBody("mailto:"+bob)).multistatus(t)[writeProxy].props
	if st[nsDAV+" group-member-set"] != http.StatusOK {
		t.Fatalf("mailto: member: %v", st)
	}
	e.do("PROPFIND", "/dav/principals/"+e.aliceID+"/", propfindBody("D:displayname"), "Depth", "0", "Auth", bob+":"+bobPW).expect(t, http.StatusForbidden)
}

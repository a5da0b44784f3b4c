package dav

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
)

// roomEnv is an env with a room and a projector in alice's tenant and
// a room in another tenant, whose user is eve.
type roomEnv struct {
	*env
	room, beamer, otherRoom directory.Resource
}

const evePW = "eve-secret"

func newRoomEnv(t *testing.T, opts ...envOption) *roomEnv {
	t.Helper()
	e := &roomEnv{env: newEnv(t, opts...)}
	ctx := context.Background()
	var err error
	e.room, err = e.dir.CreateResource(ctx, directory.Resource{Address: "boardroom@example.com", DisplayName: "Board Room", Kind: directory.ResourceRoom, Capacity: 12})
	if err != nil {
		t.Fatal(err)
	}
	e.beamer, err = e.dir.CreateResource(ctx, directory.Resource{Address: "beamer@example.com", DisplayName: "Beamer", Kind: directory.ResourceEquipment})
	if err != nil {
		t.Fatal(err)
	}
	ten, err := e.dir.CreateTenant(ctx, directory.Tenant{Name: "other"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateDomain(ctx, directory.Domain{Name: "other.org", Tenant: ten.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.dir.CreateUser(ctx, directory.User{Address: "eve@other.org"}, evePW); err != nil {
		t.Fatal(err)
	}
	e.otherRoom, err = e.dir.CreateResource(ctx, directory.Resource{Address: "boardroom@other.org", DisplayName: "Board Room Other", Kind: directory.ResourceRoom})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func principalPath(id string) string { return "/dav/principals/" + id + "/" }

// searchBody is a principal-property-search: test is "" (allof) or
// "anyof"; each search is "D:displayname=Board" or
// "C:calendar-user-type=ROOM".
func searchBody(test string, searches ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:principal-property-search xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav"`)
	if test != "" {
		b.WriteString(` test="` + test + `"`)
	}
	b.WriteString(`>`)
	for _, s := range searches {
		p, m, _ := strings.Cut(s, "=")
		fmt.Fprintf(&b, `<D:property-search><D:prop><%s/></D:prop><D:match>%s</D:match></D:property-search>`, p, m)
	}
	b.WriteString(`<D:prop><D:displayname/><C:calendar-user-type/><C:calendar-user-address-set/></D:prop><D:apply-to-principal-collection-set/></D:principal-property-search>`)
	return b.String()
}

// TestResourcePrincipal: a room is a calendar principal its tenant's
// users can read (issue 14 item 7), with calendar-user-type ROOM
// (RFC 6638 §2.4.2) and its calendar home and inbox; equipment is
// RESOURCE; another tenant's user gets 403, and the room's calendar
// home stays closed.
func TestResourcePrincipal(t *testing.T) {
	e := newRoomEnv(t)
	path := principalPath(e.room.ID)
	ms := e.do("PROPFIND", path, propfindBody("D:resourcetype", "D:displayname", "D:principal-URL", "C:calendar-user-address-set",
		"C:calendar-user-type", "C:calendar-home-set", "C:schedule-inbox-URL", "C:schedule-outbox-URL"), "Depth", "0").multistatus(t)
	r, ok := ms[path]
	if !ok {
		t.Fatalf("no response for %s: %v", path, ms)
	}
	if r.prop(t, nsDAV, "resourcetype").child(nsDAV, "principal") == nil {
		t.Error("resourcetype is no principal")
	}
	if got := r.prop(t, nsDAV, "displayname").Text; got != "Board Room" {
		t.Errorf("displayname %q", got)
	}
	if got := r.prop(t, nsDAV, "principal-URL").child(nsDAV, "href").Text; got != path {
		t.Errorf("principal-URL %q", got)
	}
	if got := r.prop(t, nsCalDAV, "calendar-user-address-set").child(nsDAV, "href").Text; got != "mailto:boardroom@example.com" {
		t.Errorf("calendar-user-address-set %q", got)
	}
	if got := r.prop(t, nsCalDAV, "calendar-user-type").Text; got != "ROOM" {
		t.Errorf("calendar-user-type %q", got)
	}
	home := "/dav/calendars/" + e.room.ID + "/"
	if got := r.prop(t, nsCalDAV, "calendar-home-set").child(nsDAV, "href").Text; got != home {
		t.Errorf("calendar-home-set %q", got)
	}
	if got := r.prop(t, nsCalDAV, "schedule-inbox-URL").child(nsDAV, "href").Text; got != home+"inbox/" {
		t.Errorf("schedule-inbox-URL %q", got)
	}
	if st := r.props[nsCalDAV+" schedule-outbox-URL"]; st != http.StatusNotFound {
		t.Errorf("schedule-outbox-URL status %d, want 404", st)
	}

	bpath := principalPath(e.beamer.ID)
	ms = e.do("PROPFIND", bpath, propfindBody("C:calendar-user-type"), "Depth", "0", "Auth", bob+":"+bobPW).multistatus(t)
	if got := ms[bpath].prop(t, nsCalDAV, "calendar-user-type").Text; got != "RESOURCE" {
		t.Errorf("equipment's calendar-user-type %q", got)
	}
	// allprop lists the principal's properties.
	ms = e.do("PROPFIND", path, "", "Depth", "0").multistatus(t)
	if got := ms[path].prop(t, nsCalDAV, "calendar-user-type").Text; got != "ROOM" {
		t.Errorf("allprop calendar-user-type %q", got)
	}

	// Another tenant's user, and another tenant's room.
	e.do("PROPFIND", path, propfindBody("D:displayname"), "Depth", "0", "Auth", "eve@other.org:"+evePW).expect(t, http.StatusForbidden)
	e.do("PROPFIND", principalPath(e.otherRoom.ID), propfindBody("D:displayname"), "Depth", "0").expect(t, http.StatusForbidden)
	// The room's calendar home is seen as free/busy only.
	e.do("PROPFIND", home, propfindBody("D:displayname"), "Depth", "1").expect(t, http.StatusForbidden)
	e.do("PROPPATCH", path, `<?xml version="1.0"?><D:propertyupdate xmlns:D="DAV:"><D:set><D:prop><D:displayname>x</D:displayname></D:prop></D:set></D:propertyupdate>`).expect(t, http.StatusForbidden)
}

// TestPrincipalPropertySearch: principal-property-search (RFC 3744
// §9.4) on the principals collection finds rooms by name, by
// calendar-user-type ROOM (Apple Calendar's room lookup) and by
// address, users too, never another tenant's principals.
func TestPrincipalPropertySearch(t *testing.T) {
	e := newRoomEnv(t)
	coll := "/dav/principals/"
	search := func(body string, who ...string) map[string]msResponse {
		t.Helper()
		return e.do("REPORT", coll, body, who...).multistatus(t)
	}
	roomPath, beamerPath := principalPath(e.room.ID), principalPath(e.beamer.ID)

	ms := search(searchBody("", "D:displayname=board"))
	if len(ms) != 1 {
		t.Fatalf("by name: %d responses, want the room: %v", len(ms), responseHrefs(ms))
	}
	if got := ms[roomPath].prop(t, nsCalDAV, "calendar-user-type").Text; got != "ROOM" {
		t.Errorf("room's calendar-user-type %q", got)
	}
	if got := ms[roomPath].prop(t, nsDAV, "displayname").Text; got != "Board Room" {
		t.Errorf("room's displayname %q", got)
	}

	ms = search(searchBody("", "C:calendar-user-type=ROOM"))
	if _, ok := ms[roomPath]; !ok || len(ms) != 1 {
		t.Fatalf("by type ROOM: %v, want the room only", responseHrefs(ms))
	}
	ms = search(searchBody("", "C:calendar-user-type=RESOURCE"))
	if _, ok := ms[beamerPath]; !ok || len(ms) != 1 {
		t.Fatalf("by type RESOURCE: %v, want the beamer only", responseHrefs(ms))
	}
	// allof: a room named "Beamer" there is none.
	if ms = search(searchBody("allof", "C:calendar-user-type=ROOM", "D:displayname=beamer")); len(ms) != 0 {
		t.Fatalf("allof ROOM and beamer: %v", responseHrefs(ms))
	}
	// anyof: either.
	ms = search(searchBody("anyof", "C:calendar-user-type=ROOM", "D:displayname=beamer"))
	if _, ok := ms[beamerPath]; !ok || len(ms) != 2 {
		t.Fatalf("anyof ROOM or beamer: %v", responseHrefs(ms))
	}
	ms = search(searchBody("", "C:calendar-user-address-set=mailto:boardroom@example.com"))
	if _, ok := ms[roomPath]; !ok || len(ms) != 1 {
		t.Fatalf("by address: %v", responseHrefs(ms))
	}
	// Users are principals too, alice herself included.
	ms = search(searchBody("", "D:displayname=alice"), "Auth", bob+":"+bobPW)
	if got := ms[principalPath(e.aliceID)].prop(t, nsCalDAV, "calendar-user-type").Text; got != "INDIVIDUAL" {
		t.Errorf("alice's calendar-user-type %q", got)
	}
	ms = search(searchBody("", "D:displayname=alice"))
	if got := ms[principalPath(e.aliceID)].prop(t, nsCalDAV, "calendar-user-address-set").child(nsDAV, "href").Text; got != "mailto:"+alice {
		t.Errorf("alice's own address %q", got)
	}

	// The other tenant sees its room, never alice's tenant's.
	ms = search(searchBody("", "D:displayname=board"), "Auth", "eve@other.org:"+evePW)
	if _, ok := ms[principalPath(e.otherRoom.ID)]; !ok || len(ms) != 1 {
		t.Fatalf("eve's search: %v, want her tenant's room only", responseHrefs(ms))
	}
	ms = search(searchBody("", "C:calendar-user-type=ROOM"))
	if _, ok := ms[principalPath(e.otherRoom.ID)]; ok {
		t.Fatal("alice finds another tenant's room")
	}

	// principal-search-property-set (RFC 3744 §9.5).
	r := e.do("REPORT", coll, `<?xml version="1.0"?><D:principal-search-property-set xmlns:D="DAV:"/>`).expect(t, http.StatusOK)
	root := r.tree(t)
	if !root.is(nsDAV, "principal-search-property-set") {
		t.Fatalf("root %v", root.Name)
	}
	var got []string
	for _, c := range root.Children {
		got = append(got, c.child(nsDAV, "prop").Children[0].Name.Local)
	}
	if strings.Join(got, ",") != "displayname,calendar-user-address-set,email-address-set,calendar-user-type,first-name,last-name" {
		t.Errorf("searchable properties %v", got)
	}
	// Not on a calendar.
	e.do("REPORT", "/dav/calendars/"+e.aliceID+"/default/", searchBody("", "D:displayname=board")).expect(t, http.StatusForbidden)
}

// TestPrincipalSearchBounded: a search returns at most
// Limits.MaxPrincipalSearch principals and then says it was truncated
// with a 507 for the request-URI.
func TestPrincipalSearchBounded(t *testing.T) {
	e := newRoomEnv(t, func(o *Options) { o.Limits.MaxPrincipalSearch = 3 })
	ctx := context.Background()
	for i := range 5 {
		if _, err := e.dir.CreateResource(ctx, directory.Resource{Address: fmt.Sprintf("meeting%d@example.com", i), DisplayName: fmt.Sprintf("Meeting %d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	ms := e.do("REPORT", "/dav/principals/", searchBody("", "C:calendar-user-type=ROOM")).multistatus(t)
	if len(ms) != 4 {
		t.Fatalf("%d responses, want 3 principals and the 507: %v", len(ms), responseHrefs(ms))
	}
	if st := ms["/dav/principals/"].status; st != http.StatusInsufficientStorage {
		t.Fatalf("request-URI status %d, want 507", st)
	}
	// Under the limit there is no 507.
	ms = e.do("REPORT", "/dav/principals/", searchBody("", "D:displayname=board")).multistatus(t)
	if _, ok := ms["/dav/principals/"]; ok || len(ms) != 1 {
		t.Fatalf("small search: %v", responseHrefs(ms))
	}
}

func responseHrefs(ms map[string]msResponse) []string {
	var out []string
	for h := range ms {
		out = append(out, h)
	}
	return out
}

// TestResourcePrincipalSourcedAuth: over directory.SourcedAuth (the
// reference server's directory with external sources) a room's
// principal is served as over the built-in directory.
func TestResourcePrincipalSourcedAuth(t *testing.T) {
	e := newRoomEnv(t, func(o *Options) { o.Directory = &directory.SourcedAuth{Users: o.Directory.(directory.SourcedUsers)} })
	path := principalPath(e.room.ID)
	ms := e.do("PROPFIND", path, propfindBody("C:calendar-user-type"), "Depth", "0").multistatus(t)
	if got := ms[path].prop(t, nsCalDAV, "calendar-user-type").Text; got != "ROOM" {
		t.Errorf("calendar-user-type %q", got)
	}
}

// TestPrincipalFirstLastName: CS:first-name and CS:last-name, which
// principal-property-search matches, are served as properties of the
// principals it finds, of a colleague's principal and of the user's
// own, from the directory's given name and surname; the search folds
// case fully (i;unicode-casemap, and the GAL's index), so "STRASSMANN"
// finds "Straßmann".
func TestPrincipalFirstLastName(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	const doraPW = "dora-secret"
	dora, err := e.dir.CreateUser(ctx, directory.User{Address: "dora@example.com", DisplayName: "Dörthe Straßmann", GivenName: "Dörthe", Surname: "Straßmann"}, doraPW)
	if err != nil {
		t.Fatal(err)
	}
	body := `<?xml version="1.0"?><D:principal-property-search xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/">` +
		`<D:property-search><D:prop><CS:last-name/></D:prop><D:match>STRASSMANN</D:match></D:property-search>` +
		`<D:prop><D:displayname/><CS:first-name/><CS:last-name/></D:prop></D:principal-property-search>`
	ms := e.do("REPORT", "/dav/principals/", body).multistatus(t)
	r, ok := ms[principalPath(dora.ID)]
	if !ok || len(ms) != 1 {
		t.Fatalf("search by last name: %v", responseHrefs(ms))
	}
	if got := r.prop(t, nsCS, "first-name").Text; got != "Dörthe" {
		t.Errorf("first-name %q", got)
	}
	if got := r.prop(t, nsCS, "last-name").Text; got != "Straßmann" {
		t.Errorf("last-name %q", got)
	}
	// A colleague's principal, and one's own.
	for _, who := range []string{alice + ":" + alicePW, "dora@example.com:" + doraPW} {
		ms = e.do("PROPFIND", principalPath(dora.ID), propfindBody("CS:first-name", "CS:last-name"), "Depth", "0", "Auth", who).multistatus(t)
		p := ms[principalPath(dora.ID)]
		if p.prop(t, nsCS, "first-name").Text != "Dörthe" || p.prop(t, nsCS, "last-name").Text != "Straßmann" {
			t.Errorf("as %s: first-name %q, last-name %q", who, p.values[nsCS+" first-name"].Text, p.values[nsCS+" last-name"].Text)
		}
	}
}

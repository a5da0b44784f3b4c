package dav

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestPropfindPrincipal(t *testing.T) {
	e := newEnv(t)
	ms := e.do("PROPFIND", "/dav/", propfindBody("D:current-user-principal", "D:resourcetype"), "Depth", "0").multistatus(t)
	root := ms["/dav/"]
	principal := "/dav/principals/" + e.aliceID + "/"
	if got := root.prop(t, nsDAV, "current-user-principal").child(nsDAV, "href").Text; got != principal {
		t.Fatalf("current-user-principal = %q", got)
	}
	ms = e.do("PROPFIND", principal, propfindBody("D:resourcetype", "D:displayname", "D:principal-URL",
		"C:calendar-home-set", "CR:addressbook-home-set", "C:calendar-user-address-set", "D:owner", "X:unknown"), "Depth", "0").multistatus(t)
	p := ms[principal]
	if p.prop(t, nsDAV, "resourcetype").child(nsDAV, "principal") == nil {
		t.Error("principal resourcetype lacks DAV:principal")
	}
	if got := p.prop(t, nsDAV, "displayname").Text; got != "Alice Liddell" {
		t.Errorf("displayname = %q", got)
	}
	if got := p.prop(t, nsCalDAV, "calendar-home-set").child(nsDAV, "href").Text; got != "/dav/calendars/"+e.aliceID+"/" {
		t.Errorf("calendar-home-set = %q", got)
	}
	if got := p.prop(t, nsCardDAV, "addressbook-home-set").child(nsDAV, "href").Text; got != "/dav/addressbooks/"+e.aliceID+"/" {
		t.Errorf("addressbook-home-set = %q", got)
	}
	var addrs []string
	for _, c := range p.prop(t, nsCalDAV, "calendar-user-address-set").Children {
		addrs = append(addrs, c.Text)
	}
	if !slices.Equal(addrs, []string{"mailto:" + alice, "mailto:al@example.com"}) {
		t.Errorf("calendar-user-address-set = %v", addrs)
	}
	if p.props["urn:x-test unknown"] != http.StatusNotFound || p.props[nsDAV+" owner"] != http.StatusNotFound {
		t.Errorf("unknown properties: %v", p.props)
	}
}

func TestPropfindDepth(t *testing.T) {
	e := newEnv(t)
	home := "/dav/calendars/" + e.aliceID + "/"
	r := e.do("PROPFIND", home, propfindBody("D:resourcetype"), "Depth", "infinity").expect(t, http.StatusForbidden)
	if r.tree(t).child(nsDAV, "propfind-finite-depth") == nil {
		t.Fatalf("no propfind-finite-depth: %s", r.body)
	}
	e.do("PROPFIND", home, propfindBody("D:resourcetype")).expect(t, http.StatusForbidden)
	e.do("PROPFIND", home, propfindBody("D:resourcetype"), "Depth", "2").expect(t, http.StatusBadRequest)
	ms := e.do("PROPFIND", home, propfindBody("D:resourcetype"), "Depth", "0").multistatus(t)
	if len(ms) != 1 {
		t.Fatalf("Depth 0 gave %d responses", len(ms))
	}
	ms = e.do("PROPFIND", home, propfindBody("D:resourcetype", "D:displayname"), "Depth", "1").multistatus(t)
	cal, ok := ms[home+"calendar/"]
	_, inbox := ms[home+"inbox/"]
	_, outbox := ms[home+"outbox/"]
	if len(ms) != 4 || !ok || !inbox || !outbox { // the home, its calendar, the schedule inbox and outbox
		t.Fatalf("Depth 1: %v", ms)
	}
	if cal.prop(t, nsDAV, "resourcetype").child(nsCalDAV, "calendar") == nil {
		t.Error("calendar resourcetype lacks C:calendar")
	}
	if ms[home].props[nsDAV+" displayname"] != http.StatusNotFound {
		t.Error("home has a displayname")
	}
}

func TestPropfindCollectionProps(t *testing.T) {
	e := newEnv(t)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	ms := e.do("PROPFIND", cal, propfindBody("D:sync-token", "CS:getctag", "D:supported-report-set", "D:current-user-privilege-set",
		"C:supported-calendar-component-set", "C:supported-calendar-data", "C:max-resource-size", "C:calendar-description", "A:calendar-color",
		"D:owner", "C:calendar-timezone"), "Depth", "0").multistatus(t)
	c := ms[cal]
	if tok := c.prop(t, nsDAV, "sync-token").Text; !strings.HasPrefix(tok, syncTokenPrefix) {
		t.Errorf("sync-token %q", tok)
	}
	if c.prop(t, nsCS, "getctag").Text == "" {
		t.Error("empty getctag")
	}
	var reports []string
	for _, sr := range c.prop(t, nsDAV, "supported-report-set").Children {
		reports = append(reports, sr.child(nsDAV, "report").Children[0].Name.Local)
	}
	for _, want := range []string{"calendar-query", "calendar-multiget", "sync-collection"} {
		if !slices.Contains(reports, want) {
			t.Errorf("supported-report-set %v lacks %s", reports, want)
		}
	}
	var privs []string
	for _, p := range c.prop(t, nsDAV, "current-user-privilege-set").Children {
		privs = append(privs, p.Children[0].Name.Local)
	}
	if !slices.Contains(privs, "write") || !slices.Contains(privs, "read") {
		t.Errorf("privileges %v", privs)
	}
	if n := len(c.prop(t, nsCalDAV, "supported-calendar-component-set").Children); n == 0 {
		t.Error("no components")
	}
	if c.prop(t, nsCalDAV, "max-resource-size").Text != "1048576" {
		t.Errorf("max-resource-size %q", c.prop(t, nsCalDAV, "max-resource-size").Text)
	}
	if c.props[nsCalDAV+" calendar-timezone"] != http.StatusNotFound {
		t.Errorf("calendar-timezone: %d", c.props[nsCalDAV+" calendar-timezone"])
	}
	book := "/dav/addressbooks/" + e.aliceID + "/contacts/"
	ms = e.do("PROPFIND", book, propfindBody("D:resourcetype", "CR:supported-address-data", "CR:max-resource-size", "CR:addressbook-description", "C:calendar-description"), "Depth", "0").multistatus(t)
	b := ms[book]
	if b.prop(t, nsDAV, "resourcetype").child(nsCardDAV, "addressbook") == nil {
		t.Error("address book resourcetype")
	}
	if n := len(b.prop(t, nsCardDAV, "supported-address-data").Children); n != 2 {
		t.Errorf("supported-address-data has %d types", n)
	}
	if b.props[nsCalDAV+" calendar-description"] != http.StatusNotFound {
		t.Error("address book has a calendar-description")
	}
}

func TestPropfindAllpropPropname(t *testing.T) {
	e := newEnv(t)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	ms := e.do("PROPFIND", cal, "", "Depth", "0").multistatus(t)
	c := ms[cal]
	if c.prop(t, nsDAV, "displayname").Text != "Calendar" {
		t.Error("allprop displayname")
	}
	if _, ok := c.props[nsCS+" getctag"]; ok {
		t.Error("allprop returned getctag, which only comes when asked for")
	}
	body := `<D:propfind xmlns:D="DAV:" xmlns:CS="http://calendarserver.org/ns/"><D:allprop/><D:include><CS:getctag/></D:include></D:propfind>`
	c = e.do("PROPFIND", cal, body, "Depth", "0").multistatus(t)[cal]
	c.prop(t, nsCS, "getctag")
	c.prop(t, nsDAV, "resourcetype")
	body = `<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`
	c = e.do("PROPFIND", cal, body, "Depth", "0").multistatus(t)[cal]
	for _, want := range []string{nsDAV + " sync-token", nsCalDAV + " supported-calendar-component-set", nsApple + " calendar-color"} {
		if c.props[want] != http.StatusOK || len(c.values[want].Children) != 0 || c.values[want].Text != "" {
			t.Errorf("propname: %s: %d %+v", want, c.props[want], c.values[want])
		}
	}
	e.do("PROPFIND", "/dav/calendars/"+e.aliceID+"/nope/", "", "Depth", "0").expect(t, http.StatusNotFound)
}

func TestPropfindPreferMinimal(t *testing.T) {
	e := newEnv(t)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	r := e.do("PROPFIND", cal, propfindBody("D:displayname", "X:unknown"), "Depth", "0", "Prefer", "return=minimal")
	c := r.multistatus(t)[cal]
	if _, ok := c.props["urn:x-test unknown"]; ok || c.props[nsDAV+" displayname"] != http.StatusOK || r.Header.Get("Preference-Applied") != "return=minimal" {
		t.Fatalf("minimal: %v %v", c.props, r.Header)
	}
}

func TestPropfindCollectionMembers(t *testing.T) {
	e := newEnv(t)
	seedCalendar(t, e)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	ms := e.do("PROPFIND", cal, propfindBody("D:getetag", "D:getcontenttype", "D:getcontentlength", "D:getlastmodified", "D:resourcetype"), "Depth", "1").multistatus(t)
	if len(ms) != 5 {
		t.Fatalf("members: %v", hrefs(ms))
	}
	o := ms[e.calPath("jan.ics")]
	g := e.do("GET", e.calPath("jan.ics"), "").expect(t, http.StatusOK)
	if o.prop(t, nsDAV, "getetag").Text != g.Header.Get("ETag") || !strings.HasPrefix(o.prop(t, nsDAV, "getcontenttype").Text, "text/calendar") ||
		o.prop(t, nsDAV, "getcontentlength").Text != strconv.Itoa(len(g.body)) || o.prop(t, nsDAV, "getlastmodified").Text != g.Header.Get("Last-Modified") {
		t.Fatalf("member props %+v vs %v", o.values, g.Header)
	}
	if len(o.prop(t, nsDAV, "resourcetype").Children) != 0 {
		t.Fatal("object resourcetype not empty")
	}
	if ms[cal].props[nsDAV+" getetag"] != http.StatusNotFound {
		t.Fatal("collection has a getetag")
	}
}

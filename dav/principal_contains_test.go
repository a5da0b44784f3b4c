package dav

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
)

// typedSearchBody is a principal-property-search whose searches are
// "prop|match-type|text" ("D:displayname|contains|oard"; an empty
// match-type sends none).
func typedSearchBody(test string, searches ...string) string {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0"?><D:principal-property-search xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CS="http://calendarserver.org/ns/"`)
	if test != "" {
		b.WriteString(` test="` + test + `"`)
	}
	b.WriteString(`>`)
	for _, s := range searches {
		f := strings.SplitN(s, "|", 3)
		mt := ""
		if f[1] != "" {
			mt = ` match-type="` + f[1] + `"`
		}
		fmt.Fprintf(&b, `<D:property-search><D:prop><%s/></D:prop><D:match%s>%s</D:match></D:property-search>`, f[0], mt, f[2])
	}
	b.WriteString(`<D:prop><D:displayname/></D:prop></D:principal-property-search>`)
	return b.String()
}

// principalNames runs a search as alice and returns the displaynames
// found, sorted.
func (e *roomEnv) principalNames(t *testing.T, body string) []string {
	t.Helper()
	ms := e.do("REPORT", "/dav/principals/", body, "Depth", "0").multistatus(t)
	var out []string
	for h, r := range ms {
		if h == "/dav/principals/" {
			t.Fatalf("search answered a status for the request-URI: %d", r.status)
		}
		out = append(out, r.prop(t, nsDAV, "displayname").Text)
	}
	slices.Sort(out)
	return out
}

// TestPrincipalSearchContains: principal-property-search matches
// match-type="contains" (the default, RFC 3744 §9.4) anywhere inside the
// displayname, calendar-user-address-set or CS:email-address-set, not
// only from the start of a word, and "starts-with" (Apple, RFC 5689 use)
// from the start of the value, both compared with i;unicode-casemap
// (RFC 5051: case-folded, NFKD). An unknown match-type is refused (400).
func TestPrincipalSearchContains(t *testing.T) {
	e := newRoomEnv(t)
	ctx := context.Background()
	if _, err := e.dir.CreateUser(ctx, directory.User{Address: "juergen@example.com", DisplayName: "Jürgen Müller", Aliases: []string{"jm-office@example.com"}}, "pw"); err != nil {
		t.Fatal(err)
	}
	for body, want := range map[string][]string{
		typedSearchBody("", "D:displayname|contains|oard"):                                     {"Board Room"},
		typedSearchBody("", "D:displayname||OARD R"):                                           {"Board Room"},
		typedSearchBody("", "D:displayname|contains|iddel"):                                    {"Alice Liddell"},
		typedSearchBody("", "D:displayname|contains|ÜLLER"):                                    {"Jürgen Müller"},
		typedSearchBody("", "D:displayname|contains|mu\u0308ll"):                               {"Jürgen Müller"}, // NFKD
		typedSearchBody("", "C:calendar-user-address-set|contains|ardroom@"):                   {"Board Room"},
		typedSearchBody("", "C:calendar-user-address-set|contains|mailto:eamer"):               {"Beamer"},
		typedSearchBody("", "CS:email-address-set|contains|-office"):                           {"Jürgen Müller"},
		typedSearchBody("", "D:displayname|starts-with|board r"):                               {"Board Room"},
		typedSearchBody("", "D:displayname|starts-with|oard"):                                  nil,
		typedSearchBody("", "D:displayname|starts-with|room"):                                  nil, // a word, but not the value's start
		typedSearchBody("", "D:displayname|equals|beamer"):                                     {"Beamer"},
		typedSearchBody("", "D:displayname|contains|eame", "C:calendar-user-type||RESOURCE"):   {"Beamer"},
		typedSearchBody("anyof", "D:displayname|contains|iddel", "D:displayname|contains|ürg"): {"Alice Liddell", "Jürgen Müller"},
		typedSearchBody("", "D:displayname|contains|oard Other"):                               nil, // another tenant's room
	} {
		if got := e.principalNames(t, body); !slices.Equal(got, want) {
			t.Errorf("%s:\n got %v, want %v", body, got, want)
		}
	}
	e.do("REPORT", "/dav/principals/", typedSearchBody("", "D:displayname|sounds-like|bord"), "Depth", "0").expect(t, http.StatusBadRequest)
}

// TestPrincipalSearchAttacker: principal-property-search from an
// attacker's side. Another tenant's principals never appear, whatever
// the match (eve finds her own room, not alice's, and alice not eve's);
// a text inside every principal is answered bounded (at most
// Limits.MaxPrincipalSearch, then 507); a body past the XML limits
// (depth, elements, size) or with a DOCTYPE is refused before any
// search; so are more property-searches than a client sends
// (maxPropertySearches: each is a directory query) and a match text
// longer than any name (maxSearchText).
func TestPrincipalSearchAttacker(t *testing.T) {
	e := newRoomEnv(t, func(o *Options) {
		o.Limits.MaxPrincipalSearch = 3
		o.Limits.MaxXMLDepth = 16
		o.Limits.MaxXMLElements = 200
		o.Limits.MaxRequestBody = 8 << 10
	})
	ctx := context.Background()
	var meetings []string
	for i := range 5 {
		r, err := e.dir.CreateResource(ctx, directory.Resource{Address: fmt.Sprintf("meeting%d@example.com", i), DisplayName: fmt.Sprintf("Meeting Room %d", i)})
		if err != nil {
			t.Fatal(err)
		}
		meetings = append(meetings, r.ID)
	}
	search := func(body string, who ...string) resp {
		return e.do("REPORT", "/dav/principals/", body, append([]string{"Depth", "0"}, who...)...)
	}
	asEve := []string{"Auth", "eve@other.org:" + evePW}
	alices := map[string]bool{principalPath(e.aliceID): true, principalPath(e.bobID): true,
		principalPath(e.room.ID): true, principalPath(e.beamer.ID): true}
	for _, id := range meetings {
		alices[principalPath(id)] = true
	}
	ms := search(typedSearchBody("anyof", "D:displayname|contains|oard", "CS:email-address-set|contains|example.com",
		"C:calendar-user-address-set|contains|@"), asEve...).multistatus(t)
	for h := range ms {
		if alices[h] {
			t.Errorf("eve found %s of alice's tenant", h)
		}
	}
	if _, ok := ms[principalPath(e.otherRoom.ID)]; !ok {
		t.Errorf("eve does not find her own room: %v", responseHrefs(ms))
	}
	ms = search(typedSearchBody("", "D:displayname|contains|other")).multistatus(t)
	if _, ok := ms[principalPath(e.otherRoom.ID)]; ok {
		t.Error("alice finds eve's room")
	}

	// "e" is inside every name: 3 principals, then the 507.
	ms = search(typedSearchBody("", "D:displayname|contains|e")).multistatus(t)
	if len(ms) != 4 || ms["/dav/principals/"].status != http.StatusInsufficientStorage {
		t.Errorf("broad search: %d responses %v, want 3 and a 507", len(ms), responseHrefs(ms))
	}

	deep := strings.Repeat("<D:x>", 20) + strings.Repeat("</D:x>", 20)
	nested := strings.Replace(typedSearchBody("", "D:displayname|contains|oard"), "<D:prop><D:displayname/></D:prop></D:principal-property-search>",
		"<D:prop><D:displayname/>"+deep+"</D:prop></D:principal-property-search>", 1)
	search(nested).expect(t, http.StatusBadRequest)
	many := make([]string, 60)
	for i := range many {
		many[i] = "D:displayname|contains|a"
	}
	search(typedSearchBody("anyof", many...)).expect(t, http.StatusBadRequest) // 240 elements
	search(typedSearchBody("", "D:displayname|contains|"+strings.Repeat("a", 9<<10))).expect(t, http.StatusRequestEntityTooLarge)
	search(`<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "oard">]>`+typedSearchBody("", "D:displayname|contains|&a;")[len(`<?xml version="1.0"?>`):]).
		expect(t, http.StatusBadRequest)

	// Under the XML limits, still more property-searches than any
	// client sends, or a text longer than any name.
	some := make([]string, maxPropertySearches+1)
	for i := range some {
		some[i] = fmt.Sprintf("D:displayname|contains|w%d", i)
	}
	search(typedSearchBody("anyof", some...)).expect(t, http.StatusBadRequest)
	search(typedSearchBody("anyof", some[:maxPropertySearches]...)).expect(t, http.StatusMultiStatus)
	search(typedSearchBody("", "D:displayname|contains|"+strings.Repeat("ab ", maxSearchText/3+1))).expect(t, http.StatusBadRequest)
}

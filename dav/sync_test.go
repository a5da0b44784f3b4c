package dav

import (
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-webdav/carddav"
)

// TestSyncCollectionGoWebdav: go-webdav's client syncs an address book:
// the initial sync lists every card, the next one what changed and what
// was deleted, and the one after that nothing.
func TestSyncCollectionGoWebdav(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	book := "/dav/addressbooks/" + e.aliceID + "/contacts/"
	e.do("PUT", e.cardPath("a.vcf"), vcardText("a", "Ann", "ann@example.org")).expect(t, http.StatusCreated)
	e.do("PUT", e.cardPath("b.vcf"), vcardText("b", "Ben", "ben@example.org")).expect(t, http.StatusCreated)
	ac := e.cardClient(alice, alicePW)
	first, err := ac.SyncCollection(ctx, book, &carddav.SyncQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range first.Updated {
		got = append(got, o.Path)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{e.cardPath("a.vcf"), e.cardPath("b.vcf")}) || !strings.HasPrefix(first.SyncToken, syncTokenPrefix) {
		t.Fatalf("initial sync: %v token %q", got, first.SyncToken)
	}
	e.do("PUT", e.cardPath("a.vcf"), vcardText("a", "Anne", "ann@example.org")).expect(t, http.StatusNoContent)
	e.do("DELETE", e.cardPath("b.vcf"), "").expect(t, http.StatusNoContent)
	e.do("PUT", e.cardPath("c.vcf"), vcardText("c", "Cid", "cid@example.org")).expect(t, http.StatusCreated)
	second, err := ac.SyncCollection(ctx, book, &carddav.SyncQuery{SyncToken: first.SyncToken})
	if err != nil {
		t.Fatal(err)
	}
	got = nil
	for _, o := range second.Updated {
		got = append(got, o.Path)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{e.cardPath("a.vcf"), e.cardPath("c.vcf")}) || !slices.Equal(second.Deleted, []string{e.cardPath("b.vcf")}) {
		t.Fatalf("second sync: updated %v deleted %v", got, second.Deleted)
	}
	third, err := ac.SyncCollection(ctx, book, &carddav.SyncQuery{SyncToken: second.SyncToken})
	if err != nil || len(third.Updated)+len(third.Deleted) != 0 || third.SyncToken != second.SyncToken {
		t.Fatalf("third sync: %+v %v", third, err)
	}
}

func TestSyncCollectionRaw(t *testing.T) {
	e := newEnv(t)
	seedCalendar(t, e)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	sync := func(token, extra string) string {
		return `<D:sync-collection ` + reportNS + `><D:sync-token>` + token + `</D:sync-token><D:sync-level>1</D:sync-level>` + extra + `<D:prop><D:getetag/></D:prop></D:sync-collection>`
	}
	r := e.do("REPORT", cal, sync("", ""))
	ms := r.multistatus(t)
	if len(ms) != 4 {
		t.Fatalf("initial: %v", hrefs(ms))
	}
	tok := r.tree(t).child(nsDAV, "sync-token")
	if tok == nil || !strings.HasPrefix(tok.Text, syncTokenPrefix) {
		t.Fatalf("no sync-token: %s", r.body)
	}
	for _, bad := range []string{"http://mailyard.org/ns/sync/999999", "urn:other", syncTokenPrefix + "x"} {
		r := e.do("REPORT", cal, sync(bad, "")).expect(t, http.StatusForbidden)
		if r.tree(t).child(nsDAV, "valid-sync-token") == nil {
			t.Errorf("%s: %s", bad, r.body)
		}
	}
	r = e.do("REPORT", cal, sync("", `<D:limit><D:nresults>2</D:nresults></D:limit>`)).expect(t, http.StatusInsufficientStorage)
	if r.tree(t).child(nsDAV, "number-of-matches-within-limits") == nil {
		t.Fatalf("limit: %s", r.body)
	}
	e.do("REPORT", cal, strings.Replace(sync("", ""), "<D:sync-level>1", "<D:sync-level>infinite", 1)).expect(t, http.StatusForbidden)
	e.do("REPORT", "/dav/calendars/"+e.aliceID+"/", sync("", "")).expect(t, http.StatusForbidden)
}

func TestAddressbookQuery(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.do("PUT", e.cardPath("a.vcf"), vcardText("a", "Ann Arbor", "ann@example.org")).expect(t, http.StatusCreated)
	e.do("PUT", e.cardPath("b.vcf"), vcardText("b", "Ben Bay", "ben@example.org")).expect(t, http.StatusCreated)
	e.do("PUT", e.cardPath("c.vcf"), vcardText("c", "Cid Anders", "cid@example.net")).expect(t, http.StatusCreated)
	ac := e.cardClient(alice, alicePW)
	book := "/dav/addressbooks/" + e.aliceID + "/contacts/"
	objs, err := ac.QueryAddressBook(ctx, book, &carddav.AddressBookQuery{
		DataRequest: carddav.AddressDataRequest{Props: []string{"FN", "EMAIL"}},
		PropFilters: []carddav.PropFilter{{Name: "FN", TextMatches: []carddav.TextMatch{{Text: "an", MatchType: carddav.MatchStartsWith}}}},
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != 1 || objs[0].Path != e.cardPath("a.vcf") || objs[0].Card.PreferredValue("FN") != "Ann Arbor" || objs[0].Card.Value("UID") != "" {
		t.Fatalf("query: %+v", objs)
	}
	objs, err = ac.QueryAddressBook(ctx, book, &carddav.AddressBookQuery{
		DataRequest: carddav.AddressDataRequest{AllProp: true},
		PropFilters: []carddav.PropFilter{{Name: "EMAIL", TextMatches: []carddav.TextMatch{{Text: "example.org", MatchType: carddav.MatchEndsWith}}}},
	})
	if err != nil || len(objs) != 2 {
		t.Fatalf("email query: %d %v", len(objs), err)
	}
	mg, err := ac.MultiGetAddressBook(ctx, book, &carddav.AddressBookMultiGet{Paths: []string{e.cardPath("b.vcf")}, DataRequest: carddav.AddressDataRequest{AllProp: true}})
	if err != nil || len(mg) != 1 || mg[0].Card.Value("UID") != "b" {
		t.Fatalf("multiget: %+v %v", mg, err)
	}
	limited := `<CR:addressbook-query ` + reportNS + `><D:prop><D:getetag/></D:prop><CR:filter/><CR:limit><CR:nresults>2</CR:nresults></CR:limit></CR:addressbook-query>`
	ms := e.do("REPORT", book, limited, "Depth", "1").multistatus(t)
	if len(ms) != 3 || ms[book].status != http.StatusInsufficientStorage || ms[book].err.child(nsDAV, "number-of-matches-within-limits") == nil {
		t.Fatalf("limit: %+v", ms)
	}
}

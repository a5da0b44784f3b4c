package dav

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/emersion/go-webdav/carddav"

	"github.com/mailyard/mailyard/store/sqlite"
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

// syncBody is a sync-collection REPORT body asking for getetag.
func syncBody(token, extra string) string {
	return `<D:sync-collection ` + reportNS + `><D:sync-token>` + token + `</D:sync-token><D:sync-level>1</D:sync-level>` + extra + `<D:prop><D:getetag/></D:prop></D:sync-collection>`
}

// syncPage is one sync-collection answer: members with their ETag (""
// for a 404), whether it was truncated, and its token.
type syncPage struct {
	members   map[string]string
	truncated bool
	token     string
}

func (e *env) syncPage(t *testing.T, coll, token, extra string) syncPage {
	t.Helper()
	r := e.do("REPORT", coll, syncBody(token, extra))
	p := syncPage{members: map[string]string{}}
	for href, m := range r.multistatus(t) {
		switch {
		case href == coll:
			if m.status != http.StatusInsufficientStorage || m.err.child(nsDAV, "number-of-matches-within-limits") == nil {
				t.Fatalf("response for the collection: %+v", m)
			}
			p.truncated = true
		case m.status == http.StatusNotFound:
			p.members[href] = ""
		default:
			p.members[href] = m.prop(t, nsDAV, "getetag").Text
		}
	}
	p.token = r.tree(t).child(nsDAV, "sync-token").Text
	return p
}

// syncClient follows a sync from token through every truncated answer,
// applying each to model (href to ETag) as a client would. It fails if
// an answer holds more than limit members or if a member comes twice
// while nothing changes (changed false). It returns the last token and
// the number of answers.
func (e *env) syncClient(t *testing.T, coll, token, extra string, limit int, model map[string]string, between func(page int)) (string, int) {
	t.Helper()
	seen := map[string]bool{}
	for page := 1; ; page++ {
		p := e.syncPage(t, coll, token, extra)
		if len(p.members) > limit {
			t.Fatalf("answer %d holds %d members, limit %d", page, len(p.members), limit)
		}
		for href, etag := range p.members {
			if seen[href] && between == nil {
				t.Fatalf("%s sent twice", href)
			}
			seen[href] = true
			if etag == "" {
				delete(model, href)
			} else {
				model[href] = etag
			}
		}
		token = p.token
		if !p.truncated {
			return token, page
		}
		if p.token == "" || len(p.members) == 0 {
			t.Fatalf("truncated answer %d without progress: %+v", page, p)
		}
		if between != nil {
			between(page)
		}
	}
}

// serverState is what PROPFIND says the collection holds: href to ETag.
func (e *env) serverState(t *testing.T, coll string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for href, m := range e.do("PROPFIND", coll, propfindBody("D:getetag"), "Depth", "1").multistatus(t) {
		if href != coll {
			out[href] = m.prop(t, nsDAV, "getetag").Text
		}
	}
	return out
}

// TestSyncCollectionTruncated: a change set larger than
// Limits.MaxSyncChanges (or the client's DAV:limit) is sent in answers
// of at most that many members, each truncated one ending with a 507
// for the collection and a continuation token (RFC 6578 §3.6);
// following the tokens yields every member exactly once, and, with
// changes made between the answers, a client ends with exactly the
// server's state.
func TestSyncCollectionTruncated(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxSyncChanges = 10 })
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	for i := range 25 {
		e.do("PUT", e.calPath(fmt.Sprintf("e%02d.ics", i)), event(fmt.Sprintf("e%02d", i), "20270110T100000Z")).expect(t, http.StatusCreated)
	}
	model := map[string]string{}
	token, pages := e.syncClient(t, cal, "", "", 10, model, nil)
	if pages != 3 || !maps.Equal(model, e.serverState(t, cal)) {
		t.Fatalf("initial sync: %d answers, %d members; want 3 answers, the 25 members", pages, len(model))
	}
	if p := e.syncPage(t, cal, token, ""); len(p.members) != 0 || p.truncated || p.token != token {
		t.Fatalf("sync from the final token: %+v", p)
	}

	// 22 changes since token, in answers of 2 by the client's limit.
	for i := range 12 {
		e.do("PUT", e.calPath(fmt.Sprintf("e%02d.ics", i)), event(fmt.Sprintf("e%02d", i), "20270111T100000Z")).expect(t, http.StatusNoContent)
	}
	for i := 12; i < 22; i++ {
		e.do("DELETE", e.calPath(fmt.Sprintf("e%02d.ics", i)), "").expect(t, http.StatusNoContent)
	}
	_, pages = e.syncClient(t, cal, token, `<D:limit><D:nresults>2</D:nresults></D:limit>`, 2, model, nil)
	if pages != 11 || !maps.Equal(model, e.serverState(t, cal)) {
		t.Fatalf("incremental sync: %d answers; model %v", pages, model)
	}

	// Changes between the answers of one sync: members already sent
	// change again, members not yet sent are deleted, new ones come
	// before and after the cursor.
	model = map[string]string{}
	_, _ = e.syncClient(t, cal, "", "", 10, model, func(page int) {
		e.do("PUT", e.calPath("e00.ics"), event("e00", "2027011"+strconv.Itoa(page)+"T100000Z")).expect(t, http.StatusNoContent)
		e.do("PUT", e.calPath(fmt.Sprintf("a%d.ics", page)), event(fmt.Sprintf("a%d", page), "20270110T100000Z")).expect(t, http.StatusCreated)
		e.do("PUT", e.calPath(fmt.Sprintf("z%d.ics", page)), event(fmt.Sprintf("z%d", page), "20270110T100000Z")).expect(t, http.StatusCreated)
		if r := e.do("DELETE", e.calPath("e24.ics"), ""); r.StatusCode != http.StatusNoContent && r.StatusCode != http.StatusNotFound {
			t.Fatalf("DELETE e24: %d", r.StatusCode)
		}
	})
	if want := e.serverState(t, cal); !maps.Equal(model, want) {
		t.Fatalf("sync with changes between answers: client has %v, server %v", model, want)
	}
}

// TestSyncCollectionExpiredToken: a token older than the store's change
// log gets 403 with DAV:valid-sync-token (RFC 6578 §3.2), and so does a
// continuation token whose base has left the log; the client's fresh
// sync then succeeds.
func TestSyncCollectionExpiredToken(t *testing.T) {
	e := newEnvStore(t, sqlite.Options{ChangeLogLimit: 5}, func(o *Options) { o.Limits.MaxSyncChanges = 2 })
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	for i := range 3 {
		e.do("PUT", e.calPath(fmt.Sprintf("e%d.ics", i)), event(fmt.Sprintf("e%d", i), "20270110T100000Z")).expect(t, http.StatusCreated)
	}
	first := e.syncPage(t, cal, "", "")
	if !first.truncated {
		t.Fatalf("3 members with MaxSyncChanges 2 not truncated: %+v", first)
	}
	full, _ := e.syncClient(t, cal, "", "", 2, map[string]string{}, nil)
	e.do("PUT", e.calPath("e0.ics"), event("e0", "20270111T100000Z")).expect(t, http.StatusNoContent)
	e.do("PUT", e.calPath("e1.ics"), event("e1", "20270111T100000Z")).expect(t, http.StatusNoContent)
	e.do("PUT", e.calPath("e2.ics"), event("e2", "20270111T100000Z")).expect(t, http.StatusNoContent)
	mid := e.syncPage(t, cal, full, "")
	if !mid.truncated {
		t.Fatalf("3 changes with MaxSyncChanges 2 not truncated: %+v", mid)
	}
	for i := range 6 { // more changes than the log keeps
		e.do("PUT", e.calPath(fmt.Sprintf("n%d.ics", i)), event(fmt.Sprintf("n%d", i), "20270110T100000Z")).expect(t, http.StatusCreated)
	}
	for _, tok := range []string{full, mid.token} {
		r := e.do("REPORT", cal, syncBody(tok, "")).expect(t, http.StatusForbidden)
		if r.tree(t).child(nsDAV, "valid-sync-token") == nil {
			t.Fatalf("expired token %s: %s", tok, r.body)
		}
	}
	model := map[string]string{}
	e.syncClient(t, cal, "", "", 2, model, nil)
	if !maps.Equal(model, e.serverState(t, cal)) || len(model) != 9 {
		t.Fatalf("fresh sync after the expired token: %v", model)
	}
}

package dav

import (
	"context"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// allRecords is every record of a namespace, by key.
func allRecords(t *testing.T, recs store.Records, ns string) map[string]store.Record {
	t.Helper()
	out := map[string]store.Record{}
	after := ""
	for {
		rs, err := recs.ListRecords(context.Background(), ns, after, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			out[r.Key] = r
		}
		if len(rs) < 100 {
			return out
		}
		after = rs[len(rs)-1].Key
	}
}

// TestDeleteAccountRecords: after DeleteAccountRecords of alice, no grant
// of hers (to a user or a group, of a collection or, as calendar proxy,
// of her home), no grant to her and no property of her collections is
// left, while bob's grants to dave and bob's properties stay; a second
// run changes nothing.
func TestDeleteAccountRecords(t *testing.T) {
	e := newShareEnv(t)
	ctx := context.Background()
	for _, g := range []struct {
		owner, coll, grantee string
		kind                 store.CollectionKind
	}{
		{alice, "work", bob, store.KindCalendar},
		{alice, "work", team, store.KindCalendar},
		{alice, "contacts", dave, store.KindAddressBook},
		{bob, "calendar", alice, store.KindCalendar},
		{bob, "calendar", dave, store.KindCalendar},
	} {
		if _, err := e.h.Share(ctx, g.owner, g.kind, g.coll, g.grantee, AccessRead); err != nil {
			t.Fatalf("share %s's %s with %s: %v", g.owner, g.coll, g.grantee, err)
		}
	}
	// Calendar-proxy grants of whole homes (delegate.go): alice's to bob,
	// bob's to alice, and bob's to dave, which stays.
	for _, g := range [][2]string{{e.aliceID, e.bobID}, {e.bobID, e.aliceID}, {e.bobID, e.daveID}} {
		owner, err := e.dir.User(ctx, g[0])
		if err != nil {
			t.Fatal(err)
		}
		proxy, err := e.dir.User(ctx, g[1])
		if err != nil {
			t.Fatal(err)
		}
		if err := putHomeGrant(ctx, e.st, owner, proxy, AccessReadWrite); err != nil {
			t.Fatal(err)
		}
	}
	dead := `<D:propertyupdate xmlns:D="DAV:" xmlns:X="urn:example:x"><D:set><D:prop><X:order>3</X:order></D:prop></D:set></D:propertyupdate>`
	e.do("PROPPATCH", "/dav/calendars/"+e.aliceID+"/work/", dead).expect(t, http.StatusMultiStatus)
	e.do("PROPPATCH", "/dav/calendars/"+e.bobID+"/calendar/", dead, "Auth", bob+":"+bobPW).expect(t, http.StatusMultiStatus)
	if n := len(allRecords(t, e.st, NamespaceShares)); n != 16 {
		t.Fatalf("%d share records before, want 16 (two per grant)", n)
	}
	if _, ok := allRecords(t, e.st, NamespaceProps)[e.aliceID+"/calendar/work"]; !ok {
		t.Fatal("alice's dead property was not stored: the test proves nothing")
	}

	for run := range 2 {
		if err := DeleteAccountRecords(ctx, e.st, e.aliceID); err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		shares := allRecords(t, e.st, NamespaceShares)
		for k, r := range shares {
			var s Share
			if err := store.DecodeJSON(r, &s); err != nil {
				t.Fatal(err)
			}
			if s.Owner == e.aliceID || s.Grantee == e.aliceID {
				t.Errorf("run %d: grant record %s of or to alice left: %+v", run, k, s)
			}
		}
		if len(shares) != 4 {
			t.Errorf("run %d: %d share records left, want bob's grants to dave (4): %v", run, len(shares), slices.Collect(maps.Keys(shares)))
		}
		props := allRecords(t, e.st, NamespaceProps)
		for k := range props {
			if strings.HasPrefix(k, e.aliceID+"/") {
				t.Errorf("run %d: alice's property record %s left", run, k)
			}
		}
		if _, ok := props[e.bobID+"/calendar/calendar"]; !ok {
			t.Errorf("run %d: bob's property record is gone", run)
		}
	}
	if shares, err := e.h.Shares(ctx, bob); err != nil || len(shares) != 2 || shares[0].Grantee != e.daveID || shares[1].Grantee != e.daveID {
		t.Errorf("bob's grants afterwards: %+v %v, want the two to dave", shares, err)
	}
	if err := DeleteAccountRecords(ctx, e.st, "a/b"); err == nil {
		t.Error("an account ID with a slash was accepted")
	}
}

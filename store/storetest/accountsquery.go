package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// testAccountsQuery checks store.AccountsQuerier, where the backend has
// it, against ListCollections and QueryObjects of each account: the same
// objects with their data and collections, whatever the range and
// component, other kinds and unknown accounts left out, an account named
// twice visited once; an error from fn ends the walk and comes back as
// it is; a bad kind or range is ErrInvalid.
func testAccountsQuery(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	aq, is := s.(store.AccountsQuerier)
	if !is {
		t.Skipf("%T does not implement store.AccountsQuerier (optional)", s)
	}
	for _, a := range []string{"u1", "u2", "u3"} {
		newAccount(t, s, a, store.Quota{})
	}
	c1 := mustCollection(t, s, "u1", store.KindCalendar, "calendar")
	work, err := s.CreateCollection(ctx, store.Collection{Account: "u1", Kind: store.KindCalendar, Name: "work", Components: []string{"VEVENT"}})
	ok(t, err, "create work calendar")
	c2 := mustCollection(t, s, "u2", store.KindCalendar, "calendar")
	book := mustCollection(t, s, "u1", store.KindAddressBook, "contacts")
	putIndexed(t, s, c1.ID, "a", "VEVENT", at(0), at(hour))
	putIndexed(t, s, c1.ID, "b", "VTODO", time.Time{}, time.Time{})
	putIndexed(t, s, work.ID, "c", "VEVENT", at(-day), time.Time{})
	putIndexed(t, s, work.ID, "d", "VEVENT", at(2*day), at(3*day))
	putIndexed(t, s, c2.ID, "e", "VEVENT", at(hour), at(2*hour))
	putIndexed(t, s, c2.ID, "f", "VEVENT", time.Time{}, at(0))
	putIndexed(t, s, book.ID, "g", "VCARD", time.Time{}, time.Time{})
	// u3 keeps its default calendar, empty.

	accounts := []string{"u1", "u2", "u3", "nobody", "u1"}
	for _, q := range []store.ObjectQuery{
		{},
		{From: at(0), To: at(hour)},
		{From: at(hour), To: at(day)},
		{Component: "VEVENT"},
		{Component: "vtodo", From: at(10 * day)},
		{To: at(0)},
		{From: at(2 * day), To: at(2*day + time.Second), Limit: 1, After: "zzz"},
	} {
		got := map[string]bool{}
		err := aq.QueryAccounts(ctx, accounts, store.KindCalendar, q, func(c *store.Collection, o *store.Object) error {
			key := fmt.Sprintf("%s/%d/%s/%s", c.Account, c.ID, c.Name, o.Name)
			if got[key] {
				t.Errorf("QueryAccounts(%+v) visited %s twice", q, key)
			}
			got[key] = true
			eq(t, string(o.Data), "data of "+o.Name, "data of %s from QueryAccounts", o.Name)
			eq(t, o.UID, "uid-"+o.Name, "UID of %s from QueryAccounts", o.Name)
			eq(t, c.Kind, store.KindCalendar, "kind of %s's collection", o.Name)
			if c.ID == work.ID && !slices.Equal(c.Components, []string{"VEVENT"}) {
				t.Errorf("work calendar's components from QueryAccounts = %v", c.Components)
			}
			return nil
		})
		ok(t, err, "QueryAccounts(%+v)", q)
		want := map[string]bool{}
		for _, a := range []string{"u1", "u2", "u3"} {
			colls, err := s.ListCollections(ctx, a, store.KindCalendar)
			ok(t, err, "ListCollections(%s)", a)
			for _, c := range colls {
				pq := q
				pq.After, pq.Limit = "", 0
				for _, n := range queryNames(t, s, c.ID, pq) {
					want[fmt.Sprintf("%s/%d/%s/%s", a, c.ID, c.Name, n)] = true
				}
			}
		}
		if len(want) == 0 && q.Component == "" && q.From.IsZero() {
			t.Fatalf("query %+v selects nothing: the test proves nothing", q)
		}
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("QueryAccounts(%+v) = %v, want (ListCollections + QueryObjects) %v", q, got, want)
		}
	}

	stop := errors.New("stop here")
	n := 0
	err = aq.QueryAccounts(ctx, []string{"u1", "u2"}, store.KindCalendar, store.ObjectQuery{}, func(*store.Collection, *store.Object) error {
		n++
		return stop
	})
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("QueryAccounts with fn failing: err %v after %d calls, want %v after 1", err, n, stop)
	}
	err = aq.QueryAccounts(ctx, []string{"u1"}, store.KindAddressBook, store.ObjectQuery{}, func(c *store.Collection, o *store.Object) error {
		if c.ID != book.ID || o.Name != "g" {
			t.Errorf("address-book query visited %s/%s", c.Name, o.Name)
		}
		n++
		return nil
	})
	ok(t, err, "QueryAccounts of address books")
	eq(t, n, 2, "objects visited (1 before, then the one vCard)")
	for _, bad := range []struct {
		kind store.CollectionKind
		q    store.ObjectQuery
	}{
		{"diary", store.ObjectQuery{}},
		{store.KindCalendar, store.ObjectQuery{From: at(day), To: at(0)}},
		{store.KindCalendar, store.ObjectQuery{Component: "V EVENT"}},
	} {
		err := aq.QueryAccounts(ctx, []string{"u1"}, bad.kind, bad.q, func(*store.Collection, *store.Object) error {
			t.Errorf("fn called for bad query %v %+v", bad.kind, bad.q)
			return nil
		})
		if !errors.Is(err, store.ErrInvalid) {
			t.Errorf("QueryAccounts(%v, %+v) = %v, want ErrInvalid", bad.kind, bad.q, err)
		}
	}
}

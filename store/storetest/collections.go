package storetest

import (
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/mailyard/mailyard/store"
)

func testCollections(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	c, err := s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindCalendar, Name: "work",
		DisplayName: "Work", Description: "office", Color: "#3a87adff", Components: []string{"VEVENT", "VTODO"}})
	ok(t, err, "CreateCollection")
	if c.ID == 0 {
		t.Fatal("collection ID is 0")
	}
	got, err := s.Collection(ctx, "u", store.KindCalendar, "work")
	ok(t, err, "Collection")
	eq(t, got.ID, c.ID, "ID")
	eq(t, got.DisplayName, "Work", "display name")
	eq(t, got.Description, "office", "description")
	eq(t, got.Color, "#3a87adff", "color")
	eqSlice(t, got.Components, []string{"VEVENT", "VTODO"}, "components")
	_, err = s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindCalendar, Name: "work"})
	isErr(t, err, store.ErrExists, "duplicate collection")
	// Same name, other kind: allowed (unique per account and kind).
	_, err = s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindAddressBook, Name: "work"})
	ok(t, err, "address book named like a calendar")
	_, err = s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindCalendar, Name: "a/b"})
	isErr(t, err, store.ErrInvalid, "collection name with /")
	_, err = s.CreateCollection(ctx, store.Collection{Account: "u", Kind: "nonsense", Name: "x"})
	isErr(t, err, store.ErrInvalid, "unknown kind")
	_, err = s.CreateCollection(ctx, store.Collection{Account: "ghost", Kind: store.KindCalendar, Name: "x"})
	isErr(t, err, store.ErrNotFound, "collection for unknown account")

	cals, err := s.ListCollections(ctx, "u", store.KindCalendar)
	ok(t, err, "ListCollections")
	var names []string
	for _, c := range cals {
		eq(t, c.Kind, store.KindCalendar, "kind of listed")
		names = append(names, c.Name)
	}
	eqSlice(t, sorted(names), []string{"calendar", "work"}, "calendars")

	o, err := s.PutObject(ctx, c.ID, store.Object{Name: "e.ics", UID: "e1", Data: []byte("BEGIN:VCALENDAR")}, store.PutOptions{})
	ok(t, err, "PutObject")
	tok := mustCollection(t, s, "u", store.KindCalendar, "work").SyncToken
	got.DisplayName, got.Color, got.Components = "Work 2", "", nil
	ok(t, s.UpdateCollection(ctx, got), "UpdateCollection")
	after := mustCollection(t, s, "u", store.KindCalendar, "work")
	eq(t, after.DisplayName, "Work 2", "updated display name")
	eq(t, after.Color, "", "updated color")
	eq(t, len(after.Components), 0, "updated components")
	eq(t, after.SyncToken, tok, "UpdateCollection keeps the sync token")
	isErr(t, s.UpdateCollection(ctx, store.Collection{ID: 999999, Account: "u", Kind: store.KindCalendar, Name: "gone"}), store.ErrNotFound, "update missing")

	ok(t, s.DeleteCollection(ctx, "u", store.KindCalendar, "work"), "DeleteCollection")
	_, err = s.Collection(ctx, "u", store.KindCalendar, "work")
	isErr(t, err, store.ErrNotFound, "deleted collection")
	_, err = s.GetObject(ctx, c.ID, o.Name)
	isErr(t, err, store.ErrNotFound, "object of deleted collection")
	isErr(t, s.DeleteCollection(ctx, "u", store.KindCalendar, "work"), store.ErrNotFound, "delete twice")
}

func mustCollection(t *testing.T, s store.Store, acct string, kind store.CollectionKind, name string) store.Collection {
	t.Helper()
	c, err := s.Collection(ctxT(t), acct, kind, name)
	ok(t, err, "Collection(%s)", name)
	return c
}

func testObjects(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	ab := mustCollection(t, s, "u", store.KindAddressBook, "contacts")
	card := []byte("BEGIN:VCARD\r\nUID:c1\r\nEND:VCARD\r\n")
	o, err := s.PutObject(ctx, ab.ID, store.Object{Name: "c1.vcf", UID: "c1", ContentType: "text/vcard", Data: card}, store.PutOptions{IfNoneMatch: true})
	ok(t, err, "PutObject create")
	if o.ETag == "" {
		t.Fatal("empty ETag")
	}
	eq(t, o.Size, int64(len(card)), "size")
	got, err := s.GetObject(ctx, ab.ID, "c1.vcf")
	ok(t, err, "GetObject")
	eq(t, string(got.Data), string(card), "data")
	eq(t, got.ETag, o.ETag, "ETag read back")
	eq(t, got.UID, "c1", "UID")
	eq(t, got.ContentType, "text/vcard", "content type")
	byUID, err := s.ObjectByUID(ctx, ab.ID, "c1")
	ok(t, err, "ObjectByUID")
	eq(t, byUID.Name, "c1.vcf", "ObjectByUID name")
	eq(t, string(byUID.Data), string(card), "ObjectByUID data")
	_, err = s.ObjectByUID(ctx, ab.ID, "nope")
	isErr(t, err, store.ErrNotFound, "ObjectByUID missing")

	// RFC 7232 preconditions.
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "c1.vcf", UID: "c1", Data: []byte("v2")}, store.PutOptions{IfNoneMatch: true})
	isErr(t, err, store.ErrPreconditionFailed, "If-None-Match: * on existing")
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "c1.vcf", UID: "c1", Data: []byte("v2")}, store.PutOptions{IfMatch: "wrong"})
	isErr(t, err, store.ErrPreconditionFailed, "If-Match with stale ETag")
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "new.vcf", UID: "n", Data: []byte("v")}, store.PutOptions{IfMatch: o.ETag})
	isErr(t, err, store.ErrPreconditionFailed, "If-Match on missing object")
	g, err := s.GetObject(ctx, ab.ID, "c1.vcf")
	ok(t, err, "GetObject")
	eq(t, string(g.Data), string(card), "failed preconditions changed nothing")
	o2, err := s.PutObject(ctx, ab.ID, store.Object{Name: "c1.vcf", UID: "c1", Data: []byte("v2")}, store.PutOptions{IfMatch: o.ETag})
	ok(t, err, "If-Match with current ETag")
	if o2.ETag == o.ETag {
		t.Fatal("ETag did not change with the data")
	}
	// Same data, same strong ETag.
	o3, err := s.PutObject(ctx, ab.ID, store.Object{Name: "c1.vcf", UID: "c1", Data: []byte("v2")}, store.PutOptions{})
	ok(t, err, "PutObject same data")
	eq(t, o3.ETag, o2.ETag, "ETag of identical data")
	// UID unique per collection (RFC 4791 §5.3.2.1 no-uid-conflict).
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "other.vcf", UID: "c1", Data: []byte("x")}, store.PutOptions{})
	isErr(t, err, store.ErrExists, "second object with the same UID")
	// The same UID in another collection is fine.
	other, err := s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindAddressBook, Name: "other"})
	ok(t, err, "create")
	_, err = s.PutObject(ctx, other.ID, store.Object{Name: "c1.vcf", UID: "c1", Data: []byte("x")}, store.PutOptions{})
	ok(t, err, "same UID in another collection")
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "b.vcf", UID: "b", Data: []byte("b")}, store.PutOptions{})
	ok(t, err, "put b")
	list, err := s.ListObjects(ctx, ab.ID)
	ok(t, err, "ListObjects")
	var names []string
	for _, o := range list {
		names = append(names, o.Name)
		if o.Data != nil {
			t.Fatalf("ListObjects returned data for %s", o.Name)
		}
	}
	eqSlice(t, sorted(names), []string{"b.vcf", "c1.vcf"}, "ListObjects")

	isErr(t, s.DeleteObject(ctx, ab.ID, "c1.vcf", o.ETag), store.ErrPreconditionFailed, "DeleteObject with stale ETag")
	ok(t, s.DeleteObject(ctx, ab.ID, "c1.vcf", o3.ETag), "DeleteObject with current ETag")
	_, err = s.GetObject(ctx, ab.ID, "c1.vcf")
	isErr(t, err, store.ErrNotFound, "deleted object")
	isErr(t, s.DeleteObject(ctx, ab.ID, "c1.vcf", ""), store.ErrNotFound, "delete missing")
	ok(t, s.DeleteObject(ctx, ab.ID, "b.vcf", ""), "unconditional delete")
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "c1.vcf", UID: "c1", Data: []byte("again")}, store.PutOptions{IfNoneMatch: true})
	ok(t, err, "UID free again after delete")
	_, err = s.PutObject(ctx, 987654, store.Object{Name: "x", UID: "x", Data: []byte("x")}, store.PutOptions{})
	isErr(t, err, store.ErrNotFound, "PutObject into missing collection")
	_, err = s.PutObject(ctx, ab.ID, store.Object{Name: "", UID: "x", Data: []byte("x")}, store.PutOptions{})
	isErr(t, err, store.ErrInvalid, "PutObject without name")
}

func testSyncTokens(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	cal := mustCollection(t, s, "u", store.KindCalendar, "calendar")
	put := func(name string) {
		_, err := s.PutObject(ctx, cal.ID, store.Object{Name: name, UID: name, Data: []byte(name)}, store.PutOptions{})
		ok(t, err, "put %s", name)
	}
	changes := func(tok uint64) ([]string, uint64) {
		t.Helper()
		ch, cur, err := s.ChangesSince(ctx, cal.ID, tok)
		ok(t, err, "ChangesSince(%d)", tok)
		out := []string{}
		for _, c := range ch {
			out = append(out, fmt.Sprintf("%s:%v", c.Name, c.Deleted))
		}
		return out, cur
	}
	put("a")
	put("b")
	all, t1 := changes(0)
	eqSlice(t, sorted(all), []string{"a:false", "b:false"}, "initial sync")
	eq(t, t1, mustCollection(t, s, "u", store.KindCalendar, "calendar").SyncToken, "token is the collection's sync token (CTag)")
	none, t1b := changes(t1)
	eq(t, len(none), 0, "no changes at the current token")
	eq(t, t1b, t1, "token unchanged without changes")
	put("c")
	put("a")
	ok(t, s.DeleteObject(ctx, cal.ID, "b", ""), "delete b")
	got, t2 := changes(t1)
	if t2 <= t1 {
		t.Fatalf("token %d did not grow from %d", t2, t1)
	}
	slices.Sort(got)
	eqSlice(t, got, []string{"a:false", "b:true", "c:false"}, "changes since t1 (each name once)")
	got, _ = changes(t2)
	eq(t, len(got), 0, "nothing after t2")
	_, _, err := s.ChangesSince(ctx, cal.ID, t2+1000)
	isErr(t, err, store.ErrSyncTokenInvalid, "token from the future (RFC 6578 §3.2)")
	_, _, err = s.ChangesSince(ctx, 424242, 0)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("ChangesSince on missing collection: %v, want ErrNotFound", err)
	}
}

func testRecords(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	_, err := s.GetRecord(ctx, "users", "alice")
	isErr(t, err, store.ErrNotFound, "GetRecord missing")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error {
		if err := tx.Put("users", "alice", []byte("v1"), 0); err != nil {
			return err
		}
		r, err := tx.Get("users", "alice")
		if err != nil {
			return err
		}
		if string(r.Value) != "v1" || r.Version != 1 {
			return fmt.Errorf("read own write: %+v", r)
		}
		for _, k := range []string{"bob", "carol", "dave"} {
			if err := tx.Put("users", k, []byte(k), -1); err != nil {
				return err
			}
		}
		return tx.Put("groups", "staff", []byte("g"), 0)
	})
	ok(t, err, "UpdateRecords")
	r, err := s.GetRecord(ctx, "users", "alice")
	ok(t, err, "GetRecord")
	eq(t, string(r.Value), "v1", "value")
	eq(t, r.Version, int64(1), "version of new record")
	eq(t, r.Namespace+"/"+r.Key, "users/alice", "namespace/key")
	// Optimistic locking.
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("users", "alice", []byte("v2"), 1) })
	ok(t, err, "Put with current version")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("users", "alice", []byte("v3"), 1) })
	isErr(t, err, store.ErrPreconditionFailed, "Put with stale version")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("users", "alice", []byte("v3"), 0) })
	isErr(t, err, store.ErrPreconditionFailed, "Put expecting absence")
	r, _ = s.GetRecord(ctx, "users", "alice")
	eq(t, string(r.Value), "v2", "value after failed puts")
	eq(t, r.Version, int64(2), "version after one more write")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("users", "alice", []byte("v3"), -1) })
	ok(t, err, "unconditional Put")
	r, _ = s.GetRecord(ctx, "users", "alice")
	eq(t, r.Version, int64(3), "version increases with every write")

	list, err := s.ListRecords(ctx, "users", "", 2)
	ok(t, err, "ListRecords")
	eq(t, len(list), 2, "limit")
	eq(t, list[0].Key+","+list[1].Key, "alice,bob", "first page")
	list, err = s.ListRecords(ctx, "users", "bob", 10)
	ok(t, err, "ListRecords after bob")
	eq(t, len(list), 2, "second page")
	eq(t, list[0].Key+","+list[1].Key, "carol,dave", "second page keys")
	eq(t, string(list[0].Value), "carol", "listed value")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error {
		l, err := tx.List("users", "carol", 0)
		if err != nil {
			return err
		}
		if len(l) != 1 || l[0].Key != "dave" {
			return fmt.Errorf("tx.List after carol = %+v", l)
		}
		if err := tx.Delete("users", "dave"); err != nil {
			return err
		}
		if _, err := tx.Get("users", "dave"); !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("get after delete in tx: %v", err)
		}
		return nil
	})
	ok(t, err, "delete in tx")
	_, err = s.GetRecord(ctx, "users", "dave")
	isErr(t, err, store.ErrNotFound, "deleted record")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Delete("users", "dave") })
	isErr(t, err, store.ErrNotFound, "delete missing record")
	g, err := s.ListRecords(ctx, "groups", "", 0)
	ok(t, err, "ListRecords groups")
	eq(t, len(g), 1, "namespaces are separate")
}

func testRecordTransactions(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	err := s.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("ns", "k", []byte("keep"), 0) })
	ok(t, err, "seed")
	boom := errors.New("validation failed")
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error {
		if err := tx.Put("ns", "k", []byte("lost"), 1); err != nil {
			return err
		}
		if err := tx.Put("ns", "new", []byte("lost"), 0); err != nil {
			return err
		}
		return boom
	})
	isErr(t, err, boom, "UpdateRecords returns fn's error")
	r, err := s.GetRecord(ctx, "ns", "k")
	ok(t, err, "get")
	eq(t, string(r.Value), "keep", "rolled-back write")
	eq(t, r.Version, int64(1), "rolled-back version")
	_, err = s.GetRecord(ctx, "ns", "new")
	isErr(t, err, store.ErrNotFound, "rolled-back insert")
	// A failed precondition inside a transaction rolls back earlier puts.
	err = s.UpdateRecords(ctx, func(tx store.RecordTx) error {
		if err := tx.Put("ns", "a", []byte("x"), 0); err != nil {
			return err
		}
		return tx.Put("ns", "k", []byte("x"), 0)
	})
	isErr(t, err, store.ErrPreconditionFailed, "conflict")
	_, err = s.GetRecord(ctx, "ns", "a")
	isErr(t, err, store.ErrNotFound, "put before a conflict is rolled back")
	// Many concurrent increments with optimistic locking lose nothing.
	const n = 20
	errs := make(chan error, n)
	for range n {
		go func() {
			errs <- s.UpdateRecords(ctx, func(tx store.RecordTx) error {
				r, err := tx.Get("ns", "counter")
				v := 0
				if err == nil {
					fmt.Sscan(string(r.Value), &v)
				} else if !errors.Is(err, store.ErrNotFound) {
					return err
				}
				return tx.Put("ns", "counter", []byte(fmt.Sprint(v+1)), r.Version)
			})
		}()
	}
	for range n {
		ok(t, <-errs, "concurrent increment")
	}
	r, err = s.GetRecord(ctx, "ns", "counter")
	ok(t, err, "counter")
	eq(t, string(r.Value), fmt.Sprint(n), "counter after concurrent increments")
	eq(t, r.Version, int64(n), "counter version")
}

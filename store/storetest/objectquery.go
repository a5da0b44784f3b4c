package storetest

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// qbase is the reference instant of the object-query tests.
var qbase = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)

// at is qbase plus d.
func at(d time.Duration) time.Time { return qbase.Add(d) }

const (
	hour = time.Hour
	day  = 24 * time.Hour
)

// putIndexed stores an object with its component and bounds and returns
// it as stored.
func putIndexed(t *testing.T, s store.Store, coll int64, name, comp string, start, end time.Time) store.Object {
	t.Helper()
	o, err := s.PutObject(ctxT(t), coll, store.Object{Name: name, UID: "uid-" + name, Component: comp,
		Start: start, End: end, Data: []byte("data of " + name)}, store.PutOptions{})
	ok(t, err, "PutObject(%s)", name)
	return o
}

// queryNames runs QueryObjects and returns the names it returned, after
// checking that each came with its data, in name order.
func queryNames(t *testing.T, s store.Store, coll int64, q store.ObjectQuery) []string {
	t.Helper()
	objs, err := s.QueryObjects(ctxT(t), coll, q)
	ok(t, err, "QueryObjects(%+v)", q)
	names := []string{}
	for _, o := range objs {
		names = append(names, o.Name)
		eq(t, string(o.Data), "data of "+o.Name, "data of %s returned by QueryObjects", o.Name)
		eq(t, o.UID, "uid-"+o.Name, "UID of %s returned by QueryObjects", o.Name)
	}
	if !slices.IsSorted(names) {
		t.Fatalf("QueryObjects(%+v) not in name order: %v", q, names)
	}
	return names
}

// testObjectQuery checks store.Collections.QueryObjects on a small
// calendar: the overlap rule at its edges (touching ranges do not
// overlap), unbounded bounds on either side of object and range, the
// component filter, whole-second rounding, and that bounds follow
// replacement and deletion.
func testObjectQuery(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	cal := mustCollection(t, s, "u", store.KindCalendar, "calendar")
	other, err := s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindCalendar, Name: "other"})
	ok(t, err, "create other calendar")
	putIndexed(t, s, other.ID, "zz-other.ics", "VEVENT", time.Time{}, time.Time{})

	putIndexed(t, s, cal.ID, "a", "VEVENT", at(0), at(hour))
	putIndexed(t, s, cal.ID, "b", "VEVENT", at(hour), at(2*hour))     // touches a
	putIndexed(t, s, cal.ID, "c", "VTODO", time.Time{}, time.Time{})  // no time at all
	putIndexed(t, s, cal.ID, "d", "VEVENT", at(-day), time.Time{})    // endless RRULE
	putIndexed(t, s, cal.ID, "e", "VEVENT", time.Time{}, at(0))       // unbounded past, ends at qbase
	putIndexed(t, s, cal.ID, "f", "VJOURNAL", at(10*day), at(10*day)) // zero length
	g := putIndexed(t, s, cal.ID, "g", "vevent", at(3*hour+500*time.Millisecond), at(4*hour+250*time.Millisecond))

	// Stored as the store keeps them: upper case, whole seconds, widened.
	eq(t, g.Component, "VEVENT", "component returned by PutObject")
	if !g.Start.Equal(at(3*hour)) || !g.End.Equal(at(4*hour+time.Second)) {
		t.Fatalf("PutObject returned bounds [%v, %v), want [%v, %v) (Start down, End up to whole seconds)", g.Start, g.End, at(3*hour), at(4*hour+time.Second))
	}
	checkIndexed(t, s, cal.ID, "g", "VEVENT", at(3*hour), at(4*hour+time.Second))
	checkIndexed(t, s, cal.ID, "c", "VTODO", time.Time{}, time.Time{})
	checkIndexed(t, s, cal.ID, "d", "VEVENT", at(-day), time.Time{})
	checkIndexed(t, s, cal.ID, "e", "VEVENT", time.Time{}, at(0))

	zero := time.Time{}
	for _, tc := range []struct {
		what     string
		from, to time.Time
		comp     string
		want     string
	}{
		{"range starting where a ends (End == From is no overlap)", at(hour), at(2 * hour), "", "b c d"},
		{"range ending where a starts (Start == To is no overlap)", at(-hour), at(0), "", "c d e"},
		{"unbounded past up to qbase", zero, at(0), "", "c d e"},
		{"unbounded future from a's end", at(hour), zero, "", "b c d f g"},
		{"everything", zero, zero, "", "a b c d e f g"},
		{"one second inside a", at(30 * time.Minute), at(30*time.Minute + time.Second), "", "a c d"},
		{"zero-length f at From is no overlap", at(10 * day), at(11 * day), "", "c d"},
		{"zero-length f inside the range", at(10*day - time.Second), at(10*day + time.Second), "", "c d f"},
		{"range before d and ending at e's end", at(-3 * day), at(-2 * day), "", "c e"},
		{"sub-second From before g's rounded-up End", at(4*hour + 500*time.Millisecond), at(5 * hour), "", "c d g"},
		{"From at g's rounded-up End", at(4*hour + time.Second), at(5 * hour), "", "c d"},
		{"To just after g's rounded-down Start", at(2 * hour), at(3*hour + time.Nanosecond), "", "c d g"},
		{"To at g's rounded-down Start", at(2 * hour), at(3 * hour), "", "c d"},
		{"component VTODO", zero, zero, "VTODO", "c"},
		{"component in lower case", zero, zero, "vevent", "a b d e g"},
		{"component and range", at(-hour), at(hour), "VEVENT", "a d e"},
		{"component nothing has", zero, zero, "VFREEBUSY", ""},
	} {
		got := queryNames(t, s, cal.ID, store.ObjectQuery{From: tc.from, To: tc.to, Component: tc.comp})
		eq(t, strings.Join(got, " "), tc.want, "%s", tc.what)
	}
	// An object of unknown component (as stored before the store kept
	// components) is in every component's results.
	putIndexed(t, s, cal.ID, "h", "", at(50*day), at(51*day))
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{From: at(50 * day), To: at(51 * day), Component: "VTODO"}), " "), "c h", "unknown component, VTODO query")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{From: at(50 * day), To: at(51 * day), Component: "VEVENT"}), " "), "d h", "unknown component, VEVENT query")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{From: at(60 * day), To: at(61 * day), Component: "VTODO"}), " "), "c", "VTODO query after h")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{After: "c"}), " "), "d e f g h", "After c")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{After: "b", Limit: 2}), " "), "c d", "After b, Limit 2")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{After: "h"}), " "), "", "After the last name")
	eq(t, strings.Join(queryNames(t, s, other.ID, store.ObjectQuery{}), " "), "zz-other.ics", "the other calendar")

	// Replacing an object moves its bounds; deleting it removes it.
	putIndexed(t, s, cal.ID, "a", "VTODO", at(20*day), at(21*day))
	checkIndexed(t, s, cal.ID, "a", "VTODO", at(20*day), at(21*day))
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{From: at(0), To: at(hour)}), " "), "c d", "old bounds of a replaced object")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{From: at(20 * day), To: at(20*day + hour), Component: "VTODO"}), " "), "a c", "new bounds and component of a replaced object")
	ok(t, s.DeleteObject(ctx, cal.ID, "b", ""), "delete b")
	eq(t, strings.Join(queryNames(t, s, cal.ID, store.ObjectQuery{From: at(hour), To: at(2 * hour)}), " "), "c d", "deleted object")

	testObjectQueryRejects(t, s, cal.ID)
}

// checkIndexed checks the component and bounds GetObject, ObjectByUID and
// ListObjects return for an object.
func checkIndexed(t *testing.T, s store.Store, coll int64, name, comp string, start, end time.Time) {
	t.Helper()
	ctx := ctxT(t)
	same := func(o store.Object, how string) {
		t.Helper()
		if o.Component != comp || !o.Start.Equal(start) || !o.End.Equal(end) || o.Start.IsZero() != start.IsZero() || o.End.IsZero() != end.IsZero() {
			t.Fatalf("%s(%s): component %q bounds [%v, %v), want %q [%v, %v)", how, name, o.Component, o.Start, o.End, comp, start, end)
		}
	}
	o, err := s.GetObject(ctx, coll, name)
	ok(t, err, "GetObject(%s)", name)
	same(o, "GetObject")
	o, err = s.ObjectByUID(ctx, coll, "uid-"+name)
	ok(t, err, "ObjectByUID(%s)", name)
	same(o, "ObjectByUID")
	list, err := s.ListObjects(ctx, coll)
	ok(t, err, "ListObjects")
	i := slices.IndexFunc(list, func(o store.Object) bool { return o.Name == name })
	if i < 0 {
		t.Fatalf("ListObjects lacks %s", name)
	}
	same(list[i], "ListObjects")
}

// testObjectQueryRejects checks the errors of QueryObjects and of
// PutObject with bad index fields: nothing is changed.
func testObjectQueryRejects(t *testing.T, s store.Store, coll int64) {
	ctx := ctxT(t)
	_, err := s.QueryObjects(ctx, 987654, store.ObjectQuery{})
	isErr(t, err, store.ErrNotFound, "QueryObjects on a missing collection")
	_, err = s.QueryObjects(ctx, coll, store.ObjectQuery{Component: "V EVENT"})
	isErr(t, err, store.ErrInvalid, "QueryObjects with a bad component")
	_, err = s.QueryObjects(ctx, coll, store.ObjectQuery{From: at(hour), To: at(0)})
	isErr(t, err, store.ErrInvalid, "QueryObjects with To before From")
	_, err = s.QueryObjects(ctx, coll, store.ObjectQuery{From: at(hour), To: at(hour)})
	isErr(t, err, store.ErrInvalid, "QueryObjects with an empty range")

	before, err := s.GetObject(ctx, coll, "d")
	ok(t, err, "GetObject(d)")
	for what, o := range map[string]store.Object{
		"End before Start":      {Name: "d", UID: "uid-d", Component: "VEVENT", Start: at(hour), End: at(0)},
		"component with space":  {Name: "d", UID: "uid-d", Component: "V EVENT"},
		"component with comma":  {Name: "d", UID: "uid-d", Component: "VEVENT,VTODO"},
		"component of 65 bytes": {Name: "d", UID: "uid-d", Component: strings.Repeat("X", 65)},
	} {
		o.Data = []byte("changed")
		_, err := s.PutObject(ctx, coll, o, store.PutOptions{})
		isErr(t, err, store.ErrInvalid, "PutObject with %s", what)
	}
	after, err := s.GetObject(ctx, coll, "d")
	ok(t, err, "GetObject(d)")
	if after.ETag != before.ETag || !bytes.Equal(after.Data, before.Data) || !after.Start.Equal(before.Start) || !after.End.IsZero() {
		t.Fatalf("refused PutObject changed the object: %+v, was %+v", after, before)
	}

	// Bounds beyond iCalendar's years are widened, never refused.
	far := putIndexed(t, s, coll, "far", "VEVENT", time.Date(-5, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC))
	if !far.Start.IsZero() || !far.End.IsZero() {
		t.Fatalf("bounds before year 1 and after 9999 stored as [%v, %v), want both unbounded", far.Start, far.End)
	}
	late := putIndexed(t, s, coll, "late", "VEVENT", time.Date(12000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(12001, 1, 1, 0, 0, 0, 0, time.UTC))
	if want := time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC); !late.Start.Equal(want) || !late.End.IsZero() {
		t.Fatalf("bounds after 9999 stored as [%v, %v), want [%v, unbounded)", late.Start, late.End, want)
	}
	checkIndexed(t, s, coll, "late", "VEVENT", late.Start, time.Time{})
	eq(t, strings.Join(queryNames(t, s, coll, store.ObjectQuery{From: time.Date(9999, 12, 31, 23, 59, 59, 0, time.UTC), Component: "VEVENT"}), " "), "d far late", "a range at the end of year 9999")
}

// testObjectQueryPaging pages through a calendar of a few thousand
// objects with QueryObjects, with and without a time range, and checks
// that every page is in name order and that the pages together are
// exactly the matching objects: no duplicates, no gaps. It also checks
// the page-size cap.
func testObjectQueryPaging(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	newAccount(t, s, "u", store.Quota{})
	cal := mustCollection(t, s, "u", store.KindCalendar, "calendar")
	objs := pagingObjects(2500)
	putAll(t, s, cal.ID, objs)
	// A neighbour with the same names must not leak into the pages.
	other, err := s.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindCalendar, Name: "other"})
	ok(t, err, "create other calendar")
	putAll(t, s, other.ID, objs[:300])

	for _, q := range []store.ObjectQuery{
		{},
		{From: at(30 * day), To: at(60 * day)},
		{From: at(30 * day), To: at(60 * day), Component: "VTODO"},
		{From: at(200 * day)},
		{To: at(-10 * day)},
	} {
		var want []string
		for _, o := range objs {
			if overlapsModel(o, q) {
				want = append(want, o.Name)
			}
		}
		slices.Sort(want)
		// Limits above the cap are checked below, on one page.
		limits := []int{0, 97}
		if q.Component != "" {
			limits = append(limits, 1) // a page per object: only where they are few
		}
		for _, limit := range limits {
			q.Limit = limit
			got := pageAll(t, s, cal.ID, q)
			if !slices.Equal(got, want) {
				t.Fatalf("pages of %+v: %d names, want %d (first difference at %d)", q, len(got), len(want), firstDiff(got, want))
			}
		}
	}

	// The cap: at most MaxObjectQueryLimit, whatever Limit asks for.
	for _, limit := range []int{0, -1, store.MaxObjectQueryLimit + 1, 1 << 30} {
		page, err := s.QueryObjects(ctx, cal.ID, store.ObjectQuery{Limit: limit})
		ok(t, err, "QueryObjects(Limit %d)", limit)
		eq(t, len(page), store.MaxObjectQueryLimit, "page size for Limit %d", limit)
	}
	page, err := s.QueryObjects(ctx, cal.ID, store.ObjectQuery{Limit: 7})
	ok(t, err, "QueryObjects(Limit 7)")
	eq(t, len(page), 7, "page size for Limit 7")
}

// pagingObjects returns n objects with names of varied length and bounds
// spread over a year around qbase: a tenth without end, a twentieth
// without start, a twentieth with no time at all, a third VTODOs.
func pagingObjects(n int) []store.Object {
	rng := rand.New(rand.NewPCG(14, 3))
	objs := make([]store.Object, n)
	for i := range objs {
		start := at(time.Duration(rng.IntN(365*24)-100*24) * hour)
		end := start.Add(time.Duration(1+rng.IntN(72)) * hour)
		switch {
		case i%10 == 0:
			end = time.Time{}
		case i%20 == 1:
			start = time.Time{}
		case i%20 == 3:
			start, end = time.Time{}, time.Time{}
		}
		comp := "VEVENT"
		if i%3 == 0 {
			comp = "VTODO"
		}
		name := fmt.Sprintf("%x-%s.ics", rng.Uint64(), strings.Repeat("z", rng.IntN(4)))
		objs[i] = store.Object{Name: name, UID: "uid-" + name, Component: comp, Start: start, End: end, Data: []byte("data of " + name)}
	}
	return objs
}

// overlapsModel is the overlap rule of store.Collections.QueryObjects,
// written out independently of the store package.
func overlapsModel(o store.Object, q store.ObjectQuery) bool {
	if q.Component != "" && o.Component != "" && o.Component != q.Component {
		return false
	}
	startOK := o.Start.IsZero() || q.To.IsZero() || o.Start.Before(q.To)
	endOK := o.End.IsZero() || q.From.IsZero() || o.End.After(q.From)
	return startOK && endOK
}

// putAll stores objs from several goroutines, as concurrent clients
// would (and as group commit batches them).
func putAll(t *testing.T, s store.Store, coll int64, objs []store.Object) {
	t.Helper()
	ctx := ctxT(t)
	work := make(chan store.Object)
	errs := make(chan error, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for o := range work {
				if _, err := s.PutObject(ctx, coll, o, store.PutOptions{}); err != nil {
					errs <- fmt.Errorf("PutObject(%s): %w", o.Name, err)
					return
				}
			}
		})
	}
	func() {
		defer close(work)
		for _, o := range objs {
			select {
			case work <- o:
			case err := <-errs:
				t.Fatal(err)
			}
		}
	}()
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// pageAll reads every page of q (q.After is ignored) and returns the
// names in the order the pages gave them, checking each page.
func pageAll(t *testing.T, s store.Store, coll int64, q store.ObjectQuery) []string {
	t.Helper()
	limit := q.Limit
	if limit <= 0 || limit > store.MaxObjectQueryLimit {
		limit = store.MaxObjectQueryLimit
	}
	var all []string
	q.After = ""
	for pages := 0; ; pages++ {
		if pages > 5000 {
			t.Fatalf("paging %+v does not end", q)
		}
		page := queryNames(t, s, coll, q)
		if len(page) > limit {
			t.Fatalf("page of %d objects for Limit %d", len(page), q.Limit)
		}
		if len(page) > 0 && page[0] <= q.After {
			t.Fatalf("page after %q starts with %q", q.After, page[0])
		}
		all = append(all, page...)
		if len(page) < limit {
			return all
		}
		q.After = page[len(page)-1]
	}
}

func firstDiff(a, b []string) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

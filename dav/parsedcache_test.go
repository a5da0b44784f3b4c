package dav

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

func cachedObject(name, summary string) *store.Object {
	data := []byte(ev(name, "20260601T090000Z", "20260601T100000Z", "DESCRIPTION:"+summary+"\r\n"))
	return &store.Object{Name: name + ".ics", ETag: store.ETag(data), Data: data}
}

func TestParsedCacheKeysByVersion(t *testing.T) {
	c := newParsedCache(1 << 20)
	lim := calendar.Limits{}
	o := cachedObject("a", "one")
	first, err := c.parse(1, o, lim)
	if err != nil {
		t.Fatal(err)
	}
	again, err := c.parse(1, o, lim)
	if err != nil || again != first {
		t.Fatalf("second read of the same version parsed again (%v)", err)
	}
	if other, _ := c.parse(2, o, lim); other == first {
		t.Fatal("another collection's object with the same name and ETag shared an entry")
	}
	edited := cachedObject("a", "two")
	got, err := c.parse(1, edited, lim)
	if err != nil || got == first {
		t.Fatalf("a new ETag returned the old parse (%v)", err)
	}
	if d := got.Calendar().Children[0].Props.Get("DESCRIPTION"); d == nil || d.Value != "two" {
		t.Fatalf("edited object reads %v", d)
	}
	bad := &store.Object{Name: "bad.ics", ETag: "x", Data: []byte("not iCalendar")}
	if _, err := c.parse(1, bad, lim); err == nil {
		t.Fatal("garbage parsed")
	}
	if n := c.len(); n != 3 {
		t.Fatalf("cache holds %d objects, want 3 (failures are not cached)", n)
	}
	// Without an ETag or a cache, every read parses.
	noTag := *o
	noTag.ETag = ""
	if a, _ := c.parse(1, &noTag, lim); a == first {
		t.Fatal("object without ETag came from the cache")
	}
	var nilCache *parsedCache
	if _, err := nilCache.parse(1, o, lim); err != nil {
		t.Fatal(err)
	}
}

func TestParsedCacheStaysBounded(t *testing.T) {
	o := cachedObject("x", "y")
	per := parsedCost(o.Data)
	c := newParsedCache(10 * per)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 100 {
				o := cachedObject(fmt.Sprintf("g%d-%03d", g, i), "y")
				obj, err := c.parse(1, o, calendar.Limits{})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := obj.Busy(time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 6, 2, 0, 0, 0, 0, time.UTC), 10); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur > c.max || c.ll.Len() > 10 || len(c.m) != c.ll.Len() {
		t.Fatalf("cache over its bound: %d of %d bytes, %d entries, %d keys", c.cur, c.max, c.ll.Len(), len(c.m))
	}
}

func TestParsedCacheEvictsLeastRecent(t *testing.T) {
	a, b, d := cachedObject("a", "1"), cachedObject("b", "2"), cachedObject("d", "3")
	c := newParsedCache(2 * parsedCost(a.Data))
	lim := calendar.Limits{}
	pa, _ := c.parse(1, a, lim)
	c.parse(1, b, lim)
	if again, _ := c.parse(1, a, lim); again != pa { // a is now the most recent
		t.Fatal("a was not cached")
	}
	c.parse(1, d, lim) // evicts b
	if again, _ := c.parse(1, a, lim); again != pa {
		t.Fatal("the recently used object was evicted")
	}
	if _, ok := c.m[parsedKey{coll: 1, name: b.Name, etag: b.ETag}]; ok {
		t.Fatal("the least recently used object was kept")
	}
}

// TestQueriesSeeEditsThroughTheCache: a recurring event parsed by one
// calendar-query and by free/busy is cached, and an edit (a new ETag)
// is what the next query and free/busy see.
func TestQueriesSeeEditsThroughTheCache(t *testing.T) {
	e := newEnv(t)
	e.do("PUT", e.calPath("weekly.ics"), event("weekly", "20260601T090000Z", "RRULE:FREQ=WEEKLY;COUNT=10")).expect(t, http.StatusCreated)
	june := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="20260615T000000Z" end="20260616T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	query := func() []string {
		return hrefs(e.do("REPORT", e.calPath(""), june, "Depth", "1").multistatus(t))
	}
	busy := func() []BusyPeriod {
		got, err := FreeBusy(context.Background(), e.st, FreeBusyQuery{Accounts: []string{e.aliceID},
			From: time.Date(2026, 6, 15, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 6, 16, 0, 0, 0, 0, time.UTC), parsed: e.h.parsed})
		if err != nil {
			t.Fatal(err)
		}
		return got[e.aliceID]
	}
	if got := query(); len(got) != 1 || e.h.parsed.len() != 1 {
		t.Fatalf("June 15 holds %v; %d cached", got, e.h.parsed.len())
	}
	if b := busy(); len(b) != 1 || b[0].Start.Hour() != 9 {
		t.Fatalf("busy %v", b)
	}
	// Moved to Tuesdays: June 15, a Monday, is free.
	e.do("PUT", e.calPath("weekly.ics"), event("weekly", "20260602T090000Z", "RRULE:FREQ=WEEKLY;COUNT=10")).expect(t, http.StatusNoContent)
	if got := query(); len(got) != 0 {
		t.Fatalf("after the edit June 15 holds %v", got)
	}
	if b := busy(); len(b) != 0 {
		t.Fatalf("after the edit busy %v", b)
	}
	if n := e.h.parsed.len(); n != 2 {
		t.Fatalf("%d cached, want both versions (the old one ages out)", n)
	}
}

package sqlite

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// Run with:
//	go test -run '^$' -bench 'QueryObjects' -benchmem ./store/sqlite/

// monthCalendar is the fixture of the time-range benchmarks: a calendar
// of 10,000 objects of about 1 KiB, 9,000 single events spread over the
// ten years 2017-2026 (one hour to three days long) and 1,000 recurring
// ones with no end (RRULE without UNTIL or COUNT) starting in those
// years, queried for one month near the end, as a client shows "now".
const (
	monthObjects   = 10000
	monthUnbounded = 1000
)

var (
	monthFrom = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	monthTo   = time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)
)

// fillMonthCalendar stores the fixture in a new calendar of s and
// returns the calendar's ID and how many objects overlap the month.
func fillMonthCalendar(tb testing.TB, s *Store) (int64, int) {
	ctx := context.Background()
	if _, err := s.CreateAccount(ctx, "bench", store.Quota{}); err != nil {
		tb.Fatal(err)
	}
	cal, err := s.Collection(ctx, "bench", store.KindCalendar, "calendar")
	if err != nil {
		tb.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(10000, 1000))
	first := time.Date(2017, 1, 1, 0, 0, 0, 0, time.UTC)
	span := int(time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Sub(first) / time.Hour)
	objs := make([]store.Object, monthObjects)
	want := 0
	pad := bytes.Repeat([]byte("DESCRIPTION:lorem ipsum dolor sit amet\r\n"), 24)
	for i := range objs {
		uid := fmt.Sprintf("%016x@bench", rng.Uint64())
		start := first.Add(time.Duration(rng.IntN(span)) * time.Hour)
		end := start.Add(time.Duration(1+rng.IntN(72)) * time.Hour)
		if i < monthUnbounded {
			end = time.Time{}
		}
		data := append([]byte("BEGIN:VCALENDAR\r\nUID:"+uid+"\r\n"), pad...)
		objs[i] = store.Object{Name: uid + ".ics", UID: uid, Component: "VEVENT", Start: start, End: end, Data: data}
		if objs[i].Overlaps(monthFrom, monthTo) {
			want++
		}
	}
	var wg sync.WaitGroup
	work := make(chan store.Object)
	for range 16 {
		wg.Go(func() {
			for o := range work {
				if _, err := s.PutObject(ctx, cal.ID, o, store.PutOptions{}); err != nil {
					tb.Error(err)
				}
			}
		})
	}
	for _, o := range objs {
		work <- o
	}
	close(work)
	wg.Wait()
	if tb.Failed() {
		tb.FailNow()
	}
	return cal.ID, want
}

// BenchmarkQueryObjectsMonth streams one month of the fixture calendar
// through QueryObjects pages (1,000 objects each, with their data), as a
// calendar-query REPORT does; one op is the whole month.
func BenchmarkQueryObjectsMonth(b *testing.B) {
	s := openBench(b)
	coll, want := fillMonthCalendar(b, s)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		got := 0
		q := store.ObjectQuery{From: monthFrom, To: monthTo, Component: "VEVENT"}
		for {
			page, err := s.QueryObjects(ctx, coll, q)
			if err != nil {
				b.Fatal(err)
			}
			got += len(page)
			if len(page) < store.MaxObjectQueryLimit {
				break
			}
			q.After = page[len(page)-1].Name
		}
		if got != want {
			b.Fatalf("month has %d objects, want %d", got, want)
		}
	}
	b.ReportMetric(float64(want), "objects/op")
}

// monthIndexes are the indexes BenchmarkMonthIndex compares: the one
// the schema has (migrationV3) and two created for the comparison.
var monthIndexes = []struct{ name, ddl string }{
	{"objects_range", ""},
	{"by_end", "CREATE INDEX by_end ON objects(collection, last_end, first_start, component)"},
	{"by_start", "CREATE INDEX by_start ON objects(collection, first_start, last_end, component)"},
}

// oneStepSQL is the query QueryObjects would run without its subquery:
// the filter on each row found through the index (or the table).
const oneStepSQL = "SELECT " + objectCols + `, data FROM objects %s
	WHERE collection = ?1 AND name > ?2 AND (?3 = '' OR component = ?3 OR component = '')
		AND first_start < ?4 AND last_end > ?5
	ORDER BY name LIMIT ?6`

// BenchmarkMonthIndex pages through a month of the fixture calendar with
// the SQL of QueryObjects (two-step), each index of monthIndexes forced
// on its subquery, and with the filter in one step (through
// objects_range, or the table, which is what the planner picks for it),
// for a month near the end of the calendar's ten years and one near the
// start. It shows why QueryObjects selects names first; migrationV3 says
// what it showed about the choice of index.
func BenchmarkMonthIndex(b *testing.B) {
	s := openBench(b)
	coll, _ := fillMonthCalendar(b, s)
	ctx := context.Background()
	for _, ix := range monthIndexes {
		if ix.ddl != "" {
			if _, err := s.wExecContext(ctx, ix.ddl); err != nil {
				b.Fatal(err)
			}
		}
	}
	variants := map[string]string{
		"one-step/table":         fmt.Sprintf(oneStepSQL, ""),
		"one-step/objects_range": fmt.Sprintf(oneStepSQL, "INDEXED BY objects_range"),
	}
	for _, ix := range monthIndexes {
		variants["two-step/"+ix.name] = strings.Replace(queryObjectsSQL, "SELECT name FROM objects", "SELECT name FROM objects INDEXED BY "+ix.name, 1)
	}
	names := slices.Sorted(maps.Keys(variants))
	for _, from := range []time.Time{monthFrom, time.Date(2018, 3, 1, 0, 0, 0, 0, time.UTC)} {
		fromArg, toArg := rangeArgs(from, from.AddDate(0, 1, 0))
		want := -1
		for _, v := range names {
			b.Run(from.Format("2006-01")+"/"+v, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					n := pageMonth(b, s, variants[v], coll, fromArg, toArg)
					if want < 0 {
						want = n
					}
					if n != want {
						b.Fatalf("%d objects, want %d as the other variants", n, want)
					}
				}
			})
		}
	}
}

// pageMonth runs query q page by page (1,000 rows each) and returns how
// many objects it read.
func pageMonth(b *testing.B, s *Store, q string, coll, fromArg, toArg int64) int {
	ctx := context.Background()
	n, after := 0, ""
	for {
		rows, err := s.rdb.QueryContext(ctx, q, coll, after, "VEVENT", toArg, fromArg, store.MaxObjectQueryLimit)
		if err != nil {
			b.Fatal(err)
		}
		page := 0
		for rows.Next() {
			o, err := scanObject(rows, true)
			if err != nil {
				b.Fatal(err)
			}
			page++
			after = o.Name
		}
		if err := rows.Close(); err != nil {
			b.Fatal(err)
		}
		n += page
		if page < store.MaxObjectQueryLimit {
			return n
		}
	}
}

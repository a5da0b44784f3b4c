package sqlite

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// TestQueryObjectsPlan checks how SQLite runs QueryObjects: the page of
// names comes from the covering index objects_range in name order (no
// table rows read, no sort), and only the rows of that page are read by
// primary key. A schema or query change that loses this turns a month
// query on a large calendar into a read of every object's data.
func TestQueryObjectsPlan(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	from, to := rangeArgs(time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC))
	rows, err := s.rdb.QueryContext(context.Background(), "EXPLAIN QUERY PLAN "+queryObjectsSQL, 1, "", "VEVENT", to, from, 1000)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	got := strings.Join(plan, "\n")
	for _, want := range []string{
		"SEARCH objects USING PRIMARY KEY (collection=? AND name=?)",
		"SEARCH objects USING COVERING INDEX objects_range (collection=? AND name>?)",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("plan lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "TEMP B-TREE") {
		t.Errorf("plan sorts:\n%s", got)
	}
}

// TestQueryObjectsDataOwned: the data of every object QueryObjects,
// QueryAccounts and GetObject return is its own, in memory no later row
// or read writes to (blobCol keeps the driver's slice of each row, which
// database/sql would let a driver reuse), and the caller may change it.
func TestQueryObjectsDataOwned(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	cal, err := s.Collection(ctx, "u", store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{}
	for i := range 5 {
		name := fmt.Sprintf("o%d.ics", i)
		want[name] = strings.Repeat(string(rune('a'+i)), 100+i)
		if _, err := s.PutObject(ctx, cal.ID, store.Object{Name: name, UID: name, Data: []byte(want[name])}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	check := func(how string, objs []store.Object) {
		t.Helper()
		if len(objs) != len(want) {
			t.Fatalf("%s: %d objects, want %d", how, len(objs), len(want))
		}
		for _, o := range objs {
			if string(o.Data) != want[o.Name] {
				t.Errorf("%s: %s holds %q, want %q", how, o.Name, o.Data, want[o.Name])
			}
		}
	}
	page, err := s.QueryObjects(ctx, cal.ID, store.ObjectQuery{Limit: 2})
	if err != nil {
		t.Fatal(err)
	}
	all, err := s.QueryObjects(ctx, cal.ID, store.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var walked []store.Object
	if err := s.QueryAccounts(ctx, []string{"u"}, store.KindCalendar, store.ObjectQuery{}, func(_ *store.Collection, o *store.Object) error {
		walked = append(walked, *o)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	one, err := s.GetObject(ctx, cal.ID, "o0.ics")
	if err != nil {
		t.Fatal(err)
	}
	check("QueryObjects", all)
	check("QueryAccounts", walked)
	check("first page, after more reads", append(page, all[2:]...))
	for i := range all {
		clear(all[i].Data) // the caller's to change
	}
	check("QueryAccounts, after the caller changed QueryObjects' data", walked)
	if string(one.Data) != want["o0.ics"] {
		t.Errorf("GetObject after the caller changed QueryObjects' data: %q", one.Data)
	}
}

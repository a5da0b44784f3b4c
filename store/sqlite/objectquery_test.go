package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"
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

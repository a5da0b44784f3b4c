package ews_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// BenchmarkMigrate copies a mailbox of 1,000 messages of about 4 KiB and
// 250 calendar items (50 series with exceptions) from the EWS test
// server into a fresh SQLite store per iteration: the in-process
// counterpart of bench/ews.sh, for `go test -bench Migrate -cpuprofile`.
func BenchmarkMigrate(b *testing.B) {
	srv := newTestServer(b, ewstest.Options{})
	gen := ewstest.Generate{Messages: 1000, CalendarItems: 250, Recurring: 50, MessageBytes: 4096, Seed: 1}
	if err := srv.ews.Generate(owner, gen); err != nil {
		b.Fatal(err)
	}
	client := srv.client(b, nil)
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		b.StopTimer()
		st, err := sqlite.Open(ctx, b.TempDir(), sqlite.Options{})
		if err != nil {
			b.Fatal(err)
		}
		dir := builtin.New(st, builtin.Options{Accounts: st})
		if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
			b.Fatal(err)
		}
		if _, err := dir.CreateUser(ctx, directory.User{Address: targetAddr}, "Target-Pa55"); err != nil {
			b.Fatal(err)
		}
		m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: dir, Client: client})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := m.Sync(ctx, testJob)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		if res.Messages != int64(gen.Messages) || res.Events != gen.CalendarItems {
			b.Fatalf("copied %d messages and %d events, want %d and %d", res.Messages, res.Events, gen.Messages, gen.CalendarItems)
		}
		st.Close()
		b.StartTimer()
	}
	b.ReportMetric(float64(gen.Messages+gen.CalendarItems)*float64(b.N)/b.Elapsed().Seconds(), "items/s")
}

// TestMigrateSameUID copies two calendar items of one UID that arrive in
// one page (a meeting copied into the calendar twice): the objects of a
// page are written concurrently, but these two one after the other, so
// the one object holds the later item, and a rerun keeps it.
func TestMigrateSameUID(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	ctx := t.Context()
	for _, subject := range []string{"first copy", "second copy"} {
		if _, err := srv.ews.AddItem(owner, "calendar", `<CalendarItem><Subject>`+subject+`</Subject><UID>same-uid@example.test</UID><Start>2027-03-01T09:00:00Z</Start><End>2027-03-01T10:00:00Z</End></CalendarItem>`); err != nil {
			t.Fatal(err)
		}
	}
	gen := ewstest.Generate{CalendarItems: 120, Recurring: 20, Seed: 7}
	if err := srv.ews.Generate(owner, gen); err != nil {
		t.Fatal(err)
	}
	st, dir, account := newTarget(t)
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: dir, Client: srv.client(t, nil), PageSize: 200})
	if err != nil {
		t.Fatal(err)
	}
	for pass := range 2 {
		res, err := m.Sync(ctx, testJob)
		if err != nil {
			t.Fatal(err)
		}
		if want := []int{gen.CalendarItems + 2, 0}[pass]; res.Events != want {
			t.Fatalf("pass %d wrote %d events, want %d", pass+1, res.Events, want)
		}
		colls, err := st.ListCollections(ctx, account, store.KindCalendar)
		if err != nil || len(colls) != 1 {
			t.Fatalf("calendars %v, %v", colls, err)
		}
		objs, err := st.ListObjects(ctx, colls[0].ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(objs) != gen.CalendarItems+1 {
			t.Fatalf("pass %d: %d objects, want %d", pass+1, len(objs), gen.CalendarItems+1)
		}
		o, err := st.ObjectByUID(ctx, colls[0].ID, "same-uid@example.test")
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(o.Data), "SUMMARY:second copy") {
			t.Fatalf("pass %d: the object of the shared UID is not the later item:\n%s", pass+1, o.Data)
		}
	}
}

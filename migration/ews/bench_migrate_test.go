package ews_test

import (
	"context"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
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

package migration_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/store/sqlite"
)

// A collector for one mailbox: a first pass, then new mail every five
// minutes until the mailbox is cut over. (Compiled, not run: it needs a
// source server.)
func Example() {
	ctx := context.Background()
	st, err := sqlite.Open(ctx, "/var/lib/mailyard", sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{Accounts: st})
	// The secret that seals the source passwords kept in the store: 32
	// random bytes kept apart from the store, in a root-only file.
	key, err := os.ReadFile("/etc/mailyard/migration.key")
	if err != nil {
		log.Fatal(err)
	}

	m, err := migration.New(migration.Options{
		Store:     st,
		Directory: dir,
		Users:     dir,
		// Collectors dial nothing else.
		Allowlist: []string{"10.20.0.0/16", "exchange.corp.example"},
		SecretKey: key,
	})
	if err != nil {
		log.Fatal(err)
	}
	job := migration.Job{
		Target: "alice@example.com",
		Source: migration.Source{Host: "exchange.corp.example", TLS: migration.TLSImplicit},
		Credentials: migration.Credentials{
			Mode:     migration.AuthServicePlain, // AUTHENTICATE PLAIN, authzid = alice
			Login:    "alice@corp.example",
			Service:  "svc-migration@corp.example",
			Password: migration.Secret(os.Getenv("MIGRATION_PASSWORD")),
		},
	}
	status, err := m.Sync(ctx, job, func(p migration.Progress) {
		fmt.Printf("\r%s: %d/%d messages", p.Folder, p.DoneMessages, p.TotalMessages)
	})
	if err != nil {
		log.Fatalf("%s (%s)", err, migration.ClassOf(err))
	}
	fmt.Println(status.LastMessage)
	// Keep collecting until m.Disable(ctx, "alice@example.com") at cut-over.
	if err := m.Collect(ctx, job, 5*time.Minute, nil); err != nil {
		log.Fatal(err)
	}
}

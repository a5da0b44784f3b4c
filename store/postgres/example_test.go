package postgres_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"os"
	"strings"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
)

// Open a store on a PostgreSQL database (created beforehand; Open creates
// the tables), deliver a message to two mailboxes and read it back. A
// second node opens the same DSN and sees the same state.
func Example() {
	ctx := context.Background()
	dsn := os.Getenv("MAILYARD_POSTGRES_DSN") // e.g. postgres://mailyard@db.example/mailyard
	s, err := postgres.Open(ctx, dsn, postgres.Options{PoolSize: 20, StatementTimeout: 30e9})
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	if _, err := s.CreateAccount(ctx, "alice", store.Quota{MaxMessages: 100}); err != nil {
		log.Fatal(err)
	}
	got, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{
		{Account: "alice"},
		{Account: "alice", Mailbox: "Archive", Flags: []string{store.FlagSeen}},
	}}, strings.NewReader("Subject: hello\r\n\r\nHi Alice.\r\n"))
	if err != nil {
		log.Fatal(err)
	}
	for _, d := range got {
		fmt.Printf("%s UID %d\n", d.Mailbox, d.UID)
	}
	rc, err := s.OpenBody(ctx, "alice", "INBOX", got[0].UID)
	if err != nil {
		log.Fatal(err)
	}
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	fmt.Printf("%q\n", body)
}

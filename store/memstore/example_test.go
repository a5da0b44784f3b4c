package memstore_test

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/memstore"
)

// A memory store needs no directory: create an account, deliver a message
// to two mailboxes of it and read it back.
func Example() {
	ctx := context.Background()
	s := memstore.New(memstore.Options{})
	defer s.Close()

	if _, err := s.CreateAccount(ctx, "alice", store.Quota{MaxMessages: 100}); err != nil {
		panic(err)
	}
	got, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{
		{Account: "alice"},
		{Account: "alice", Mailbox: "Archive", Flags: []string{store.FlagSeen}},
	}}, strings.NewReader("Subject: hello\r\n\r\nHi Alice.\r\n"))
	if err != nil {
		panic(err)
	}
	for _, d := range got {
		fmt.Printf("%s UID %d\n", d.Mailbox, d.UID)
	}
	rc, err := s.OpenBody(ctx, "alice", "INBOX", got[0].UID)
	if err != nil {
		panic(err)
	}
	defer rc.Close()
	body, _ := io.ReadAll(rc)
	fmt.Printf("%q\n", body)
	u, q, _ := s.Usage(ctx, "alice")
	fmt.Printf("%d of %d messages\n", u.Messages, q.MaxMessages)
	// Output:
	// INBOX UID 1
	// Archive UID 1
	// "Subject: hello\r\n\r\nHi Alice.\r\n"
	// 2 of 100 messages
}

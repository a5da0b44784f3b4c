package smtp_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"net"
	netsmtp "net/smtp"
	"os"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store/sqlite"
)

// The embedding snippet of the README, compiled and run here (the part
// between the "README" markers is the README's code block, which
// TestREADMEEmbedding compares): the embedded store, the store-backed
// directory on it, the routing table over the directory, and an MX server
// delivering into the store; then one message in and alice's INBOX read.
func Example_embedding() {
	ctx := context.Background()
	logger := slog.New(slog.DiscardHandler)
	dataDir, err := os.MkdirTemp("", "mailyard-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dataDir)

	// README begin
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{Logger: logger})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()

	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		log.Fatal(err)
	}
	alice, err := dir.CreateUser(ctx, directory.User{Address: "alice@example.com"}, "secret")
	if err != nil {
		log.Fatal(err)
	}

	srv, err := smtp.New(smtp.Options{
		Hostname:  "mx.example.com",
		Mode:      smtp.ModeMX,
		Router:    routing.NewTable(dir, routing.TableOptions{}),
		Deliverer: st,
		Auth:      dir,
		Logger:    logger,
	})
	if err != nil {
		log.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0") // ":25" in production
	if err != nil {
		log.Fatal(err)
	}
	go srv.Serve(ln)
	defer srv.Close()

	// A message from outside, then alice's INBOX (her account ID is her
	// user ID).
	msg := "From: bob@elsewhere.test\r\nSubject: hi\r\n\r\nhello\r\n"
	if err := netsmtp.SendMail(ln.Addr().String(), nil, "bob@elsewhere.test", []string{"alice@example.com"}, []byte(msg)); err != nil {
		log.Fatal(err)
	}
	msgs, err := st.ListMessages(ctx, alice.ID, "INBOX", nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(msgs), "message in alice's INBOX")
	// README end

	// Output: 1 message in alice's INBOX
}

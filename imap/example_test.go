package imap_test

import (
	"context"
	"fmt"
	"log"
	"net"
	"os"
	"strings"

	imapv2 "github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Serve IMAP from an embedded store, with logins checked by the built-in
// directory. A real deployment sets TLSConfig and leaves AllowInsecureAuth
// off; this example stays on loopback without TLS.
func Example() {
	ctx := context.Background()
	dataDir, _ := os.MkdirTemp("", "imap-example-")
	defer os.RemoveAll(dataDir)
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer st.Close()
	dir := builtin.New(st, builtin.Options{Accounts: st})
	dir.CreateDomain(ctx, directory.Domain{Name: "example.com"})
	alice, _ := dir.CreateUser(ctx, directory.User{Address: "alice@example.com"}, "secret")

	srv, err := imap.New(imap.Options{Backend: st, Auth: dir, AllowInsecureAuth: true})
	if err != nil {
		log.Fatal(err)
	}
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go srv.Serve(ln)
	defer srv.Close()

	// Mail arrives (the SMTP server calls Deliver the same way).
	st.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: alice.ID}}},
		strings.NewReader("Subject: welcome\r\n\r\nHello Alice.\r\n"))

	c, err := imapclient.DialInsecure(ln.Addr().String(), nil)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Login("alice@example.com", "secret").Wait(); err != nil {
		log.Fatal(err)
	}
	mbox, _ := c.Select("INBOX", nil).Wait()
	msgs, _ := c.Fetch(imapv2.SeqSetNum(1), &imapv2.FetchOptions{Envelope: true}).Collect()
	fmt.Println(mbox.NumMessages, msgs[0].Envelope.Subject)
	// Output: 1 welcome
}

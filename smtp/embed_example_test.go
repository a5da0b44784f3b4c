package smtp_test

import (
	"context"
	"log/slog"
	"net"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store/sqlite"
)

// The embedding snippet of the README, kept compiling here: the embedded
// store, the store-backed directory on it, the routing table over the
// directory, and an MX server delivering into the store. (Compiled, not
// run: it listens on port 25.)
func Example_embedding() {
	ctx := context.Background()
	logger := slog.Default()

	st, err := sqlite.Open(ctx, "/var/lib/myapp/mail", sqlite.Options{Logger: logger})
	if err != nil {
		return
	}
	defer st.Close()

	dir := builtin.New(st, builtin.Options{Accounts: st})
	dir.CreateDomain(ctx, directory.Domain{Name: "example.com"})
	dir.CreateUser(ctx, directory.User{Address: "alice@example.com"}, "secret")

	srv, err := smtp.New(smtp.Options{
		Hostname:  "mx.example.com",
		Mode:      smtp.ModeMX,
		Router:    routing.NewTable(dir, routing.TableOptions{}),
		Deliverer: st,
		Auth:      dir,
		Logger:    logger,
	})
	if err != nil {
		return
	}
	ln, _ := net.Listen("tcp", ":25")
	go srv.Serve(ln)
}

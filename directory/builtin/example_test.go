package builtin_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store/sqlite"
)

func Example() {
	ctx := context.Background()
	dataDir, err := os.MkdirTemp("", "mailyard-example")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dataDir)
	st, err := sqlite.Open(ctx, dataDir, sqlite.Options{})
	if err != nil {
		panic(err)
	}
	defer st.Close()
	// The directory lives in the store's records; with Accounts set, every
	// user gets a mailbox account.
	dir := builtin.New(st, builtin.Options{Accounts: st})

	if _, err := dir.CreateTenant(ctx, directory.Tenant{ID: "acme", Name: "ACME Corp"}); err != nil {
		panic(err)
	}
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com", Tenant: "acme", Aliases: []string{"example.net"}}); err != nil {
		panic(err)
	}
	alice, err := dir.CreateUser(ctx, directory.User{Address: "Alice@Example.com", DisplayName: "Alice"}, "correct horse")
	if err != nil {
		panic(err)
	}
	if _, err := dir.CreateAlias(ctx, directory.Alias{Address: "info@example.com", Targets: []string{"alice@example.com"}}); err != nil {
		panic(err)
	}

	// Logins are case-insensitive and work under alternative domain names.
	u, err := dir.Authenticate(ctx, "ALICE@example.net", "correct horse", directory.ProtoIMAP)
	fmt.Println(u.Address, err)
	_, err = dir.Authenticate(ctx, "alice@example.com", "wrong", directory.ProtoIMAP)
	fmt.Println(errors.Is(err, directory.ErrAuthFailed))

	// Sub-addressing reaches the base address.
	e, _ := dir.LookupAddress(ctx, "alice+newsletters@example.com")
	fmt.Println(e.Address, e.User.ID == alice.ID)

	addrs, _ := dir.SendAddresses(ctx, alice.ID)
	fmt.Println(addrs)
	// Output:
	// alice@example.com <nil>
	// true
	// alice@example.com true
	// [alice@example.com alice@example.net]
}

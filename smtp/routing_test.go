package smtp

import (
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/sqlite"
)

// withRules replaces the MX router of a real stack with a routing table
// over the same directory and the given configuration.
func withRules(t testing.TB, cfg routing.Config) func(*Options, *sqlite.Store) {
	return func(o *Options, st *sqlite.Store) {
		rules, err := routing.Compile(cfg)
		if err != nil {
			t.Fatal(err)
		}
		dir := builtin.New(st, builtin.Options{Accounts: st})
		o.Router = routing.NewTable(dir, routing.TableOptions{Rules: rules})
	}
}

// The routing table judges relaying: without AUTH, a client outside the
// relaynets gets the table's 554 5.7.1, and one inside them gets the
// temporary refusal that stands for "needs the outbound queue".
func TestMXRelaynetsFromRoutingTable(t *testing.T) {
	r := startRealStack(t)
	c := r.ts.client(t)
	if err := c.Mail("sender@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	err := c.Rcpt("victim@remote.test", nil)
	wantCode(t, err, 554, "5.7.1")
	if !strings.Contains(err.Error(), "relay access denied (relay-denied)") {
		t.Errorf("reply %q does not name the rule", err)
	}

	// The test client connects from 127.0.0.1.
	r = startRealStackWith(t, withRules(t, routing.Config{Relaynets: []string{"127.0.0.0/8"}}), nil)
	c = r.ts.client(t)
	if err := c.Mail("app@internal.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("someone@remote.test", nil), 451, "4.3.2")
}

// An always-BCC copy to a local journal mailbox is delivered with the
// message, once however many recipients there are.
func TestMXAlwaysBCCLocalCopy(t *testing.T) {
	r := startRealStackWith(t, withRules(t, routing.Config{AlwaysBCC: []routing.BCC{{Address: "journal@example.test"}}}), nil)
	a := r.user(t, "a@example.test", 0)
	b := r.user(t, "b@example.test", 0)
	journal := r.user(t, "journal@example.test", 0)
	c := r.ts.client(t)
	if err := send(c, "x@remote.test", []string{"a@example.test", "b@example.test"}, "Subject: audited\r\n\r\nhello\r\n"); err != nil {
		t.Fatal(err)
	}
	for _, u := range []directory.User{a, b, journal} {
		if got := r.inbox(t, u); len(got) != 1 || !strings.Contains(got[0], "Subject: audited") {
			t.Fatalf("%s holds %d messages, want the one", u.Address, len(got))
		}
	}
}

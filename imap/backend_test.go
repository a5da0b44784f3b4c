package imap

import (
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store/memstore"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Every store backend has the core and every optional interface.
var (
	_ Backend       = (*sqlite.Store)(nil)
	_ Quotas        = (*sqlite.Store)(nil)
	_ Subscriptions = (*sqlite.Store)(nil)
	_ Feed          = (*sqlite.Store)(nil)
	_ Backend       = (*memstore.Store)(nil)
	_ Quotas        = (*memstore.Store)(nil)
	_ Subscriptions = (*memstore.Store)(nil)
	_ Feed          = (*memstore.Store)(nil)
)

// coreBackend hides every optional interface of the Backend it wraps.
type coreBackend struct {
	Mailboxes
	MessageReader
	MessageWriter
}

func coreOnly(o *Options) {
	o.Backend = coreBackend{o.Backend, o.Backend, o.Backend}
	o.IdlePollInterval = 10 * time.Millisecond
}

func TestServerCapsFollowBackend(t *testing.T) {
	e := newEnv(t)
	full := serverCaps(e.st)
	core := serverCaps(coreBackend{e.st, e.st, e.st})
	for _, c := range quotaCaps {
		if !full.Has(c) {
			t.Errorf("full backend: %s not announced", c)
		}
		if core.Has(c) {
			t.Errorf("core-only backend: %s announced", c)
		}
	}
}

// Without Quotas the QUOTA extension is absent: not announced, and its
// commands are unknown (RFC 9051 §6.1.1, RFC 9208 §3.1).
func TestBackendWithoutQuotas(t *testing.T) {
	e := newEnv(t, coreOnly)
	r := loggedIn(e)
	u := r.expectOK("CAPABILITY")
	mustHave(t, u, " IDLE")
	if has(u, "QUOTA") {
		t.Fatalf("QUOTA announced without Quotas: %q", u)
	}
	r.expectStatus("GETQUOTAROOT INBOX", "BAD")
	r.expectStatus(`GETQUOTA ""`, "BAD")
	// The session goes on.
	r.expectOK("SELECT INBOX")
}

// Without Subscriptions every existing mailbox is subscribed, and
// UNSUBSCRIBE cannot be done.
func TestBackendWithoutSubscriptions(t *testing.T) {
	e := newEnv(t, coreOnly)
	r := loggedIn(e)
	r.expectOK("CREATE a/b")
	u := r.expectOK(`LIST (SUBSCRIBED) "" "*"`)
	mustHave(t, u, `\Subscribed) "/" INBOX`)
	mustHave(t, u, `\Subscribed`, `"a/b"`)
	mustHave(t, r.expectOK(`LSUB "" "a*"`), `* LSUB () "/" "a/b"`)
	r.expectOK("SUBSCRIBE a/b")
	r.expectStatus("SUBSCRIBE nosuch", "NO [NONEXISTENT]")
	r.expectStatus("UNSUBSCRIBE a/b", "NO [CANNOT]")
	r.expectOK("DELETE a/b")
	if u := r.expectOK(`LSUB "" "*"`); has(u, `"a/b"`) {
		t.Fatalf("deleted mailbox still subscribed: %q", u)
	}
}

// Without a Feed an IDLE session polls, and so still reports a new
// message (RFC 9051 §6.3.13).
func TestBackendWithoutFeedIdlePolls(t *testing.T) {
	e := newEnv(t, coreOnly)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	tag := r.idleStarted()
	e.deliver(e.aliceID, "", simpleMsg)
	if l := r.line(); l != "* 1 EXISTS" {
		t.Fatalf("IDLE: got %q, want * 1 EXISTS", l)
	}
	r.send("DONE\r\n")
	if _, st := r.readUntil(tag); !strings.HasPrefix(st, "OK") {
		t.Fatalf("IDLE: %q", st)
	}
}

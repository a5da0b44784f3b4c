package smtp

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// realStack is the MX server on the real embedded store, built-in directory
// and routing table, as the reference server wires them.
type realStack struct {
	ts  *testServer // MX
	sub *testServer // submission, STARTTLS + AUTH
	tls *tls.Config // client side for sub
	st  *sqlite.Store
	dir *builtin.Directory
}

func startRealStack(t *testing.T) *realStack {
	t.Helper()
	return startRealStackWith(t, nil, nil)
}

// startRealStackWith lets the caller adjust the MX and submission options
// (with the store already open) before the servers start.
func startRealStackWith(t testing.TB, mx, subm func(*Options, *sqlite.Store)) *realStack {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.test"}); err != nil {
		t.Fatal(err)
	}
	table := routing.NewTable(dir, routing.TableOptions{})
	mxOpts := Options{Mode: ModeMX, Router: table, Deliverer: st}
	var logger *slog.Logger
	if _, bench := t.(*testing.B); bench {
		logger = quietLogger() // logging every message would be measured too
	}
	mxOpts.Logger = logger
	if mx != nil {
		mx(&mxOpts, st)
	}
	ts := startServer(t, mxOpts)
	serverTLS, clientTLS := testTLS(t)
	subOpts := Options{Mode: ModeSubmission, Router: table, Deliverer: st, Auth: dir, TLSConfig: serverTLS, Logger: logger}
	if subm != nil {
		subm(&subOpts, st)
	}
	sub := startServer(t, subOpts)
	return &realStack{ts: ts, sub: sub, tls: clientTLS, st: st, dir: dir}
}

func (r *realStack) user(t testing.TB, addr string, quotaMessages int64) directory.User {
	t.Helper()
	u, err := r.dir.CreateUser(context.Background(), directory.User{Address: addr, QuotaMessages: quotaMessages}, "pw")
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func (r *realStack) inbox(t *testing.T, u directory.User) []string {
	t.Helper()
	ctx := context.Background()
	msgs, err := r.st.ListMessages(ctx, u.ID, store.Inbox, nil)
	if err != nil {
		t.Fatal(err)
	}
	var bodies []string
	for _, m := range msgs {
		rc, err := r.st.OpenBody(ctx, u.ID, store.Inbox, m.UID)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		bodies = append(bodies, string(b))
	}
	return bodies
}

// A full mailbox is refused at RCPT, so the other recipients still get
// the message (the store delivers all-or-nothing at DATA).
func TestQuotaRefusedAtRcptOthersDelivered(t *testing.T) {
	r := startRealStack(t)
	full := r.user(t, "full@example.test", 1)
	ok := r.user(t, "ok@example.test", 0)

	c := r.ts.client(t)
	if err := send(c, "a@remote.test", []string{"full@example.test"}, "Subject: first\r\n\r\nfills the mailbox\r\n"); err != nil {
		t.Fatalf("first message: %v", err)
	}
	if err := c.Mail("a@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("full@example.test", nil), 452, "4.2.2")
	if err := c.Rcpt("ok@example.test", nil); err != nil {
		t.Fatalf("rcpt ok: %v", err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	io.WriteString(w, "Subject: second\r\n\r\nbody\r\n")
	if err := w.Close(); err != nil {
		t.Fatalf("second message refused: %v", err)
	}
	if got := r.inbox(t, full); len(got) != 1 || !strings.Contains(got[0], "Subject: first") {
		t.Fatalf("full mailbox holds %d messages, want only the first", len(got))
	}
	if got := r.inbox(t, ok); len(got) != 1 || !strings.Contains(got[0], "Subject: second") {
		t.Fatalf("ok@ holds %q", got)
	}
}

// A message accepted over the MX is in the store, with our trace header
// first and the body as sent, by the time 250 arrives; a group delivers
// one copy per member account.
func TestDeliveredToStoreBeforeReply(t *testing.T) {
	r := startRealStack(t)
	a := r.user(t, "a@example.test", 0)
	b := r.user(t, "b@example.test", 0)
	if _, err := r.dir.CreateGroup(context.Background(), directory.Group{Address: "team@example.test", Members: []string{"a@example.test", "b@example.test"}}); err != nil {
		t.Fatal(err)
	}
	c := r.ts.client(t)
	body := "From: <x@remote.test>\r\nSubject: to the team\r\n\r\nhello team\r\n"
	if err := send(c, "x@remote.test", []string{"team@example.test", "A@Example.test"}, body); err != nil {
		t.Fatal(err)
	}
	for _, u := range []directory.User{a, b} {
		got := r.inbox(t, u)
		if len(got) != 1 {
			t.Fatalf("%s has %d messages, want 1", u.Address, len(got))
		}
		if !strings.HasPrefix(got[0], "Return-Path: <x@remote.test>\r\nReceived: ") || !strings.HasSuffix(got[0], body) {
			t.Fatalf("%s stored %q", u.Address, got[0])
		}
	}
}

// A user may send as a sub-address of an own address, but not when that
// full address belongs to someone else.
func TestSubaddressSenderOwnedByAnotherIsRefused(t *testing.T) {
	r := startRealStack(t)
	r.user(t, "alice@example.test", 0)
	bob := r.user(t, "bob@example.test", 0)
	if _, err := r.dir.AddUserAlias(context.Background(), bob.ID, "alice+boss@example.test"); err != nil {
		t.Fatal(err)
	}
	c := r.sub.authClient(t, r.tls, "alice@example.test", "pw")
	msg := func(from string) string { return "From: <" + from + ">\r\nSubject: s\r\n\r\nx\r\n" }
	if err := send(c, "alice+news@example.test", []string{"bob@example.test"}, msg("alice+news@example.test")); err != nil {
		t.Fatalf("own sub-address refused: %v", err)
	}
	wantCode(t, c.Mail("alice+boss@example.test", nil), 553, "5.7.1")
	c.Reset()
	// Envelope fine, From header names bob's address.
	err := send(c, "alice@example.test", []string{"bob@example.test"}, msg("alice+boss@example.test"))
	if code, enh := smtpCode(err); code != 550 || enh != "5.7.1" {
		t.Fatalf("From: alice+boss@ (bob's) accepted: %v", err)
	}
}

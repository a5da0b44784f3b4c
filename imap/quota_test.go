package imap

import (
	"context"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/store"
)

// rawLogin is a raw connection logged in as alice over STARTTLS.
func (e *env) rawLogin() *raw {
	e.t.Helper()
	r := e.raw()
	r.starttls(e.client)
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	return r
}

func TestQuotaCapabilities(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	u := r.expectOK("CAPABILITY")
	mustHave(t, u, " ID") // RFC 2971: usable before login
	mustNotHave(t, u, "QUOTA")
	r = e.rawLogin()
	u = r.expectOK("CAPABILITY")
	mustHave(t, u, " QUOTA ", " QUOTA=RES-STORAGE", " QUOTA=RES-MESSAGE", " ID")
	// Limits are the administrator's: no QUOTASET.
	mustNotHave(t, u, "QUOTASET")
}

func TestQuotaReportsUsageAndLimits(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if err := e.st.SetQuota(ctx, e.aliceID, store.Quota{MaxBytes: 10 << 20, MaxMessages: 100}); err != nil {
		t.Fatal(err)
	}
	msg := "From: x@example.org\r\nSubject: q\r\n\r\n" + strings.Repeat("y", 2000) + "\r\n"
	e.deliver(e.aliceID, "INBOX", msg)
	e.deliver(e.aliceID, "Sent", msg)
	kib := (2*int64(len(msg)) + 1023) / 1024 // usage rounds up

	c := e.login(alice, alicePW, nil)
	root, err := c.GetQuotaRoot("Sent").Wait()
	if err != nil {
		t.Fatal(err)
	}
	if len(root) != 1 || root[0].Root != "" {
		t.Fatalf("GETQUOTAROOT Sent: %+v", root)
	}
	q, err := c.GetQuota("").Wait()
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []map[imap.QuotaResourceType]imapclient.QuotaResourceData{root[0].Resources, q.Resources} {
		if got := q[imap.QuotaResourceStorage]; got.Usage != kib || got.Limit != 10<<10 {
			t.Errorf("STORAGE %+v, want usage %d limit %d", got, kib, 10<<10)
		}
		if got := q[imap.QuotaResourceMessage]; got.Usage != 2 || got.Limit != 100 {
			t.Errorf("MESSAGE %+v, want 2 of 100", got)
		}
	}

	r := e.rawLogin()
	u := r.expectOK("GETQUOTAROOT INBOX")
	mustHave(t, u, `* QUOTAROOT INBOX ""`)
	mustHave(t, u, `* QUOTA "" (STORAGE `)
	r.expectStatus(`GETQUOTA "nosuchroot"`, "NO [NONEXISTENT]")
	r.expectStatus("GETQUOTAROOT Nonexistent", "NO [NONEXISTENT]")
	r.expectStatus(`SETQUOTA "" (STORAGE 1)`, "NO [NOPERM]")
	r.expectStatus(`SETQUOTA "" STORAGE`, "BAD")
	r.expectStatus("GETQUOTA", "BAD")

	// Before login the commands are refused, not answered.
	r2 := e.raw()
	r2.expectStatus(`GETQUOTA ""`, "BAD")
}

func TestQuotaUnlimitedAccountHasNoRoot(t *testing.T) {
	e := newEnv(t)
	r := e.rawLogin()
	u := r.expectOK("GETQUOTAROOT INBOX")
	mustHave(t, u, "* QUOTAROOT INBOX")
	mustNotHave(t, u, "* QUOTA ")
	r.expectStatus(`GETQUOTA ""`, "NO [NONEXISTENT]")
}

func TestQuotaOverQuotaAppend(t *testing.T) {
	e := newEnv(t)
	if err := e.st.SetQuota(context.Background(), e.aliceID, store.Quota{MaxMessages: 1}); err != nil {
		t.Fatal(err)
	}
	e.deliver(e.aliceID, "INBOX", "Subject: one\r\n\r\nx\r\n")
	r := e.rawLogin()
	// RFC 9208: APPEND beyond the limit is NO [OVERQUOTA].
	r.expectStatus("APPEND INBOX {14+}\r\nSubject: two\r\n", "NO [OVERQUOTA]")
	u := r.expectOK(`GETQUOTA ""`)
	mustHave(t, u, `* QUOTA "" (MESSAGE 1 1)`)
}

func TestIDCommand(t *testing.T) {
	e := newEnv(t)
	r := e.raw()
	// Valid before login (RFC 2971 §3.1), with the client's fields or NIL.
	u := r.expectOK(`ID ("name" "Thunderbird" "version" "128.0" "os" NIL)`)
	mustHave(t, u, `* ID (`, `"name" "Mailyard"`, `"version" `)
	u = r.expectOK("id nil")
	mustHave(t, u, `* ID ("name" "Mailyard"`)

	// RFC 2971 §3.3 limits.
	r.expectStatus(`ID ("name" "a" "NAME" "b")`, "BAD")
	r.expectStatus(`ID ("`+strings.Repeat("n", 31)+`" "v")`, "BAD")
	r.expectStatus(`ID ("name" "`+strings.Repeat("v", 1025)+`")`, "BAD")
	var many strings.Builder
	for i := 0; i < 31; i++ {
		many.WriteString(` "f` + string(rune('a'+i%26)) + string(rune('a'+i/26)) + `" "v"`)
	}
	r.expectStatus("ID ("+strings.TrimSpace(many.String())+")", "BAD")
	r.expectStatus("ID", "BAD")
	r.expectStatus(`ID ("name")`, "BAD")
	// The connection is still usable after each BAD.
	r.expectOK("NOOP")

	// imapclient parses the answer.
	c := e.login(alice, alicePW, nil)
	id, err := c.ID(&imap.IDData{Name: "mailyard-test", Version: "1"}).Wait()
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "Mailyard" || id.Vendor != "Mailyard" || id.Version == "" {
		t.Fatalf("ID: %+v", id)
	}
}

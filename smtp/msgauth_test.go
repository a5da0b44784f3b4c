package smtp

import (
	"context"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// msgAuthStack: submission signs with example.test's DKIM key, the MX
// verifies through an in-process DNS holding that key, SPF and DMARC
// records for example.test and remote.test.
type msgAuthStack struct {
	*realStack
	dns  *mockdns.Resolver
	keys *dkim.Keys
}

func startMsgAuthStack(t testing.TB) *msgAuthStack {
	t.Helper()
	return startMsgAuthStackVerify(t, true)
}

// startMsgAuthStackVerify is startMsgAuthStack with MX verification on or
// off (signing stays on).
func startMsgAuthStackVerify(t testing.TB, verify bool) *msgAuthStack {
	t.Helper()
	return startMsgAuthStackResolver(t, verify, false)
}

// startMsgAuthStackResolver is startMsgAuthStackVerify, with the DNS
// answers behind a dkim.CachingResolver if cached is set (as the
// reference server has them).
func startMsgAuthStackResolver(t testing.TB, verify, cached bool) *msgAuthStack {
	t.Helper()
	m := &msgAuthStack{dns: &mockdns.Resolver{Zones: map[string]mockdns.Zone{}}}
	m.realStack = startRealStackWith(t,
		func(o *Options, _ *sqlite.Store) {
			switch {
			case verify && cached:
				o.VerifyResolver = &dkim.CachingResolver{Resolver: m.dns}
			case verify:
				o.VerifyResolver = m.dns
			}
		},
		func(o *Options, st *sqlite.Store) {
			m.keys = dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{})
			o.DKIMKeys = m.keys
		})
	ctx := context.Background()
	if _, err := m.keys.Generate(ctx, "example.test", "s1", dkim.RSA); err != nil {
		t.Fatal(err)
	}
	k, err := m.keys.Activate(ctx, "example.test", "s1")
	if err != nil {
		t.Fatal(err)
	}
	m.dns.Zones[k.RecordName()+"."] = mockdns.Zone{TXT: []string{k.TXT()}}
	m.dns.Zones["example.test."] = mockdns.Zone{TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}}
	m.dns.Zones["_dmarc.example.test."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=reject"}}
	m.dns.Zones["reject.test."] = mockdns.Zone{TXT: []string{"v=spf1 ip4:192.0.2.1 -all"}}
	m.dns.Zones["_dmarc.reject.test."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=reject"}}
	m.dns.Zones["quarantine.test."] = mockdns.Zone{TXT: []string{"v=spf1 ip4:192.0.2.1 -all"}}
	m.dns.Zones["_dmarc.quarantine.test."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=quarantine"}}
	return m
}

// stripTrace drops our Return-Path and Received fields from a stored
// message, leaving what the next hop would get.
func stripTrace(t *testing.T, msg string) string {
	t.Helper()
	for {
		switch {
		case strings.HasPrefix(msg, "Return-Path:"), strings.HasPrefix(msg, "Received:"):
			i := strings.Index(msg, "\r\n")
			for i >= 0 && i+2 < len(msg) && (msg[i+2] == ' ' || msg[i+2] == '\t') {
				i += 2 + strings.Index(msg[i+2:], "\r\n")
			}
			msg = msg[i+2:]
		default:
			return msg
		}
	}
}

// Mail submitted by alice is DKIM-signed with example.test's key; relayed
// to our MX from an address SPF allows, it passes DKIM, SPF and DMARC, and
// the stamped Authentication-Results says so.
func TestSubmissionSignsAndMXVerifies(t *testing.T) {
	m := startMsgAuthStack(t)
	alice := m.user(t, "alice@example.test", 0)
	bob := m.user(t, "bob@example.test", 0)

	c := m.sub.authClient(t, m.tls, "alice@example.test", "pw")
	body := "From: Alice <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: signed\r\nMessage-ID: <1@example.test>\r\n\r\nhello\r\n"
	if err := send(c, "alice@example.test", []string{"bob@example.test"}, body); err != nil {
		t.Fatal(err)
	}
	got := m.inbox(t, bob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	signed := stripTrace(t, got[0])
	if !strings.HasPrefix(signed, "DKIM-Signature:") || !strings.Contains(signed, "d=example.test") || !strings.HasSuffix(signed, body) {
		t.Fatalf("submitted message not signed as expected:\n%s", signed)
	}

	// The signed message arrives at the MX (as from another site of ours).
	mx := m.ts.client(t)
	if err := send(mx, "alice@example.test", []string{"alice@example.test"}, signed); err != nil {
		t.Fatalf("MX refused a message that passes DMARC: %v", err)
	}
	in := m.inbox(t, alice)
	if len(in) != 1 {
		t.Fatalf("alice has %d messages", len(in))
	}
	ar := stripTrace(t, in[0])
	for _, want := range []string{"Authentication-Results: mx.example.test", "dkim=pass", "spf=pass", "dmarc=pass"} {
		if !strings.Contains(ar[:strings.Index(ar, "DKIM-Signature:")], want) {
			t.Errorf("stored message lacks %q:\n%s", want, ar)
		}
	}
}

// DMARC p=reject refuses at DATA and stores nothing; p=quarantine files
// the message in Junk; a forged Authentication-Results naming us is
// removed and ours added.
func TestMXDMARCPolicyAndForgedAuthResults(t *testing.T) {
	m := startMsgAuthStack(t)
	bob := m.user(t, "bob@example.test", 0)
	c := m.ts.client(t)

	err := send(c, "x@reject.test", []string{"bob@example.test"}, "From: <x@reject.test>\r\nSubject: spoof\r\n\r\nx\r\n")
	wantCode(t, err, 550, "5.7.1")
	if got := m.inbox(t, bob); len(got) != 0 {
		t.Fatalf("DMARC reject stored %d messages", len(got))
	}
	c.Reset()

	forged := "Authentication-Results: MX.example.test; dkim=pass; dmarc=pass\r\nFrom: <y@quarantine.test>\r\nSubject: q\r\n\r\ny\r\n"
	if err := send(c, "y@quarantine.test", []string{"bob@example.test"}, forged); err != nil {
		t.Fatalf("quarantine: %v", err)
	}
	if got := m.inbox(t, bob); len(got) != 0 {
		t.Fatalf("quarantined message in INBOX")
	}
	ctx := context.Background()
	msgs, err := m.st.ListMessages(ctx, bob.ID, "Junk", nil)
	if err != nil || len(msgs) != 1 {
		t.Fatalf("Junk holds %d messages (%v)", len(msgs), err)
	}
	rc, err := m.st.OpenBody(ctx, bob.ID, "Junk", msgs[0].UID)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		t.Fatal(err)
	}
	stored := stripTrace(t, string(raw))
	if strings.Count(stored, "Authentication-Results:") != 1 || !strings.Contains(stored, "dmarc=fail") || strings.Contains(stored, "dkim=pass") {
		t.Fatalf("forged Authentication-Results not replaced:\n%s", stored)
	}
}

// hangingResolver never answers: every lookup waits for its context.
type hangingResolver struct{}

func (hangingResolver) LookupTXT(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hangingResolver) LookupMX(ctx context.Context, _ string) ([]*net.MX, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hangingResolver) LookupIPAddr(ctx context.Context, _ string) ([]net.IPAddr, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}
func (hangingResolver) LookupAddr(ctx context.Context, _ string) ([]string, error) {
	<-ctx.Done()
	return nil, ctx.Err()
}

// DNS that does not answer within the verification budget yields
// temperror results (RFC 7489 §6.6.2: local policy; we deliver and mark),
// not a 451 that the sender would meet again on every retry.
func TestMXVerificationDNSTimeoutDelivers(t *testing.T) {
	m := startRealStackWith(t, func(o *Options, _ *sqlite.Store) {
		o.VerifyResolver, o.VerifyTimeout = hangingResolver{}, 200*time.Millisecond
	}, nil)
	bob := m.user(t, "bob@example.test", 0)
	c := m.ts.client(t)
	start := time.Now()
	msg := "From: <x@slow.test>\r\nSubject: slow dns\r\nDKIM-Signature: v=1; a=rsa-sha256; d=slow.test; s=s1; h=from; bh=AAAA; b=AAAA\r\n\r\nhi\r\n"
	if err := send(c, "x@slow.test", []string{"bob@example.test"}, msg); err != nil {
		t.Fatalf("message refused when DNS timed out: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("verification took %v with a 200ms budget", d)
	}
	got := m.inbox(t, bob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	for _, want := range []string{"Authentication-Results: ", "dkim=temperror", "spf=temperror", "dmarc=temperror"} {
		if !strings.Contains(got[0], want) {
			t.Errorf("stored message lacks %q:\n%s", want, got[0])
		}
	}
}

// shortDeliverer reads only the start of the message and reports success.
type shortDeliverer struct{ calls atomic.Int32 }

func (d *shortDeliverer) Deliver(_ context.Context, dl store.Delivery, body io.Reader) ([]store.Delivered, error) {
	d.calls.Add(1)
	if _, err := io.ReadFull(body, make([]byte, 16)); err != nil {
		return nil, err
	}
	out := make([]store.Delivered, len(dl.Recipients))
	for i, r := range dl.Recipients {
		out[i] = store.Delivered{Recipient: r, Mailbox: "INBOX", UID: 1}
	}
	return out, nil
}

// With verification on, the client's data is all spooled before delivery:
// a Deliverer that stops reading early must still not get a 250 for a
// truncated message.
func TestSpooledTruncatedDeliveryNotAcknowledged(t *testing.T) {
	d := &shortDeliverer{}
	ts := startServer(t, Options{Mode: ModeMX, Deliverer: d, VerifyResolver: &mockdns.Resolver{Zones: map[string]mockdns.Zone{}}})
	c := ts.client(t)
	err := send(c, "x@remote.test", []string{"bob@example.test"}, "From: <x@remote.test>\r\nSubject: t\r\n\r\n"+strings.Repeat("body\r\n", 100))
	if n := d.calls.Load(); n != 1 {
		t.Fatalf("Deliverer called %d times", n)
	}
	wantCode(t, err, 451, "4.3.0")
}

// countingDNS counts the TXT lookups that reach the mock DNS.
type countingDNS struct {
	*mockdns.Resolver
	txt atomic.Int32
}

func (c *countingDNS) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.txt.Add(1)
	return c.Resolver.LookupTXT(ctx, name)
}

// The per-message deadline wrapper must not hide the caching resolver's
// parsed DKIM keys: a stream of mail from one selector costs one key
// lookup and one parse.
func TestDeadlineResolverKeepsKeyCache(t *testing.T) {
	m := startMsgAuthStackVerify(t, false)
	k, err := m.keys.Signing(context.Background(), "example.test")
	if err != nil || len(k) == 0 {
		t.Fatal(err)
	}
	up := &countingDNS{Resolver: m.dns}
	cache := &dkim.CachingResolver{Resolver: up}
	ctx := context.Background()
	for range 3 {
		r := newDeadlineResolver(cache, time.Now().Add(time.Minute))
		rec, err := dkim.LookupKeyRecord(ctx, r, k[0].RecordName())
		if err != nil || rec.PublicKey == nil {
			t.Fatalf("key record: %+v %v", rec, err)
		}
	}
	if n := up.txt.Load(); n != 1 {
		t.Fatalf("%d TXT lookups for one key, want 1", n)
	}
}

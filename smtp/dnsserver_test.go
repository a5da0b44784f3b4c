package smtp

import (
	"context"
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/internal/testpeer"
	"github.com/mailyard/mailyard/store/sqlite"
)

// These tests verify through a DNS server on loopback, asked by the
// pure-Go resolver as a deployment asks its configured server: the errors
// are net.Resolver's own, which name the server asked.

// loopbackResolver asks the DNS server at addr and nothing else.
func loopbackResolver(addr string) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
}

// authResults returns the Authentication-Results field of a stored
// message, unfolded.
func authResults(t *testing.T, msg string) string {
	t.Helper()
	i := strings.Index(msg, "Authentication-Results:")
	if i < 0 {
		t.Fatalf("no Authentication-Results:\n%s", msg)
	}
	f := msg[i:]
	end := strings.Index(f, "\r\n")
	for end >= 0 && end+2 < len(f) && (f[end+2] == ' ' || f[end+2] == '\t') {
		end += 2 + strings.Index(f[end+2:], "\r\n")
	}
	return strings.ReplaceAll(f[:end], "\r\n", "")
}

// ipLiteral matches an IPv4 address or an IPv6 address (two colons at
// least; a host:port has one).
var ipLiteral = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*`)

// With a DNS server that never answers, DATA waits one deadline (the
// message's lookups run at once under VerifyTimeout), the message is
// delivered with temperror results, and the stored field says what
// failed without naming the DNS server that was asked.
func TestMXVerificationSilentDNSServer(t *testing.T) {
	const deadline = time.Second
	addr := testpeer.SilentDNS(t)
	m := startRealStackWith(t, func(o *Options, _ *sqlite.Store) {
		o.VerifyResolver, o.VerifyTimeout = loopbackResolver(addr), deadline
	}, nil)
	bob := m.user(t, "bob@example.test", 0)
	c := m.ts.client(t)
	msg := "From: <x@slow.test>\r\nSubject: dead dns\r\nDKIM-Signature: v=1; a=rsa-sha256; d=slow.test; s=s1; h=from; bh=AAAA; b=AAAA\r\n\r\nhi\r\n"
	start := time.Now()
	if err := send(c, "x@slow.test", []string{"bob@example.test"}, msg); err != nil {
		t.Fatalf("message refused when DNS did not answer: %v", err)
	}
	took := time.Since(start)
	t.Logf("DATA with a silent DNS server and a %v deadline: %v", deadline, took)
	if took > 3*deadline {
		t.Errorf("verification took %v with a %v deadline", took, deadline)
	}
	got := m.inbox(t, bob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	ar := authResults(t, got[0])
	for _, want := range []string{"dkim=temperror", "spf=temperror", "dmarc=temperror", "DNS timeout"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %q: %s", want, ar)
		}
	}
	if ip := ipLiteral.FindString(ar); ip != "" {
		t.Errorf("Authentication-Results names %q: %s", ip, ar)
	}
	if _, port, _ := net.SplitHostPort(addr); strings.Contains(ar, ":"+port) {
		t.Errorf("Authentication-Results names the DNS server's port: %s", ar)
	}
}

// quietDNSLog discards the mock DNS server's log.
type quietDNSLog struct{}

func (quietDNSLog) Printf(string, ...any) {}

// Through a working DNS server on loopback the verdicts are the real
// ones: a signed message from an SPF-allowed address passes DKIM, SPF and
// DMARC; a spoof of a p=reject domain is refused at DATA.
func TestMXVerificationDNSServerVerdicts(t *testing.T) {
	var keys []dkim.Key
	m := startRealStackWith(t, func(o *Options, st *sqlite.Store) {
		ctx := context.Background()
		ks := dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{})
		if _, err := ks.Generate(ctx, "example.test", "s1", dkim.Ed25519); err != nil {
			t.Fatal(err)
		}
		k, err := ks.Activate(ctx, "example.test", "s1")
		if err != nil {
			t.Fatal(err)
		}
		keys = []dkim.Key{k}
		srv, err := mockdns.NewServerWithLogger(map[string]mockdns.Zone{
			k.RecordName() + ".":   {TXT: []string{k.TXT()}},
			"example.test.":        {TXT: []string{"v=spf1 ip4:127.0.0.1 -all"}},
			"_dmarc.example.test.": {TXT: []string{"v=DMARC1; p=reject"}},
			"reject.test.":         {TXT: []string{"v=spf1 ip4:192.0.2.1 -all"}},
			"_dmarc.reject.test.":  {TXT: []string{"v=DMARC1; p=reject"}},
		}, quietDNSLog{}, false)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { srv.Close() })
		o.VerifyResolver = &dkim.CachingResolver{Resolver: loopbackResolver(srv.LocalAddr().String())}
	}, nil)
	bob := m.user(t, "bob@example.test", 0)
	c := m.ts.client(t)

	body := "From: Alice <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: signed\r\nMessage-ID: <2@example.test>\r\n\r\nhello\r\n"
	sig, err := dkim.Sign(context.Background(), keys, strings.NewReader(body), dkim.SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := send(c, "alice@example.test", []string{"bob@example.test"}, sig+body); err != nil {
		t.Fatalf("MX refused a message that passes DMARC: %v", err)
	}
	got := m.inbox(t, bob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	ar := authResults(t, got[0])
	for _, want := range []string{"dkim=pass", "spf=pass", "dmarc=pass"} {
		if !strings.Contains(ar, want) {
			t.Errorf("Authentication-Results lacks %q: %s", want, ar)
		}
	}
	c.Reset()
	err = send(c, "x@reject.test", []string{"bob@example.test"}, "From: <x@reject.test>\r\nSubject: spoof\r\n\r\nx\r\n")
	wantCode(t, err, 550, "5.7.1")
}

package dkim

import (
	"context"
	"net"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// barrierResolver answers each lookup only once every name in want is
// being looked up at the same time; lookups made one after the other
// never see that, and fail when the barrier gives up.
type barrierResolver struct {
	Resolver
	want    map[string]bool
	giveUp  time.Duration
	mu      sync.Mutex
	pending map[string]bool
	all     chan struct{}
}

func newBarrierResolver(r Resolver, giveUp time.Duration, names ...string) *barrierResolver {
	b := &barrierResolver{Resolver: r, want: map[string]bool{}, giveUp: giveUp, pending: map[string]bool{}, all: make(chan struct{})}
	for _, n := range names {
		b.want[n] = true
	}
	return b
}

// wait blocks until every wanted name is in flight (or was), or fails
// the lookup as a timeout.
func (b *barrierResolver) wait(ctx context.Context, name string) error {
	name = strings.TrimSuffix(name, ".")
	b.mu.Lock()
	if b.want[name] && !b.pending[name] {
		b.pending[name] = true
		if len(b.pending) == len(b.want) {
			close(b.all)
		}
	}
	b.mu.Unlock()
	t := time.NewTimer(b.giveUp)
	defer t.Stop()
	select {
	case <-b.all:
		return nil
	case <-ctx.Done():
	case <-t.C:
	}
	return &net.DNSError{Err: "i/o timeout", Name: name, Server: "10.9.8.7:53", IsTimeout: true}
}

func (b *barrierResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	if err := b.wait(ctx, name); err != nil {
		return nil, err
	}
	return b.Resolver.LookupTXT(ctx, name)
}

// The DNS lookups of one message run at once: the two DKIM keys, the SPF
// record and the DMARC policy are all asked for before any is answered,
// and the verdicts are those of a working DNS.
func TestVerifyLookupsRunConcurrently(t *testing.T) {
	keys, _ := activeKeys(t, RSA, Ed25519)
	msg, z := signed(t, keys, crlf(plainMessage), SignOptions{})
	z["example.com"] = []string{"v=spf1 ip4:192.0.2.0/24 -all"}
	z["_dmarc.example.com"] = []string{"v=DMARC1; p=reject"}
	names := []string{"example.com", "_dmarc.example.com"}
	for _, k := range keys {
		names = append(names, k.RecordName())
	}
	res := newBarrierResolver(zones(z), 10*time.Second, names...)
	env := Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "mail.example.com", MailFrom: "alice@example.com"}
	start := time.Now()
	r := verify(t, res, msg, env, VerifyOptions{})
	if got := dkimStatuses(r); got != "example.com=pass example.com=pass" || r.SPF.Status != StatusPass || r.DMARC.Status != StatusPass {
		t.Fatalf("after %v: dkim %s, spf %s (%s), dmarc %s (%s)", time.Since(start), got, r.SPF.Status, r.SPF.Reason, r.DMARC.Status, r.DMARC.Reason)
	}
}

// ipLiteral matches an IPv4 address or an IPv6 address with at least two
// colons (a host:port has one).
var ipLiteral = regexp.MustCompile(`\b\d{1,3}(\.\d{1,3}){3}\b|[0-9A-Fa-f]*:[0-9A-Fa-f]*:[0-9A-Fa-f:.]*`)

// DNS failures are temperror with a reason that names the failure, never
// the resolver's words: they name the DNS server asked (an internal
// address) and must not be written into messages (RFC 8601 §2.7 reasons
// are free text).
func TestDNSFailureReasonsNameNoServer(t *testing.T) {
	keys, _ := activeKeys(t, RSA)
	msg, _ := signed(t, keys, crlf(plainMessage), SignOptions{})
	env := Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "mail.example.com", MailFrom: "alice@example.com"}
	for _, tc := range []struct {
		name   string
		err    error
		status Status
		reason string
	}{
		{"timeout", &net.DNSError{Err: "i/o timeout", Name: "x", Server: "10.9.8.7:53", IsTimeout: true}, StatusTempError, "DNS timeout"},
		{"servfail", &net.DNSError{Err: "server misbehaving", Name: "x", Server: "[fd00::53]:53", IsTemporary: true}, StatusTempError, "DNS lookup failed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, failingResolver{tc.err}, msg, env, VerifyOptions{})
			if r.DKIM[0].Status != tc.status || r.SPF.Status != tc.status || r.DMARC.Status != tc.status {
				t.Fatalf("dkim %+v, spf %+v, dmarc %+v", r.DKIM[0], r.SPF, r.DMARC)
			}
			for _, reason := range []string{r.DKIM[0].Reason, r.SPF.Reason, r.DMARC.Reason} {
				if !strings.Contains(reason, tc.reason) {
					t.Errorf("reason %q lacks %q", reason, tc.reason)
				}
			}
			if ip := ipLiteral.FindString(r.AuthResults); ip != "" {
				t.Fatalf("Authentication-Results names %q:\n%s", ip, r.AuthResults)
			}
		})
	}
	// A key that is not there is a permerror, named as such.
	r := verify(t, failingResolver{&net.DNSError{Err: "no such host", Name: "x", Server: "10.9.8.7:53", IsNotFound: true}}, msg, env, VerifyOptions{})
	if r.DKIM[0].Status != StatusPermError || !strings.Contains(r.DKIM[0].Reason, "no such DNS record") || strings.Contains(r.AuthResults, "10.9.8.7") {
		t.Fatalf("no key: %+v\n%s", r.DKIM[0], r.AuthResults)
	}
}

func TestIPLiteralPattern(t *testing.T) {
	for s, want := range map[string]bool{"on 10.9.8.7:53": true, "[fd00::53]:53": true, "::1": true, "example.com:25": false, "dkim=pass header.d=example.com": false, "reason=\"DNS timeout\"": false} {
		if got := ipLiteral.MatchString(s); got != want {
			t.Errorf("%q: %v", s, got)
		}
	}
}

// failingResolver fails every lookup with err.
type failingResolver struct{ err error }

func (f failingResolver) LookupTXT(context.Context, string) ([]string, error) { return nil, f.err }
func (f failingResolver) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, f.err }
func (f failingResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, f.err
}
func (f failingResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, f.err }

package dkim

import (
	"context"
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"
)

// countingResolver answers TXT queries from a map and counts them.
type countingResolver struct {
	txt   map[string][]string
	temp  map[string]bool
	calls map[string]int
}

func (r *countingResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	r.calls[name]++
	if r.temp[name] {
		return nil, &net.DNSError{Err: "timeout", Name: name, IsTimeout: true}
	}
	if v, ok := r.txt[name]; ok {
		return v, nil
	}
	return nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}
func (r *countingResolver) LookupMX(context.Context, string) ([]*net.MX, error) { return nil, nil }
func (r *countingResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return nil, nil
}
func (r *countingResolver) LookupAddr(context.Context, string) ([]string, error) { return nil, nil }

func TestCachingResolver(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	up := &countingResolver{txt: map[string][]string{"a.test": {"v=spf1 -all"}}, temp: map[string]bool{"slow.test": true}, calls: map[string]int{}}
	c := &CachingResolver{Resolver: up, TTL: time.Minute, NegativeTTL: 10 * time.Second, MaxEntries: 3, Now: func() time.Time { return now }}
	ctx := context.Background()

	for i := 0; i < 3; i++ {
		if v, err := c.LookupTXT(ctx, "a.test"); err != nil || v[0] != "v=spf1 -all" {
			t.Fatalf("lookup %d: %v %v", i, v, err)
		}
		if _, err := c.LookupTXT(ctx, "none.test"); err == nil {
			t.Fatal("NXDOMAIN answered without error")
		}
		if _, err := c.LookupTXT(ctx, "slow.test"); err == nil {
			t.Fatal("timeout answered without error")
		}
	}
	if up.calls["a.test"] != 1 || up.calls["none.test"] != 1 {
		t.Fatalf("answers not cached: %v", up.calls)
	}
	if up.calls["slow.test"] != 3 {
		t.Fatalf("temporary failure cached: %v", up.calls)
	}
	now = now.Add(11 * time.Second) // negative entry expired, positive not
	c.LookupTXT(ctx, "a.test")
	c.LookupTXT(ctx, "none.test")
	if up.calls["a.test"] != 1 || up.calls["none.test"] != 2 {
		t.Fatalf("after 11s: %v", up.calls)
	}
	now = now.Add(time.Minute)
	c.LookupTXT(ctx, "a.test")
	if up.calls["a.test"] != 2 {
		t.Fatalf("expired answer served: %v", up.calls)
	}
	for i := 0; i < 10; i++ {
		c.LookupTXT(ctx, fmt.Sprintf("n%d.test", i))
	}
	if n := len(c.entries); n > 3 {
		t.Fatalf("cache holds %d entries, bound 3", n)
	}
}

// sliceResolver answers every lookup with fixed slices.
type sliceResolver struct{}

func (sliceResolver) LookupTXT(context.Context, string) ([]string, error) {
	return []string{"v=spf1 -all"}, nil
}
func (sliceResolver) LookupMX(context.Context, string) ([]*net.MX, error) {
	return []*net.MX{{Host: "mx.a.test.", Pref: 10}}, nil
}
func (sliceResolver) LookupIPAddr(context.Context, string) ([]net.IPAddr, error) {
	return []net.IPAddr{{IP: net.IPv4(192, 0, 2, 1)}}, nil
}
func (sliceResolver) LookupAddr(context.Context, string) ([]string, error) {
	return []string{"host.a.test."}, nil
}

// A caller that modifies an answer must not change what the next caller
// gets from the cache.
func TestCachingResolverAnswersAreCopies(t *testing.T) {
	c := &CachingResolver{Resolver: sliceResolver{}}
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		txt, _ := c.LookupTXT(ctx, "a.test")
		mx, _ := c.LookupMX(ctx, "a.test")
		ips, _ := c.LookupIPAddr(ctx, "mx.a.test")
		names, _ := c.LookupAddr(ctx, "192.0.2.1")
		if txt[0] != "v=spf1 -all" || mx[0].Host != "mx.a.test." || !ips[0].IP.Equal(net.IPv4(192, 0, 2, 1)) || names[0] != "host.a.test." {
			t.Fatalf("round %d: cached answers were modified through an earlier result: %v %v %v %v", i, txt, mx[0], ips, names)
		}
		txt[0] = "v=spf1 +all"
		mx[0].Host = "evil.test."
		ips[0].IP[len(ips[0].IP)-1] = 99
		names[0] = "evil.test."
	}
}

// A full cache evicts in batches: after overflowing a bound of 100 with
// fresh names, it holds no more than the bound.
func TestCachingResolverEvictsInBatches(t *testing.T) {
	up := &countingResolver{txt: map[string][]string{}, calls: map[string]int{}}
	c := &CachingResolver{Resolver: up, MaxEntries: 100}
	ctx := context.Background()
	for i := 0; i < 1000; i++ {
		c.LookupTXT(ctx, fmt.Sprintf("n%d.test", i))
		if n := len(c.entries); n > 100 {
			t.Fatalf("cache holds %d entries, bound 100", n)
		}
	}
	// The newest answer survived the eviction.
	c.LookupTXT(ctx, "n999.test")
	if up.calls["n999.test"] != 1 {
		t.Fatalf("newest entry evicted: %d calls", up.calls["n999.test"])
	}
}

// countingTXT counts the TXT lookups that reach it.
type countingTXT struct {
	Resolver
	n int
}

func (c *countingTXT) LookupTXT(ctx context.Context, name string) ([]string, error) {
	c.n++
	return c.Resolver.LookupTXT(ctx, name)
}

func TestCachingResolverKeyRecord(t *testing.T) {
	pub := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)).Public().(ed25519.PublicKey)
	good := "v=DKIM1; k=ed25519; t=s; p=" + base64.StdEncoding.EncodeToString(pub)
	up := &countingTXT{Resolver: zones(map[string][]string{
		"good._domainkey.example.com": {good},
		"bad._domainkey.example.com":  {"v=DKIM1; p=%%%"},
		"two._domainkey.example.com":  {good, good},
	})}
	c := &CachingResolver{Resolver: up}
	ctx := context.Background()
	for range 3 {
		rec, err := c.LookupKeyRecord(ctx, "good._domainkey.example.com")
		if err != nil || !pub.Equal(rec.PublicKey) || !slices.Equal(rec.Flags, []string{"s"}) {
			t.Fatalf("good: %+v %v", rec, err)
		}
		rec.Flags[0] = "changed" // the caller's own copy
	}
	for _, name := range []string{"bad._domainkey.example.com", "two._domainkey.example.com"} {
		for range 2 {
			if _, err := c.LookupKeyRecord(ctx, name); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%s: %v, want ErrMalformed", name, err)
			}
		}
	}
	var dnsErr *net.DNSError
	for range 2 {
		if _, err := c.LookupKeyRecord(ctx, "none._domainkey.example.com"); !errors.As(err, &dnsErr) || !dnsErr.IsNotFound {
			t.Fatalf("none: %v", err)
		}
	}
	// One lookup per name: parsed records, unusable records and "no
	// such name" are all answers.
	if up.n != 4 {
		t.Fatalf("%d TXT lookups, want 4", up.n)
	}
	// A resolver without the method gets the same through LookupKeyRecord.
	if rec, err := LookupKeyRecord(ctx, up, "good._domainkey.example.com"); err != nil || !pub.Equal(rec.PublicKey) {
		t.Fatalf("uncached: %+v %v", rec, err)
	}
}

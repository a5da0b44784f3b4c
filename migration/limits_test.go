package migration

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestParseAllowlist(t *testing.T) {
	a, err := parseAllowlist([]string{"10.0.0.0/8", " 192.0.2.7 ", "Mail.Example.COM.", "2001:db8::/32", "::ffff:198.51.100.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		addr string
		ok   bool
	}{
		{"10.1.2.3", true}, {"11.0.0.1", false}, {"192.0.2.7", true}, {"192.0.2.8", false},
		{"2001:db8::1", true}, {"2001:db9::1", false}, {"::ffff:10.0.0.1", true}, {"198.51.100.1", true},
	} {
		if got := a.containsAddr(netip.MustParseAddr(c.addr)); got != c.ok {
			t.Errorf("%s: %v, want %v", c.addr, got, c.ok)
		}
	}
	if !a.names["mail.example.com"] {
		t.Errorf("names %v", a.names)
	}
	for _, bad := range []string{"", "10.0.0.0/33", "*.example.com", "a..b", "-x.example", "fe80::1%eth0", strings.Repeat("a", 300), "exa mple.com"} {
		if _, err := parseAllowlist([]string{bad}); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestAllowlistCheck(t *testing.T) {
	ctx := context.Background()
	a, err := parseAllowlist([]string{"127.0.0.0/8", "mail.example.com"})
	if err != nil {
		t.Fatal(err)
	}
	r := net.DefaultResolver
	if addrs, err := a.check(ctx, r, "MAIL.example.com"); err != nil || addrs != nil {
		t.Errorf("listed name: %v %v", addrs, err)
	}
	if addrs, err := a.check(ctx, r, "127.0.0.5"); err != nil || len(addrs) != 1 {
		t.Errorf("listed block: %v %v", addrs, err)
	}
	if _, err := a.check(ctx, r, "192.0.2.1"); err == nil {
		t.Error("unlisted IP allowed")
	}
	if _, err := a.check(ctx, r, "other.invalid"); err == nil {
		t.Error("unresolvable, unlisted name allowed")
	}
	empty, _ := parseAllowlist(nil)
	if _, err := empty.check(ctx, r, "127.0.0.1"); err == nil {
		t.Error("empty allowlist allowed a host")
	}
}

func TestHostLimiter(t *testing.T) {
	h := newHostLimiter(2)
	ctx := context.Background()
	r1, _ := h.acquire(ctx, "Mail.example.com")
	r2, _ := h.acquire(ctx, "mail.example.com.")
	if n := h.inUse("mail.example.com"); n != 2 {
		t.Fatalf("in use %d", n)
	}
	// A third waits until one is released; other hosts are independent.
	r3, err := h.acquire(ctx, "other.example.com")
	if err != nil {
		t.Fatal(err)
	}
	r3()
	tctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := h.acquire(tctx, "mail.example.com"); err == nil {
		t.Fatal("third connection allowed")
	}
	got := make(chan func())
	go func() {
		r, _ := h.acquire(ctx, "mail.example.com")
		got <- r
	}()
	r1()
	r1() // idempotent
	r4 := <-got
	r2()
	r4()
	if n := h.inUse("mail.example.com"); n != 0 || len(h.sem) != 0 {
		t.Errorf("after release: %d in use, %d entries", n, len(h.sem))
	}
}

func TestBandwidth(t *testing.T) {
	b := newBandwidth(1<<20, time.Now) // 1 MiB/s, burst 1 MiB
	ctx := context.Background()
	start := time.Now()
	if err := b.take(ctx, 1<<20); err != nil {
		t.Fatal(err)
	}
	if err := b.take(ctx, 512<<10); err != nil {
		t.Fatal(err)
	}
	// 1.5 MiB at 1 MiB/s with a 1 MiB burst takes at least ~0.5s.
	if d := time.Since(start); d < 400*time.Millisecond {
		t.Errorf("1.5 MiB took %v", d)
	}
	var wg sync.WaitGroup
	for i := 0; i < 4; i++ {
		wg.Go(func() { b.take(ctx, 1) })
	}
	wg.Wait()
	// Waiting for a large debt stops with the context.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if err := newBandwidth(1<<20, time.Now).take(cctx, 10<<20); err == nil {
		t.Error("take ignored a cancelled context")
	}
}

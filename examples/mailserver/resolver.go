package main

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/mailyard/mailyard/dkim"
)

// newResolver returns the DNS resolver for DKIM, SPF and DMARC and for
// the queue's MX lookups: the configured server (always over the pure-Go
// resolver, so that nothing else is asked), or the system's; either way
// each lookup is bounded by dns.timeout (net.Resolver's own retries follow
// resolv.conf, seconds per attempt, whatever the dial timeout). Its
// errors name the configured server: net.Resolver's would name the
// resolv.conf server it meant to ask, which was never asked.
func newResolver(c DNSConfig) dkim.Resolver {
	timeout := c.Timeout.Duration
	r := &net.Resolver{}
	if c.Server != "" {
		r = &net.Resolver{
			PreferGo: true,
			Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
				d := net.Dialer{Timeout: timeout}
				return d.DialContext(ctx, network, c.Server)
			},
		}
	}
	return timeoutResolver{r: r, timeout: timeout, server: c.Server}
}

// timeoutResolver bounds each lookup by its own timeout.
type timeoutResolver struct {
	r       *net.Resolver
	timeout time.Duration
	server  string // dns.server, empty for the system's
}

// lookup runs f bounded by the timeout and names the configured server in
// its error.
func lookup[T any](t timeoutResolver, ctx context.Context, name string, f func(context.Context, string) (T, error)) (T, error) {
	if t.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, t.timeout)
		defer cancel()
	}
	v, err := f(ctx, name)
	var dnsErr *net.DNSError
	if err != nil && t.server != "" && errors.As(err, &dnsErr) {
		named := *dnsErr
		named.Server = t.server
		err = &named
	}
	return v, err
}

func (t timeoutResolver) LookupTXT(ctx context.Context, name string) ([]string, error) {
	return lookup(t, ctx, name, t.r.LookupTXT)
}

func (t timeoutResolver) LookupMX(ctx context.Context, name string) ([]*net.MX, error) {
	return lookup(t, ctx, name, t.r.LookupMX)
}

func (t timeoutResolver) LookupIPAddr(ctx context.Context, host string) ([]net.IPAddr, error) {
	return lookup(t, ctx, host, t.r.LookupIPAddr)
}

func (t timeoutResolver) LookupAddr(ctx context.Context, addr string) ([]string, error) {
	return lookup(t, ctx, addr, t.r.LookupAddr)
}

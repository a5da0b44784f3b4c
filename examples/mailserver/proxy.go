package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"

	"github.com/mailyard/mailyard/internal/proxyproto"
	"github.com/mailyard/mailyard/routing"
)

// ProxyConfig is [proxy]: the PROXY protocol (v1 and v2) from load
// balancers, read on the listeners that set proxy_protocol = true.
type ProxyConfig struct {
	// Trusted are the balancers, as CIDR networks or addresses. Only they
	// may send a PROXY header, and on a proxy_protocol listener they
	// must; the address in the header is then the client's for limits,
	// relaynets, Received header fields and logs.
	Trusted []string `toml:"trusted"`
	// Optional lets a trusted source connect without a header (served
	// with its own address; one that sends nothing waits HeaderTimeout).
	Optional bool `toml:"optional"`
	// RefuseDirect closes connections from other sources on
	// proxy_protocol listeners; by default they are served as direct
	// clients. Either way a PROXY header from them is refused.
	RefuseDirect bool `toml:"refuse_direct"`
	// HeaderTimeout bounds the wait for a trusted source's header.
	HeaderTimeout Duration `toml:"header_timeout"`
}

// networks returns the trusted networks.
func (c ProxyConfig) networks() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for i, s := range c.Trusted {
		p, err := routing.ParseNetwork(s)
		if err != nil {
			return nil, &keyError{fmt.Sprintf("proxy.trusted[%d]", i), err}
		}
		out = append(out, p)
	}
	return out, nil
}

// validateProxy checks [proxy] against the listeners that use it.
func (c Config) validateProxy() error {
	if _, err := c.Proxy.networks(); err != nil {
		return err
	}
	if c.Proxy.HeaderTimeout.Duration <= 0 {
		return &keyError{"proxy.header_timeout", errors.New("must be more than zero")}
	}
	for _, l := range c.proxied() {
		if len(c.Proxy.Trusted) == 0 {
			// Every header would be refused and, with optional off,
			// no balancer could connect.
			return &keyError{l + ".proxy_protocol", errors.New(`set without any "proxy.trusted" balancer`)}
		}
	}
	return nil
}

// proxied names the listeners with proxy_protocol = true.
func (c Config) proxied() []string {
	var out []string
	for _, l := range []struct {
		name string
		on   bool
	}{
		{"smtp", c.SMTP.ProxyProtocol}, {"submission", c.Submission.ProxyProtocol},
		{"submissions", c.Submissions.ProxyProtocol}, {"imap", c.IMAP.ProxyProtocol},
		{"imaps", c.IMAPS.ProxyProtocol}, {"dav", c.DAV.ProxyProtocol},
	} {
		if l.on {
			out = append(out, l.name)
		}
	}
	return out
}

// proxyListener wraps the raw socket of listener name in the PROXY
// protocol reader when on; it precedes TLS on implicit-TLS listeners.
func proxyListener(ln net.Listener, on bool, cfg ProxyConfig, logger *slog.Logger, name string) net.Listener {
	if !on {
		return ln
	}
	trusted, _ := cfg.networks() // validated with the config
	logger.Info("PROXY protocol on", "listener", name, "trusted", cfg.Trusted, "optional", cfg.Optional, "refuse_direct", cfg.RefuseDirect)
	return proxyproto.NewListener(ln, proxyproto.Options{
		Trusted:       trusted,
		Optional:      cfg.Optional,
		RefuseDirect:  cfg.RefuseDirect,
		HeaderTimeout: cfg.HeaderTimeout.Duration,
		Logger:        logger.With("listener", name),
	})
}

// defaultProxyConfig trusts no balancer: the PROXY protocol is off until
// a listener sets proxy_protocol = true.
func defaultProxyConfig() ProxyConfig {
	return ProxyConfig{Trusted: []string{}, HeaderTimeout: Duration{proxyproto.DefaultHeaderTimeout}}
}

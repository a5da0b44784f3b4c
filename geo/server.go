package geo

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// connectLocal starts the embedded server (unless External) and opens
// this site's own connection to it.
func (n *Node) connectLocal() error {
	if n.opts.External != "" {
		opts := []nats.Option{nats.Name("geo-" + n.opts.Site), nats.Timeout(connectTimeout), nats.MaxReconnects(-1)}
		if n.opts.TLS != nil {
			opts = append(opts, nats.Secure(n.opts.TLS.clientTLS(n.opts.Site)))
		}
		nc, err := nats.Connect(n.opts.External, opts...)
		if err != nil {
			return fmt.Errorf("geo: connecting to %s: %w", n.opts.External, err)
		}
		n.nc = nc
		return nil
	}
	host, port, err := splitListen(n.opts.Listen)
	if err != nil {
		return err
	}
	so := &server.Options{
		ServerName:                 n.opts.Site,
		Host:                       host,
		Port:                       port,
		JetStream:                  true,
		StoreDir:                   n.storeDir(),
		TLSConfig:                  n.opts.TLS.serverTLS(),
		TLSVerify:                  true,
		TLSTimeout:                 connectTimeout.Seconds(),
		CustomClientAuthentication: siteAuth{n},
		NoSigs:                     true,
		NoLog:                      true,
		DisableShortFirstPing:      true,
	}
	srv, err := server.NewServer(so)
	if err != nil {
		return fmt.Errorf("geo: embedded NATS: %w", err)
	}
	srv.Start()
	if !srv.ReadyForConnections(connectTimeout) {
		srv.Shutdown()
		return fmt.Errorf("geo: embedded NATS on %s:%d not ready after %s", host, port, connectTimeout)
	}
	n.srv = srv
	nc, err := nats.Connect("", nats.InProcessServer(srv), nats.Name("geo-"+n.opts.Site), nats.Timeout(connectTimeout))
	if err != nil {
		return fmt.Errorf("geo: in-process connection: %w", err)
	}
	n.nc = nc
	return nil
}

func splitListen(listen string) (string, int, error) {
	if listen == "" {
		return "127.0.0.1", 0, nil
	}
	h, p, err := net.SplitHostPort(listen)
	if err != nil {
		return "", 0, fmt.Errorf("%w: listen %q: %v", ErrConfig, listen, err)
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < 0 || port > 65535 {
		return "", 0, fmt.Errorf("%w: listen %q: bad port", ErrConfig, listen)
	}
	return h, port, nil
}

// siteAuth admits the site's own in-process connection with every right
// and a configured peer, from an allowed address with a certificate
// naming it, with the rights of peerPermissions; everything else is
// refused, and a verified site that is not linked here is reported as a
// one-ended link.
type siteAuth struct{ n *Node }

// Check implements server.Authentication.
func (a siteAuth) Check(c server.ClientAuthentication) bool {
	ra := c.RemoteAddress()
	if ra != nil && ra.Network() == "pipe" {
		return true // in-process: only this process can open one
	}
	if c.Kind() != server.CLIENT {
		return false
	}
	cs := c.GetTLSConnectionState()
	if _, self := certSite(cs, func(s string) bool { return s == a.n.opts.Site }); self {
		return true // the site's own key: its tools, with every right
	}
	peer, ok := certSite(cs, func(s string) bool { return a.n.linkFor(s) != nil })
	if !ok {
		if s := firstDNSName(cs); s != "" && s != a.n.opts.Site {
			a.n.mu.Lock()
			a.n.raise(context.Background(), Conflict{Site: s, Kind: ConflictOneEndedLink,
				Detail: fmt.Sprintf("site %s connects to %s, which has no link to it", s, a.n.opts.Site)})
			a.n.mu.Unlock()
		}
		return false
	}
	l := a.n.linkFor(peer)
	if !allowed(l.cfg.Allow, ra) {
		a.n.log.Warn("geo: peer connection from an address not allowed", "peer", peer, "addr", ra)
		return false
	}
	c.RegisterUser(&server.User{Username: peer, Permissions: peerPermissions(a.n.opts.Site, peer)})
	return true
}

func allowed(list []netip.Prefix, ra net.Addr) bool {
	if len(list) == 0 {
		return true
	}
	ap, err := netip.ParseAddrPort(ra.String())
	if err != nil {
		return false
	}
	for _, p := range list {
		if p.Contains(ap.Addr().Unmap()) {
			return true
		}
	}
	return false
}

// peerPermissions are what peer may do on self's server: read self's
// stream through its own durable consumer (and delete that consumer to
// read again from the start), and ask self for free/busy on
// a subject naming the peer. It can publish nothing else, so it cannot
// write self's stream or pose as a third site.
func peerPermissions(self, peer string) *server.Permissions {
	st, cn := streamName(self), consumerName(peer)
	return &server.Permissions{
		Publish: &server.SubjectPermission{Allow: []string{
			"$JS.API.INFO",
			"$JS.API.STREAM.INFO." + st,
			"$JS.API.CONSUMER.CREATE." + st + "." + cn,
			"$JS.API.CONSUMER.CREATE." + st + "." + cn + ".>",
			"$JS.API.CONSUMER.DURABLE.CREATE." + st + "." + cn,
			"$JS.API.CONSUMER.INFO." + st + "." + cn,
			"$JS.API.CONSUMER.DELETE." + st + "." + cn,
			"$JS.API.CONSUMER.MSG.NEXT." + st + "." + cn,
			"$JS.ACK." + st + "." + cn + ".>",
			"$JS.ACK.*.*." + st + "." + cn + ".>",
			fbSubject(self, peer),
		}},
		Subscribe: &server.SubjectPermission{Allow: []string{inboxPrefix(peer) + ".>"}},
	}
}

// peerConn opens this site's connection to a peer's NATS.
func (n *Node) peerConn(l *link) (*nats.Conn, error) {
	opts := []nats.Option{
		nats.Name("geo-" + n.opts.Site + "-to-" + l.cfg.Peer),
		nats.Timeout(connectTimeout),
		nats.CustomInboxPrefix(inboxPrefix(n.opts.Site)),
		nats.NoReconnect(), // linkLoop reconnects, with back-off and a fresh consumer
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { l.setError(n.now(), err) }),
		nats.PingInterval(5 * time.Second),
		nats.MaxPingsOutstanding(2),
	}
	if n.opts.TLS != nil {
		opts = append(opts, nats.Secure(n.opts.TLS.clientTLS(l.cfg.Peer)))
	}
	return nats.Connect(strings.Join(l.cfg.Endpoints, ","), opts...)
}

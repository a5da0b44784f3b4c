package ldap

import (
	"cmp"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/url"
	"slices"

	goldap "github.com/go-ldap/ldap/v3"
)

// serverOrder returns the servers in the order to try them: ascending
// priority, and within one priority a weighted random order (RFC 2782:
// each pick chooses among the remaining servers with probability
// proportional to weight; zero-weight servers come last among equals).
func serverOrder(servers []Server, rnd func(n int) int) []Server {
	s := slices.Clone(servers)
	slices.SortStableFunc(s, func(a, b Server) int { return cmp.Compare(a.Priority, b.Priority) })
	var out []Server
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && s[j].Priority == s[i].Priority {
			j++
		}
		group := slices.Clone(s[i:j])
		for len(group) > 0 {
			total := 0
			for _, g := range group {
				total += g.Weight
			}
			pick := 0
			if total > 0 {
				r := rnd(total)
				for k, g := range group {
					if r < g.Weight {
						pick = k
						break
					}
					r -= g.Weight
				}
			}
			out = append(out, group[pick])
			group = slices.Delete(group, pick, pick+1)
		}
		i = j
	}
	return out
}

// dialer opens connections to a configuration's servers.
type dialer struct {
	cfg Config
	rnd func(int) int
}

func newDialer(cfg Config) *dialer {
	return &dialer{cfg: cfg, rnd: func(n int) int { return rand.IntN(n) }}
}

// dialOne connects to one server, with TLS as configured, and bounds
// every operation by the configured timeout.
func (d *dialer) dialOne(ctx context.Context, s Server) (*goldap.Conn, error) {
	u, err := url.Parse(s.URL)
	if err != nil {
		return nil, err
	}
	host := u.Hostname()
	tc := &tls.Config{ServerName: host, RootCAs: d.cfg.RootCAs, MinVersion: tls.VersionTLS12}
	nd := &net.Dialer{Timeout: d.cfg.DialTimeout}
	if dl, ok := ctx.Deadline(); ok {
		nd.Deadline = dl
	}
	opts := []goldap.DialOpt{goldap.DialWithDialer(nd)}
	if u.Scheme == "ldaps" {
		opts = append(opts, goldap.DialWithTLSConfig(tc))
	}
	conn, err := goldap.DialURL(s.URL, opts...)
	if err != nil {
		return nil, err
	}
	conn.SetTimeout(d.cfg.Timeout)
	if d.cfg.StartTLS && u.Scheme == "ldap" {
		if err := conn.StartTLS(tc); err != nil {
			conn.Close()
			return nil, fmt.Errorf("StartTLS: %w", err)
		}
	}
	return conn, nil
}

// connect returns a connection to the first server, in serverOrder, that
// answers and accepts the bind (the service account when bindDN is the
// configured one; an anonymous connection when bindDN is empty). It
// returns the URL of the server it reached. Failures of all servers are
// joined in the error; passwords never appear in it.
func (d *dialer) connect(ctx context.Context, bindDN, password string) (*goldap.Conn, string, error) {
	var conn *goldap.Conn
	server, err := d.try(ctx, func(c *goldap.Conn) error {
		if bindDN != "" {
			if err := c.Bind(bindDN, password); err != nil {
				return fmt.Errorf("bind as %s: %w", printableDN(bindDN), err)
			}
		}
		conn = c
		return nil
	}, false)
	return conn, server, err
}

// try calls fn with a connection to each server in serverOrder until fn
// succeeds. A connection fn did not keep (returned an error) is closed.
// With final set, an LDAP result from a server (such as invalid
// credentials) ends the search: only failures to reach a server or get
// an answer move on to the next one.
func (d *dialer) try(ctx context.Context, fn func(*goldap.Conn) error, final bool) (string, error) {
	var errs []error
	for _, s := range serverOrder(d.cfg.Servers, d.rnd) {
		if err := ctx.Err(); err != nil {
			return "", err
		}
		conn, err := d.dialOne(ctx, s)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", s.URL, err))
			continue
		}
		stop := watch(ctx, conn)
		err = fn(conn)
		stop()
		if err == nil {
			return s.URL, nil
		}
		conn.Close()
		if final && answered(err) {
			return s.URL, err
		}
		errs = append(errs, fmt.Errorf("%s: %w", s.URL, err))
	}
	return "", fmt.Errorf("%w: %w", ErrUnavailable, errors.Join(errs...))
}

// answered reports whether err is a result the server sent (RFC 4511
// §4.1.9 result codes; go-ldap uses codes from 200 for client-side
// failures such as timeouts and closed connections).
func answered(err error) bool {
	var le *goldap.Error
	return errors.As(err, &le) && le.ResultCode < 200
}

// watch closes conn when ctx is cancelled, which fails the operation in
// flight (go-ldap's synchronous calls take no context). Call the returned
// function when done with conn.
func watch(ctx context.Context, conn *goldap.Conn) (stop func()) {
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		select {
		case <-ctx.Done():
			conn.Close()
		case <-done:
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

// pagedSearch runs a subtree search in pages of pageSize (RFC 2696
// simple paged results), calling fn for each entry as its page arrives,
// so memory stays bounded by one page.
func pagedSearch(conn *goldap.Conn, base, filter string, attrs []string, pageSize int, fn func(*goldap.Entry) error) error {
	paging := goldap.NewControlPaging(uint32(pageSize))
	req := goldap.NewSearchRequest(base, goldap.ScopeWholeSubtree, goldap.NeverDerefAliases, 0, 0, false,
		filter, attrs, []goldap.Control{paging})
	for {
		res, err := conn.Search(req)
		if err != nil {
			return fmt.Errorf("search %s under %s: %w", filter, printableDN(base), err)
		}
		for _, e := range res.Entries {
			if err := fn(e); err != nil {
				return err
			}
		}
		ctrl, ok := goldap.FindControl(res.Controls, goldap.ControlTypePaging).(*goldap.ControlPaging)
		if !ok || len(ctrl.Cookie) == 0 {
			return nil // RFC 2696 §3: an empty cookie ends the search
		}
		paging.SetCookie(ctrl.Cookie)
	}
}

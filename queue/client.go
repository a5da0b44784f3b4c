package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/emersion/go-sasl"
	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/internal/dnserror"
	"github.com/mailyard/mailyard/routing"
)

// idleLinger is how long a worker keeps its connection open waiting for
// the destination's next message.
const idleLinger = time.Second

// noTLSMemory is how long a host that did not offer STARTTLS (or failed
// the handshake) is reached in plain text without trying again.
const noTLSMemory = time.Hour

// maxNoTLSHosts bounds how many such hosts are remembered.
const maxNoTLSHosts = 10000

// plainHosts remembers the next hops (address:port) that did not offer
// STARTTLS, so that opportunistic attempts go to them in plain text for a
// while (RFC 3207 §4.1 as deployed) instead of failing the handshake on
// every retry. It is bounded in time (ttl) and size (max): when full,
// expired entries go first, then the one closest to expiry. The queue's
// mutex guards it.
type plainHosts struct {
	max   int
	ttl   time.Duration
	until map[string]time.Time
}

func newPlainHosts(max int, ttl time.Duration) *plainHosts {
	return &plainHosts{max: max, ttl: ttl, until: map[string]time.Time{}}
}

// known reports whether addr is remembered at now; an expired entry is
// forgotten.
func (p *plainHosts) known(addr string, now time.Time) bool {
	t, ok := p.until[addr]
	if ok && !t.After(now) {
		delete(p.until, addr)
		return false
	}
	return ok
}

// add remembers addr from now for ttl.
func (p *plainHosts) add(addr string, now time.Time) {
	if _, ok := p.until[addr]; !ok && len(p.until) >= p.max {
		oldest, first := "", time.Time{}
		for a, t := range p.until {
			if !t.After(now) {
				delete(p.until, a)
				continue
			}
			if oldest == "" || t.Before(first) {
				oldest, first = a, t
			}
		}
		if len(p.until) >= p.max {
			delete(p.until, oldest)
		}
	}
	p.until[addr] = now.Add(p.ttl)
}

// len is the number of hosts remembered (expired ones included until
// they are looked up or swept).
func (p *plainHosts) len() int { return len(p.until) }

// rcptResult is the outcome for one recipient of one attempt.
type rcptResult struct {
	code     int // 2xx, 4xx, 5xx; 0 for failures without a reply
	enhanced string
	text     string // reply text or error description
	remote   string // the host that answered
}

func (r rcptResult) ok() bool        { return r.code >= 200 && r.code < 300 }
func (r rcptResult) permanent() bool { return r.code >= 500 }

// String formats the result as an SMTP reply line, for DSNs and logs.
func (r rcptResult) String() string {
	if r.code == 0 {
		return r.text
	}
	s := strconv.Itoa(r.code)
	if r.enhanced != "" {
		s += " " + r.enhanced
	}
	return s + " " + r.text
}

// status is the RFC 3463 status of the result, for DSNs.
func (r rcptResult) status() string {
	if r.enhanced != "" {
		return r.enhanced
	}
	switch {
	case r.code >= 500:
		return "5.0.0"
	case r.code >= 200 && r.code < 300:
		return "2.0.0"
	}
	return "4.4.1" // RFC 3463: no answer from host
}

// replyResult turns a client error into a result.
func replyResult(err error, remote string) rcptResult {
	if err == nil {
		return rcptResult{code: 250, remote: remote}
	}
	var se *gosmtp.SMTPError
	if errors.As(err, &se) {
		r := rcptResult{code: se.Code, text: oneLine(se.Message), remote: remote}
		if se.EnhancedCode != gosmtp.NoEnhancedCode && se.EnhancedCode != (gosmtp.EnhancedCode{}) {
			r.enhanced = fmt.Sprintf("%d.%d.%d", se.EnhancedCode[0], se.EnhancedCode[1], se.EnhancedCode[2])
		}
		return r
	}
	return rcptResult{text: oneLine(err.Error()), remote: remote}
}

// oneLine keeps a remote text short and on one line for records and DSNs.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 400 {
		s = s[:400]
	}
	return s
}

// outConn is an open session with a next hop.
type outConn struct {
	c     *gosmtp.Client
	conn  net.Conn // under c, cut when a job's lease ends
	host  string   // the name connected to, for DSNs
	stop  func() bool
	fresh bool // no transaction has used it yet
}

func (c *outConn) quit() {
	if c == nil {
		return
	}
	c.stop()
	if c.c.Quit() != nil {
		c.c.Close()
	}
}

func (c *outConn) close() {
	if c == nil {
		return
	}
	c.stop()
	c.c.Close()
}

// deliver makes one attempt for j and records its outcome. It returns the
// connection for the next job, or nil.
func (q *Queue) deliver(ctx context.Context, c *outConn, j *outJob) *outConn {
	f, err := q.bodies.OpenQueueBody(ctx, j.msg)
	if err != nil {
		if rs, lerr := q.opts.Store.MessageRecipients(ctx, j.msg); errors.Is(err, fs.ErrNotExist) && lerr == nil && len(rs) == 0 {
			// Deleted by an administrator while waiting: the
			// recipients went too.
			q.done(len(j.items))
			return c
		}
		// Unreadable here (or lost): a temporary failure, never a
		// silent drop.
		q.log.Error("queue body unreadable; recipients kept for the next attempt", "queue_id", j.msg, "err", err)
		results := make([]rcptResult, len(j.items))
		for i := range results {
			results[i] = rcptResult{text: "queue body unreadable: " + err.Error()}
		}
		q.finish(ctx, j, results)
		return c
	}
	defer func() { f.Close() }()
	var results []rcptResult
	for try := 0; ; try++ {
		if c == nil {
			var fail rcptResult
			c, fail = q.connect(ctx, j)
			if c == nil {
				results = make([]rcptResult, len(j.items))
				for i := range results {
					results[i] = fail
				}
				break
			}
		}
		reused := !c.fresh
		c.fresh = false
		var broken bool
		results, broken = q.leased(c, j, f)
		if broken {
			c.close()
			c = nil
			if reused && try == 0 {
				// A reused connection the server had already given up
				// on: try once on a new one.
				if f2, err := q.bodies.OpenQueueBody(ctx, j.msg); err == nil {
					f.Close()
					f = f2
					continue
				}
			}
		}
		break
	}
	q.finish(ctx, j, results)
	return c
}

// leased runs the transaction within the job's lease: an attempt that
// outlived its claim could find its recipients claimed again (here or by
// another node) and sent twice, so the connection is cut a quarter of the
// lease before it ends, which leaves that quarter for settling the
// outcome; a cut attempt fails and is retried, and settling it is refused
// by the store if another owner holds the recipients by then.
func (q *Queue) leased(c *outConn, j *outJob, body io.Reader) ([]rcptResult, bool) {
	cut := time.AfterFunc(j.until.Add(-q.opts.Lease/4).Sub(q.opts.Now()), func() { c.conn.Close() })
	results, broken := q.transaction(c, j, body)
	if !cut.Stop() {
		broken = true
	}
	return results, broken
}

// transaction runs MAIL, RCPT and DATA on c. broken reports a connection
// that must not be used again.
func (q *Queue) transaction(c *outConn, j *outJob, body io.Reader) (results []rcptResult, broken bool) {
	results = make([]rcptResult, len(j.items))
	all := func(r rcptResult) ([]rcptResult, bool) {
		for i := range results {
			results[i] = r
		}
		return results, r.code == 0
	}
	// failAccepted gives r to the recipients RCPT had accepted.
	failAccepted := func(r rcptResult) {
		for i := range results {
			if results[i].ok() {
				results[i] = r
			}
		}
	}
	e := j.items[0]
	utf8 := false
	for _, r := range j.items {
		utf8 = utf8 || r.UTF8
	}
	if utf8 {
		if ok, _ := c.c.Extension("SMTPUTF8"); !ok {
			// RFC 6531 §3.2: the message cannot be sent on as is.
			c.c.Reset()
			return all(rcptResult{code: 553, enhanced: "5.6.7", text: "next hop does not support SMTPUTF8", remote: c.host})
		}
	}
	if err := c.c.Mail(e.From, &gosmtp.MailOptions{Size: e.Size, UTF8: utf8}); err != nil {
		r := replyResult(err, c.host)
		if r.code != 0 {
			c.c.Reset()
		}
		return all(r)
	}
	accepted := 0
	for i, r := range j.items {
		err := c.c.Rcpt(r.Address, nil)
		results[i] = replyResult(err, c.host)
		if results[i].code == 0 {
			return all(results[i])
		}
		if err == nil {
			accepted++
		}
	}
	if accepted == 0 {
		if c.c.Reset() != nil {
			broken = true
		}
		return results, broken
	}
	w, err := c.c.Data()
	if err != nil {
		r := replyResult(err, c.host)
		failAccepted(r)
		return results, r.code == 0 || c.c.Reset() != nil
	}
	_, cerr := io.Copy(w, body)
	err = w.Close()
	if cerr != nil {
		err = cerr
		broken = true
	}
	if err != nil {
		r := replyResult(err, c.host)
		failAccepted(r)
		return results, broken || r.code == 0
	}
	return results, false
}

// connect finds the destination's hosts and opens a session with the
// first that answers (step 4 and 5 of [Queue]). Without a session, the
// result says why, for every recipient.
func (q *Queue) connect(ctx context.Context, j *outJob) (*outConn, rcptResult) {
	hosts, implicit, fail := q.hosts(ctx, j)
	if hosts == nil {
		return nil, fail
	}
	port := j.hop.Port
	if port == 0 {
		port = routing.DefaultPort
	}
	last := rcptResult{text: "no address for the next hop"}
	for _, h := range hosts {
		addrs, err := q.addresses(ctx, h)
		var dnsErr *net.DNSError
		if err != nil && implicit && errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			// RFC 5321 §5.1: no MX and no address records: the domain
			// does not exist for mail (RFC 3463 X.1.2).
			return nil, rcptResult{code: 550, enhanced: "5.1.2", text: fmt.Sprintf("domain %s has no MX and no address records", h)}
		}
		if err != nil {
			// The text reaches the sender's DSN: the failure's class,
			// not the resolver's words (which name our DNS server).
			q.opts.Logger.DebugContext(ctx, "address lookup failed", "host", h, "err", err)
			last = rcptResult{text: fmt.Sprintf("looking up %s: %s", h, dnserror.Describe(err))}
			continue
		}
		for _, a := range addrs {
			if !q.allowedAddr(a) {
				last = rcptResult{text: fmt.Sprintf("%s resolves to %s, which is not allowed", h, a)}
				continue
			}
			addr := net.JoinHostPort(a.String(), strconv.Itoa(port))
			c, r := q.session(ctx, h, addr, j.hop)
			if c != nil {
				return c, rcptResult{}
			}
			last = r
			if r.permanent() {
				return nil, r
			}
		}
	}
	return nil, last
}

// allowedAddr refuses invalid, unspecified and multicast addresses.
func (q *Queue) allowedAddr(a netip.Addr) bool {
	return a.IsValid() && !a.IsUnspecified() && !a.IsMulticast()
}

// hosts lists the host names (or IP literals) to try, in order; implicit
// says the domain had no MX and is its own host.
func (q *Queue) hosts(ctx context.Context, j *outJob) ([]string, bool, rcptResult) {
	h := j.hop.NextHop
	if h.Host != "" && !h.MX {
		return []string{h.Host}, false, rcptResult{}
	}
	name := h.Host
	if name == "" {
		name = j.domain
	}
	mxs, err := q.opts.Resolver.LookupMX(ctx, name)
	var dnsErr *net.DNSError
	switch {
	case err != nil && errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		mxs = nil // RFC 5321 §5.1: no MX, the domain itself is the host
	case err != nil:
		q.opts.Logger.DebugContext(ctx, "MX lookup failed", "domain", name, "err", err)
		return nil, false, rcptResult{text: fmt.Sprintf("MX lookup for %s: %s", name, dnserror.Describe(err))}
	}
	if len(mxs) == 1 && (mxs[0].Host == "." || mxs[0].Host == "") {
		// RFC 7505 §3: a null MX says the domain accepts no mail.
		return nil, false, rcptResult{code: 556, enhanced: "5.1.10", text: fmt.Sprintf("domain %s accepts no mail (null MX)", name)}
	}
	if len(mxs) == 0 {
		return []string{name}, true, rcptResult{}
	}
	sort.SliceStable(mxs, func(a, b int) bool { return mxs[a].Pref < mxs[b].Pref })
	out := make([]string, 0, len(mxs))
	for _, mx := range mxs {
		out = append(out, strings.TrimSuffix(mx.Host, "."))
	}
	return out, false, rcptResult{}
}

// addresses resolves a host name (an IP literal is itself).
func (q *Queue) addresses(ctx context.Context, host string) ([]netip.Addr, error) {
	if a, err := netip.ParseAddr(host); err == nil {
		return []netip.Addr{a}, nil
	}
	ips, err := q.opts.Resolver.LookupIPAddr(ctx, host)
	if err != nil {
		return nil, err
	}
	out := make([]netip.Addr, 0, len(ips))
	for _, ip := range ips {
		if a, ok := netip.AddrFromSlice(ip.IP); ok {
			out = append(out, a.Unmap())
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no addresses")
	}
	return out, nil
}

// errNoSTARTTLS marks a hop that did not offer STARTTLS or failed the
// handshake.
var errNoSTARTTLS = errors.New("STARTTLS not available")

// session connects to addr and greets it, with TLS and AUTH as the hop
// says.
func (q *Queue) session(ctx context.Context, host, addr string, hop routing.Hop) (*outConn, rcptResult) {
	policy := hop.TLS
	q.mu.Lock()
	plainKnown := q.noTLS.known(addr, q.opts.Now())
	q.mu.Unlock()
	useTLS := policy != routing.TLSNone && !(policy == routing.TLSOpportunistic && plainKnown)
	c, err := q.greet(ctx, host, addr, useTLS, policy == routing.TLSVerify)
	if errors.Is(err, errNoSTARTTLS) {
		if policy == routing.TLSOpportunistic {
			// RFC 3207 §4.1 as deployed: without TLS, send in plain text.
			q.mu.Lock()
			q.noTLS.add(addr, q.opts.Now())
			q.mu.Unlock()
			c, err = q.greet(ctx, host, addr, false, false)
		} else {
			return nil, rcptResult{text: fmt.Sprintf("%s: TLS is required (tls=%s): %v", host, policy, err), remote: host}
		}
	}
	if err != nil {
		r := replyResult(err, host)
		if r.code == 0 {
			r.text = fmt.Sprintf("%s: %s", addr, r.text)
		}
		if r.permanent() {
			// A 5xx greeting or EHLO is one host's answer; other MX hosts
			// may still take the message.
			r = rcptResult{code: 0, text: r.String(), remote: host}
		}
		return nil, r
	}
	if hop.Auth != nil {
		if _, isTLS := c.c.TLSConnectionState(); !isTLS {
			c.close()
			return nil, rcptResult{text: fmt.Sprintf("%s: not sending credentials without TLS", host), remote: host}
		}
		if err := c.c.Auth(sasl.NewPlainClient("", hop.Auth.Username, hop.Auth.Password)); err != nil {
			c.close()
			// A rejected login is the configuration's fault, not the
			// message's: defer (as Postfix's smtp_sasl_auth_soft_bounce)
			// so that fixed credentials still deliver it.
			return nil, rcptResult{text: "AUTH failed: " + replyResult(err, host).String(), remote: host}
		}
	}
	return c, rcptResult{}
}

// greet dials addr and says EHLO, after STARTTLS when useTLS.
func (q *Queue) greet(ctx context.Context, host, addr string, useTLS, verify bool) (*outConn, error) {
	conn, err := q.opts.Dial(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	fail := func(err error) (*outConn, error) {
		stop()
		conn.Close()
		return nil, err
	}
	var c *gosmtp.Client
	if useTLS {
		cfg := q.opts.TLSConfig.Clone()
		cfg.ServerName = host
		// Opportunistic and "required" encrypt without authenticating
		// (RFC 7435); "verify" checks the certificate against host.
		cfg.InsecureSkipVerify = !verify
		c, err = gosmtp.NewClientStartTLS(conn, cfg)
		if err != nil {
			var se *gosmtp.SMTPError
			if errors.As(err, &se) && se.Code < 500 && se.Code >= 400 || !errors.As(err, &se) && strings.Contains(err.Error(), "STARTTLS") {
				return fail(fmt.Errorf("%w: %v", errNoSTARTTLS, err))
			}
			return fail(err)
		}
		if err := c.Hello(q.opts.Hostname); err != nil {
			var se *gosmtp.SMTPError
			if !errors.As(err, &se) {
				// The handshake happens at the first write after
				// STARTTLS.
				return fail(fmt.Errorf("%w: %v", errNoSTARTTLS, err))
			}
			return fail(err)
		}
	} else {
		c = gosmtp.NewClient(conn)
		if err := c.Hello(q.opts.Hostname); err != nil {
			return fail(err)
		}
	}
	return &outConn{c: c, conn: conn, host: host, stop: stop, fresh: true}, nil
}

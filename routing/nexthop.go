package routing

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// ErrConfig is wrapped by every error about routing configuration: a
// malformed next hop, route pattern, TLS policy, CIDR or address, and
// conflicting entries.
var ErrConfig = errors.New("routing: invalid configuration")

// DefaultPort is the SMTP port a next hop uses when it names none
// (RFC 5321 §4.5.4.2).
const DefaultPort = 25

// NextHop says where relayed mail goes, in the relay-domain syntax
// administrators know from Postfix and Mailu:
//
//	""                 MX of the recipient's domain, port 25
//	":port"            MX of the recipient's domain, that port
//	"host"             A/AAAA of host (no MX lookup), port 25
//	"host:port"        A/AAAA of host, that port
//	"[host]", "[host]:port"  the same; brackets also hold IP literals,
//	                   and IPv6 literals need them: "[2001:db8::1]:2525"
//	"mx:host"          MX of host, port 25
//	"mx:host:port"     MX of host, that port
//
// The zero NextHop is the empty syntax: MX delivery to the recipient's
// domain on port 25.
type NextHop struct {
	// Host is a host name (lowercase) or an IP address without brackets;
	// empty means the recipient's domain, found by MX lookup.
	Host string
	// Port is the TCP port; 0 means DefaultPort.
	Port int
	// MX means Host's MX records name the servers to connect to (RFC 5321
	// §5.1). Without it, Host's own A/AAAA records are used. It is never
	// set together with an empty Host.
	MX bool
}

// ParseNextHop parses the next-hop syntax documented on [NextHop].
// Surrounding spaces are ignored; the host name is lowercased. Errors wrap
// [ErrConfig]. [NextHop.String] gives back a form that parses to the same
// value.
func ParseNextHop(s string) (NextHop, error) {
	h, err := parseNextHop(strings.TrimSpace(s))
	if err != nil {
		return NextHop{}, fmt.Errorf("%w: next hop %q: %w", ErrConfig, s, err)
	}
	return h, nil
}

func parseNextHop(s string) (NextHop, error) {
	if s == "" {
		return NextHop{}, nil
	}
	var h NextHop
	if len(s) >= 3 && strings.EqualFold(s[:3], "mx:") {
		h.MX = true
		s = s[3:]
		if s == "" || s[0] == ':' {
			return NextHop{}, errors.New("mx: needs a host")
		}
	}
	if s[0] == ':' {
		// ":port": MX of the recipient's domain on another port.
		port, err := parsePort(s[1:])
		if err != nil {
			return NextHop{}, err
		}
		h.Port = port
		return h, nil
	}
	var host, rest string
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return NextHop{}, errors.New("unclosed '['")
		}
		host, rest = s[1:end], s[end+1:]
		if host == "" {
			return NextHop{}, errors.New("empty host in brackets")
		}
		if rest != "" && rest[0] != ':' {
			return NextHop{}, fmt.Errorf("unexpected %q after ']'", rest)
		}
	} else {
		i := strings.IndexByte(s, ':')
		if i < 0 {
			host = s
		} else {
			host, rest = s[:i], s[i:]
		}
		if strings.Contains(rest[min(1, len(rest)):], ":") {
			return NextHop{}, errors.New("too many ':' (IPv6 addresses go in brackets)")
		}
	}
	if rest != "" {
		port, err := parsePort(rest[1:])
		if err != nil {
			return NextHop{}, err
		}
		h.Port = port
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		if ip.Zone() != "" {
			return NextHop{}, errors.New("IPv6 zones are not accepted")
		}
		if ip.Is6() && !ip.Is4In6() && s[0] != '[' {
			return NextHop{}, errors.New("IPv6 addresses go in brackets")
		}
		if h.MX {
			// An IP address has no MX records.
			return NextHop{}, errors.New("mx: needs a host name, not an IP address")
		}
		h.Host = ip.Unmap().String()
		return h, nil
	}
	name, err := directory.CanonicalDomain(host)
	if err != nil {
		return NextHop{}, fmt.Errorf("bad host: %v", err)
	}
	h.Host = name
	return h, nil
}

func parsePort(s string) (int, error) {
	if s == "" || len(s) > 5 {
		return 0, fmt.Errorf("bad port %q", s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("bad port %q", s)
		}
	}
	p, _ := strconv.Atoi(s)
	if p < 1 || p > 65535 {
		return 0, fmt.Errorf("port %d out of range 1-65535", p)
	}
	return p, nil
}

// String returns the next hop in the syntax [ParseNextHop] reads.
func (h NextHop) String() string {
	var sb strings.Builder
	if h.Host != "" {
		if h.MX {
			sb.WriteString("mx:")
		}
		if strings.Contains(h.Host, ":") {
			sb.WriteString("[" + h.Host + "]")
		} else {
			sb.WriteString(h.Host)
		}
	}
	if h.Port != 0 {
		sb.WriteString(":" + strconv.Itoa(h.Port))
	}
	return sb.String()
}

// Describe says in words how the next hop is found for recipients in
// domain, e.g. "MX of example.org, port 25".
func (h NextHop) Describe(domain string) string {
	port := h.Port
	if port == 0 {
		port = DefaultPort
	}
	switch {
	case h.Host == "":
		return fmt.Sprintf("MX of %s, port %d", domain, port)
	case h.MX:
		return fmt.Sprintf("MX of %s, port %d", h.Host, port)
	}
	return fmt.Sprintf("host %s (A/AAAA, no MX), port %d", h.Host, port)
}

// TLSPolicy is what a relay hop requires of TLS. The zero value is
// TLSOpportunistic.
type TLSPolicy int

// TLS policies of a hop, as in Postfix's smtp_tls_security_level.
const (
	// TLSOpportunistic uses STARTTLS when offered, without verifying the
	// certificate, and falls back to plain text (RFC 3207 as deployed).
	TLSOpportunistic TLSPolicy = iota
	// TLSNone never uses TLS (for hops that break on STARTTLS).
	TLSNone
	// TLSRequired requires STARTTLS but does not verify the certificate:
	// encrypted, not authenticated.
	TLSRequired
	// TLSVerify requires STARTTLS and a certificate valid for the host
	// name connected to.
	TLSVerify
)

// ParseTLSPolicy reads a policy name: "opportunistic" (or ""), "none",
// "required" or "verify". Errors wrap [ErrConfig].
func ParseTLSPolicy(s string) (TLSPolicy, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "opportunistic":
		return TLSOpportunistic, nil
	case "none":
		return TLSNone, nil
	case "required":
		return TLSRequired, nil
	case "verify":
		return TLSVerify, nil
	}
	return 0, fmt.Errorf("%w: TLS policy %q: want none, opportunistic, required or verify", ErrConfig, s)
}

// String returns the policy's name as ParseTLSPolicy reads it.
func (p TLSPolicy) String() string {
	switch p {
	case TLSOpportunistic:
		return "opportunistic"
	case TLSNone:
		return "none"
	case TLSRequired:
		return "required"
	case TLSVerify:
		return "verify"
	}
	return fmt.Sprintf("tls(%d)", int(p))
}

// MarshalText implements encoding.TextMarshaler.
func (p TLSPolicy) MarshalText() ([]byte, error) { return []byte(p.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseTLSPolicy,
// so configuration files can name the policy.
func (p *TLSPolicy) UnmarshalText(b []byte) error {
	v, err := ParseTLSPolicy(string(b))
	if err != nil {
		return err
	}
	*p = v
	return nil
}

// Credentials are the SMTP AUTH login for a hop. Their String and
// LogValue never show the password.
type Credentials struct {
	Username string
	Password string
}

// String returns the username with the password masked.
func (c Credentials) String() string { return c.Username + ":******" }

// LogValue implements slog.LogValuer, masking the password.
func (c Credentials) LogValue() slog.Value { return slog.StringValue(c.String()) }

// Hop is a compiled relay target: where to, with which TLS policy and
// credentials, and which configuration entry chose it. The zero Hop is MX
// delivery to the recipient's domain with opportunistic TLS, chosen by no
// route. Hops in decisions are shared with the table: treat them, and
// the Credentials they point to, as read-only.
type Hop struct {
	NextHop
	TLS TLSPolicy
	// Auth, if set, is used for SMTP AUTH at the hop.
	Auth *Credentials
	// Route is the pattern of the transport route or relay domain that
	// chose the hop ("*", ".example.org", "example.org", "user@example.org"),
	// empty otherwise.
	Route string
	// Site is the site of a distributed installation the hop leads to
	// (rule "remote-site"), empty otherwise.
	Site string
}

// String formats the hop for logs: the next hop in [NextHop] syntax
// (empty: MX of the recipient's domain), the TLS policy, the AUTH username
// (never the password) and the route.
func (h Hop) String() string {
	s := "nexthop=" + strconv.Quote(h.NextHop.String()) + " tls=" + h.TLS.String()
	if h.Auth != nil {
		s += " auth=" + h.Auth.Username
	}
	if h.Route != "" {
		s += " route=" + strconv.Quote(h.Route)
	}
	if h.Site != "" {
		s += " site=" + h.Site
	}
	return s
}

// describe formats the hop for Explain: next hop in words, TLS policy and
// whether AUTH is used (never the password).
func (h Hop) describe(domain string) string {
	s := h.Describe(domain) + ", TLS " + h.TLS.String()
	if h.Auth != nil {
		s += ", AUTH as " + h.Auth.Username
	}
	if h.Route != "" {
		s += ", route " + strconv.Quote(h.Route)
	}
	if h.Site != "" {
		s += ", site " + h.Site
	}
	return s
}

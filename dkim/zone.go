package dkim

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// defaultTTL is the TTL of the records listed when none is given, in
// seconds.
const defaultTTL = 3600

// ZoneConfig describes what a hosted domain should publish in DNS.
type ZoneConfig struct {
	// Domain is the mail domain, e.g. "example.com".
	Domain string
	// MX lists the mail exchangers in preference order; required.
	MX []string
	// MailHost serves IMAP and submission (SRV targets, RFC 6186); empty
	// means MX[0].
	MailHost string
	// WebHost serves CalDAV, CardDAV and autoconfig (RFC 6764); empty
	// means MailHost.
	WebHost string
	// SPF is the SPF record; empty means "v=spf1 mx -all": only the MX
	// hosts send for the domain (RFC 7208 §5.4, §5.1).
	SPF string
	// Keys are the DKIM keys to publish: every stored key of the domain,
	// whatever its state (see [Keys.List]).
	Keys []Key
	// DMARC is the _dmarc policy.
	DMARC DMARCConfig
	// Ports override the standard ports in SRV records; zero fields keep
	// the standard ones (587, 465, 143, 993, 443).
	Ports Ports
	// TTL of every record in seconds; zero means 3600.
	TTL int
	// Offered lists the client services the domain's hosts serve; nil
	// offers every one. A mail or calendar service not offered is
	// announced with the SRV target "." (RFC 6186 §4, RFC 6764 §3), so
	// clients stop looking instead of trying a port nothing listens on;
	// the autoconfig and autodiscover names are left out when not
	// offered.
	Offered *Services
}

// Services says which client services a host serves, for
// [ZoneConfig.Offered].
type Services struct {
	IMAP, IMAPS             bool // RFC 6186
	Submission, Submissions bool // RFC 6186, RFC 8314
	CalDAV, CardDAV         bool // RFC 6764
	// Autoconfig is Thunderbird's autoconfig.DOMAIN; Autodiscover is
	// Outlook's autodiscover.DOMAIN and _autodiscover._tcp.
	Autoconfig, Autodiscover bool
}

// DMARCConfig is the DMARC record to publish (RFC 7489 §6.3).
type DMARCConfig struct {
	// Policy is p=; empty means quarantine.
	Policy Policy
	// SubdomainPolicy is sp=; empty omits it (subdomains inherit p=).
	SubdomainPolicy Policy
	// RUA are aggregate report addresses (mailto: is added if missing).
	RUA []string
	// Percent is pct=; zero means 100 (and omits it).
	Percent int
	// StrictDKIM and StrictSPF set adkim=s and aspf=s.
	StrictDKIM, StrictSPF bool
}

// Ports are the service ports announced in SRV records.
type Ports struct {
	Submission  int // RFC 6409, default 587
	Submissions int // RFC 8314, default 465
	IMAP        int // default 143
	IMAPS       int // default 993
	HTTPS       int // CalDAV/CardDAV over TLS, default 443
}

// DNSRecord is one resource record. Value is the record data in its
// logical form: for TXT the unsplit text, for MX and SRV the data fields
// in presentation order, host names fully qualified with a trailing dot.
type DNSRecord struct {
	Name    string `json:"name"`
	Type    string `json:"type"`
	TTL     int    `json:"ttl"`
	Value   string `json:"value"`
	Comment string `json:"comment,omitempty"`
}

// ZoneRecords returns the records a domain should publish: MX, SPF, one
// DKIM TXT per key, DMARC, the SRV records of RFC 6186 and RFC 8314
// (submission, submissions, imap, imaps; pop3 and pop3s announced as not
// offered with target "."), RFC 6764 (caldavs, carddavs with their
// context paths), and the autoconfig/autodiscover names mail clients
// probe. Names are fully qualified with a trailing dot. Encode the
// result with encoding/json, or as zone-file text with [FormatZone].
func ZoneRecords(cfg ZoneConfig) ([]DNSRecord, error) {
	domain := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(cfg.Domain), "."))
	if !validDomain(domain) {
		return nil, fmt.Errorf("%w: domain %q", ErrInvalidKey, cfg.Domain)
	}
	if len(cfg.MX) == 0 {
		return nil, fmt.Errorf("dkim: zone for %s: at least one MX host is required", domain)
	}
	fqdn := func(h string) (string, error) {
		h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(h), "."))
		if !validDomain(h) {
			return "", fmt.Errorf("dkim: zone for %s: invalid host name %q", domain, h)
		}
		return h + ".", nil
	}
	ttl := cfg.TTL
	if ttl <= 0 {
		ttl = defaultTTL
	}
	origin := domain + "."
	var out []DNSRecord
	add := func(name, typ, value, comment string) {
		out = append(out, DNSRecord{Name: name, Type: typ, TTL: ttl, Value: value, Comment: comment})
	}

	var mxHosts []string
	for i, h := range cfg.MX {
		host, err := fqdn(h)
		if err != nil {
			return nil, err
		}
		mxHosts = append(mxHosts, host)
		add(origin, "MX", strconv.Itoa(10*(i+1))+" "+host, "")
	}
	mailHost := mxHosts[0]
	if cfg.MailHost != "" {
		h, err := fqdn(cfg.MailHost)
		if err != nil {
			return nil, err
		}
		mailHost = h
	}
	webHost := mailHost
	if cfg.WebHost != "" {
		h, err := fqdn(cfg.WebHost)
		if err != nil {
			return nil, err
		}
		webHost = h
	}

	spfRec := cfg.SPF
	if spfRec == "" {
		spfRec = "v=spf1 mx -all"
	}
	if !strings.HasPrefix(strings.ToLower(spfRec), "v=spf1") {
		return nil, fmt.Errorf("dkim: zone for %s: SPF record must start with v=spf1 (RFC 7208 §4.5)", domain)
	}
	add(origin, "TXT", spfRec, "SPF (RFC 7208)")

	keys := append([]Key(nil), cfg.Keys...)
	sort.Slice(keys, func(i, j int) bool { return keys[i].Selector < keys[j].Selector })
	for _, k := range keys {
		if !strings.EqualFold(k.Domain, domain) {
			return nil, fmt.Errorf("dkim: zone for %s: key %s belongs to %s", domain, k.Selector, k.Domain)
		}
		rec, err := k.ZoneRecord(ttl)
		if err != nil {
			return nil, err
		}
		out = append(out, rec)
	}

	dm, err := dmarcRecord(cfg.DMARC)
	if err != nil {
		return nil, fmt.Errorf("dkim: zone for %s: %w", domain, err)
	}
	add("_dmarc."+origin, "TXT", dm, "DMARC (RFC 7489)")

	p := cfg.Ports
	port := func(v, def int) int {
		if v <= 0 {
			return def
		}
		return v
	}
	on := Services{true, true, true, true, true, true, true, true}
	if cfg.Offered != nil {
		on = *cfg.Offered
	}
	// RFC 6186 §4 (and RFC 6764 §3 for CalDAV/CardDAV): target "." says
	// the service is not offered.
	notOffered := func(service, what string) {
		add(service+"._tcp."+origin, "SRV", "0 0 0 .", what+" not offered (RFC 6186 §4)")
	}
	srv := func(offered bool, service string, prio, p int, target, what, rfc string) bool {
		if !offered {
			notOffered(service, what)
			return false
		}
		add(service+"._tcp."+origin, "SRV", fmt.Sprintf("%d 1 %d %s", prio, p, target), what+" ("+rfc+")")
		return true
	}
	// RFC 8314 §5.1: prefer implicit TLS, so submissions gets the lower
	// (preferred) priority.
	srv(on.Submissions, "_submissions", 0, port(p.Submissions, 465), mailHost, "submission over TLS", "RFC 8314")
	srv(on.Submission, "_submission", 10, port(p.Submission, 587), mailHost, "submission", "RFC 6186")
	srv(on.IMAPS, "_imaps", 0, port(p.IMAPS, 993), mailHost, "IMAP over TLS", "RFC 6186")
	srv(on.IMAP, "_imap", 10, port(p.IMAP, 143), mailHost, "IMAP", "RFC 6186")
	notOffered("_pop3", "POP3")
	notOffered("_pop3s", "POP3")
	if srv(on.CalDAV, "_caldavs", 0, port(p.HTTPS, 443), webHost, "CalDAV", "RFC 6764") {
		add("_caldavs._tcp."+origin, "TXT", "path=/.well-known/caldav", "RFC 6764 §4")
	}
	if srv(on.CardDAV, "_carddavs", 0, port(p.HTTPS, 443), webHost, "CardDAV", "RFC 6764") {
		add("_carddavs._tcp."+origin, "TXT", "path=/.well-known/carddav", "RFC 6764 §4")
	}
	if on.Autodiscover {
		srv(true, "_autodiscover", 0, port(p.HTTPS, 443), webHost, "Outlook autodiscover", "MS-OXDSCLI")
	}
	if on.Autoconfig {
		add("autoconfig."+origin, "CNAME", webHost, "Thunderbird autoconfig")
	}
	if on.Autodiscover {
		add("autodiscover."+origin, "CNAME", webHost, "Outlook autodiscover")
	}
	return out, nil
}

func dmarcRecord(c DMARCConfig) (string, error) {
	pol := c.Policy
	if pol == "" {
		pol = PolicyQuarantine
	}
	okPolicy := func(p Policy) bool { return p == PolicyNone || p == PolicyQuarantine || p == PolicyReject }
	if !okPolicy(pol) {
		return "", fmt.Errorf("DMARC policy %q, want none, quarantine or reject", pol)
	}
	s := "v=DMARC1; p=" + string(pol)
	if c.SubdomainPolicy != "" {
		if !okPolicy(c.SubdomainPolicy) {
			return "", fmt.Errorf("DMARC subdomain policy %q, want none, quarantine or reject", c.SubdomainPolicy)
		}
		s += "; sp=" + string(c.SubdomainPolicy)
	}
	if c.Percent != 0 && c.Percent != 100 {
		if c.Percent < 0 || c.Percent > 100 {
			return "", fmt.Errorf("DMARC pct=%d out of 0-100", c.Percent)
		}
		s += "; pct=" + strconv.Itoa(c.Percent)
	}
	if c.StrictDKIM {
		s += "; adkim=s"
	}
	if c.StrictSPF {
		s += "; aspf=s"
	}
	if len(c.RUA) > 0 {
		var uris []string
		for _, u := range c.RUA {
			u = strings.TrimSpace(u)
			if strings.ContainsAny(u, ";, \t") || u == "" {
				return "", fmt.Errorf("DMARC rua %q is not one URI", u)
			}
			if !strings.Contains(u, ":") {
				u = "mailto:" + u
			}
			uris = append(uris, u)
		}
		s += "; rua=" + strings.Join(uris, ",")
	}
	return s, nil
}

// ZoneRecord returns the TXT record that publishes k at
// Selector._domainkey.Domain (RFC 6376 §3.6.2.1), as [ZoneRecords] lists
// it; render it with [FormatZone]. A ttl of zero means 3600.
func (k Key) ZoneRecord(ttl int) (DNSRecord, error) {
	txt := k.TXT()
	if txt == "" {
		return DNSRecord{}, fmt.Errorf("%w: %s has no public key", ErrInvalidKey, k)
	}
	if ttl <= 0 {
		ttl = defaultTTL
	}
	name := k.Selector + "._domainkey." + strings.ToLower(strings.TrimSuffix(k.Domain, ".")) + "."
	return DNSRecord{Name: name, Type: "TXT", TTL: ttl, Value: txt, Comment: fmt.Sprintf("DKIM %s key, %s", k.Algorithm, k.State)}, nil
}

// FormatZone renders records as zone-file text (RFC 1035 §5). TXT data is
// split into quoted character-strings of at most 255 octets (RFC 1035
// §3.3.14), which resolvers join again; long DKIM RSA keys need that.
func FormatZone(records []DNSRecord) string {
	var b strings.Builder
	for _, r := range records {
		if r.Comment != "" {
			fmt.Fprintf(&b, "; %s\n", r.Comment)
		}
		value := r.Value
		if r.Type == "TXT" {
			value = quoteTXT(r.Value)
		}
		fmt.Fprintf(&b, "%s\t%d\tIN\t%s\t%s\n", r.Name, r.TTL, r.Type, value)
	}
	return b.String()
}

// quoteTXT splits s into quoted strings of at most 255 octets, escaping
// '"' and '\' (RFC 1035 §5.1). Several strings go in parentheses so the
// record may span lines.
func quoteTXT(s string) string {
	var parts []string
	for len(s) > 0 || len(parts) == 0 {
		n := min(len(s), 255)
		chunk := s[:n]
		s = s[n:]
		chunk = strings.ReplaceAll(chunk, `\`, `\\`)
		chunk = strings.ReplaceAll(chunk, `"`, `\"`)
		parts = append(parts, `"`+chunk+`"`)
	}
	if len(parts) == 1 {
		return parts[0]
	}
	return "( " + strings.Join(parts, "\n\t\t") + " )"
}

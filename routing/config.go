package routing

import (
	"errors"
	"fmt"
	"net/netip"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// Config is the routing configuration an administrator writes; [Compile]
// checks it and turns it into immutable [Rules]. The zero Config is valid:
// hosted domains deliver locally, unknown recipients are rejected, and
// only authenticated clients may relay.
//
// Users, aliases, groups and resources come from the directory, not from
// here; Config holds what a directory does not know.
type Config struct {
	// RelayDomains are domains this server accepts mail for from anyone
	// without hosting mailboxes, and relays on (an edge or backup MX).
	RelayDomains []RelayDomain
	// Routes are transport routes: where mail for an address, a domain, a
	// domain's subdomains or everything else ("*", a smarthost) goes. See
	// [Route.Match] for the lookup order.
	Routes []Route
	// Unknown says what happens to recipients in a hosted domain that the
	// directory does not know: per domain, and a default (Domain ""). Without
	// an entry they are rejected at RCPT.
	Unknown []UnknownPolicy
	// TechnicalDomains are alias domains used during coexistence: mail to
	// them is always delivered locally, never to a route or central hop.
	TechnicalDomains []TechnicalDomain
	// Forwards are per-user forwarding settings.
	Forwards []Forward
	// AlwaysBCC sends a copy of messages to fixed addresses (DLP,
	// journaling).
	AlwaysBCC []BCC
	// CentralHop, if set, receives all inbound mail for hosted domains
	// first ("unconditional forwarding" to a central node). Mail from
	// authenticated clients and relaynets is routed normally, so the
	// central node (which must be in Relaynets) can hand mail back.
	CentralHop *Gateway
	// Relaynets are the client networks (CIDR, or single addresses) that
	// may relay without SMTP AUTH.
	Relaynets []string
}

// Gateway is a configured relay target.
type Gateway struct {
	// NextHop in the syntax of [NextHop] ("mx:host:port", "[2001:db8::1]", ...).
	NextHop string
	// TLS is the hop's TLS policy; the zero value is opportunistic.
	TLS TLSPolicy
	// Auth, if set, is used for SMTP AUTH at the hop.
	Auth *Credentials
}

// Route is a transport route.
type Route struct {
	// Match selects recipients. The most specific route wins, in this
	// order: "user+ext@domain" (the full local part), "user@domain" (also
	// matches user+anything@domain), "domain", ".domain" (any subdomain of
	// domain, the longest suffix first), and "*" (everything else).
	//
	// Routes that name an address or a domain apply to hosted domains too,
	// and override local delivery (users still on the old system during a
	// migration); "*" applies only to domains neither hosted nor relay
	// domains with a next hop of their own.
	Match string
	Gateway
}

// RelayDomain is a domain (or, written ".domain", every subdomain of it)
// this server accepts mail for and relays to the gateway. An empty
// NextHop delivers by MX of the recipient's domain.
type RelayDomain struct {
	Domain string
	Gateway
}

// UnknownAction is what happens to a recipient in a hosted domain that
// the directory does not know.
type UnknownAction int

// Unknown-recipient actions. The zero value rejects.
const (
	// UnknownReject rejects at RCPT with 550 5.1.1 (no backscatter).
	UnknownReject UnknownAction = iota
	// UnknownCatchAll delivers to the policy's CatchAll address.
	UnknownCatchAll
	// UnknownRelay relays to the policy's Gateway (the old system during
	// coexistence, which still knows the recipient).
	UnknownRelay
)

// ParseUnknownAction reads "reject" (or ""), "catch-all" or "relay".
// Errors wrap [ErrConfig].
func ParseUnknownAction(s string) (UnknownAction, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "reject":
		return UnknownReject, nil
	case "catch-all", "catchall":
		return UnknownCatchAll, nil
	case "relay":
		return UnknownRelay, nil
	}
	return 0, fmt.Errorf("%w: unknown-recipient action %q: want reject, catch-all or relay", ErrConfig, s)
}

// String returns the action's name as ParseUnknownAction reads it.
func (a UnknownAction) String() string {
	switch a {
	case UnknownReject:
		return "reject"
	case UnknownCatchAll:
		return "catch-all"
	case UnknownRelay:
		return "relay"
	}
	return fmt.Sprintf("unknown-action(%d)", int(a))
}

// MarshalText implements encoding.TextMarshaler.
func (a UnknownAction) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseUnknownAction.
func (a *UnknownAction) UnmarshalText(b []byte) error {
	v, err := ParseUnknownAction(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// UnknownPolicy is the unknown-recipient policy of one hosted domain, or
// of every hosted domain without its own when Domain is empty.
type UnknownPolicy struct {
	// Domain is the hosted domain's main name (not an alternative one);
	// empty for the default.
	Domain string
	Action UnknownAction
	// CatchAll is the address that receives mail for unknown recipients
	// with UnknownCatchAll; it is resolved like any other address.
	CatchAll string
	// Gateway receives mail for unknown recipients with UnknownRelay. Its
	// next hop must name a host: MX of the recipient's domain is this
	// server.
	Gateway Gateway
}

// TechnicalDomain is the coexistence alias domain: "x@Name" is "x@Domain",
// and is always delivered locally, whatever routes, central hop or
// unknown-recipient relay say about Domain. This is what keeps the copy
// that the old system forwards to the technical domain from being routed
// back to it.
type TechnicalDomain struct {
	Name   string
	Domain string
}

// Forward is the forwarding setting of one user.
type Forward struct {
	// Address is one of the user's addresses (primary or alias), under
	// its main domain name: the directory's alternative names are not
	// known when the configuration is compiled.
	Address string
	// Targets receive a copy of every message to the user.
	Targets []string
	// KeepCopy also delivers to the user's own mailbox.
	KeepCopy bool
}

// Direction selects which messages an always-BCC entry copies.
type Direction int

// Directions. The zero value copies both.
const (
	// DirectionBoth copies inbound and outbound messages.
	DirectionBoth Direction = iota
	// DirectionInbound copies messages to recipients in hosted domains.
	DirectionInbound
	// DirectionOutbound copies messages from authenticated clients and
	// relaynets.
	DirectionOutbound
)

// ParseDirection reads "both" (or ""), "inbound" or "outbound". Errors
// wrap [ErrConfig].
func ParseDirection(s string) (Direction, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "both":
		return DirectionBoth, nil
	case "inbound":
		return DirectionInbound, nil
	case "outbound":
		return DirectionOutbound, nil
	}
	return 0, fmt.Errorf("%w: direction %q: want both, inbound or outbound", ErrConfig, s)
}

// String returns the direction's name as ParseDirection reads it.
func (d Direction) String() string {
	switch d {
	case DirectionBoth:
		return "both"
	case DirectionInbound:
		return "inbound"
	case DirectionOutbound:
		return "outbound"
	}
	return fmt.Sprintf("direction(%d)", int(d))
}

// MarshalText implements encoding.TextMarshaler.
func (d Direction) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler with ParseDirection.
func (d *Direction) UnmarshalText(b []byte) error {
	v, err := ParseDirection(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// BCC is an always-BCC entry: a copy of each matching message goes to
// Address.
type BCC struct {
	Address string
	// Domain limits the entry to one hosted (main) domain: the
	// recipient's for inbound messages, the sender's for outbound ones.
	// Empty: all.
	Domain    string
	Direction Direction
}

// Rules is a compiled, immutable [Config]. It is safe for concurrent use
// and may be shared by several tables.
type Rules struct {
	addrRoutes   map[string]*routeEntry // "local@domain", local may hold +ext
	domainRoutes map[string]*routeEntry // exact domain: routes and relay domains
	subRoutes    map[string]*routeEntry // ".parent" stored as "parent"
	star         *routeEntry
	relayExact   map[string]bool
	relaySub     map[string]bool

	unknown        map[string]unknownRule
	unknownDefault unknownRule
	technical      map[string]string
	forwards       map[string]*forwardRule
	bcc            []BCC
	bccByDomain    bool // some outbound entry names a domain
	central        *Hop
	relaynets      []netip.Prefix
}

type routeEntry struct {
	hop  Hop
	rule string // RuleRoute or RuleRelayDomain
}

type unknownRule struct {
	action   UnknownAction
	catchAll string
	hop      Hop
	source   string // "default" or the domain, for Explain
}

type forwardRule struct {
	address  string
	targets  []string
	keepCopy bool
}

// Compile checks cfg and compiles it. Every problem is reported (joined),
// each naming the entry, and wraps [ErrConfig].
//
// The sections compile in a fixed order because later ones consult
// earlier ones: relay domains refuse names that technical_domains
// already claimed.
func Compile(cfg Config) (*Rules, error) {
	r := newRules()
	var errs configErrors
	r.compileTechnicalDomains(cfg.TechnicalDomains, &errs)
	r.compileRelayDomains(cfg.RelayDomains, &errs)
	r.compileRoutes(cfg.Routes, &errs)
	r.compileUnknown(cfg.Unknown, &errs)
	r.compileForwards(cfg.Forwards, &errs)
	r.compileAlwaysBCC(cfg.AlwaysBCC, &errs)
	r.compileCentralHop(cfg.CentralHop, &errs)
	r.compileRelaynets(cfg.Relaynets, &errs)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return r, nil
}

// newRules returns empty Rules with every map allocated.
func newRules() *Rules {
	return &Rules{
		addrRoutes: map[string]*routeEntry{}, domainRoutes: map[string]*routeEntry{},
		subRoutes: map[string]*routeEntry{}, relayExact: map[string]bool{}, relaySub: map[string]bool{},
		unknown: map[string]unknownRule{}, technical: map[string]string{}, forwards: map[string]*forwardRule{},
	}
}

// configErrors collects Compile's problems so that one run reports all
// of them rather than stopping at the first.
type configErrors []error

// fail records one problem, wrapping [ErrConfig] unless it already does.
func (e *configErrors) fail(format string, args ...any) {
	err := fmt.Errorf(format, args...)
	if !errors.Is(err, ErrConfig) {
		err = fmt.Errorf("%w: %w", ErrConfig, err)
	}
	*e = append(*e, err)
}

// compileTechnicalDomains records each technical domain's main domain.
func (r *Rules) compileTechnicalDomains(tds []TechnicalDomain, errs *configErrors) {
	for i, td := range tds {
		name, err1 := directory.CanonicalDomain(td.Name)
		main, err2 := directory.CanonicalDomain(td.Domain)
		switch {
		case err1 != nil || err2 != nil:
			errs.fail("technical_domains[%d]: %w", i, errors.Join(err1, err2))
		case name == main:
			errs.fail("technical_domains[%d]: %q cannot be an alias of itself", i, name)
		case r.technical[name] != "":
			errs.fail("technical_domains[%d]: %q listed twice", i, name)
		default:
			r.technical[name] = main
		}
	}
}

// compileRelayDomains accepts each relay domain (exact, or ".parent" for
// its subdomains) and routes it to its gateway.
func (r *Rules) compileRelayDomains(rds []RelayDomain, errs *configErrors) {
	for i, rd := range rds {
		hop, err := compileGateway(rd.Gateway, false)
		if err != nil {
			errs.fail("relay_domains[%d] %q: %w", i, rd.Domain, err)
			continue
		}
		sub, name, err := parseDomainPattern(rd.Domain)
		if err != nil {
			errs.fail("relay_domains[%d]: %w", i, err)
			continue
		}
		if r.technical[name] != "" {
			errs.fail("relay_domains[%d]: %q is a technical domain", i, rd.Domain)
			continue
		}
		hop.Route = strings.ToLower(strings.TrimSpace(rd.Domain))
		e := &routeEntry{hop: hop, rule: RuleRelayDomain}
		accept, routes := r.relayExact, r.domainRoutes
		if sub {
			accept, routes = r.relaySub, r.subRoutes
		}
		if accept[name] {
			errs.fail("relay_domains[%d]: %q listed twice", i, rd.Domain)
			continue
		}
		accept[name], routes[name] = true, e
	}
}

// compileRoutes adds each transport route.
func (r *Rules) compileRoutes(rts []Route, errs *configErrors) {
	for i, rt := range rts {
		hop, err := compileGateway(rt.Gateway, false)
		if err != nil {
			errs.fail("routes[%d] %q: %w", i, rt.Match, err)
			continue
		}
		if err := r.addRoute(rt.Match, hop); err != nil {
			errs.fail("routes[%d]: %w", i, err)
		}
	}
}

// compileUnknown records the unknown-recipient policies: at most one per
// domain and one default. Without a configured default the default
// still names itself "default" for Explain.
func (r *Rules) compileUnknown(us []UnknownPolicy, errs *configErrors) {
	for i, u := range us {
		key, rule, ok := compileUnknownPolicy(i, u, errs)
		if !ok {
			continue
		}
		_, dup := r.unknown[key]
		if dup || (key == "" && r.unknownDefault.source != "") {
			errs.fail("unknown[%d]: domain %q has two policies", i, u.Domain)
			continue
		}
		if key == "" {
			r.unknownDefault = rule
		} else {
			r.unknown[key] = rule
		}
	}
	if r.unknownDefault.source == "" {
		r.unknownDefault.source = "default"
	}
}

// compileUnknownPolicy compiles unknown[i]: its key ("" for the default)
// and rule, or ok false after recording the problem.
func compileUnknownPolicy(i int, u UnknownPolicy, errs *configErrors) (key string, rule unknownRule, ok bool) {
	rule = unknownRule{action: u.Action, source: "default"}
	if u.Domain != "" {
		d, err := directory.CanonicalDomain(u.Domain)
		if err != nil {
			errs.fail("unknown[%d]: %w", i, err)
			return "", rule, false
		}
		key, rule.source = d, d
	}
	switch u.Action {
	case UnknownReject:
	case UnknownCatchAll:
		a, err := directory.ParseAddress(u.CatchAll)
		if err != nil {
			errs.fail("unknown[%d]: catch-all: %w", i, err)
			return "", rule, false
		}
		rule.catchAll = a.Canonical()
	case UnknownRelay:
		hop, err := compileGateway(u.Gateway, true)
		if err != nil {
			errs.fail("unknown[%d]: %w", i, err)
			return "", rule, false
		}
		rule.hop = hop
	default:
		errs.fail("unknown[%d]: bad action %d", i, u.Action)
		return "", rule, false
	}
	return key, rule, true
}

// compileForwards records each forward; one with any bad target is
// dropped whole, after every bad target has been reported.
func (r *Rules) compileForwards(fs []Forward, errs *configErrors) {
	for i, f := range fs {
		a, err := directory.ParseAddress(f.Address)
		if err != nil {
			errs.fail("forwards[%d]: %w", i, err)
			continue
		}
		key := a.Canonical()
		if r.forwards[key] != nil {
			errs.fail("forwards[%d]: %q listed twice", i, key)
			continue
		}
		if len(f.Targets) == 0 {
			errs.fail("forwards[%d] %q: no targets", i, key)
			continue
		}
		fr := &forwardRule{address: key, keepCopy: f.KeepCopy}
		ok := true
		for _, t := range f.Targets {
			ta, err := directory.ParseAddress(t)
			if err != nil {
				errs.fail("forwards[%d] %q: target: %w", i, key, err)
				ok = false
				continue
			}
			fr.targets = append(fr.targets, ta.String())
		}
		if ok {
			r.forwards[key] = fr
		}
	}
}

// compileAlwaysBCC records each always-BCC entry.
func (r *Rules) compileAlwaysBCC(bs []BCC, errs *configErrors) {
	for i, b := range bs {
		a, err := directory.ParseAddress(b.Address)
		if err != nil {
			errs.fail("always_bcc[%d]: %w", i, err)
			continue
		}
		e := BCC{Address: a.String(), Direction: b.Direction}
		if b.Domain != "" {
			if e.Domain, err = directory.CanonicalDomain(b.Domain); err != nil {
				errs.fail("always_bcc[%d]: %w", i, err)
				continue
			}
			if b.Direction != DirectionInbound {
				r.bccByDomain = true
			}
		}
		if b.Direction < DirectionBoth || b.Direction > DirectionOutbound {
			errs.fail("always_bcc[%d]: bad direction %d", i, b.Direction)
			continue
		}
		r.bcc = append(r.bcc, e)
	}
}

// compileCentralHop compiles the optional central next hop.
func (r *Rules) compileCentralHop(g *Gateway, errs *configErrors) {
	if g == nil {
		return
	}
	hop, err := compileGateway(*g, true)
	if err != nil {
		errs.fail("central_hop: %w", err)
		return
	}
	r.central = &hop
}

// compileRelaynets parses each relay network prefix.
func (r *Rules) compileRelaynets(nets []string, errs *configErrors) {
	for i, s := range nets {
		p, err := ParseNetwork(s)
		if err != nil {
			errs.fail("relaynets[%d]: %w", i, err)
			continue
		}
		r.relaynets = append(r.relaynets, p)
	}
}

// compileGateway parses a gateway's next hop. needHost refuses next hops
// that resolve through the recipient's own domain (this server, for
// hosted domains).
func compileGateway(g Gateway, needHost bool) (Hop, error) {
	nh, err := ParseNextHop(g.NextHop)
	if err != nil {
		return Hop{}, err
	}
	if needHost && nh.Host == "" {
		return Hop{}, fmt.Errorf("%w: next hop %q: must name a host (MX of a hosted domain is this server)", ErrConfig, g.NextHop)
	}
	if g.TLS < TLSOpportunistic || g.TLS > TLSVerify {
		return Hop{}, fmt.Errorf("%w: bad TLS policy %d", ErrConfig, g.TLS)
	}
	if g.Auth != nil && g.Auth.Username == "" {
		return Hop{}, fmt.Errorf("%w: AUTH credentials without a username", ErrConfig)
	}
	h := Hop{NextHop: nh, TLS: g.TLS}
	if g.Auth != nil {
		c := *g.Auth
		h.Auth = &c
	}
	return h, nil
}

// parseDomainPattern reads "domain" or ".domain".
func parseDomainPattern(s string) (sub bool, name string, err error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, ".") {
		sub, s = true, s[1:]
	}
	name, err = directory.CanonicalDomain(s)
	return sub, name, err
}

// addRoute parses a route pattern and adds hop under it.
func (r *Rules) addRoute(pattern string, hop Hop) error {
	p := strings.TrimSpace(pattern)
	e := &routeEntry{hop: hop, rule: RuleRoute}
	switch {
	case p == "":
		return fmt.Errorf("%w: empty route pattern (use \"*\" for everything)", ErrConfig)
	case p == "*":
		if r.star != nil {
			return fmt.Errorf("%w: route \"*\" listed twice", ErrConfig)
		}
		e.hop.Route = "*"
		r.star = e
		return nil
	case strings.Contains(p, "@"):
		a, err := directory.ParseAddress(p)
		if err != nil {
			return fmt.Errorf("route %q: %w", pattern, err)
		}
		key := a.Canonical()
		if r.technical[a.Domain] != "" {
			return fmt.Errorf("%w: route %q: %s is a technical domain, always delivered locally", ErrConfig, pattern, a.Domain)
		}
		if r.addrRoutes[key] != nil {
			return fmt.Errorf("%w: route %q listed twice", ErrConfig, key)
		}
		e.hop.Route = key
		r.addrRoutes[key] = e
		return nil
	}
	sub, name, err := parseDomainPattern(p)
	if err != nil {
		return fmt.Errorf("route %q: %w", pattern, err)
	}
	m, key := r.domainRoutes, name
	if sub {
		m, key = r.subRoutes, name
		e.hop.Route = "." + name
	} else {
		e.hop.Route = name
		if r.technical[name] != "" {
			return fmt.Errorf("%w: route %q: a technical domain is always delivered locally", ErrConfig, pattern)
		}
	}
	if old := m[key]; old != nil {
		if old.rule == RuleRelayDomain {
			return fmt.Errorf("%w: route %q: also a relay domain (give the relay domain the next hop)", ErrConfig, e.hop.Route)
		}
		return fmt.Errorf("%w: route %q listed twice", ErrConfig, e.hop.Route)
	}
	m[key] = e
	return nil
}

// ParseNetwork parses a network written as a CIDR prefix ("192.0.2.0/24",
// masked) or a single IP address (its /32 or /128), as relaynets and the
// reference server's trusted balancers are written. IPv4-mapped IPv6
// networks are refused: write them as IPv4.
func ParseNetwork(s string) (netip.Prefix, error) {
	s = strings.TrimSpace(s)
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return netip.Prefix{}, fmt.Errorf("%w: network %q: %w", ErrConfig, s, err)
		}
		if p.Addr().Is4In6() {
			return netip.Prefix{}, fmt.Errorf("%w: network %q: write IPv4-mapped networks as IPv4", ErrConfig, s)
		}
		return p.Masked(), nil
	}
	ip, err := netip.ParseAddr(s)
	if err != nil || ip.Zone() != "" {
		return netip.Prefix{}, fmt.Errorf("%w: network %q: want a CIDR or an IP address", ErrConfig, s)
	}
	ip = ip.Unmap()
	return netip.PrefixFrom(ip, ip.BitLen()), nil
}

// Relaynet reports whether ip is in one of the configured relaynets. An
// IPv4-mapped IPv6 address counts as its IPv4 address.
func (r *Rules) Relaynet(ip netip.Addr) bool {
	if !ip.IsValid() {
		return false
	}
	ip = ip.Unmap()
	for _, p := range r.relaynets {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

// route finds the most specific route for local@domain (local in
// lowercase): user+ext@domain, user@domain, domain, .parent (longest
// first), and "*" if withStar.
func (r *Rules) route(local, domain string, withStar bool) *routeEntry {
	if len(r.addrRoutes) > 0 {
		if e := r.addrRoutes[local+"@"+domain]; e != nil {
			return e
		}
		if base, _, ok := directory.SplitSubaddress(local); ok {
			if e := r.addrRoutes[base+"@"+domain]; e != nil {
				return e
			}
		}
	}
	if e := r.domainRoutes[domain]; e != nil {
		return e
	}
	if len(r.subRoutes) > 0 {
		for d := domain; ; {
			i := strings.IndexByte(d, '.')
			if i < 0 {
				break
			}
			d = d[i+1:]
			if e := r.subRoutes[d]; e != nil {
				return e
			}
		}
	}
	if withStar {
		return r.star
	}
	return nil
}

// relayDomain reports whether domain is a relay domain, directly or as a
// subdomain of a ".domain" entry.
func (r *Rules) relayDomain(domain string) bool {
	if r.relayExact[domain] {
		return true
	}
	if len(r.relaySub) == 0 {
		return false
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return false
		}
		d = d[i+1:]
		if r.relaySub[d] {
			return true
		}
	}
}

// forward returns the forwarding rule of a user, looked up under each of
// the user's addresses.
func (r *Rules) forward(u *directory.User) *forwardRule {
	if len(r.forwards) == 0 {
		return nil
	}
	if f := r.forwards[u.Address]; f != nil {
		return f
	}
	for _, a := range u.Aliases {
		c, err := directory.CanonicalAddress(a)
		if err != nil {
			continue // no forward is keyed by an address that does not parse
		}
		if f := r.forwards[c]; f != nil {
			return f
		}
	}
	return nil
}

func (r *Rules) unknownFor(domain string) unknownRule {
	if u, ok := r.unknown[domain]; ok {
		return u
	}
	return r.unknownDefault
}

package routing

import "strings"

// Transport names of the entries that have no pattern of their own.
const (
	transportCentralHop   = "!central-hop"
	transportUnknownRelay = "!unknown-relay:" // + the recipient's domain
)

// TransportOf names the configuration entry that chose a Relay decision's
// next hop, so that a queue can keep the name instead of the hop and look
// the hop up again when it delivers ([Rules.Transport]): a changed next hop
// or password then applies to mail already queued, and no credentials are
// stored with it. The name is the route or relay-domain pattern
// (Hop.Route), "!central-hop" for the central hop, "!unknown-relay:DOMAIN"
// for a hosted domain's unknown-recipient gateway, and "" for MX delivery
// to the recipient's domain (nothing to look up). A relay reached through
// a forward or always-BCC entry carries that rule: only its Hop.Route
// names it.
func TransportOf(d Decision) string {
	switch {
	case d.Hop.Route != "":
		return d.Hop.Route
	case d.Rule == RuleCentralHop:
		return transportCentralHop
	case d.Rule == RuleUnknownRelay:
		if at := strings.LastIndexByte(d.Address, '@'); at >= 0 {
			return transportUnknownRelay + strings.ToLower(d.Address[at+1:])
		}
	}
	return ""
}

// Transport returns the hop that transport name (from [TransportOf]) has in
// these rules; ok is false when the entry no longer exists.
func (r *Rules) Transport(name string) (Hop, bool) {
	var e *routeEntry
	switch {
	case name == "":
		return Hop{}, false
	case name == transportCentralHop:
		if r.central == nil {
			return Hop{}, false
		}
		return *r.central, true
	case strings.HasPrefix(name, transportUnknownRelay):
		u := r.unknownFor(strings.TrimPrefix(name, transportUnknownRelay))
		return u.hop, u.action == UnknownRelay
	case name == "*":
		e = r.star
	case strings.Contains(name, "@"):
		e = r.addrRoutes[name]
	case strings.HasPrefix(name, "."):
		e = r.subRoutes[name[1:]]
	default:
		e = r.domainRoutes[name]
	}
	if e == nil {
		return Hop{}, false
	}
	return e.hop, true
}

// Transport returns the hop of transport name in the table's rules (see
// [Rules.Transport]).
func (t *Table) Transport(name string) (Hop, bool) { return t.rules.Transport(name) }

package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// DefaultMaxExpansion is TableOptions.MaxExpansion when it is zero.
const DefaultMaxExpansion = 1000

// Rule names carried in Decision.Rule.
const (
	RuleSyntax           = "syntax"            // the address is malformed
	RuleRemote           = "remote"            // the domain is not hosted here: MX delivery
	RuleRelayDenied      = "relay-denied"      // remote, and the client may not relay
	RuleRelayDomain      = "relay-domain"      // a relay domain's next hop
	RuleRoute            = "route"             // a transport route (Hop.Route names it)
	RuleCentralHop       = "central-hop"       // inbound mail goes to the central hop first
	RuleTechnicalDomain  = "technical-domain"  // a technical domain whose main domain is not hosted
	RuleUnknownRecipient = "unknown-recipient" // hosted domain, no such address
	RuleCatchAll         = "catch-all"         // unknown recipient, delivered to the catch-all
	RuleUnknownRelay     = "unknown-relay"     // unknown recipient, relayed to the domain's gateway
	RuleDisabledUser     = "disabled-user"     // the user is disabled (blocked)
	RuleUser             = "user"              // delivery to a user's account
	RuleResource         = "resource"          // delivery to a resource's account
	RuleForward          = "forward"           // reached through a user's forwarding
	RuleAlwaysBCC        = "always-bcc"        // an always-BCC copy
	RuleLoop             = "loop"              // expansion only led back to itself
	RuleEmptyExpansion   = "empty-expansion"   // an alias or group without targets
	RuleExpansionLimit   = "expansion-limit"   // more than MaxExpansion final recipients
)

// TableOptions configures [NewTable]. The zero value works.
type TableOptions struct {
	// MaxExpansion caps the final recipients one envelope recipient (and,
	// separately, each always-BCC copy) may expand to; DefaultMaxExpansion
	// if zero or negative. A recipient over the cap is rejected as a whole
	// (rule "expansion-limit") rather than silently truncated.
	MaxExpansion int
	// Logger receives expansion-limit warnings. Nil discards.
	Logger *slog.Logger
	// Sites, if set, locates addresses on the other sites of a
	// distributed installation: an address one of them holds is relayed
	// there (rule "remote-site") instead of being unknown here or sent by
	// MX.
	Sites Sites
	// Rules are the compiled routing configuration; nil means the zero
	// [Config]: local delivery, unknown recipients rejected, relaying
	// for authenticated clients only.
	Rules *Rules
}

// Table resolves recipients against a directory and compiled rules with
// the algorithm in the package documentation. It reads the directory on
// every call, so directory changes apply at once; the rules are fixed
// (build a new Table to change them). It is safe for concurrent use.
type Table struct {
	dir   directory.Directory
	max   int
	log   *slog.Logger
	rules *Rules
	sites Sites
}

// NewTable returns a routing table over dir.
func NewTable(dir directory.Directory, opts TableOptions) *Table {
	t := &Table{dir: dir, max: opts.MaxExpansion, log: opts.Logger, rules: opts.Rules, sites: opts.Sites}
	if t.max <= 0 {
		t.max = DefaultMaxExpansion
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	if t.rules == nil {
		// The zero Config always compiles (TestCompileErrors checks).
		t.rules, _ = Compile(Config{})
	}
	return t
}

// Relaynet reports whether a client at ip may relay without SMTP AUTH.
func (t *Table) Relaynet(ip netip.Addr) bool { return t.rules.Relaynet(ip) }

// Resolve decides what happens to one envelope recipient. The result holds
// at least one decision; malformed addresses, unknown recipients, disabled
// users and relaying the client may not do are Reject decisions, not
// errors. An error means the directory could not be read (or ctx ended),
// and the caller should answer with a temporary failure (RFC 5321 §4.2.5,
// 451).
func (t *Table) Resolve(ctx context.Context, env Envelope, recipient string) (Result, error) {
	return t.resolve(ctx, env, recipient, nil)
}

// Explain resolves recipient for env like Resolve and returns a readable,
// multi-line account of every step: the envelope as routing sees it,
// technical and alternative domain mapping, routes and relay domains,
// sub-addressing, each alias, group or forwarding expanded, skipped
// duplicates and loops, the unknown-recipient policy, always-BCC copies,
// and the final decisions with their rules. It is meant for
// administrators and never shows a password.
func (t *Table) Explain(ctx context.Context, env Envelope, recipient string) (string, error) {
	var sb strings.Builder
	from := env.From
	if from == "" {
		from = "<>"
	}
	fmt.Fprintf(&sb, "envelope: from %s, authenticated %t", from, env.Authenticated)
	if env.ClientIP.IsValid() {
		fmt.Fprintf(&sb, ", client %s (relaynet %t)", env.ClientIP, t.rules.Relaynet(env.ClientIP))
	}
	sb.WriteByte('\n')
	res, err := t.resolve(ctx, env, recipient, &sb)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&sb, "decisions for %s: %d\n", res.Recipient, len(res.Decisions))
	for _, d := range res.Decisions {
		fmt.Fprintf(&sb, "  %s\n", formatDecision(d))
	}
	if len(res.Copies) > 0 {
		fmt.Fprintf(&sb, "copies: %d\n", len(res.Copies))
		for _, d := range res.Copies {
			fmt.Fprintf(&sb, "  %s\n", formatDecision(d))
		}
	}
	return sb.String(), nil
}

func formatDecision(d Decision) string {
	switch d.Kind {
	case Deliver:
		return fmt.Sprintf("deliver %s to account %s [rule %s]", d.Address, d.Account, d.Rule)
	case Relay:
		domain := d.Address[strings.LastIndexByte(d.Address, '@')+1:]
		return fmt.Sprintf("relay %s via %s [rule %s, permit %s]", d.Address, d.Hop.describe(domain), d.Rule, d.Permit)
	case Reject:
		return fmt.Sprintf("reject %s: %d %s %s [rule %s]", d.Address, d.Code, d.Enhanced, d.Reason, d.Rule)
	}
	return fmt.Sprintf("%s %s [rule %s]", d.Kind, d.Address, d.Rule)
}

func (t *Table) resolve(ctx context.Context, env Envelope, recipient string, trace *strings.Builder) (Result, error) {
	submitted := env.Authenticated || t.rules.Relaynet(env.ClientIP)
	x := t.newExpansion(ctx, env, submitted, trace)
	if x.trace != nil {
		x.tracef(0, "recipient %q", recipient)
	}
	decisions, err := x.run(item{addr: recipient, depth: 1, top: true})
	if err != nil {
		return Result{}, err
	}
	res := Result{Recipient: x.recipient, Decisions: decisions}
	if len(t.rules.bcc) == 0 || !accepted(decisions) {
		return res, nil
	}
	bccs, err := t.bccFor(ctx, env, submitted, x.rcptDomain, x)
	if err != nil {
		return Result{}, err
	}
	keys := map[string]bool{}
	for _, addr := range bccs {
		y := t.newExpansion(ctx, env, submitted, trace)
		if y.trace != nil {
			y.tracef(0, "copy to %q", addr)
		}
		ds, err := y.run(item{addr: addr, depth: 1, via: RuleAlwaysBCC})
		if err != nil {
			return Result{}, err
		}
		for _, d := range ds {
			if k := decisionKey(d); !keys[k] {
				keys[k] = true
				res.Copies = append(res.Copies, d)
			}
		}
	}
	return res, nil
}

func accepted(ds []Decision) bool {
	for _, d := range ds {
		if d.Kind != Reject {
			return true
		}
	}
	return false
}

// decisionKey identifies a decision's target: the account for
// deliveries and blocked users, the address otherwise.
func decisionKey(d Decision) string {
	if d.Account != "" {
		return "account " + d.Account
	}
	return "address " + d.Address
}

// bccFor returns the always-BCC addresses that apply: inbound entries when
// the recipient is in a hosted domain (rcptDomain), outbound ones when the
// envelope was submitted; each address once.
func (t *Table) bccFor(ctx context.Context, env Envelope, submitted bool, rcptDomain string, x *expansion) ([]string, error) {
	senderDomain := ""
	if submitted && t.rules.bccByDomain {
		if a, err := directory.ParseAddress(env.From); err == nil {
			d, err := t.dir.LookupDomain(ctx, a.Domain)
			switch {
			case err == nil:
				senderDomain = d.Name
			case !errors.Is(err, directory.ErrNotFound):
				return nil, fmt.Errorf("routing: look up sender domain %q: %w", a.Domain, err)
			}
		}
	}
	var out []string
	for _, b := range t.rules.bcc {
		in := b.Direction != DirectionOutbound && rcptDomain != "" && (b.Domain == "" || b.Domain == rcptDomain)
		outb := b.Direction != DirectionInbound && submitted && (b.Domain == "" || b.Domain == senderDomain)
		if !in && !outb {
			continue
		}
		why := "inbound"
		if !in {
			why = "outbound"
		}
		if b.Domain != "" {
			why += " for " + b.Domain
		}
		if containsFold(out, b.Address) {
			continue
		}
		if x.trace != nil {
			x.tracef(0, "always-bcc %s applies (%s)", b.Address, why)
		}
		out = append(out, b.Address)
	}
	return out, nil
}

func containsFold(list []string, s string) bool {
	for _, v := range list {
		if strings.EqualFold(v, s) {
			return true
		}
	}
	return false
}

// item is one address to visit.
type item struct {
	addr  string
	depth int
	via   string // the rule that led here (forward, catch-all, always-bcc)
	top   bool   // the envelope recipient itself
	local bool   // reached through a technical domain: stays local
	// catchAll: this is the catch-all address (which, if unknown itself,
	// is rejected rather than caught again).
	catchAll bool
}

// child returns the item for a target of it. The outermost rule that led
// to an address stays (an always-BCC copy forwarded on is still a copy).
func (it item) child(addr, via string) item {
	if it.via != "" {
		via = it.via
	}
	return item{addr: addr, depth: it.depth + 1, via: via, local: it.local}
}

// expansion is the state of resolving one envelope recipient (or one
// always-BCC copy).
type expansion struct {
	t         *Table
	ctx       context.Context
	env       Envelope
	submitted bool             // authenticated or from a relaynet
	trace     *strings.Builder // nil unless explaining

	decisions  []Decision
	finals     map[string]bool // keys of the decisions made (see decide); nil until used
	visited    map[string]bool // addresses already looked at; nil until used
	expanded   map[string]bool // aliases, groups and forwardings already expanded; nil until used
	skipped    bool            // some address was reached twice
	recipient  string          // the root address as resolved
	rcptDomain string          // the root's hosted main domain, if any
	steps      int
}

func (t *Table) newExpansion(ctx context.Context, env Envelope, submitted bool, trace *strings.Builder) *expansion {
	return &expansion{
		t: t, ctx: ctx, env: env, submitted: submitted, trace: trace,
	}
}

// tracef writes one line of the explanation. Callers check x.trace
// first, so that resolving without Explain does not box the arguments.
func (x *expansion) tracef(depth int, format string, args ...any) {
	x.trace.WriteString(strings.Repeat("  ", depth))
	fmt.Fprintf(x.trace, format, args...)
	x.trace.WriteByte('\n')
}

// mark adds key to the set *m, making the set on first use: most
// resolutions touch one address, and nil sets cost nothing to read.
func mark(m *map[string]bool, key string) {
	if *m == nil {
		*m = make(map[string]bool, 4)
	}
	(*m)[key] = true
}

// errExpansionLimit stops the walk when the cap is hit.
var errExpansionLimit = errors.New("routing: expansion limit")

// run resolves the root and everything it leads to, depth first in
// target order, and returns the decisions (never none).
func (x *expansion) run(root item) ([]Decision, error) {
	x.recipient = root.addr
	stack := []item{root}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		targets, err := x.visit(it)
		if errors.Is(err, errExpansionLimit) {
			x.t.log.WarnContext(x.ctx, "routing: expansion limit reached", "recipient", x.recipient, "limit", x.t.max)
			if x.trace != nil {
				x.tracef(it.depth, "expansion exceeds %d recipients: the whole recipient is rejected", x.t.max)
			}
			return []Decision{{
				Kind: Reject, Address: x.recipient, Code: 550, Enhanced: "5.2.4",
				Reason: fmt.Sprintf("expansion exceeds %d recipients", x.t.max), Rule: RuleExpansionLimit,
			}}, nil
		}
		if err != nil {
			return nil, err
		}
		for i := len(targets) - 1; i >= 0; i-- {
			stack = append(stack, targets[i])
		}
	}
	if len(x.decisions) == 0 {
		// Only an alias, group or forwarding can end without decisions:
		// every target was a loop back or it had none. RFC 3463 §3.5:
		// X.4.6 routing loop; §3.3: X.2.4 mailing list expansion problem.
		d := Decision{Kind: Reject, Address: x.recipient, Code: 550}
		if x.skipped {
			d.Enhanced, d.Reason, d.Rule = "5.4.6", "alias or group expands only to itself", RuleLoop
		} else {
			d.Enhanced, d.Reason, d.Rule = "5.2.4", "alias or group has no members", RuleEmptyExpansion
		}
		if x.trace != nil {
			x.tracef(1, "no final recipient: %s", formatDecision(d))
		}
		return []Decision{d}, nil
	}
	return x.decisions, nil
}

// permit says why the envelope may relay to the address of it, or ""
// if it may not. hosted: the address is in a hosted or relay domain.
func (x *expansion) permit(it item, hosted bool) string {
	switch {
	case !it.top:
		return PermitExpansion
	case hosted:
		return PermitHosted
	case x.env.Authenticated:
		return PermitAuthenticated
	case x.submitted: // not authenticated, so from a relaynet
		return PermitRelaynet
	}
	return ""
}

// visit applies steps 1-7 to one address. A terminal decision is
// recorded (once per account or address); an alias, group, forwarding or
// catch-all returns the addresses to visit next.
func (x *expansion) visit(it item) ([]item, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	x.steps++

	// Step 1: parse.
	a, err := directory.ParseAddress(it.addr)
	if err != nil {
		return nil, x.badSyntax(it, err)
	}
	local := a.CanonicalLocal()

	// Step 2: technical domains; step 3: domains not hosted here.
	it, domain := x.technicalDomain(it, a.Domain)
	dom, done, err := x.hostedDomain(it, a, local, domain)
	if done {
		return nil, err
	}
	canonical, fresh := x.enterHosted(it, a, domain, dom.Name)
	if !fresh {
		return nil, nil
	}

	// Steps 4 and 5: the central hop and routes, unless kept local.
	if !it.local {
		if done, err := x.routeHosted(it, local, dom.Name, canonical); done {
			return nil, err
		}
	}

	// Step 6: the directory (sub-addressing applies there).
	e, err := x.lookupAddress(it, canonical)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		// Step 7.
		return x.unknown(it, canonical, dom.Name)
	case err != nil:
		return nil, err
	}
	switch e.Kind {
	case directory.KindUser:
		return x.user(it, canonical, e.User)
	case directory.KindResource:
		if x.trace != nil {
			x.tracef(it.depth, "%s: %s resource %s (%s)", canonical, e.Resource.Kind, e.Resource.ID, e.Resource.Address)
		}
		return nil, x.decide(it, "account "+e.Resource.ID, Decision{Kind: Deliver, Address: canonical, Account: e.Resource.ID, Rule: RuleResource})
	}
	// Step 8.
	return x.expandList(it, canonical, e)
}

// badSyntax rejects an address that does not parse (step 1).
func (x *expansion) badSyntax(it item, err error) error {
	// RFC 5321 §4.2.3: 501 for a malformed argument of the command
	// itself; 553 for a malformed address found in an expansion.
	// RFC 3463 §3.2: X.1.3 bad destination mailbox address syntax.
	code := 553
	if it.top {
		code = 501
	}
	if x.trace != nil {
		x.tracef(it.depth, "%q is not a valid address: %v", it.addr, err)
	}
	return x.decide(it, "address "+it.addr, Decision{Kind: Reject, Address: it.addr, Code: code, Enhanced: "5.1.3",
		Reason: "bad destination mailbox address syntax", Rule: RuleSyntax})
}

// technicalDomain maps a technical domain to its main domain (step 2);
// an address reached that way is delivered locally, so it comes back
// marked local.
func (x *expansion) technicalDomain(it item, domain string) (item, string) {
	main, ok := x.t.rules.technical[domain]
	if !ok {
		return it, domain
	}
	if x.trace != nil {
		x.tracef(it.depth, "%s: %s is the technical domain of %s: delivered locally, routes do not apply", it.addr, domain, main)
	}
	it.local = true
	return it, main
}

// hostedDomain looks up domain in the directory. When it is not hosted
// here the address is decided at once (done): rejected if it came
// through a technical domain, otherwise handed to remote (step 3).
func (x *expansion) hostedDomain(it item, a directory.Address, local, domain string) (dom directory.Domain, done bool, err error) {
	dom, err = x.t.dir.LookupDomain(x.ctx, domain)
	switch {
	case errors.Is(err, directory.ErrNotFound) && domain != a.Domain:
		addr := a.CanonicalIn(domain)
		if it.top {
			x.recipient = addr
		}
		if x.trace != nil {
			x.tracef(it.depth, "%s: %s is not hosted here", addr, domain)
		}
		// RFC 3463 §3.2: X.1.2 bad destination system address.
		return dom, true, x.decide(it, "address "+addr, Decision{Kind: Reject, Address: addr, Code: 550, Enhanced: "5.1.2",
			Reason: "technical domain not served here", Rule: RuleTechnicalDomain})
	case errors.Is(err, directory.ErrNotFound):
		// Step 3.
		return dom, true, x.remote(it, a, local)
	case err != nil:
		return dom, true, fmt.Errorf("routing: look up domain %q: %w", domain, err)
	}
	return dom, false, nil
}

// enterHosted returns the canonical form of an address in a hosted
// domain and whether this expansion sees it for the first time; the
// root's is remembered as the resolved recipient. An address reached
// twice is skipped.
func (x *expansion) enterHosted(it item, a directory.Address, domain, mainDomain string) (canonical string, fresh bool) {
	canonical = a.CanonicalIn(mainDomain)
	if it.top {
		x.recipient, x.rcptDomain = canonical, mainDomain
	}
	if mainDomain != domain {
		if x.trace != nil {
			x.tracef(it.depth, "%s: %s is an alternative name of %s", it.addr, domain, mainDomain)
		}
	}
	if x.visited[canonical] {
		if x.trace != nil {
			x.tracef(it.depth, "%s: already resolved in this expansion; skipped", canonical)
		}
		x.skipped = true
		return canonical, false
	}
	mark(&x.visited, canonical)
	return canonical, true
}

// routeHosted relays an address in a hosted domain instead of looking
// it up, when the central hop (step 4) or a route (step 5) takes it;
// done reports that it did.
func (x *expansion) routeHosted(it item, local, domain, canonical string) (done bool, err error) {
	rules := x.t.rules
	// Step 4: the central hop takes inbound mail first.
	if it.top && rules.central != nil && !x.submitted {
		if x.trace != nil {
			x.tracef(it.depth, "%s: inbound mail for hosted domains goes to the central hop first", canonical)
		}
		return true, x.decide(it, "address "+canonical, Decision{Kind: Relay, Address: canonical, Rule: RuleCentralHop,
			Hop: *rules.central, Permit: x.permit(it, true)})
	}
	// Step 5: a route for the address or domain overrides local
	// delivery.
	if e := rules.route(local, domain, false); e != nil {
		if x.trace != nil {
			x.tracef(it.depth, "%s: route %q overrides local delivery", canonical, e.hop.Route)
		}
		return true, x.decide(it, "address "+canonical, Decision{Kind: Relay, Address: canonical, Rule: e.rule,
			Hop: e.hop, Permit: x.permit(it, true)})
	}
	return false, nil
}

// lookupAddress resolves canonical in the directory (step 6). Only
// [directory.ErrNotFound] comes back unwrapped, for the caller to apply
// the unknown-recipient policy.
func (x *expansion) lookupAddress(it item, canonical string) (directory.Entry, error) {
	e, err := x.t.dir.LookupAddress(x.ctx, canonical)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		return e, err
	case err != nil:
		return e, fmt.Errorf("routing: look up %q: %w", canonical, err)
	}
	if e.Address != "" && e.Address != canonical {
		if x.trace != nil {
			x.tracef(it.depth, "%s: matched %s (sub-address)", canonical, e.Address)
		}
	}
	return e, nil
}

// user decides for a user's address: rejected if disabled, delivered,
// and forwarded (once per user) when a forward applies, with a local
// copy only if the forward keeps one.
func (x *expansion) user(it item, canonical string, u *directory.User) ([]item, error) {
	if u.Disabled {
		if x.trace != nil {
			x.tracef(it.depth, "%s: user %s is disabled", canonical, u.ID)
		}
		// RFC 3463 §3.3: X.2.1 mailbox disabled, not accepting messages.
		return nil, x.decide(it, "account "+u.ID, Decision{Kind: Reject, Address: canonical, Account: u.ID, Code: 550, Enhanced: "5.2.1",
			Reason: "mailbox disabled", Rule: RuleDisabledUser})
	}
	if x.trace != nil {
		x.tracef(it.depth, "%s: user %s (%s)", canonical, u.ID, u.Address)
	}
	deliver := Decision{Kind: Deliver, Address: canonical, Account: u.ID, Rule: RuleUser}
	fw := x.t.rules.forward(u)
	if fw == nil {
		return nil, x.decide(it, "account "+u.ID, deliver)
	}
	if !x.expandOnce("forward:" + u.ID) {
		if x.trace != nil {
			x.tracef(it.depth, "forwarding of %s already expanded; skipped", u.ID)
		}
		return nil, nil
	}
	if x.trace != nil {
		x.tracef(it.depth, "%s: forwarding (%s) to %d target(s), local copy kept: %t", canonical, fw.address, len(fw.targets), fw.keepCopy)
	}
	if fw.keepCopy {
		if err := x.decide(it, "account "+u.ID, deliver); err != nil {
			return nil, err
		}
	}
	if x.steps > 10*x.t.max {
		return nil, errExpansionLimit
	}
	return children(it, fw.targets, RuleForward), nil
}

// expandList expands an alias or group into its targets, each alias or
// group once (step 8).
func (x *expansion) expandList(it item, canonical string, e directory.Entry) ([]item, error) {
	var key string
	var targets []string
	switch e.Kind {
	case directory.KindAlias:
		key, targets = "alias:"+e.Alias.Address, e.Alias.Targets
		if x.trace != nil {
			x.tracef(it.depth, "%s: alias %s with %d target(s)", canonical, e.Alias.Address, len(targets))
		}
	case directory.KindGroup:
		key, targets = "group:"+e.Group.ID, e.Group.Members
		if x.trace != nil {
			x.tracef(it.depth, "%s: group %s (%s) with %d member(s)", canonical, e.Group.ID, e.Group.Address, len(targets))
		}
	default:
		return nil, fmt.Errorf("routing: %q resolved to unknown entry kind %d", canonical, e.Kind)
	}
	if !x.expandOnce(key) {
		if x.trace != nil {
			x.tracef(it.depth, "already expanded in this expansion (loop or duplicate); skipped")
		}
		return nil, nil
	}
	if x.steps > 10*x.t.max {
		// Even without new final recipients, a walk this long is a
		// misconfiguration; bound the directory reads.
		return nil, errExpansionLimit
	}
	return children(it, targets, it.via), nil
}

// expandOnce marks key (an alias, group or forwarding) expanded and
// reports whether it was not already; a repeat is noted as skipped.
func (x *expansion) expandOnce(key string) bool {
	if x.expanded[key] {
		x.skipped = true
		return false
	}
	mark(&x.expanded, key)
	return true
}

// children returns the items to visit for the targets addrs of it, reached
// by rule via.
func children(it item, addrs []string, via string) []item {
	out := make([]item, len(addrs))
	for i, t := range addrs {
		out[i] = it.child(t, via)
	}
	return out
}

// remote decides for an address in a domain not hosted here (step 3).
func (x *expansion) remote(it item, a directory.Address, local string) error {
	addr := a.String() // the local part keeps its case (RFC 5321 §2.4)
	if it.top {
		x.recipient = addr
	}
	if done, err := x.remoteSite(it, addr); done {
		return err
	}
	rules := x.t.rules
	relayDomain := rules.relayDomain(a.Domain)
	if relayDomain {
		if x.trace != nil {
			x.tracef(it.depth, "%s: %s is a relay domain", addr, a.Domain)
		}
	} else {
		if x.trace != nil {
			x.tracef(it.depth, "%s: domain %s is not hosted here", addr, a.Domain)
		}
	}
	permit := x.permit(it, relayDomain)
	if permit == "" {
		if x.trace != nil {
			x.tracef(it.depth, "the client neither authenticated nor is in the relaynets")
		}
		// RFC 5321 §3.6.2 (relaying is the server's choice); RFC 3463
		// §3.8: X.7.1 delivery not authorized.
		return x.decide(it, "address "+addr, Decision{Kind: Reject, Address: addr, Code: 554, Enhanced: "5.7.1",
			Reason: "relay access denied", Rule: RuleRelayDenied})
	}
	d := Decision{Kind: Relay, Address: addr, Rule: RuleRemote, Permit: permit}
	if e := rules.route(local, a.Domain, true); e != nil {
		d.Hop, d.Rule = e.hop, e.rule
		if x.trace != nil {
			x.tracef(it.depth, "%s: %s %q chooses the next hop", addr, e.rule, e.hop.Route)
		}
	}
	return x.decide(it, "address "+addr, d)
}

// unknown applies the domain's unknown-recipient policy (step 7).
func (x *expansion) unknown(it item, canonical, domain string) ([]item, error) {
	if done, err := x.remoteSite(it, canonical); done {
		return nil, err
	}
	pol := x.t.rules.unknownFor(domain)
	if x.trace != nil {
		x.tracef(it.depth, "%s: no such address in %s; unknown-recipient policy (%s): %s", canonical, domain, pol.source, pol.action)
	}
	action := pol.action
	switch {
	case it.catchAll && action == UnknownCatchAll:
		if x.trace != nil {
			x.tracef(it.depth, "the catch-all address itself is unknown")
		}
		action = UnknownReject
	case it.local && action == UnknownRelay:
		if x.trace != nil {
			x.tracef(it.depth, "technical domain: not relayed to the gateway")
		}
		action = UnknownReject
	}
	switch action {
	case UnknownCatchAll:
		if x.trace != nil {
			x.tracef(it.depth, "-> catch-all %s", pol.catchAll)
		}
		c := it.child(pol.catchAll, RuleCatchAll)
		c.catchAll = true
		return []item{c}, nil
	case UnknownRelay:
		return nil, x.decide(it, "address "+canonical, Decision{Kind: Relay, Address: canonical, Rule: RuleUnknownRelay,
			Hop: pol.hop, Permit: x.permit(it, true)})
	}
	// RFC 3463 §3.2: X.1.1 bad destination mailbox address.
	return nil, x.decide(it, "address "+canonical, Decision{Kind: Reject, Address: canonical, Code: 550, Enhanced: "5.1.1",
		Reason: "no such user", Rule: RuleUnknownRecipient})
}

// decide records a terminal decision unless one was already made under
// the same key: the account for deliveries and disabled users (each
// account once, whatever address reached it), the address otherwise. A
// delivery or relay reached through forwarding, a catch-all or an
// always-BCC entry carries that rule.
func (x *expansion) decide(it item, key string, d Decision) error {
	if x.finals[key] {
		if x.trace != nil {
			x.tracef(it.depth+1, "%s already decided; skipped", key)
		}
		return nil
	}
	mark(&x.finals, key)
	if len(x.decisions) >= x.t.max {
		return errExpansionLimit
	}
	if it.via != "" && d.Kind != Reject {
		d.Rule = it.via
	}
	if x.trace != nil {
		x.tracef(it.depth+1, "-> %s", formatDecision(d))
	}
	x.decisions = append(x.decisions, d)
	return nil
}

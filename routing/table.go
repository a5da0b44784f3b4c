package routing

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/mailyard/mailyard/directory"
)

// DefaultMaxExpansion is TableOptions.MaxExpansion when it is zero.
const DefaultMaxExpansion = 1000

// Rule names carried in Decision.Rule.
const (
	RuleSyntax           = "syntax"            // the address is malformed
	RuleRemote           = "remote"            // the domain is not hosted here
	RuleUnknownRecipient = "unknown-recipient" // hosted domain, no such address
	RuleDisabledUser     = "disabled-user"     // the user is disabled (blocked)
	RuleUser             = "user"              // delivery to a user's account
	RuleResource         = "resource"          // delivery to a resource's account
	RuleLoop             = "loop"              // expansion only led back to itself
	RuleEmptyExpansion   = "empty-expansion"   // an alias or group without targets
	RuleExpansionLimit   = "expansion-limit"   // more than MaxExpansion final recipients
)

// TableOptions configures [NewTable]. The zero value works.
type TableOptions struct {
	// MaxExpansion caps the final recipients one envelope recipient may
	// expand to; DefaultMaxExpansion if zero or negative. A recipient
	// over the cap is rejected as a whole (rule "expansion-limit") rather
	// than silently truncated.
	MaxExpansion int
	// Logger receives expansion-limit warnings. Nil discards.
	Logger *slog.Logger
}

// Table resolves recipients against a directory with the algorithm in the
// package documentation. It holds no state besides its configuration and
// reads the directory on every call, so changes apply at once. It is safe
// for concurrent use.
type Table struct {
	dir directory.Directory
	max int
	log *slog.Logger
}

// NewTable returns a routing table over dir.
func NewTable(dir directory.Directory, opts TableOptions) *Table {
	t := &Table{dir: dir, max: opts.MaxExpansion, log: opts.Logger}
	if t.max <= 0 {
		t.max = DefaultMaxExpansion
	}
	if t.log == nil {
		t.log = slog.New(slog.DiscardHandler)
	}
	return t
}

// Resolve decides what happens to one envelope recipient. The result holds
// at least one decision; malformed addresses, unknown recipients and
// disabled users are Reject decisions, not errors. An error means the
// directory could not be read (or ctx ended), and the caller should answer
// with a temporary failure (RFC 5321 §4.2.5, 451).
//
// env is not consulted by the foundation rules; sender-dependent rules
// build on it.
func (t *Table) Resolve(ctx context.Context, env Envelope, recipient string) (Result, error) {
	x := t.newExpansion(ctx, nil)
	return x.run(recipient)
}

// Explain resolves recipient like Resolve and returns a readable,
// multi-line account of every step: domain mapping, sub-addressing, each
// alias or group expanded, skipped duplicates and loops, and the final
// decisions with their rules. It is meant for administrators.
func (t *Table) Explain(ctx context.Context, recipient string) (string, error) {
	var sb strings.Builder
	x := t.newExpansion(ctx, &sb)
	res, err := x.run(recipient)
	if err != nil {
		return "", err
	}
	fmt.Fprintf(&sb, "decisions for %s: %d\n", res.Recipient, len(res.Decisions))
	for _, d := range res.Decisions {
		fmt.Fprintf(&sb, "  %s\n", formatDecision(d))
	}
	return sb.String(), nil
}

func formatDecision(d Decision) string {
	switch d.Kind {
	case Deliver:
		return fmt.Sprintf("deliver %s to account %s [rule %s]", d.Address, d.Account, d.Rule)
	case Relay:
		return fmt.Sprintf("relay %s [rule %s]", d.Address, d.Rule)
	case Reject:
		return fmt.Sprintf("reject %s: %d %s %s [rule %s]", d.Address, d.Code, d.Enhanced, d.Reason, d.Rule)
	}
	return fmt.Sprintf("%s %s [rule %s]", d.Kind, d.Address, d.Rule)
}

// expansion is the state of resolving one envelope recipient.
type expansion struct {
	t     *Table
	ctx   context.Context
	trace *strings.Builder // nil unless explaining

	decisions []Decision
	finals    map[string]bool // keys of the decisions made (see decide)
	visited   map[string]bool // addresses already looked at
	expanded  map[string]bool // aliases and groups already expanded
	skipped   bool            // some alias or group was reached twice
	recipient string          // the envelope recipient as resolved
	steps     int
}

func (t *Table) newExpansion(ctx context.Context, trace *strings.Builder) *expansion {
	return &expansion{
		t: t, ctx: ctx, trace: trace,
		finals:  map[string]bool{},
		visited: map[string]bool{}, expanded: map[string]bool{},
	}
}

func (x *expansion) tracef(depth int, format string, args ...any) {
	if x.trace == nil {
		return
	}
	x.trace.WriteString(strings.Repeat("  ", depth))
	fmt.Fprintf(x.trace, format, args...)
	x.trace.WriteByte('\n')
}

// errExpansionLimit stops the walk when the cap is hit.
var errExpansionLimit = errors.New("routing: expansion limit")

// run resolves the envelope recipient: steps 1-4 for it, and step 5 for
// everything an alias or group leads to, depth first in target order.
func (x *expansion) run(recipient string) (Result, error) {
	x.tracef(0, "recipient %q", recipient)
	x.recipient = recipient
	res := Result{}
	type item struct {
		addr  string
		depth int
	}
	stack := []item{{recipient, 1}}
	for len(stack) > 0 {
		it := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		targets, err := x.visit(it.addr, it.depth)
		res.Recipient = x.recipient
		if errors.Is(err, errExpansionLimit) {
			x.t.log.WarnContext(x.ctx, "routing: expansion limit reached", "recipient", res.Recipient, "limit", x.t.max)
			x.tracef(it.depth, "expansion exceeds %d recipients: the whole recipient is rejected", x.t.max)
			res.Decisions = []Decision{{
				Kind: Reject, Address: res.Recipient, Code: 550, Enhanced: "5.2.4",
				Reason: fmt.Sprintf("expansion exceeds %d recipients", x.t.max), Rule: RuleExpansionLimit,
			}}
			return res, nil
		}
		if err != nil {
			return Result{}, err
		}
		for i := len(targets) - 1; i >= 0; i-- {
			stack = append(stack, item{targets[i], it.depth + 1})
		}
	}
	res.Decisions = x.decisions
	if len(res.Decisions) == 0 {
		// Only an alias or group can end without decisions: every target
		// was a loop back or it had none. RFC 3463 §3.5: X.4.6 routing
		// loop; §3.3: X.2.4 mailing list expansion problem.
		d := Decision{Kind: Reject, Address: res.Recipient, Code: 550}
		if x.skipped {
			d.Enhanced, d.Reason, d.Rule = "5.4.6", "alias or group expands only to itself", RuleLoop
		} else {
			d.Enhanced, d.Reason, d.Rule = "5.2.4", "alias or group has no members", RuleEmptyExpansion
		}
		x.tracef(1, "no final recipient: %s", formatDecision(d))
		res.Decisions = []Decision{d}
	}
	return res, nil
}

// visit applies steps 1-4 to one address. A terminal decision is recorded
// (once per account or address); an alias or group not yet expanded
// returns its targets for step 5.
func (x *expansion) visit(addr string, depth int) ([]string, error) {
	if err := x.ctx.Err(); err != nil {
		return nil, fmt.Errorf("routing: %w", err)
	}
	x.steps++
	top := depth == 1

	// Step 1: parse and canonicalise.
	a, err := directory.ParseAddress(addr)
	if err != nil {
		// RFC 5321 §4.2.3: 501 for a malformed argument of the command
		// itself; 553 for a malformed address found in an expansion.
		// RFC 3463 §3.2: X.1.3 bad destination mailbox address syntax.
		code := 553
		if top {
			code = 501
		}
		x.tracef(depth, "%q is not a valid address: %v", addr, err)
		return nil, x.decide(depth, "address "+addr, Decision{Kind: Reject, Address: addr, Code: code, Enhanced: "5.1.3",
			Reason: "bad destination mailbox address syntax", Rule: RuleSyntax})
	}
	dom, err := x.t.dir.LookupDomain(x.ctx, a.Domain)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		// Step 2. The local part keeps its case: only the destination
		// host may interpret it (RFC 5321 §2.4).
		if top {
			x.recipient = a.String()
		}
		x.tracef(depth, "%s: domain %s is not hosted here", a.String(), a.Domain)
		return nil, x.decide(depth, "address "+a.String(), Decision{Kind: Relay, Address: a.String(), Rule: RuleRemote})
	case err != nil:
		return nil, fmt.Errorf("routing: look up domain %q: %w", a.Domain, err)
	}
	canonical := strings.ToLower(a.Local) + "@" + dom.Name
	if top {
		x.recipient = canonical
	}
	if dom.Name != a.Domain {
		x.tracef(depth, "%s: %s is an alternative name of %s", addr, a.Domain, dom.Name)
	}
	if x.visited[canonical] {
		x.tracef(depth, "%s: already resolved in this expansion; skipped", canonical)
		x.skipped = true
		return nil, nil
	}
	x.visited[canonical] = true

	// Step 3: the directory (sub-addressing applies there).
	e, err := x.t.dir.LookupAddress(x.ctx, canonical)
	switch {
	case errors.Is(err, directory.ErrNotFound):
		x.tracef(depth, "%s: no such address in %s", canonical, dom.Name)
		// RFC 3463 §3.2: X.1.1 bad destination mailbox address.
		return nil, x.decide(depth, "address "+canonical, Decision{Kind: Reject, Address: canonical, Code: 550, Enhanced: "5.1.1",
			Reason: "no such user", Rule: RuleUnknownRecipient})
	case err != nil:
		return nil, fmt.Errorf("routing: look up %q: %w", canonical, err)
	}
	if e.Address != "" && e.Address != canonical {
		x.tracef(depth, "%s: matched %s (sub-address)", canonical, e.Address)
	}

	// Step 4: users and resources are terminal.
	switch e.Kind {
	case directory.KindUser:
		if e.User.Disabled {
			x.tracef(depth, "%s: user %s is disabled", canonical, e.User.ID)
			// RFC 3463 §3.3: X.2.1 mailbox disabled, not accepting messages.
			return nil, x.decide(depth, "account "+e.User.ID, Decision{Kind: Reject, Address: canonical, Code: 550, Enhanced: "5.2.1",
				Reason: "mailbox disabled", Rule: RuleDisabledUser})
		}
		x.tracef(depth, "%s: user %s (%s)", canonical, e.User.ID, e.User.Address)
		return nil, x.decide(depth, "account "+e.User.ID, Decision{Kind: Deliver, Address: canonical, Account: e.User.ID, Rule: RuleUser})
	case directory.KindResource:
		x.tracef(depth, "%s: %s resource %s (%s)", canonical, e.Resource.Kind, e.Resource.ID, e.Resource.Address)
		return nil, x.decide(depth, "account "+e.Resource.ID, Decision{Kind: Deliver, Address: canonical, Account: e.Resource.ID, Rule: RuleResource})
	}

	// Step 5: aliases and groups expand, each once.
	var key string
	var targets []string
	switch e.Kind {
	case directory.KindAlias:
		key, targets = "alias:"+e.Alias.Address, e.Alias.Targets
		x.tracef(depth, "%s: alias %s with %d target(s)", canonical, e.Alias.Address, len(targets))
	case directory.KindGroup:
		key, targets = "group:"+e.Group.ID, e.Group.Members
		x.tracef(depth, "%s: group %s (%s) with %d member(s)", canonical, e.Group.ID, e.Group.Address, len(targets))
	default:
		return nil, fmt.Errorf("routing: %q resolved to unknown entry kind %d", canonical, e.Kind)
	}
	if x.expanded[key] {
		x.tracef(depth, "already expanded in this expansion (loop or duplicate); skipped")
		x.skipped = true
		return nil, nil
	}
	x.expanded[key] = true
	if x.steps > 10*x.t.max {
		// Even without new final recipients, a walk this long is a
		// misconfiguration; bound the directory reads.
		return nil, errExpansionLimit
	}
	return targets, nil
}

// decide records a terminal decision unless one was already made under
// the same key: the account for deliveries and disabled users (each
// account once, whatever address reached it), the address otherwise.
func (x *expansion) decide(depth int, key string, d Decision) error {
	if x.finals[key] {
		x.tracef(depth+1, "%s already decided; skipped", key)
		return nil
	}
	x.finals[key] = true
	if len(x.decisions) >= x.t.max {
		return errExpansionLimit
	}
	x.tracef(depth+1, "-> %s", formatDecision(d))
	x.decisions = append(x.decisions, d)
	return nil
}

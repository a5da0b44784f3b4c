// Package routing decides, for each recipient of a message, what happens to
// it: local delivery to an account, relay to a next hop, or rejection with
// an SMTP code, and which extra copies the message gets. Every decision
// names the rule that made it, so logs, bounces and the administrator's
// explain call can say why.
//
// A [Table] combines the directory (domains and their alternative names,
// users, aliases, groups, resources: read on every call, so changes apply
// at once) with compiled [Rules] (relay domains, transport routes,
// unknown-recipient policies, technical domains, forwarding, always-BCC,
// the central hop and relaynets: see [Config]).
//
// Resolution of one envelope recipient:
//
//  1. Parse the address (RFC 5321 dot-string, no literals, no quoting).
//     Malformed: Reject 501/553 5.1.3 (rule "syntax").
//  2. A technical domain maps to its main domain, and the address and
//     everything it expands to in hosted domains is delivered locally: steps
//     4, 5 and the relay action of step 7 are skipped for them.
//  3. A domain the directory does not host is remote. An address another
//     site of a distributed installation holds ([TableOptions].Sites) is
//     relayed to that site's MX with TLS required, whoever sends (rule
//     "remote-site"). Otherwise the most specific route (user+ext@d,
//     user@d, d, .parent, "*") or relay domain gives the hop, else MX of
//     the domain. The envelope recipient itself is relayed
//     only if its domain is a relay domain, the client authenticated or the
//     client is in the relaynets; otherwise Reject 554 5.7.1 (rule
//     "relay-denied"). Addresses reached through local aliases, groups,
//     forwarding, catch-all or always-BCC are always relayed.
//  4. A hosted domain with a central hop, for an envelope from outside
//     (neither authenticated nor from a relaynet): Relay the envelope
//     recipient to the central hop (rule "central-hop").
//  5. A route naming the address or its domain (not "*") overrides local
//     delivery: Relay to its hop (rule "route").
//  6. Look the address up in the directory (sub-addressing applies). A
//     user: Deliver to the account (rule "user"), or Reject 550 5.2.1 if
//     blocked (rule "disabled-user"); with forwarding, the targets are
//     resolved too (their decisions carry rule "forward") and the local copy
//     only if kept. A resource: Deliver (rule "resource").
//  7. Unknown in a hosted domain: if another site holds the address, it
//     is relayed there as in step 3 (rule "remote-site"); otherwise the
//     domain's policy decides: Reject 550 5.1.1 (rule
//     "unknown-recipient", the default), resolve the catch-all address
//     (rule "catch-all"), or Relay to the gateway (rule "unknown-relay").
//  8. An alias or group expands: every target goes through steps 1-7,
//     depth first in order, each address and each alias, group or
//     forwarding expanded at most once (loops end), up to MaxExpansion
//     final recipients; otherwise the whole recipient is rejected (rule
//     "expansion-limit") rather than silently truncated. An expansion that
//     yields nothing is rejected (rules "loop", "empty-expansion").
//  9. If the recipient is accepted (some decision is not a Reject), each
//     matching always-BCC address is resolved with steps 1-8 into
//     [Result.Copies] (rule "always-bcc").
//
// Guarantees: every final address of a recipient and of each copy gets
// exactly one terminal decision (Deliver, Relay or Reject), each account
// at most once per list; resolution terminates on any directory,
// including cyclic ones, with at most MaxExpansion decisions per list;
// Resolve never returns a Relay decision the envelope may not use, and
// every Relay decision says in [Decision.Permit] why it is allowed. An
// error means only that the directory could not be read.
package routing

import (
	"fmt"
	"net/netip"
)

// Kind is what a decision does with a recipient.
type Kind int

// Decision kinds.
const (
	// Deliver into a local account.
	Deliver Kind = iota + 1
	// Relay to another host (the outbound queue's business).
	Relay
	// Reject the recipient with Code, Enhanced and Reason.
	Reject
)

// String returns the kind's name.
func (k Kind) String() string {
	switch k {
	case Deliver:
		return "deliver"
	case Relay:
		return "relay"
	case Reject:
		return "reject"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Why relaying an address is allowed, in [Decision.Permit].
const (
	// PermitAuthenticated: the client authenticated (submission).
	PermitAuthenticated = "authenticated"
	// PermitRelaynet: the client's address is in the relaynets.
	PermitRelaynet = "relaynet"
	// PermitHosted: the recipient is in a hosted or relay domain, which
	// anyone may send to; a route, central hop or unknown-recipient
	// gateway sends it on.
	PermitHosted = "hosted"
	// PermitExpansion: the address was reached through a local alias,
	// group, forwarding, catch-all or always-BCC entry.
	PermitExpansion = "expansion"
)

// Decision is one terminal outcome for one final recipient.
type Decision struct {
	Kind Kind
	// Address is the final recipient address (after expansion): canonical
	// for hosted domains, with the local part as given for remote ones.
	Address string
	// Account is the store account for Deliver, and the blocked account
	// for a Reject by rule "disabled-user".
	Account string
	// Mailbox is the target mailbox for Deliver; empty means INBOX.
	Mailbox string
	// Code, Enhanced and Reason describe a Reject (e.g. 550, "5.1.1",
	// "no such user").
	Code     int
	Enhanced string
	Reason   string
	// Rule names the rule that made the decision (the Rule constants), for
	// logs, bounces and the explain call.
	Rule string
	// Hop is where a Relay decision goes; the zero Hop is MX delivery to
	// the address's domain with opportunistic TLS.
	Hop Hop
	// Permit says why a Relay decision is allowed for this envelope (the
	// Permit constants); empty for other kinds.
	Permit string
}

// Result holds the decisions for one envelope recipient. An alias or group
// yields several; a single user yields one.
type Result struct {
	// Recipient is the address as resolved (canonical).
	Recipient string
	// Decisions are the outcomes for the recipient and what it expands
	// to; never empty.
	Decisions []Decision
	// Copies are the always-BCC copies the message gets for this
	// recipient. They repeat for every recipient of a message with the
	// same copies; the caller keeps one per account and address.
	Copies []Decision
}

// Envelope is what routing may consider besides the recipient.
type Envelope struct {
	From          string // envelope sender, "" for the null sender
	Authenticated bool   // the client authenticated (submission)
	// ClientIP is the SMTP client's address, for relaynets; the zero
	// value matches none.
	ClientIP netip.Addr
}

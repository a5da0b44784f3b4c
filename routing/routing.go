// Package routing decides, for each recipient of a message, what happens to
// it: local delivery to an account, relay to another host, or rejection
// with an SMTP code and the name of the rule that decided.
//
// The foundation version knows local domains and their alternative names,
// users, aliases with several targets and groups (nested, loop-safe, each
// final recipient once); everything outside the hosted domains is a relay
// decision. Transport routes, relay syntax, catch-all and coexistence rules
// build on this (see the routing issue).
//
// Resolution, for one recipient address:
//
//  1. Parse and canonicalise the address (domain lowercased, alternative
//     domain mapped to its main domain).
//  2. If the domain is not hosted: one Relay decision (rule "remote").
//  3. Look the address up in the directory (sub-addressing applies).
//     Unknown: Reject 550 5.1.1 (rule "unknown-recipient").
//  4. A user: Deliver to the user's account, or Reject 550 5.2.1 if the
//     user is disabled (rule "disabled-user"). A resource: Deliver to the
//     resource's account.
//  5. An alias or group: expand every target recursively with steps 1-4,
//     skipping addresses already seen (loops), up to MaxExpansion final
//     recipients; each account and each remote address appears once.
package routing

import "fmt"

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

// Decision is one terminal outcome for one final recipient.
type Decision struct {
	Kind Kind
	// Address is the final recipient address (after expansion) in
	// canonical form.
	Address string
	// Account is the store account for Deliver.
	Account string
	// Mailbox is the target mailbox for Deliver; empty means INBOX.
	Mailbox string
	// Code, Enhanced and Reason describe a Reject (e.g. 550, "5.1.1",
	// "no such user").
	Code     int
	Enhanced string
	Reason   string
	// Rule names the rule that made the decision, for logs, bounces and
	// the explain call.
	Rule string
}

// Result holds the decisions for one envelope recipient. An alias or group
// yields several; a single user yields one.
type Result struct {
	// Recipient is the address as resolved (canonical).
	Recipient string
	Decisions []Decision
}

// Envelope is what routing may consider besides the recipient.
type Envelope struct {
	From          string // envelope sender, "" for the null sender
	Authenticated bool   // the client authenticated (submission)
}

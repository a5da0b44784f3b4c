// Package contact holds the vCard semantics of the CardDAV server: it
// parses and validates address object resources, evaluates
// addressbook-query filters, selects the properties an address-data
// element asks for, and renders global-address-list entries as vCards.
// It is pure: no HTTP, no store, no I/O.
//
// All vCard parsing and encoding is done by github.com/emersion/go-vcard;
// this package only checks and reads the parsed cards.
//
// Guarantees:
//
//  1. [Parse] accepts exactly one VCARD of VERSION 3.0 (RFC 2426) or 4.0
//     (RFC 6350) with a UID (RFC 6352 §5.1), an FN and, for 3.0, an N,
//     within [Limits]. Anything else is a [*PreconditionError] naming the
//     RFC 6352 §6.3.2.1 precondition the server answers with, wrapping
//     the cause; bad input never yields a Card.
//  2. [Match] evaluates an RFC 6352 §10.5 filter with the collations of
//     package textmatch, without allocating per card beyond what the
//     collation's folding needs.
//  3. [Project] and [FromGAL] return new cards; they never modify their
//     input.
//
// Choices where the RFC leaves room are documented on [Match], [Project]
// and [FromGAL].
package contact

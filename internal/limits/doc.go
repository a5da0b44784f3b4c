// Package limits holds the per-client bounds every Mailyard protocol server
// applies before it does any real work: how many connections one client may
// hold open ([ConnLimiter]) and how quickly repeated authentication failures
// slow a client down and then lock it out ([AuthLimiter]).
//
// Both key clients with [ClientKey]: an IPv4 address as itself, an IPv6
// address by its /64 prefix, because one IPv6 subscriber is routinely given a
// whole /64 and could otherwise rotate through 2^64 addresses.
//
// A limiter is safe for concurrent use and is meant to be shared by every
// listener of a process (SMTP submission, IMAP, ...), so that failures on one
// protocol count against the same client on the others. Memory is bounded:
// the number of remembered clients and logins is capped.
package limits

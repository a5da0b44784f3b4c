// Package smtp runs Mailyard's MX and submission servers on
// github.com/emersion/go-smtp, which owns the wire protocol; this package
// owns the policy and the delivery pipeline.
//
// One [Server] serves one listener in one [Mode]:
//
//   - [ModeMX] (port 25) accepts mail for local recipients from anyone,
//     without AUTH, and relays for nobody.
//   - [ModeSubmission] (port 587) requires STARTTLS before AUTH and AUTH
//     before MAIL (RFC 6409, RFC 3207, RFC 4954).
//   - [ModeSubmissions] (port 465) is submission over implicit TLS
//     (RFC 8314 §3.3).
//
// A message goes through these steps:
//
//  1. Connection: the per-client connection limit applies (421 4.7.0 when
//     exceeded); the per-Read idle timeout starts.
//  2. AUTH (submission only, only over TLS): PLAIN or LOGIN, checked by the
//     [Authenticator] for [directory.ProtoSMTP]. Options.AuthLimiter
//     (package authlimit) reserves each check first or refuses it with
//     454 4.7.0; repeated failures are delayed, then blocked per client
//     and per client and login, and strangers share a per-login budget.
//  3. MAIL FROM: on submission the address must be one of the user's send
//     addresses. On MX the null sender is accepted (RFC 5321 §4.5.5).
//     With Options.Milters, each milter is connected and told the client
//     (address, HELO) and the sender now; a refusal answers MAIL.
//  4. RCPT TO: sender-specified routing (percent hack, bang path, quoted
//     "@", address literals) is refused from unauthenticated clients, then
//     the [Router] decides. Deliver decisions are accepted; Relay
//     decisions are accepted when Options.Queue (an [Outbound], package queue) is set (the routing table
//     says why relaying is allowed; 554 5.7.1 for unauthenticated clients
//     otherwise) and refused with 451 4.3.2 without a queue; a Reject
//     decision is answered with its own code. A recipient routing accepts
//     is then shown to the milters, which may refuse it alone.
//  5. DATA/BDAT: DATA ends at a "." line after any CRLF, also one that
//     follows a bare CR ("\r\r\n.\r\n", as Postfix reads it); bare CR and
//     bare LF are normalised to CRLF so no stored message can smuggle a
//     second one; on submission the From: and
//     Sender: header fields (header block bounded) must be the user's
//     addresses. Return-Path and Received are prepended and the body
//     streams into [store.Deliverer.Deliver], once, for every distinct
//     local account. With milters, the message is spooled first, its
//     header fields and body (in chunks) go to each milter, and their
//     end-of-message answers decide: refuse, discard (250, dropped),
//     quarantine (250, held in the [Quarantine] until released), or
//     deliver with their header changes applied.
//  6. With remote targets, the message (with its trace fields) is first
//     spooled to the outbound queue's fsynced file ([Outbound].Spool), the
//     local copies are delivered from it, and the queue commits it.
//  7. The client gets 250 only after Deliver returned nil and the queue
//     commit succeeded, i.e. after the message is durable. Nothing is
//     acknowledged and then dropped. A full disk (spool, queue or store)
//     answers 452 4.3.1, any other failure to keep the message 451 4.3.0. The queue (package queue) then delivers to the
//     next hops, with retries and DSNs (see its documentation).
//
// Everything a client controls is bounded: line length, message size
// (announced with SIZE, RFC 1870), recipients (RFC 5321 §4.5.3.1.8),
// connections per client and in total, the header block parsed on
// submission, authentication attempts.
package smtp

// Package dkim authenticates mail: DKIM keys per domain and their
// rotation, DKIM signing (RFC 6376, RFC 8463), verification of DKIM, SPF
// (RFC 7208) and DMARC (RFC 7489), the Authentication-Results field (RFC
// 8601), and the DNS records a hosted domain publishes. Signing, record
// syntax and SPF come from go-msgauth and blitiri.com.ar/go/spf; this
// package holds the policy around them. DKIM verification is its own
// (go-msgauth's verifier re-reads the header, parses the key anew for
// every message and allocates per write), with its canonicalisation
// checked against go-msgauth's signer by a differential fuzz test.
//
// Verification is a pure function of the message, the envelope and an
// injected [Resolver]; it returns a [Result] and acts on nothing. For an
// incoming message [Verify] does this:
//
//  1. Read the header block (bounded, [ErrHeaderTooLarge] beyond) and
//     leave the body in the stream; nothing reads the message twice.
//  2. Count Authentication-Results fields claiming our authserv-id: they
//     are forged (RFC 8601 §5) and [RemoveForgedAuthResults] drops them
//     from what is stored.
//  3. DKIM: every DKIM-Signature, up to a bound, is checked (tags, key),
//     then the body streams once through one canonicaliser per body
//     canonicalisation in use, and each signature's hashes and key are
//     checked. Keys come from TXT records at s._domainkey.d, parsed once
//     per cache lifetime when the resolver is a [KeyRecordResolver] such
//     as [CachingResolver]. A signature with l= covers only part of the
//     body: it gets "policy" and never counts (RFC 6376 §8.2). Expired
//     signatures (x=) are permerror (RFC 6376 §6.1.1).
//  4. SPF: the client IP against the MAIL FROM domain, or against the
//     HELO domain for the null sender (RFC 7208 §2.4).
//  5. DMARC: find the record of the From domain or of its organizational
//     domain (public suffix list), check that a DKIM pass or the SPF pass
//     aligns with the From domain (relaxed or strict), and pick p= or sp=,
//     sampled by pct= (RFC 7489 §6.6).
//  6. Format the Authentication-Results field to prepend.
//
// The DNS lookups of those steps run concurrently, so that DNS that does
// not answer costs one lookup's wait, not the sum: SPF starts before the
// header is read, the DMARC policy lookup as soon as the From domain is
// known, the key lookups of all signatures together; only the DMARC
// verdict waits for DKIM and SPF. The caller bounds them all with one
// deadline through the resolver it passes. A failed lookup is described
// in the results by its class ("DNS timeout"), never by the resolver's
// error, which names DNS servers that must not appear in messages.
//
// [Action] then turns a Result and an administrator's [ActionPolicy] into
// a [Decision]: accept, deliver to Junk, or reject with an SMTP code.
//
// Signing ([Sign]) also reads the message once: the header block is held,
// the body streams into one go-msgauth signer per key (an RSA and an
// Ed25519 signature for dual signing), and the DKIM-Signature fields are
// returned for the caller to prepend.
//
// Keys ([Keys]) live in a [KeyStore], an interface this package defines so
// that signing and verification import no store; dkim/dkimstore keeps them
// in a store.Records namespace, so every store backend keeps them. Rotation has two steps: [Keys.Generate] a new
// selector (published, not signing) and put its TXT record in DNS, later
// [Keys.Activate] it (the old key keeps being published while mail signed
// with it may still be verified), and after the verification window
// [Keys.Retire] the old one. Private keys never appear in logs or error
// messages: [Key] formats and logs itself without them.
//
// [ZoneRecords] lists what a domain publishes: MX, SPF, DKIM, DMARC, the
// SRV records of RFC 6186, RFC 8314 and RFC 6764, and autoconfig names, as
// JSON-ready values or as zone-file text ([FormatZone]).
package dkim

// Package dkim authenticates mail: DKIM keys per domain and their
// rotation, DKIM signing (RFC 6376, RFC 8463), verification of DKIM, SPF
// (RFC 7208) and DMARC (RFC 7489), the Authentication-Results field (RFC
// 8601), and the DNS records a hosted domain publishes. SPF comes from
// blitiri.com.ar/go/spf, DMARC record syntax and the Authentication-Results
// value types and quoting from go-msgauth's dmarc and authres packages; this
// package holds the policy around them. DKIM signing and verification are this
// package's own and share one canonicaliser (RFC 6376 §3.4: simple and
// relaxed, header and body) and one header hash (§3.7), so the signer
// and the verifier cannot disagree about the algorithm. go-msgauth's dkim
// package is used only by the tests, as the independent oracle: our
// signatures must verify with its verifier and carry its body hash, its
// signatures must verify with ours (table tests and differential fuzz
// tests both ways), and .ci/interop-dkim.sh checks both directions with
// dkimpy and OpenDKIM.
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
// the body streams once through the relaxed body canonicaliser into
// SHA-256, and that one body hash serves every key (an RSA and an Ed25519
// signature for dual signing); each key then signs the hash of its
// signed header fields. The DKIM-Signature fields are returned for the
// caller to prepend, tags in the order v= a= c= d= s= t= [x=] h= bh= b=,
// folded at 78 characters. Measured against go-msgauth's signer, which
// signed until 2026-12 (BenchmarkSign, bench/dkim.md; CPU time per
// message, medians of 5 on a shared 2-vCPU VM): RSA-2048 on 10 KiB 1.11
// ms against 1.25 ms, on 1 MiB 4.0 ms against 7.4 ms; Ed25519 on 10 KiB
// 80 µs against 149 µs, on 1 MiB 2.9 ms against 6.3 ms; dual signing of
// 1 MiB 4.0 ms against 12.7 ms (go-msgauth canonicalises the body once
// per key, through a pipe and a goroutine). Memory per message is
// constant, about 15-21 KB in 108-127 allocations, where go-msgauth's
// grows with the body (2.1 MB per key for 1 MiB).
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

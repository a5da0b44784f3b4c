// Package proxyproto reads the PROXY protocol (HAProxy's
// proxy-protocol.txt, versions 1 and 2) in front of a listener, so a
// server behind a load balancer sees the client's address, not the
// balancer's.
//
// [NewListener] wraps a raw TCP listener; put it under TLS for implicit-TLS
// listeners (the header precedes the TLS handshake, spec §1). For each
// accepted connection:
//
//  1. A source inside Options.Trusted must send a header first (spec §2:
//     "the receiver MUST be configured to only receive the protocol
//     described in this specification"). The header is read on a goroutine
//     of its own, bounded by Options.HeaderTimeout and by a size limit, so
//     a slow or silent client never holds up Accept. A PROXY header's
//     source address becomes the connection's RemoteAddr; a LOCAL (v2) or
//     UNKNOWN (v1) header, and one with an address family other than
//     TCP over IPv4/IPv6, keeps the socket's address (spec §2.1, §2.2).
//     A trusted source that sends something else, a malformed header, or
//     nothing in time is refused (closed and logged), unless
//     Options.Optional lets it go on without a header.
//  2. Any other source is served as a direct client with its own address,
//     or refused at once with Options.RefuseDirect. If its first bytes are
//     a PROXY header (it is trying to claim another address), its first
//     Read fails and the connection is closed and logged.
//
// Accept returns only connections whose client address is settled, so a
// server may call RemoteAddr there (per-address connection limits do).
// Version 2 TLVs are skipped; the whole header is at most
// [MaxHeaderBytes].
package proxyproto

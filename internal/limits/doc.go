// Package limits holds the per-client bounds every Mailyard protocol server
// applies before it does any real work: how many connections one client may
// hold open ([ConnLimiter], and [Listener], which applies one to a
// net.Listener for servers such as net/http that accept for themselves),
// and the key clients are counted under
// ([ClientKey]): an IPv4 address as itself, an IPv6 address by its /64
// prefix, because one IPv6 subscriber is routinely given a whole /64 and
// could otherwise rotate through 2^64 addresses. The public package
// directory/authlimit, which limits password checks, keys clients the same
// way.
//
// A limiter is safe for concurrent use. Memory is bounded: a client is
// remembered only while it holds a connection.
package limits

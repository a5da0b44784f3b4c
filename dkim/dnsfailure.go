package dkim

import (
	"context"
	"errors"
	"net"
)

// dnsFailure names the class of a failed DNS lookup for the reason text
// of an Authentication-Results result (RFC 8601 §2.7: reasons are free
// text for people). It never quotes the error: a resolver's message names
// the DNS server it asked ("lookup x on 10.0.0.2:53: ...") and may name
// internal hosts, and what goes into a message must not show either. The
// error itself belongs in the log.
func dnsFailure(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such DNS record"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "DNS timeout"
	case errors.As(err, &dnsErr):
		return "DNS lookup failed"
	case errors.Is(err, context.Canceled):
		return "DNS lookup canceled"
	}
	return "DNS lookup failed"
}

// Package dnserror describes a failed DNS lookup for text that leaves the
// server: a reason in an Authentication-Results field (RFC 8601 §2.7
// reasons are free text), a diagnostic in a delivery status notification.
//
// Guarantee: the description names the class of the failure only. It
// never quotes the error, whose text names the DNS server asked ("lookup
// x on 10.0.0.2:53: ...") and may name internal hosts; neither may be
// written into a message. The error itself belongs in the log.
package dnserror

import (
	"context"
	"errors"
	"net"
)

// Describe returns the class of the lookup failure err: "no such DNS
// record", "DNS timeout", "DNS lookup canceled" or "DNS lookup failed".
func Describe(err error) string {
	var dnsErr *net.DNSError
	var netErr net.Error
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		return "no such DNS record"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return "DNS timeout"
	case errors.Is(err, context.Canceled):
		return "DNS lookup canceled"
	}
	return "DNS lookup failed"
}

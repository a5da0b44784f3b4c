package dnserror

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
)

func TestDescribeNamesClassOnly(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{&net.DNSError{Err: "no such host", Name: "x.example", Server: "10.0.0.2:53", IsNotFound: true}, "no such DNS record"},
		{&net.DNSError{Err: "i/o timeout", Name: "x.example", Server: "10.0.0.2:53", IsTimeout: true}, "DNS timeout"},
		{fmt.Errorf("wrapped: %w", &net.DNSError{Err: "i/o timeout", Server: "[fd00::53]:53", IsTimeout: true}), "DNS timeout"},
		{context.DeadlineExceeded, "DNS timeout"},
		{&net.DNSError{Err: "server misbehaving", Name: "x.example", Server: "10.0.0.2:53", IsTemporary: true}, "DNS lookup failed"},
		{&net.OpError{Op: "dial", Net: "udp", Err: errors.New("connection refused")}, "DNS lookup failed"},
		{errors.New("dial udp 10.0.0.2:53: refused by resolver.corp.internal"), "DNS lookup failed"},
		{context.Canceled, "DNS lookup canceled"},
	} {
		got := Describe(tc.err)
		if got != tc.want {
			t.Errorf("Describe(%v) = %q, want %q", tc.err, got, tc.want)
		}
		if strings.ContainsAny(got, ":0123456789") {
			t.Errorf("Describe(%v) = %q quotes something", tc.err, got)
		}
	}
}

package proxyproto_test

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"

	"github.com/mailyard/mailyard/internal/proxyproto"
)

// A server behind a balancer on 127.0.0.1 sees the client's address.
func ExampleNewListener() {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	ln := proxyproto.NewListener(raw, proxyproto.Options{
		Trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.1/32")},
	})
	defer ln.Close()

	// The balancer's side: a v2 header, then the client's bytes.
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			panic(err)
		}
		h := proxyproto.Header{Version: 2, Proxied: true,
			Source:      netip.MustParseAddrPort("198.51.100.7:40000"),
			Destination: netip.MustParseAddrPort("192.0.2.2:25")}
		c.Write(append(h.Append(nil), "EHLO client.example\r\n"...))
	}()

	c, err := ln.Accept()
	if err != nil {
		panic(err)
	}
	defer c.Close()
	line, _ := bufio.NewReader(c).ReadString('\n')
	fmt.Printf("%s says %q\n", c.RemoteAddr(), line)
	// Output: 198.51.100.7:40000 says "EHLO client.example\r\n"
}

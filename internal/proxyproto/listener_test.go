package proxyproto

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"testing"
	"time"
)

var loopback = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}

// serve starts a Listener over a loopback socket; each accepted
// connection is sent on the returned channel.
func serve(t *testing.T, opts Options) (*Listener, <-chan net.Conn) {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, opts)
	ch := make(chan net.Conn, 16)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				close(ch)
				return
			}
			ch <- c
		}
	}()
	t.Cleanup(func() {
		l.Close()
		for c := range ch {
			c.Close()
		}
	})
	return l, ch
}

func dial(t *testing.T, l net.Listener, send string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if send != "" {
		if _, err := io.WriteString(c, send); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func next(t *testing.T, ch <-chan net.Conn) net.Conn {
	t.Helper()
	select {
	case c := <-ch:
		return c
	case <-time.After(10 * time.Second):
		t.Fatal("no connection accepted")
		return nil
	}
}

// closedByServer waits until the server closes c.
func closedByServer(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	n, err := c.Read(make([]byte, 64))
	var ne net.Error
	if err == nil || errors.As(err, &ne) && ne.Timeout() {
		t.Fatalf("connection still open: read %d bytes, %v", n, err)
	}
}

func readLine(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("read: %v (got %q)", err, line)
	}
	return line
}

// servedAs checks that c, the server's side of cl, has the socket's
// address and reads line first.
func servedAs(t *testing.T, cl, c net.Conn, line string) {
	t.Helper()
	if got, want := c.RemoteAddr().String(), cl.LocalAddr().String(); got != want {
		t.Errorf("RemoteAddr %s, want the socket's %s", got, want)
	}
	if line == "" {
		return
	}
	if got := readLine(t, c); got != line {
		t.Errorf("data %q, want %q", got, line)
	}
}

func TestTrustedHeaderSetsRemoteAddr(t *testing.T) {
	src := netip.MustParseAddrPort("198.51.100.7:40000")
	dst := netip.MustParseAddrPort("192.0.2.2:25")
	for _, h := range []Header{
		{Version: 1, Proxied: true, Source: src, Destination: dst},
		{Version: 2, Proxied: true, Source: src, Destination: dst},
		{Version: 2, Proxied: true, Source: netip.MustParseAddrPort("[2001:db8::7]:1"), Destination: netip.MustParseAddrPort("[2001:db8::2]:25")},
	} {
		l, ch := serve(t, Options{Trusted: loopback})
		// The header and the first command in one segment: the bytes
		// after the header reach the server unchanged.
		dial(t, l, string(h.Append(nil))+"EHLO client\r\n")
		c := next(t, ch)
		if got := c.RemoteAddr().String(); got != net.TCPAddrFromAddrPort(h.Source).String() {
			t.Errorf("v%d: RemoteAddr %s, want %s", h.Version, got, h.Source)
		}
		if got := c.(*Conn).Header(); got != h {
			t.Errorf("Header %+v, want %+v", got, h)
		}
		if line := readLine(t, c); line != "EHLO client\r\n" {
			t.Errorf("v%d: data after the header %q", h.Version, line)
		}
	}
}

// A LOCAL header (HAProxy's health checks) keeps the balancer's address.
func TestTrustedLocalKeepsSocketAddr(t *testing.T) {
	l, ch := serve(t, Options{Trusted: loopback})
	cl := dial(t, l, string(Header{Version: 2}.Append(nil))+"QUIT\r\n")
	servedAs(t, cl, next(t, ch), "QUIT\r\n")
}

func TestTrustedWithoutHeaderRefused(t *testing.T) {
	for name, send := range map[string]string{
		"other bytes": "EHLO client\r\n",
		"malformed":   "PROXY TCP4 192.0.2.1 nonsense\r\n",
		"silent":      "",
	} {
		t.Run(name, func(t *testing.T) {
			l, ch := serve(t, Options{Trusted: loopback, HeaderTimeout: 200 * time.Millisecond})
			cl := dial(t, l, send)
			closedByServer(t, cl)
			// The refused connection never reached Accept: the next
			// one does, and is the first.
			dial(t, l, string(Header{Version: 1}.Append(nil)))
			c := next(t, ch)
			if c.(*Conn).Header().Version != 1 {
				t.Fatalf("accepted %+v", c.(*Conn).Header())
			}
		})
	}
}

func TestTrustedOptional(t *testing.T) {
	l, ch := serve(t, Options{Trusted: loopback, Optional: true, HeaderTimeout: 100 * time.Millisecond})
	cl := dial(t, l, "EHLO client\r\n")
	servedAs(t, cl, next(t, ch), "EHLO client\r\n")
	// A silent trusted client is served after the timeout.
	cl = dial(t, l, "")
	servedAs(t, cl, next(t, ch), "")
}

// A trusted client that has not sent its header yet holds up no one.
func TestSlowHeaderDoesNotBlockAccept(t *testing.T) {
	l, ch := serve(t, Options{Trusted: loopback, HeaderTimeout: time.Minute})
	slow := dial(t, l, "PROXY TCP4 198.51.100.1") // and then nothing
	for i := range 3 {
		dial(t, l, string(Header{Version: 2, Proxied: true,
			Source:      netip.AddrPortFrom(netip.MustParseAddr("198.51.100.9"), uint16(1000+i)),
			Destination: netip.MustParseAddrPort("192.0.2.2:25")}.Append(nil)))
		if got, want := next(t, ch).RemoteAddr().String(), fmt.Sprintf("198.51.100.9:%d", 1000+i); got != want {
			t.Errorf("connection %d: RemoteAddr %s", i, got)
		}
	}
	// The slow client finishes its header and is served too.
	io.WriteString(slow, " 192.0.2.2 5 25\r\n")
	if got := next(t, ch).RemoteAddr().String(); got != "198.51.100.1:5" {
		t.Errorf("slow client: RemoteAddr %s", got)
	}
}

func TestUntrusted(t *testing.T) {
	t.Run("direct client served", func(t *testing.T) {
		l, ch := serve(t, Options{}) // trusts no one
		cl := dial(t, l, "a1 CAPABILITY\r\n")
		servedAs(t, cl, next(t, ch), "a1 CAPABILITY\r\n")
	})
	for _, h := range []Header{
		{Version: 1, Proxied: true, Source: netip.MustParseAddrPort("203.0.113.1:1"), Destination: netip.MustParseAddrPort("192.0.2.2:25")},
		{Version: 2, Proxied: true, Source: netip.MustParseAddrPort("203.0.113.1:1"), Destination: netip.MustParseAddrPort("192.0.2.2:25")},
	} {
		t.Run(fmt.Sprintf("header refused v%d", h.Version), func(t *testing.T) {
			l, ch := serve(t, Options{})
			b := h.Append(nil)
			cl := dial(t, l, string(b[:3])) // the signature split over two segments
			c := next(t, ch)
			if strings.HasPrefix(c.RemoteAddr().String(), "203.0.113.1") {
				t.Fatal("untrusted header used")
			}
			go func() {
				time.Sleep(50 * time.Millisecond)
				cl.Write(b[3:])
			}()
			if _, err := c.Read(make([]byte, 64)); !errors.Is(err, ErrUntrusted) {
				t.Fatalf("first Read: %v, want ErrUntrusted", err)
			}
			closedByServer(t, cl)
		})
	}
	t.Run("refuse direct", func(t *testing.T) {
		l, ch := serve(t, Options{RefuseDirect: true})
		cl := dial(t, l, "EHLO x\r\n")
		closedByServer(t, cl)
		select {
		case c := <-ch:
			t.Fatalf("accepted %v", c.RemoteAddr())
		default:
		}
	})
}

// Close ends Accept and the header reads in progress.
func TestClose(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := NewListener(raw, Options{Trusted: loopback, HeaderTimeout: time.Minute})
	pending := dial(t, l, "PROXY ")
	errc := make(chan error, 1)
	go func() {
		_, err := l.Accept()
		errc <- err
	}()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
	closedByServer(t, pending)
	if err := l.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
}

// CloseWrite reaches the socket: the client reads the end of the stream
// while the server can still read what it sends.
func TestCloseWrite(t *testing.T) {
	l, ch := serve(t, Options{Trusted: loopback})
	cl := dial(t, l, string(Header{Version: 2}.Append(nil)))
	c := next(t, ch)
	if err := c.(*Conn).CloseWrite(); err != nil {
		t.Fatal(err)
	}
	_ = cl.SetReadDeadline(time.Now().Add(10 * time.Second))
	if n, err := cl.Read(make([]byte, 8)); n != 0 || err != io.EOF {
		t.Fatalf("client read %d, %v; want EOF", n, err)
	}
	io.WriteString(cl, "still here\r\n")
	if line := readLine(t, c); line != "still here\r\n" {
		t.Fatalf("server read %q", line)
	}
}

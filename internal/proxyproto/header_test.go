package proxyproto

import (
	"encoding/hex"
	"errors"
	"net/netip"
	"strings"
	"testing"
)

func v2hex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const sigHex = "0d0a0d0a000d0a515549540a"

func TestParse(t *testing.T) {
	ap := netip.MustParseAddrPort
	for _, tc := range []struct {
		name string
		in   []byte
		want Header
		n    int // header length; 0: len(in)
		err  error
	}{
		// spec §2.1's examples
		{name: "v1 TCP4", in: []byte("PROXY TCP4 255.255.255.255 255.255.255.255 65535 65535\r\n"),
			want: Header{Version: 1, Proxied: true, Source: ap("255.255.255.255:65535"), Destination: ap("255.255.255.255:65535")}},
		{name: "v1 TCP6 longest", in: []byte("PROXY TCP6 ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), err: ErrInvalid},
		{name: "v1 TCP6", in: []byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"),
			want: Header{Version: 1, Proxied: true, Source: ap("[2001:db8::1]:56324"), Destination: ap("[2001:db8::2]:443")}},
		{name: "v1 TCP6 max length", in: []byte("PROXY TCP6 ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff 65535 65535\r\n"),
			want: Header{Version: 1, Proxied: true, Source: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535"), Destination: ap("[ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff]:65535")}},
		{name: "v1 UNKNOWN", in: []byte("PROXY UNKNOWN\r\n"), want: Header{Version: 1}},
		{name: "v1 UNKNOWN with addresses", in: []byte("PROXY UNKNOWN ffff:f...f:ffff ffff:f...f:ffff 65535 65535\r\n"), want: Header{Version: 1}},
		{name: "v1 with data after", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 1 25\r\nEHLO x\r\n"), n: 37,
			want: Header{Version: 1, Proxied: true, Source: ap("192.0.2.1:1"), Destination: ap("192.0.2.2:25")}},
		{name: "v1 family mismatch", in: []byte("PROXY TCP4 2001:db8::1 192.0.2.2 1 25\r\n"), err: ErrInvalid},
		{name: "v1 port too big", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 65536 25\r\n"), err: ErrInvalid},
		{name: "v1 leading zero port", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 025 25\r\n"), err: ErrInvalid},
		{name: "v1 signed port", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 +25 25\r\n"), err: ErrInvalid},
		{name: "v1 missing field", in: []byte("PROXY TCP4 192.0.2.1 192.0.2.2 25\r\n"), err: ErrInvalid},
		{name: "v1 double space", in: []byte("PROXY TCP4  192.0.2.1 192.0.2.2 1 25\r\n"), err: ErrInvalid},
		{name: "v1 zone", in: []byte("PROXY TCP6 fe80::1%eth0 fe80::2 1 25\r\n"), err: ErrInvalid},
		{name: "v1 bad protocol", in: []byte("PROXY UDP4 192.0.2.1 192.0.2.2 1 25\r\n"), err: ErrInvalid},
		{name: "v1 LF only", in: []byte("PROXY UNKNOWN\n"), err: ErrInvalid},
		{name: "v1 no CRLF within 107", in: []byte("PROXY UNKNOWN " + strings.Repeat("x", 100)), err: ErrInvalid},
		{name: "v1 incomplete", in: []byte("PROXY TCP4 192.0.2.1"), err: ErrIncomplete},
		{name: "signature prefix", in: []byte("PRO"), err: ErrIncomplete},
		{name: "empty", in: nil, err: ErrIncomplete},
		{name: "SMTP command", in: []byte("EHLO client.example\r\n"), err: ErrNoHeader},
		{name: "TLS ClientHello", in: []byte{0x16, 0x03, 0x01, 0x00, 0xc8}, err: ErrNoHeader},
		{name: "PROXY without space", in: []byte("PROXYTCP4"), err: ErrNoHeader},

		// v2 (spec §2.2)
		{name: "v2 TCP4", in: v2hex(t, sigHex+"21 11 000c c0000201 c0000202 d6a4 0019"),
			want: Header{Version: 2, Proxied: true, Source: ap("192.0.2.1:54948"), Destination: ap("192.0.2.2:25")}},
		{name: "v2 TCP6", in: v2hex(t, sigHex+"21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0400 03e1"),
			want: Header{Version: 2, Proxied: true, Source: ap("[2001:db8::1]:1024"), Destination: ap("[2001:db8::2]:993")}},
		{name: "v2 TCP4 with TLVs skipped", in: v2hex(t, sigHex+"21 11 0016 c0000201 c0000202 d6a4 0019 01 0002 6832 04 0002 ffff"),
			want: Header{Version: 2, Proxied: true, Source: ap("192.0.2.1:54948"), Destination: ap("192.0.2.2:25")}},
		{name: "v2 LOCAL (health check)", in: v2hex(t, sigHex+"20 00 0000"), want: Header{Version: 2}},
		{name: "v2 LOCAL with addresses", in: v2hex(t, sigHex+"20 11 000c c0000201 c0000202 d6a4 0019"), want: Header{Version: 2}},
		{name: "v2 PROXY AF_UNSPEC", in: v2hex(t, sigHex+"21 00 0000"), want: Header{Version: 2}},
		{name: "v2 AF_UNIX", in: append(v2hex(t, sigHex+"21 31 00d8"), make([]byte, 216)...), want: Header{Version: 2}},
		{name: "v2 AF_UNIX short", in: append(v2hex(t, sigHex+"21 31 0010"), make([]byte, 16)...), err: ErrInvalid},
		{name: "v2 data after", in: append(v2hex(t, sigHex+"20 00 0000"), "a1 LOGIN"...), n: 16, want: Header{Version: 2}},
		{name: "v2 version 1", in: v2hex(t, sigHex+"11 11 000c c0000201 c0000202 d6a4 0019"), err: ErrInvalid},
		{name: "v2 command 2", in: v2hex(t, sigHex+"22 11 000c c0000201 c0000202 d6a4 0019"), err: ErrInvalid},
		{name: "v2 family 4", in: v2hex(t, sigHex+"21 41 0000"), err: ErrInvalid},
		{name: "v2 DGRAM", in: v2hex(t, sigHex+"21 12 000c c0000201 c0000202 d6a4 0019"), err: ErrInvalid},
		{name: "v2 short address block", in: v2hex(t, sigHex+"21 11 0008 c0000201 c0000202"), err: ErrInvalid},
		{name: "v2 over the size limit", in: v2hex(t, sigHex+"21 11 ffff"), err: ErrInvalid},
		{name: "v2 incomplete fixed part", in: v2hex(t, sigHex+"21 11"), err: ErrIncomplete},
		{name: "v2 incomplete addresses", in: v2hex(t, sigHex+"21 11 000c c0000201"), err: ErrIncomplete},
		{name: "v2 signature prefix", in: []byte("\r\n\r\n"), err: ErrIncomplete},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, n, err := Parse(tc.in)
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("Parse = %+v, %d, %v; want %v", h, n, err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			wantN := tc.n
			if wantN == 0 {
				wantN = len(tc.in)
			}
			if h != tc.want || n != wantN {
				t.Fatalf("Parse = %+v, %d; want %+v, %d", h, n, tc.want, wantN)
			}
		})
	}
}

// Append writes what Parse reads, in both versions and families.
func TestAppendRoundTrip(t *testing.T) {
	for _, h := range []Header{
		{Version: 1, Proxied: true, Source: netip.MustParseAddrPort("198.51.100.7:40000"), Destination: netip.MustParseAddrPort("192.0.2.2:25")},
		{Version: 1, Proxied: true, Source: netip.MustParseAddrPort("[2001:db8::7]:40000"), Destination: netip.MustParseAddrPort("[2001:db8::2]:993")},
		{Version: 1},
		{Version: 2, Proxied: true, Source: netip.MustParseAddrPort("198.51.100.7:40000"), Destination: netip.MustParseAddrPort("192.0.2.2:25")},
		{Version: 2, Proxied: true, Source: netip.MustParseAddrPort("[2001:db8::7]:40000"), Destination: netip.MustParseAddrPort("[2001:db8::2]:993")},
		{Version: 2},
	} {
		b := h.Append(nil)
		got, n, err := Parse(b)
		if err != nil || n != len(b) || got != h {
			t.Errorf("Parse(Append(%+v)) = %+v, %d, %v (%q)", h, got, n, err, b)
		}
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("PROXY TCP4 192.0.2.1 192.0.2.2 56324 25\r\nEHLO x\r\n"))
	f.Add([]byte("PROXY TCP6 2001:db8::1 2001:db8::2 56324 443\r\n"))
	f.Add([]byte("PROXY UNKNOWN\r\n"))
	f.Add(v2hex(f, sigHex+"21 11 0016 c0000201 c0000202 d6a4 0019 01 0002 6832 04 0002 ffff"))
	f.Add(v2hex(f, sigHex+"21 21 0024 20010db8000000000000000000000001 20010db8000000000000000000000002 0400 03e1"))
	f.Add(v2hex(f, sigHex+"20 00 0000"))
	f.Add([]byte("a1 LOGIN user pass\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, err := Parse(b)
		if err != nil {
			if !errors.Is(err, ErrNoHeader) && !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrIncomplete) {
				t.Fatalf("unexpected error %v", err)
			}
			if errors.Is(err, ErrIncomplete) && len(b) >= MaxHeaderBytes {
				t.Fatalf("%d bytes still incomplete: unbounded", len(b))
			}
			return
		}
		if n <= 0 || n > len(b) || n > MaxHeaderBytes {
			t.Fatalf("length %d of %d bytes", n, len(b))
		}
		if h.Version != 1 && h.Version != 2 {
			t.Fatalf("version %d", h.Version)
		}
		// Every proper prefix of a header asks for more bytes, so a
		// reader stops exactly at its end.
		for _, k := range []int{0, n / 2, n - 1} {
			if _, _, err := Parse(b[:k]); !errors.Is(err, ErrIncomplete) {
				t.Fatalf("prefix of %d of %d bytes: %v", k, n, err)
			}
		}
		// A proxied header means the same after encoding it again.
		if h.Proxied {
			again, m, err := Parse(h.Append(nil))
			if err != nil || again != h || m == 0 {
				t.Fatalf("re-encoded %+v parses as %+v, %v", h, again, err)
			}
		}
	})
}

package proxyproto

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"net/netip"
	"strconv"
)

// MaxHeaderBytes bounds a version 2 header with its TLVs. The spec allows
// up to 16+65535 bytes; a balancer's TLVs (ALPN, authority, unique ID, TLS
// details) fit easily in this.
const MaxHeaderBytes = 16 + 2048

// maxV1Bytes is the longest version 1 line, CRLF included (spec §2.1:
// "107 characters").
const maxV1Bytes = 107

var (
	// ErrNoHeader means the bytes do not start with a PROXY protocol
	// signature.
	ErrNoHeader = errors.New("proxyproto: no PROXY protocol header")
	// ErrInvalid means the bytes start with a signature but are not a
	// valid header.
	ErrInvalid = errors.New("proxyproto: invalid PROXY protocol header")
	// ErrIncomplete means the bytes are the beginning of a header (or of
	// a signature): more are needed to decide.
	ErrIncomplete = errors.New("proxyproto: incomplete PROXY protocol header")
)

var (
	sigV1 = []byte("PROXY ")
	// sigV2 is the version 2 signature (spec §2.2).
	sigV2 = []byte("\r\n\r\n\x00\r\nQUIT\n")
)

// Header is a parsed PROXY protocol header.
type Header struct {
	// Version is 1 (text) or 2 (binary).
	Version int
	// Proxied is true when Source and Destination describe a relayed
	// TCP connection. It is false for a v2 LOCAL command (the balancer's
	// own connection, e.g. a health check), a v1 UNKNOWN line, and
	// address families other than TCP over IPv4 or IPv6: the receiver
	// then uses the socket's own addresses (spec §2.1, §2.2).
	Proxied bool
	// Source is the client's address and port as the balancer saw it.
	Source netip.AddrPort
	// Destination is the address and port the client connected to.
	Destination netip.AddrPort
}

// Parse parses the header at the start of b and returns it with its
// length in bytes. It returns ErrNoHeader if b does not start with a
// signature, ErrIncomplete if b is a proper prefix of a header (or of a
// signature) and ErrInvalid (wrapped, with the reason) for anything else
// that starts with a signature.
func Parse(b []byte) (Header, int, error) {
	switch {
	case hasSignature(b, sigV2):
		return parseV2(b)
	case hasSignature(b, sigV1):
		return parseV1(b)
	case isPrefix(b, sigV2) || isPrefix(b, sigV1):
		return Header{}, 0, ErrIncomplete
	}
	return Header{}, 0, ErrNoHeader
}

func hasSignature(b, sig []byte) bool { return bytes.HasPrefix(b, sig) }

// isPrefix reports whether b is a proper prefix of sig (empty included).
func isPrefix(b, sig []byte) bool { return len(b) < len(sig) && bytes.HasPrefix(sig, b) }

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// parseV1 parses "PROXY TCP4|TCP6 src dst sport dport\r\n" or
// "PROXY UNKNOWN[ anything]\r\n" (spec §2.1).
func parseV1(b []byte) (Header, int, error) {
	end := bytes.Index(b[:min(len(b), maxV1Bytes)], []byte("\r\n"))
	if end < 0 {
		if len(b) < maxV1Bytes && bytes.IndexByte(b, '\n') < 0 {
			return Header{}, 0, ErrIncomplete
		}
		return Header{}, 0, invalid("v1 line without CRLF within %d bytes", maxV1Bytes)
	}
	if bytes.IndexByte(b[:end], '\n') >= 0 {
		return Header{}, 0, invalid("v1 line with a bare LF")
	}
	n := end + 2
	fields := bytes.Split(b[len(sigV1):end], []byte(" "))
	h := Header{Version: 1}
	switch string(fields[0]) {
	case "UNKNOWN":
		// "the receiver must ignore anything presented before the CRLF".
		return h, n, nil
	case "TCP4", "TCP6":
	default:
		return Header{}, 0, invalid("v1 protocol %q", fields[0])
	}
	if len(fields) != 5 {
		return Header{}, 0, invalid("v1 line has %d fields, want 6", len(fields)+1)
	}
	v6 := string(fields[0]) == "TCP6"
	src, err1 := v1Addr(fields[1], v6)
	dst, err2 := v1Addr(fields[2], v6)
	sport, err3 := v1Port(fields[3])
	dport, err4 := v1Port(fields[4])
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return Header{}, 0, invalid("v1 %s", err)
	}
	h.Proxied = true
	h.Source = netip.AddrPortFrom(src, sport)
	h.Destination = netip.AddrPortFrom(dst, dport)
	return h, n, nil
}

func v1Addr(f []byte, v6 bool) (netip.Addr, error) {
	a, err := netip.ParseAddr(string(f))
	if err != nil || a.Zone() != "" || a.Is4() == v6 {
		return netip.Addr{}, fmt.Errorf("address %q", f)
	}
	return a, nil
}

// v1Port parses a decimal port; the spec's "0 to 65535" without leading
// zeros or signs.
func v1Port(f []byte) (uint16, error) {
	if len(f) == 0 || len(f) > 5 || f[0] == '0' && len(f) > 1 || f[0] < '0' || f[0] > '9' {
		return 0, fmt.Errorf("port %q", f)
	}
	p, err := strconv.ParseUint(string(f), 10, 16)
	if err != nil {
		return 0, fmt.Errorf("port %q", f)
	}
	return uint16(p), nil
}

// parseV2 parses the binary header (spec §2.2): signature, version and
// command, family and transport, length, addresses, TLVs (skipped).
func parseV2(b []byte) (Header, int, error) {
	if len(b) < 16 {
		return Header{}, 0, ErrIncomplete
	}
	verCmd, fam := b[12], b[13]
	length := int(binary.BigEndian.Uint16(b[14:16]))
	if verCmd>>4 != 2 {
		return Header{}, 0, invalid("v2 version %d", verCmd>>4)
	}
	cmd := verCmd & 0x0f
	if cmd > 1 {
		// "Receivers must drop connections presenting unexpected values."
		return Header{}, 0, invalid("v2 command %d", cmd)
	}
	if 16+length > MaxHeaderBytes {
		return Header{}, 0, invalid("v2 header of %d bytes is over the limit of %d", 16+length, MaxHeaderBytes)
	}
	if len(b) < 16+length {
		return Header{}, 0, ErrIncomplete
	}
	n := 16 + length
	h := Header{Version: 2}
	if cmd == 0 {
		// LOCAL: "the receiver must accept this connection as valid and
		// must use the real connection endpoints and discard the
		// protocol block including the family".
		return h, n, nil
	}
	addrs := b[16:n]
	transport := fam & 0x0f
	switch fam >> 4 {
	case 0: // AF_UNSPEC: "the receiver should ignore address information"
		return h, n, nil
	case 1, 2:
	case 3: // AF_UNIX: no IP address to use; keep the socket's.
		if length < 216 {
			return Header{}, 0, invalid("v2 AF_UNIX address block of %d bytes", length)
		}
		return h, n, nil
	default:
		return Header{}, 0, invalid("v2 address family %d", fam>>4)
	}
	if transport != 1 {
		// A listener of ours is a stream socket; UNSPEC or DGRAM
		// transport over an IP family describes something else.
		return Header{}, 0, invalid("v2 transport %d over an IP family", transport)
	}
	size := 4
	if fam>>4 == 2 {
		size = 16
	}
	if length < 2*size+4 {
		return Header{}, 0, invalid("v2 address block of %d bytes, want %d", length, 2*size+4)
	}
	src, _ := netip.AddrFromSlice(addrs[:size])
	dst, _ := netip.AddrFromSlice(addrs[size : 2*size])
	ports := addrs[2*size:]
	h.Proxied = true
	h.Source = netip.AddrPortFrom(src, binary.BigEndian.Uint16(ports[0:2]))
	h.Destination = netip.AddrPortFrom(dst, binary.BigEndian.Uint16(ports[2:4]))
	return h, n, nil
}

// Append appends h encoded in its version to b: v1 text or v2 binary
// (without TLVs). It is what a balancer sends; tests and clients of a
// proxied listener use it.
func (h Header) Append(b []byte) []byte {
	if h.Version == 1 {
		if !h.Proxied {
			return append(b, "PROXY UNKNOWN\r\n"...)
		}
		proto := "TCP4"
		if h.Source.Addr().Is6() {
			proto = "TCP6"
		}
		return fmt.Appendf(b, "PROXY %s %s %s %d %d\r\n", proto, h.Source.Addr(), h.Destination.Addr(), h.Source.Port(), h.Destination.Port())
	}
	b = append(b, sigV2...)
	if !h.Proxied {
		return append(b, 0x20, 0x00, 0, 0) // LOCAL, AF_UNSPEC, no addresses
	}
	src, dst := h.Source.Addr().Unmap(), h.Destination.Addr().Unmap()
	fam := byte(0x11) // AF_INET, STREAM
	if src.Is6() || dst.Is6() {
		fam = 0x21
		src, dst = netip.AddrFrom16(src.As16()), netip.AddrFrom16(dst.As16())
	}
	addrs := append(src.AsSlice(), dst.AsSlice()...)
	addrs = binary.BigEndian.AppendUint16(addrs, h.Source.Port())
	addrs = binary.BigEndian.AppendUint16(addrs, h.Destination.Port())
	b = append(b, 0x21, fam)
	b = binary.BigEndian.AppendUint16(b, uint16(len(addrs)))
	return append(b, addrs...)
}

package limits

import (
	"net"
	"net/netip"
)

// ClientKey returns the prefix a client is counted under: the address itself
// for IPv4 (IPv4-mapped IPv6 addresses are treated as IPv4) and the /64 it
// belongs to for IPv6. The zero Addr (a client without an IP address, such as
// a Unix socket peer) yields the zero Prefix, which is one shared bucket.
func ClientKey(ip netip.Addr) netip.Prefix {
	if !ip.IsValid() {
		return netip.Prefix{}
	}
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.WithZone("").Prefix(bits)
	if err != nil {
		// Unreachable: bits is valid for the address family.
		return netip.PrefixFrom(ip, ip.BitLen())
	}
	return p
}

// AddrOf extracts the IP address of a net.Addr as returned by
// net.Conn.RemoteAddr. It returns the zero Addr for addresses without one.
func AddrOf(a net.Addr) netip.Addr {
	switch v := a.(type) {
	case *net.TCPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	case *net.UDPAddr:
		ip, _ := netip.AddrFromSlice(v.IP)
		return ip.Unmap()
	}
	if a == nil {
		return netip.Addr{}
	}
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

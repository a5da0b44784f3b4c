package directory

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Address length limits (RFC 5321 §4.5.3.1). A forward-path holds at most
// 256 octets including the angle brackets, so an address holds at most 254.
const (
	MaxAddressLength = 254 // RFC 5321 §4.5.3.1.3 (path) minus "<" and ">"
	MaxLocalLength   = 64  // RFC 5321 §4.5.3.1.1
	MaxDomainLength  = 255 // RFC 5321 §4.5.3.1.2
	maxLabelLength   = 63  // RFC 1035 §2.3.4
)

// Address is a parsed mailbox address "local@domain".
//
// Local keeps the case it was given: the local part is case-sensitive on
// the wire (RFC 5321 §2.4), so addresses relayed to other hosts must keep
// it. Domain is always lowercase. Use [Address.Canonical] for the form the
// directory stores and compares.
type Address struct {
	Local  string
	Domain string
}

// String returns "local@domain" with the local part as given.
func (a Address) String() string { return a.Local + "@" + a.Domain }

// Canonical returns the lowercase form "local@domain" under which the
// directory stores and compares addresses.
func (a Address) Canonical() string { return a.CanonicalIn(a.Domain) }

// CanonicalLocal returns the local part in canonical form: lowercase
// (strings.ToLower, so Unicode letters too). Hosted mailboxes are
// case-insensitive here, as on every mainstream mail platform; a remote
// host's local parts are its own to interpret (RFC 5321 §2.4), so an
// address relayed outward keeps [Address.Local] as given.
func (a Address) CanonicalLocal() string { return strings.ToLower(a.Local) }

// CanonicalIn returns the canonical form of a under domain instead of its
// own, for the main name of an alternative domain name a was given
// under. domain must be canonical already (from [CanonicalDomain] or a
// stored [Domain]).
func (a Address) CanonicalIn(domain string) string { return a.CanonicalLocal() + "@" + domain }

// Subaddress splits the local part at its first '+' into the base and the
// tag ("user+tag" -> "user", "tag"). ok is false if there is no '+' or the
// base would be empty ("+tag" is an ordinary local part), in which case
// base is the whole local part. The base is returned in canonical form.
func (a Address) Subaddress() (base, tag string, ok bool) {
	return SplitSubaddress(a.CanonicalLocal())
}

// SplitSubaddress splits a local part at its first '+' (RFC 5233 §1 calls
// the part after the separator the "detail"). ok is false if there is no
// '+' or the base would be empty.
func SplitSubaddress(local string) (base, tag string, ok bool) {
	i := strings.IndexByte(local, '+')
	if i <= 0 {
		return local, "", false
	}
	return local[:i], local[i+1:], true
}

// ParseAddress parses and validates a mailbox address of the form
// "local@domain". The local part must be an RFC 5321 dot-string whose atoms
// may also hold UTF-8 characters (RFC 6531 §3.3, SMTPUTF8); quoted local
// parts are refused because no hosted mailbox needs one and they are a
// classic open-relay trick. The domain must be a host name; UTF-8 labels
// are accepted as given (no IDNA conversion) and address literals such as
// "[192.0.2.1]" are refused. Whitespace and control characters are refused
// anywhere. Errors wrap [ErrInvalid].
func ParseAddress(addr string) (Address, error) {
	if addr == "" {
		return Address{}, fmt.Errorf("%w: empty address", ErrInvalid)
	}
	if len(addr) > MaxAddressLength {
		return Address{}, fmt.Errorf("%w: address longer than %d octets", ErrInvalid, MaxAddressLength)
	}
	if !utf8.ValidString(addr) {
		return Address{}, fmt.Errorf("%w: address is not valid UTF-8", ErrInvalid)
	}
	at := strings.LastIndexByte(addr, '@')
	if at < 0 {
		return Address{}, fmt.Errorf("%w: address %q has no @", ErrInvalid, addr)
	}
	local, domain := addr[:at], addr[at+1:]
	if err := checkLocal(local); err != nil {
		return Address{}, fmt.Errorf("%w: address %q: %w", ErrInvalid, addr, err)
	}
	d, err := canonicalDomain(domain)
	if err != nil {
		return Address{}, fmt.Errorf("%w: address %q: %w", ErrInvalid, addr, err)
	}
	a := Address{Local: local, Domain: d}
	// Lowercasing may lengthen some UTF-8 characters; the canonical form
	// must obey the limits too, so that it parses again.
	if c := a.Canonical(); len(c) > MaxAddressLength || len(c)-len(d)-1 > MaxLocalLength {
		return Address{}, fmt.Errorf("%w: address %q too long in canonical form", ErrInvalid, addr)
	}
	return a, nil
}

// CanonicalAddress returns the canonical (lowercase) form of a mailbox
// address, or an error wrapping [ErrInvalid]; see [ParseAddress] for the
// accepted syntax and the package documentation for the rule. It is the
// module's one address canonicaliser: every package that stores or
// compares hosted addresses calls it (or [Address.Canonical]). It does
// not map alternative domain names: that needs a [Directory]
// (LookupAddress does it).
func CanonicalAddress(addr string) (string, error) {
	a, err := ParseAddress(addr)
	if err != nil {
		return "", err
	}
	return a.Canonical(), nil
}

// CanonicalDomain validates a domain name and returns it lowercase, in the
// form given (U-labels stay UTF-8, A-labels stay "xn--": no IDNA
// mapping). A trailing dot, address literals, empty labels, labels over
// 63 octets, whitespace and control characters are refused (errors wrap
// ErrInvalid).
func CanonicalDomain(name string) (string, error) {
	d, err := canonicalDomain(name)
	if err != nil {
		return "", fmt.Errorf("%w: domain %q: %w", ErrInvalid, name, err)
	}
	return d, nil
}

// checkLocal validates a local part as an RFC 5321 §4.1.2 Dot-string with
// the RFC 6531 §3.3 extension of atext to UTF-8.
func checkLocal(local string) error {
	switch {
	case local == "":
		return fmt.Errorf("empty local part")
	case len(local) > MaxLocalLength:
		return fmt.Errorf("local part longer than %d octets", MaxLocalLength)
	case strings.HasPrefix(local, `"`):
		return fmt.Errorf("quoted local parts are not accepted")
	case local[0] == '.' || local[len(local)-1] == '.' || strings.Contains(local, ".."):
		return fmt.Errorf("local part has an empty dot-separated atom")
	}
	for _, r := range local {
		if r == '.' || isAtext(r) {
			continue
		}
		return fmt.Errorf("character %q not allowed in local part", r)
	}
	return nil
}

// isAtext reports whether r is atext (RFC 5322 §3.2.3) or a UTF-8
// character allowed in a local part (RFC 6531 §3.3: UTF8-non-ascii),
// excluding Unicode whitespace and control characters.
func isAtext(r rune) bool {
	switch {
	case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9':
		return true
	case strings.ContainsRune("!#$%&'*+-/=?^_`{|}~", r):
		return true
	case r >= utf8.RuneSelf:
		return r != utf8.RuneError && !unicode.IsSpace(r) && !unicode.IsControl(r) &&
			unicode.IsPrint(r)
	}
	return false
}

func canonicalDomain(domain string) (string, error) {
	switch {
	case domain == "":
		return "", fmt.Errorf("empty domain")
	case len(domain) > MaxDomainLength:
		return "", fmt.Errorf("domain longer than %d octets", MaxDomainLength)
	case domain[0] == '[':
		// RFC 5321 §4.1.3 address literals name a host, not a hosted
		// domain; accepting them invites relay abuse.
		return "", fmt.Errorf("address literals are not accepted")
	}
	if !utf8.ValidString(domain) {
		return "", fmt.Errorf("domain is not valid UTF-8")
	}
	d := strings.ToLower(domain)
	if len(d) > MaxDomainLength {
		return "", fmt.Errorf("domain longer than %d octets", MaxDomainLength)
	}
	for label := range strings.SplitSeq(d, ".") {
		if err := checkLabel(label); err != nil {
			return "", err
		}
	}
	return d, nil
}

// checkLabel validates one label: letters, digits and inner hyphens
// (RFC 1035 §2.3.1 with the RFC 1123 §2.1 leading-digit relaxation), or
// UTF-8 characters as in an IDNA U-label, which we accept unconverted.
func checkLabel(label string) error {
	switch {
	case label == "":
		return fmt.Errorf("domain has an empty label")
	case len(label) > maxLabelLength:
		return fmt.Errorf("domain label longer than %d octets", maxLabelLength)
	case label[0] == '-' || label[len(label)-1] == '-':
		return fmt.Errorf("domain label %q starts or ends with a hyphen", label)
	}
	for _, r := range label {
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9', r == '-':
		case r >= utf8.RuneSelf && (unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsMark(r)):
		default:
			return fmt.Errorf("character %q not allowed in domain", r)
		}
	}
	return nil
}

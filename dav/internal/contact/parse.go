package contact

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"

	"github.com/emersion/go-vcard"
)

// Default limits, used where a [Limits] field is zero or negative.
const (
	// DefaultMaxSize is the largest address object accepted, in octets:
	// room for a contact with a photo of directory.MaxPhotoBytes in
	// base64 and its text.
	DefaultMaxSize = 1 << 20
	// DefaultMaxProperties bounds the properties (content lines) of one
	// card.
	DefaultMaxProperties = 1000
)

// Limits bound what [Parse] accepts. The zero value means the defaults.
type Limits struct {
	// MaxSize is the largest resource in octets (the CARDDAV:max-resource-
	// size property a server advertises, RFC 6352 §6.2.3).
	MaxSize int
	// MaxProperties is the largest number of properties in a card.
	MaxProperties int
}

func (l Limits) maxSize() int {
	if l.MaxSize <= 0 {
		return DefaultMaxSize
	}
	return l.MaxSize
}

func (l Limits) maxProperties() int {
	if l.MaxProperties <= 0 {
		return DefaultMaxProperties
	}
	return l.MaxProperties
}

// Card is a parsed and validated address object resource.
type Card struct {
	card    vcard.Card
	uid     string
	version string
}

// UID is the card's UID property value (RFC 6350 §6.7.6), the key a
// CardDAV server keeps unique per address book (RFC 6352 §6.3.2.1
// no-uid-conflict).
func (c *Card) UID() string { return c.uid }

// Version is "3.0" or "4.0".
func (c *Card) Version() string { return c.version }

// VCard is the parsed card. It is shared with c: callers must not modify
// it (use [Project] for a trimmed copy).
func (c *Card) VCard() vcard.Card { return c.card }

// Match reports whether the card satisfies the addressbook-query filter f
// (see the package function [Match]).
func (c *Card) Match(f Filter) bool { return Match(c.card, f) }

// Parse decodes one address object resource and checks it against RFC
// 6350/2426 and RFC 6352 §5.1, in this order:
//
//  1. at most lim.MaxSize octets (max-resource-size);
//  2. UTF-8 (RFC 6350 §3.1), exactly one VCARD that go-vcard decodes,
//     with well-formed property, group and parameter names (RFC 6350
//     §3.3) and no nested VCARD (valid-address-data);
//  3. at most lim.MaxProperties properties (max-resource-size);
//  4. exactly one VERSION: missing or repeated is valid-address-data, a
//     version other than 3.0 or 4.0 is supported-address-data;
//  5. exactly one non-empty UID (RFC 6352 §5.1), at least one FN (RFC
//     6350 §6.2.1), and for 3.0 exactly one N (RFC 2426 §3.1.2), for 4.0 at
//     most one (valid-address-data).
//
// A leading byte-order mark is ignored. Every error is a
// *[PreconditionError]. go-vcard silently skips content
// lines it cannot split into name and value (it has no strict mode); such
// lines are not part of the returned card. go-vcard does not decode
// ENCODING=QUOTED-PRINTABLE (a vCard 2.1 encoding RFC 2426 does not
// allow): those values are kept as they are written.
func Parse(data []byte, lim Limits) (*Card, error) {
	if len(data) > lim.maxSize() {
		return nil, precondition(MaxResourceSize, fmt.Errorf("%w: %d octets, limit %d", ErrTooLarge, len(data), lim.maxSize()))
	}
	card, err := decodeOne(data)
	if err != nil {
		return nil, precondition(ValidAddressData, err)
	}
	if n := countProperties(card); n > lim.maxProperties() {
		return nil, precondition(MaxResourceSize, fmt.Errorf("%w: %d, limit %d", ErrTooManyProperties, n, lim.maxProperties()))
	}
	if err := checkNames(card); err != nil {
		return nil, precondition(ValidAddressData, err)
	}
	version, err := checkVersion(card)
	if err != nil {
		return nil, err
	}
	uid, err := checkRequired(card, version)
	if err != nil {
		return nil, precondition(ValidAddressData, err)
	}
	return &Card{card: card, uid: uid, version: version}, nil
}

// decodeOne decodes data that must hold exactly one VCARD.
func decodeOne(data []byte) (vcard.Card, error) {
	if !utf8.Valid(data) {
		return nil, errors.New("contact: vCard is not UTF-8") // RFC 6350 §3.1
	}
	if bytes.IndexByte(data, 0) >= 0 {
		// No value may hold a control character but tab (RFC 6350 §3.3,
		// VALUE-CHAR); the store's prefilter reads text up to a zero
		// byte (ContainsClauses).
		return nil, errors.New("contact: vCard holds a zero byte")
	}
	// A byte-order mark (Windows exports carry one) is not part of the
	// first content line.
	data = bytes.TrimPrefix(data, []byte("\uFEFF"))
	dec := vcard.NewDecoder(bytes.NewReader(data))
	card, err := dec.Decode()
	if err == io.EOF {
		return nil, errors.New("contact: no vCard in the resource")
	}
	if err != nil {
		return nil, fmt.Errorf("contact: decode vCard: %w", err)
	}
	switch _, err := dec.Decode(); {
	case err == nil:
		return nil, errors.New("contact: more than one VCARD in the resource") // RFC 6352 §5.1
	case err != io.EOF:
		return nil, fmt.Errorf("contact: data after the VCARD: %w", err)
	}
	if _, nested := card["BEGIN"]; nested {
		return nil, errors.New("contact: nested BEGIN inside the VCARD")
	}
	return card, nil
}

func countProperties(card vcard.Card) int {
	n := 0
	for _, fields := range card {
		n += len(fields)
	}
	return n
}

// checkNames enforces RFC 6350 §3.3: property, group and parameter names
// are 1*(ALPHA / DIGIT / "-").
func checkNames(card vcard.Card) error {
	for name, fields := range card {
		if !isToken(name) {
			return fmt.Errorf("contact: bad property name %q", name)
		}
		for _, f := range fields {
			if f.Group != "" && !isToken(f.Group) {
				return fmt.Errorf("contact: bad group name %q on %s", f.Group, name)
			}
			for p := range f.Params {
				if !isToken(p) {
					return fmt.Errorf("contact: bad parameter name %q on %s", p, name)
				}
			}
		}
	}
	return nil
}

func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// checkVersion returns the card's VERSION, "3.0" or "4.0".
func checkVersion(card vcard.Card) (string, error) {
	vs := card[vcard.FieldVersion]
	if len(vs) != 1 {
		return "", precondition(ValidAddressData, fmt.Errorf("%w: %d VERSION properties", ErrVersion, len(vs)))
	}
	switch v := strings.TrimSpace(vs[0].Value); v {
	case "3.0", "4.0":
		return v, nil
	default:
		// RFC 6352 §6.2.2: the server lists 3.0 (and here 4.0) in
		// supported-address-data; other versions are refused with it.
		return "", precondition(SupportedAddressData, fmt.Errorf("%w: %q", ErrVersion, v))
	}
}

// checkRequired checks UID, FN and N and returns the UID.
func checkRequired(card vcard.Card, version string) (string, error) {
	uids := card[vcard.FieldUID]
	if len(uids) > 1 {
		return "", fmt.Errorf("%w: %d UID properties", ErrNoUID, len(uids)) // RFC 6350 §6.7.6: *1
	}
	if len(uids) == 0 || strings.TrimSpace(uids[0].Value) == "" {
		return "", ErrNoUID // RFC 6352 §5.1
	}
	if len(card[vcard.FieldFormattedName]) == 0 {
		return "", errors.New("contact: vCard without FN") // RFC 6350 §6.2.1, RFC 2426 §3.1.1
	}
	switch n := len(card[vcard.FieldName]); {
	case version == "3.0" && n != 1:
		return "", fmt.Errorf("contact: vCard 3.0 needs exactly one N, has %d", n) // RFC 2426 §3.1.2
	case n > 1:
		return "", fmt.Errorf("contact: vCard 4.0 allows at most one N, has %d", n) // RFC 6350 §6.2.2
	}
	return strings.TrimSpace(uids[0].Value), nil
}

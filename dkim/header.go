package dkim

import (
	"bufio"
	"bytes"
	"crypto"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/internal/msgheader"
)

// ErrHeaderTooLarge: the message header block is longer than the
// configured bound. Nothing was signed or verified.
var ErrHeaderTooLarge = errors.New("dkim: message header too large")

// ErrMalformed: a DKIM-Signature, key record or tag list does not parse.
var ErrMalformed = errors.New("dkim: malformed")

// defaultMaxHeaderBytes bounds the header block held in memory while the
// body streams.
const defaultMaxHeaderBytes = 1 << 20

// readHeader reads the header block of a message up to and including the
// empty line that ends it (RFC 5322 §2.1), or to EOF for a message without
// a body. The body stays unread in br. The block is the module's
// (msgheader.AppendBlock): lines that are not fields are part of it, as
// they are of the header go-msgauth (the tests' oracle) signs and
// verifies.
func readHeader(br *bufio.Reader, max int) ([]byte, error) {
	return readHeaderInto(new(bytes.Buffer), br, max)
}

// readHeaderInto is readHeader into a caller's (reused) buffer; the
// result aliases buf.
func readHeaderInto(buf *bytes.Buffer, br *bufio.Reader, max int) ([]byte, error) {
	// The block is appended in buf's own storage; Write keeps it there
	// (a copy onto itself) or, for a block that outgrew it, grows buf
	// for the next message.
	h, err := msgheader.AppendBlock(buf.AvailableBuffer(), br, max)
	switch {
	case errors.Is(err, msgheader.ErrTooLarge):
		return nil, fmt.Errorf("%w (over %d bytes)", ErrHeaderTooLarge, max)
	case err != nil:
		return nil, fmt.Errorf("dkim: read header: %w", err)
	}
	buf.Write(h)
	return buf.Bytes(), nil
}

// endsWithBlankLine reports whether a header block read by readHeader
// includes the empty line that separates it from the body.
func endsWithBlankLine(h []byte) bool {
	return bytes.Equal(h, []byte("\r\n")) || bytes.Equal(h, []byte("\n")) ||
		bytes.HasSuffix(h, []byte("\n\r\n")) || bytes.HasSuffix(h, []byte("\n\n"))
}

// field is one header field: its name and its raw bytes, folding and line
// end included.
type field struct {
	Name string
	Raw  []byte
}

// Value returns the unfolded value (RFC 5322 §2.2.3) without leading and
// trailing whitespace.
func (f field) Value() string {
	_, v, ok := bytes.Cut(f.Raw, []byte(":"))
	if !ok {
		return ""
	}
	// One copy: CRLFs and LFs dropped on the way.
	v = bytes.TrimSpace(v)
	var b strings.Builder
	b.Grow(len(v))
	for len(v) > 0 {
		i := bytes.IndexByte(v, '\n')
		if i < 0 {
			b.Write(v)
			break
		}
		b.Write(bytes.TrimSuffix(v[:i], []byte("\r")))
		v = v[i+1:]
	}
	return strings.TrimSpace(b.String())
}

// splitFields splits a header block into fields, in order
// (msgheader.Scan). Continuation lines (starting with SP or HTAB) belong
// to the field before them; a line without a colon becomes a field with
// an empty name, so no byte is lost: RFC 6376 §3.4 canonicalises the
// header as it was received, and such a line, which no "h=" tag can
// name, is neither signed nor does it hide the fields after it. A first
// line that starts with white space is a field of its own (its name is
// trimmed where it is matched). The blank line that ends the block is
// not a field.
func splitFields(header []byte) []field {
	out := make([]field, 0, bytes.Count(header, []byte("\n")))
	msgheader.Scan(header, func(f msgheader.Field) {
		out = append(out, field{Name: string(f.Name), Raw: f.Raw})
	})
	return out
}

// parseTagList parses a DKIM tag-list (RFC 6376 §3.2): "name=value"
// pairs separated by ";", whitespace around names and values ignored. A
// duplicate tag name makes the whole list invalid.
func parseTagList(s string) (map[string]string, error) {
	tags := map[string]string{}
	for _, spec := range strings.Split(s, ";") {
		if strings.TrimSpace(spec) == "" {
			continue // a trailing ";" is allowed
		}
		name, value, ok := strings.Cut(spec, "=")
		if !ok {
			return nil, fmt.Errorf("%w: tag without '=' in tag-list", ErrMalformed)
		}
		name = strings.Trim(name, " \t\r\n")
		if !validTagName(name) {
			return nil, fmt.Errorf("%w: invalid tag name %q", ErrMalformed, name)
		}
		if _, dup := tags[name]; dup {
			return nil, fmt.Errorf("%w: duplicate tag %q", ErrMalformed, name)
		}
		tags[name] = strings.Trim(value, " \t\r\n")
	}
	return tags, nil
}

// validTagName: ALPHA *ALNUMPUNC (RFC 6376 §3.2), ALNUMPUNC being ALPHA,
// DIGIT or "_".
func validTagName(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alpha := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
		if i == 0 && !alpha || !(alpha || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

func stripFWS(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
}

// KeyRecord is a parsed DKIM key record (RFC 6376 §3.6.1).
type KeyRecord struct {
	// Algorithm is k= (default rsa).
	Algorithm Algorithm
	// HashAlgorithms is h= (nil: any).
	HashAlgorithms []string
	// Services is s= (nil: any).
	Services []string
	// Flags is t=: "y" testing, "s" no subdomains in i=.
	Flags []string
	// Revoked: p= is empty, the key was withdrawn.
	Revoked bool
	// PublicKey is *rsa.PublicKey or ed25519.PublicKey; nil if Revoked.
	PublicKey crypto.PublicKey
}

// ParseKeyRecord parses the TXT value of a DKIM key record, as published
// at selector._domainkey.domain. Unknown tags are ignored (RFC 6376
// §3.6.1); v= must be DKIM1 if present.
func ParseKeyRecord(txt string) (KeyRecord, error) {
	tags, err := parseTagList(txt)
	if err != nil {
		return KeyRecord{}, err
	}
	if v, ok := tags["v"]; ok && v != "DKIM1" {
		return KeyRecord{}, fmt.Errorf("%w: key record version %q", ErrMalformed, v)
	}
	rec := KeyRecord{Algorithm: RSA}
	if k, ok := tags["k"]; ok {
		rec.Algorithm = Algorithm(strings.ToLower(k))
	}
	split := func(v string) []string {
		var out []string
		for _, s := range strings.Split(v, ":") {
			if s = strings.TrimSpace(s); s != "" {
				out = append(out, s)
			}
		}
		return out
	}
	if h, ok := tags["h"]; ok {
		rec.HashAlgorithms = split(h)
	}
	if s, ok := tags["s"]; ok {
		rec.Services = split(s)
	}
	if t, ok := tags["t"]; ok {
		rec.Flags = split(t)
	}
	p, ok := tags["p"]
	if !ok {
		return KeyRecord{}, fmt.Errorf("%w: key record without p=", ErrMalformed)
	}
	p = stripFWS(p)
	if p == "" {
		rec.Revoked = true
		return rec, nil
	}
	der, err := base64.StdEncoding.DecodeString(p)
	if err != nil {
		return KeyRecord{}, fmt.Errorf("%w: p= is not base64: %w", ErrMalformed, err)
	}
	switch rec.Algorithm {
	case RSA:
		pub, err := x509.ParsePKIXPublicKey(der)
		if err != nil {
			// RFC 6376 is ambiguous; erratum 3017 allows a bare
			// RSAPublicKey too.
			pub, err = x509.ParsePKCS1PublicKey(der)
		}
		if err != nil {
			return KeyRecord{}, fmt.Errorf("%w: rsa public key: %w", ErrMalformed, err)
		}
		rsaPub, ok := pub.(*rsa.PublicKey)
		if !ok {
			return KeyRecord{}, fmt.Errorf("%w: k=rsa but p= is %T", ErrMalformed, pub)
		}
		rec.PublicKey = rsaPub
	case Ed25519:
		if len(der) != ed25519.PublicKeySize {
			return KeyRecord{}, fmt.Errorf("%w: ed25519 public key of %d bytes", ErrMalformed, len(der))
		}
		rec.PublicKey = ed25519.PublicKey(der)
	default:
		return KeyRecord{}, fmt.Errorf("%w: unknown key type k=%s", ErrMalformed, rec.Algorithm)
	}
	return rec, nil
}

package dkim

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"errors"
	"io"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// Our signer is checked against go-msgauth in the other direction from
// canon_test.go: signatures we make must verify with go-msgauth, and our
// body hash must be the one go-msgauth computes for the same body.

// diffSigner is diffKey as a Key: the key diffZone publishes.
var diffSigner = Key{Domain: "example.com", Selector: "diff", Algorithm: Ed25519, State: StateActive, private: diffKey}

// canonName maps go-msgauth's canonicalisation names to ours.
func canonName(c msgdkim.Canonicalization) string {
	if c == msgdkim.CanonicalizationRelaxed {
		return canonRelaxed
	}
	return canonSimple
}

// sigTags returns the tags of the first DKIM-Signature field of a
// signed message.
func sigTags(t testing.TB, signed string) map[string]string {
	t.Helper()
	for _, f := range splitFields([]byte(signed)) {
		if strings.EqualFold(f.Name, "DKIM-Signature") {
			tags, err := parseTagList(f.Value())
			if err != nil {
				t.Fatalf("our signature does not parse: %v\n%s", err, signed)
			}
			return tags
		}
	}
	t.Fatalf("no DKIM-Signature in %q", signed)
	return nil
}

// oursSign signs msg with our signer under the given canonicalisations.
func oursSign(t testing.TB, msg string, hc, bc msgdkim.Canonicalization) string {
	t.Helper()
	sig, err := sign(context.Background(), []Key{diffSigner}, strings.NewReader(msg),
		SignOptions{Headers: []string{"To", "Subject", "X-Folded", "X-Missing"}}, canonName(hc), canonName(bc))
	if err != nil {
		t.Fatalf("sign %q: %v", msg, err)
	}
	return sig + msg
}

func TestSignVerifiesWithGoMsgauth(t *testing.T) {
	for _, h := range signHeaders {
		for _, b := range signBodies {
			for _, hc := range canons {
				for _, bc := range canons {
					msg := h + "\r\n" + b
					signed := oursSign(t, msg, hc, bc)
					if pass, _ := msgauthVerdict(t, signed); !pass {
						t.Errorf("%s/%s: our signature fails with go-msgauth on %q", hc, bc, signed)
					}
					if !ourVerdict(t, signed) {
						t.Errorf("%s/%s: our signature fails with us on %q", hc, bc, signed)
					}
					ref, ok := msgauthSign(t, msg, hc, bc)
					if !ok {
						t.Fatalf("go-msgauth could not sign %q", msg)
					}
					if got, want := stripFWS(sigTags(t, signed)["bh"]), stripFWS(sigTags(t, ref)["bh"]); got != want {
						t.Errorf("%s body %q: bh=%s, go-msgauth bh=%s", bc, b, got, want)
					}
				}
			}
		}
	}
}

// FuzzSignMatchesGoMsgauth: a message we sign verifies with go-msgauth
// whenever go-msgauth can sign and verify it itself, and our body hash
// is go-msgauth's.
func FuzzSignMatchesGoMsgauth(f *testing.F) {
	f.Add("Subject: hi\r\n", "body  text \r\n\r\n", true, false)
	f.Add("Subject: x\r\n folded\r\n", "a\r\n", false, true)
	f.Add("X-Folded: a\r\n", "\r\n\r\nx\t\r\n", true, true)
	f.Add("Subject: s\r\nTo: \t b \r\n", "tail\r", false, false)
	f.Fuzz(func(t *testing.T, extra, body string, hrelaxed, brelaxed bool) {
		msg, hc, bc := fuzzSigningInput(extra, body, hrelaxed, brelaxed)
		ref, ok := msgauthSign(t, msg, hc, bc)
		if !ok {
			return
		}
		if pass, _ := msgauthVerdict(t, ref); !pass {
			return // a message go-msgauth cannot round-trip itself
		}
		signed := oursSign(t, msg, hc, bc)
		if pass, _ := msgauthVerdict(t, signed); !pass {
			t.Fatalf("%s/%s: our signature fails with go-msgauth on %q", hc, bc, signed)
		}
		if !ourVerdict(t, signed) {
			t.Fatalf("%s/%s: our signature fails with us on %q", hc, bc, signed)
		}
		if got, want := stripFWS(sigTags(t, signed)["bh"]), stripFWS(sigTags(t, ref)["bh"]); got != want {
			t.Fatalf("%s body %q: bh=%s, go-msgauth bh=%s", bc, body, got, want)
		}
	})
}

// TestSignatureFormat: the documented tag order, t= and x= from the
// caller's clock, every line within 78 characters, for RSA and Ed25519.
func TestSignatureFormat(t *testing.T) {
	rsaPriv, err := rsa.GenerateKey(rand.Reader, RSABits)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey := Key{Domain: "a-rather-long-subdomain.example.com", Selector: "selector-2026-12", Algorithm: RSA, private: rsaPriv}
	clock := time.Unix(1_800_000_000, 0)
	sig, err := Sign(context.Background(), []Key{rsaKey, diffSigner}, strings.NewReader(crlf(plainMessage)),
		SignOptions{Now: func() time.Time { return clock }, Expiration: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	fields := splitFields([]byte(sig))
	if len(fields) != 2 || !strings.HasSuffix(sig, "\r\n") {
		t.Fatalf("want 2 fields, CRLF-terminated:\n%s", sig)
	}
	for _, l := range strings.Split(strings.TrimSuffix(sig, "\r\n"), "\r\n") {
		if len(l) > maxSigLine {
			t.Errorf("line of %d characters: %q", len(l), l)
		}
	}
	wantOrder := []string{"v", "a", "c", "d", "s", "t", "x", "h", "bh", "b"}
	for i, f := range fields {
		var names []string
		for _, spec := range strings.Split(f.Value(), ";") {
			name, _, _ := strings.Cut(spec, "=")
			names = append(names, strings.TrimSpace(name))
		}
		if strings.Join(names, " ") != strings.Join(wantOrder, " ") {
			t.Errorf("signature %d tags %q, want %q", i, names, wantOrder)
		}
		tags, err := parseTagList(f.Value())
		if err != nil {
			t.Fatal(err)
		}
		if tags["t"] != strconv.FormatInt(clock.Unix(), 10) || tags["x"] != strconv.FormatInt(clock.Add(time.Hour).Unix(), 10) {
			t.Errorf("t=%s x=%s, want from the caller's clock", tags["t"], tags["x"])
		}
		if _, err := base64.StdEncoding.DecodeString(stripFWS(tags["b"])); err != nil {
			t.Errorf("b=: %v", err)
		}
	}
	if a := sigTags(t, sig)["a"]; a != "rsa-sha256" {
		t.Errorf("a=%s", a)
	}
}

// bodySource produces a message of n body lines without holding it.
type bodySource struct {
	head  io.Reader
	line  []byte
	lines int
	off   int
}

func (s *bodySource) Read(p []byte) (int, error) {
	if n, err := s.head.Read(p); n > 0 || err != io.EOF {
		return n, err
	}
	if s.lines == 0 {
		return 0, io.EOF
	}
	n := copy(p, s.line[s.off:])
	if s.off += n; s.off == len(s.line) {
		s.off = 0
		s.lines--
	}
	return n, nil
}

// TestSignStreams: Sign reads a 16 MiB message once, to its end, and
// allocates a small constant amount, not in proportion to the body; the
// signature matches the body it never held.
func TestSignStreams(t *testing.T) {
	head := "From: a@example.com\r\nSubject: big\r\n\r\n"
	line := []byte(strings.Repeat("x  y\t", 15) + "z \r\n")
	lines := (16 << 20) / len(line)
	src := &bodySource{head: strings.NewReader(head), line: line, lines: lines}
	cr := &countingReader{r: src}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	sig, err := Sign(context.Background(), []Key{diffSigner}, cr, SignOptions{})
	runtime.ReadMemStats(&after)
	if err != nil {
		t.Fatal(err)
	}
	if want := int64(len(head) + lines*len(line)); cr.n != want {
		t.Fatalf("read %d bytes, want %d", cr.n, want)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 1<<20 {
		t.Fatalf("signing a 16 MiB message allocated %d bytes", alloc)
	}
	// The same body in memory, canonicalised by go-msgauth: same bh=.
	msg := head + string(bytes.Repeat(line, lines))
	ref, ok := msgauthSign(t, msg, msgdkim.CanonicalizationRelaxed, msgdkim.CanonicalizationRelaxed)
	if !ok {
		t.Fatal("go-msgauth could not sign")
	}
	if got, want := stripFWS(sigTags(t, sig+msg)["bh"]), stripFWS(sigTags(t, ref)["bh"]); got != want {
		t.Fatalf("bh=%s, go-msgauth bh=%s", got, want)
	}
	if !ourVerdict(t, sig+msg) {
		t.Fatal("the streamed signature does not verify")
	}
}

// TestSignRefusesUnusableKeys: a key without a private half, domain or
// selector, or with characters that would break the tag list, signs
// nothing and reads nothing.
func TestSignRefusesUnusableKeys(t *testing.T) {
	for _, k := range []Key{
		{Domain: "example.com", Selector: "s", Algorithm: Ed25519},
		{Domain: "", Selector: "s", Algorithm: Ed25519, private: diffKey},
		{Domain: "example.com", Selector: "", Algorithm: Ed25519, private: diffKey},
		{Domain: "example.com; x=1", Selector: "s", Algorithm: Ed25519, private: diffKey},
		{Domain: "example.com", Selector: "s\r\nBcc: x", Algorithm: Ed25519, private: diffKey},
	} {
		cr := &countingReader{r: strings.NewReader("From: a@example.com\r\n\r\nbody\r\n")}
		sig, err := Sign(context.Background(), []Key{diffSigner, k}, cr, SignOptions{})
		if !errors.Is(err, ErrInvalidKey) || sig != "" || cr.n != 0 {
			t.Errorf("key %q/%q: %q %v, read %d", k.Domain, k.Selector, sig, err, cr.n)
		}
	}
}

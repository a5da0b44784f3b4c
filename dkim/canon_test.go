package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"strings"
	"testing"
	"unicode"

	msgdkim "github.com/emersion/go-msgauth/dkim"
)

// The verifier canonicalises by itself (canon.go); go-msgauth's signer is
// the reference it must agree with.

var diffKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{7}, ed25519.SeedSize))

const diffRecord = "diff._domainkey.example.com"

func diffZone() map[string][]string {
	pub := diffKey.Public().(ed25519.PublicKey)
	return map[string][]string{diffRecord: {"v=DKIM1; k=ed25519; p=" + base64.StdEncoding.EncodeToString(pub)}}
}

// msgauthSign signs msg with go-msgauth under the given canonicalisations.
func msgauthSign(t testing.TB, msg string, hc, bc msgdkim.Canonicalization) (string, bool) {
	t.Helper()
	var out bytes.Buffer
	err := msgdkim.Sign(&out, strings.NewReader(msg), &msgdkim.SignOptions{
		Domain: "example.com", Selector: "diff", Signer: diffKey, Hash: crypto.SHA256,
		HeaderCanonicalization: hc, BodyCanonicalization: bc,
		HeaderKeys: []string{"From", "To", "Subject", "X-Folded", "X-Missing"},
	})
	return out.String(), err == nil
}

// msgauthVerdict is go-msgauth's own verdict on a message: pass or not;
// ok is false if it could not read the message at all (a header block
// without the empty line after it, which we read as a message without a
// body).
func msgauthVerdict(t testing.TB, msg string) (pass, ok bool) {
	z := diffZone()
	vs, err := msgdkim.VerifyWithOptions(strings.NewReader(msg), &msgdkim.VerifyOptions{
		LookupTXT: func(name string) ([]string, error) { return z[name], nil },
	})
	return err == nil && len(vs) == 1 && vs[0].Err == nil, err == nil
}

func ourVerdict(t testing.TB, msg string) bool {
	t.Helper()
	r, err := Verify(context.Background(), zones(diffZone()), strings.NewReader(msg), Envelope{}, VerifyOptions{AuthServID: authServID})
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return len(r.DKIM) == 1 && r.DKIM[0].Status == StatusPass
}

var canons = []msgdkim.Canonicalization{msgdkim.CanonicalizationSimple, msgdkim.CanonicalizationRelaxed}

// fuzzSigningInput is the message and canonicalizations a signing fuzz
// target draws: extra's lines that make header fields (continuations
// after a field, no DKIM-Signature, no bare CR), after a From field, then
// body; simple or relaxed for the header and the body.
func fuzzSigningInput(extra, body string, hrelaxed, brelaxed bool) (msg string, hc, bc msgdkim.Canonicalization) {
	var hb strings.Builder
	for _, l := range strings.Split(strings.ReplaceAll(extra, "\r\n", "\n"), "\n") {
		if l == "" || strings.ContainsAny(l, "\r") || !strings.Contains(l, ":") && l[0] != ' ' && l[0] != '\t' {
			continue
		}
		if strings.HasPrefix(strings.ToLower(strings.TrimSpace(l)), "dkim-signature") {
			continue
		}
		if hb.Len() == 0 && (l[0] == ' ' || l[0] == '\t') {
			continue
		}
		hb.WriteString(l + "\r\n")
	}
	msg = "From: a@example.com\r\n" + hb.String() + "\r\n" + body
	hc, bc = canons[0], canons[0]
	if hrelaxed {
		hc = canons[1]
	}
	if brelaxed {
		bc = canons[1]
	}
	return msg, hc, bc
}

// signBodies and signHeaders are the messages the signing tests sign
// under every pair of canonicalizations: bodies with odd line ends,
// blank lines and white space; headers folded, in LF, repeated.
var signBodies = []string{
	"",
	"\r\n",
	"\r\n\r\n\r\n",
	"one line without end",
	"Hello   Bob,  \r\n\r\n\tindented\t \r\n.dot\r\n\r\n\r\n",
	"bare LF\nlines\n\n",
	"bare CR\rin a line\r\n",
	"trailing CR\r",
	"blank lines then CR\r\n\r\n\r",
	"CR CR LF\r\r\n",
	"  \t \r\n \r\n",
	strings.Repeat("a  b \t c\r\n", 600) + "\r\n\r\n",
}

var signHeaders = []string{
	"From: Alice <alice@example.com>\r\nTo: bob@example.net\r\nSubject: hi\r\n",
	"From:alice@example.com\r\nTO :  bob@example.net \r\nSubject: a\r\n  folded\t\tsubject  \r\nX-Folded: x\r\n\ty\r\n",
	"from: a@example.com\nsubject: LF header\n",
	"From: a@example.com\r\nSubject: one\r\nSubject: two\r\nFrom: second@example.com\r\n",
}

func TestCanonicalisationMatchesGoMsgauth(t *testing.T) {
	for _, h := range signHeaders {
		for _, b := range signBodies {
			for _, hc := range canons {
				for _, bc := range canons {
					msg := h + "\r\n" + b
					signed, ok := msgauthSign(t, msg, hc, bc)
					if !ok {
						t.Fatalf("go-msgauth could not sign %q", msg)
					}
					if pass, _ := msgauthVerdict(t, signed); !pass {
						t.Fatalf("go-msgauth rejects its own signature on %q", signed)
					}
					if !ourVerdict(t, signed) {
						t.Errorf("%s/%s: go-msgauth's signature fails with us on %q", hc, bc, signed)
					}
				}
			}
		}
	}
}

// FuzzVerifyMatchesGoMsgauth: a message signed by go-msgauth, then maybe
// altered; our verdict (pass or not) must be go-msgauth's.
func FuzzVerifyMatchesGoMsgauth(f *testing.F) {
	f.Add("Subject: hi\r\n", "body  text \r\n\r\n", 0, "", true, false)
	f.Add("Subject: x\r\n folded\r\n", "a\r\n", 3, " ", false, true)
	f.Add("X-Folded: a\r\n", "\r\n\r\nx\t\r\n", 10, "\r\n", true, true)
	f.Add("Subject: s\r\n", "tail\r", 40, "From: evil@example.org\r\n", false, false)
	f.Fuzz(func(t *testing.T, extra, body string, at int, insert string, hrelaxed, brelaxed bool) {
		// Header lines the fuzzer controls, kept to header syntax, so that
		// signer and verifiers read the same fields.
		msg, hc, bc := fuzzSigningInput(extra, body, hrelaxed, brelaxed)
		signed, ok := msgauthSign(t, msg, hc, bc)
		if !ok {
			return
		}
		if strings.ContainsFunc(insert, func(r rune) bool { return unicode.IsSpace(r) && !strings.ContainsRune(" \t\r\n", r) }) {
			// go-msgauth strips any Unicode space from tag values; RFC
			// 6376 §3.2 allows only FWS, as we do.
			return
		}
		if insert != "" && at >= 0 {
			i := at % (len(signed) + 1)
			signed = signed[:i] + insert + signed[i:]
		}
		want, ok := msgauthVerdict(t, signed)
		if !ok {
			return
		}
		if got := ourVerdict(t, signed); got != want {
			t.Fatalf("ours pass=%v, go-msgauth pass=%v on %q", got, want, signed)
		}
	})
}

func TestBodyCanonStreaming(t *testing.T) {
	// Split points must not change the hash.
	body := []byte("a \t b  \r\n\r\n x\r\r\n\n\ny  \r\n\r\n")
	for _, relaxed := range []bool{false, true} {
		whole := newBodyCanon(relaxed)
		whole.Write(body)
		whole.Close()
		want := whole.h.Sum(nil)
		for i := 0; i <= len(body); i++ {
			c := newBodyCanon(relaxed)
			c.Write(body[:i])
			c.Write(body[i:])
			c.Close()
			if got := c.h.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("relaxed=%v split at %d: hash differs", relaxed, i)
			}
		}
	}
	// RFC 6376 §3.4.3/§3.4.4: the empty body.
	for relaxed, want := range map[bool]string{false: "\r\n", true: ""} {
		c := newBodyCanon(relaxed)
		c.Close()
		if sum := sha256.Sum256([]byte(want)); !bytes.Equal(c.h.Sum(nil), sum[:]) {
			t.Errorf("relaxed=%v: empty body does not hash as %q", relaxed, want)
		}
	}
}

func TestWithoutSignature(t *testing.T) {
	for in, want := range map[string]string{
		"DKIM-Signature: v=1; b=abc; bh=xyz\r\n":          "DKIM-Signature: v=1; b=; bh=xyz\r\n",
		"DKIM-Signature: v=1; bh=xyz; b = ab\r\n\tcd\r\n": "DKIM-Signature: v=1; bh=xyz; b =",
		"DKIM-Signature: v=1; b=; d=x\r\n":                "DKIM-Signature: v=1; b=; d=x\r\n",
	} {
		if got := string(withoutSignature([]byte(in))); got != want {
			t.Errorf("withoutSignature(%q) = %q, want %q", in, got, want)
		}
	}
}

// A header longer than the quick field scan handles: the indexed path
// must pick the same instances, bottom up.
func TestSignedHeaderManyFields(t *testing.T) {
	var h strings.Builder
	h.WriteString("From: a@example.com\r\n")
	for i := range 80 {
		h.WriteString("X-Filler: " + strings.Repeat("f", i%7) + "\r\n")
		if i%20 == 0 {
			h.WriteString("Subject: s" + strings.Repeat("!", i) + "\r\n")
		}
	}
	msg := h.String() + "\r\nbody\r\n"
	for _, hc := range canons {
		var out bytes.Buffer
		err := msgdkim.Sign(&out, strings.NewReader(msg), &msgdkim.SignOptions{
			Domain: "example.com", Selector: "diff", Signer: diffKey, Hash: crypto.SHA256,
			HeaderCanonicalization: hc, BodyCanonicalization: hc,
			HeaderKeys: []string{"From", "X-Filler", "Subject", "X-Filler", "Subject", "X-Filler", "Subject", "To"},
		})
		if err != nil {
			t.Fatal(err)
		}
		if !ourVerdict(t, out.String()) {
			t.Fatalf("%s: a signature over a long header fails", hc)
		}
		// Changing the last instance, which is signed, breaks it.
		signed := out.String()
		i := strings.LastIndex(signed, "X-Filler: ff\r\n")
		bad := signed[:i] + "X-Filler: fx\r\n" + signed[i+len("X-Filler: ff\r\n"):]
		if ourVerdict(t, bad) {
			t.Fatalf("%s: an altered signed field still passes", hc)
		}
	}
}

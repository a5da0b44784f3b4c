package dkim

import (
	"context"
	"crypto/ed25519"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"unicode/utf8"
)

// fuzzSigned is one Ed25519-signed message whose key record the fuzzer
// replaces, so the verifier's key-record parsing runs on fuzzed input
// through our Verify.
var fuzzSigned = sync.OnceValues(func() (string, error) {
	seed := make([]byte, ed25519.SeedSize)
	k := Key{Domain: "example.com", Selector: "f", Algorithm: Ed25519, private: ed25519.NewKeyFromSeed(seed)}
	sig, err := Sign(context.Background(), []Key{k}, strings.NewReader(crlf(plainMessage)), SignOptions{})
	return sig + crlf(plainMessage), err
})

func FuzzKeyRecord(f *testing.F) {
	f.Add("v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=")
	f.Add(rfc6376Key)
	f.Add("v=DKIM1; p=")
	f.Add("k=rsa; t=y:s; h=sha256; s=email; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQ")
	f.Add("v=DKIM1;; p=a;p=b")
	f.Add("=;=;v")
	msg, err := fuzzSigned()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, txt string) {
		rec, err := ParseKeyRecord(txt)
		if err == nil && !rec.Revoked && rec.PublicKey == nil {
			t.Fatalf("%q parsed without a key and not revoked", txt)
		}
		tags, err := parseTagList(txt)
		if err == nil {
			for name := range tags {
				if !validTagName(name) {
					t.Fatalf("invalid tag name %q accepted", name)
				}
			}
		}
		// The same record served to the verifier: no panic, a valid
		// status, and a pass only if the record really holds the key.
		r, err := Verify(context.Background(), zones(map[string][]string{"f._domainkey.example.com": {txt}}),
			strings.NewReader(msg), Envelope{}, VerifyOptions{AuthServID: authServID})
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if len(r.DKIM) != 1 {
			t.Fatalf("%d results", len(r.DKIM))
		}
		if r.DKIM[0].Status == StatusPass {
			pr, perr := ParseKeyRecord(txt)
			if perr != nil || pr.PublicKey == nil || !pr.PublicKey.(ed25519.PublicKey).Equal(ed25519.NewKeyFromSeed(make([]byte, 32)).Public()) {
				t.Fatalf("pass with record %q (%v)", txt, perr)
			}
		}
	})
}

func FuzzDKIMSignatureHeader(f *testing.F) {
	f.Add("v=1; a=rsa-sha256; d=example.com; s=s; h=from; bh=AAAA; b=AAAA")
	f.Add("v=1; a=ed25519-sha256; l=10; d=example.com; s=s; h=from:from; bh=; b=")
	f.Add("v=1; x=1; t=2; i=@sub.example.com; d=example.com; q=dns/txt; c=relaxed")
	f.Fuzz(func(t *testing.T, value string) {
		if strings.ContainsAny(value, "\r\n") {
			value = strings.NewReplacer("\r", " ", "\n", " ").Replace(value)
		}
		msg := "DKIM-Signature: " + value + "\r\nFrom: a@example.com\r\nSubject: s\r\n\r\nbody\r\n"
		r, err := Verify(context.Background(), zones(map[string][]string{"s._domainkey.example.com": {rfc6376Key}}),
			strings.NewReader(msg), Envelope{}, VerifyOptions{AuthServID: authServID})
		if err != nil {
			t.Fatalf("Verify: %v", err)
		}
		if len(r.DKIM) != 1 || r.DKIM[0].Status == StatusPass {
			t.Fatalf("a made-up signature got %+v", r.DKIM)
		}
		if strings.Count(r.AuthResults, "\r\n") != 4 {
			t.Fatalf("Authentication-Results not 4 lines: %q", r.AuthResults)
		}
	})
}

func FuzzDMARCRecord(f *testing.F) {
	f.Add("v=DMARC1; p=reject")
	f.Add("v=DMARC1; p=quarantine; sp=none; pct=20; adkim=s; aspf=r; rua=mailto:a@b,mailto:c@d; fo=0:1:d:s; ri=3600; rf=afrf")
	f.Add("v=DMARC1; p=none; pct=101")
	f.Add("v=DMARC1")
	f.Add("v = DMARC1 ; p = reject ;")
	f.Fuzz(func(t *testing.T, txt string) {
		res := zones(map[string][]string{"_dmarc.bank.example": {txt}})
		spf := SPFResult{Status: StatusPass, Domain: "evil.example"}
		for _, rnd := range []int{0, 99} {
			found := findDMARC(context.Background(), res, "bank.example", slog.New(slog.DiscardHandler))
			d := evaluateDMARC(found, "bank.example", nil, spf, func(int) int { return rnd })
			switch d.Status {
			case StatusNone, StatusPermError:
				if d.Applied != PolicyNone {
					t.Fatalf("%q: %s with applied policy %s", txt, d.Status, d.Applied)
				}
			case StatusFail:
				if d.Policy != PolicyNone && d.Policy != PolicyQuarantine && d.Policy != PolicyReject {
					t.Fatalf("%q: policy %q", txt, d.Policy)
				}
			default:
				// Nothing aligned: it cannot pass.
				t.Fatalf("%q: status %s", txt, d.Status)
			}
			a := Action(Result{DMARC: d}, ActionPolicy{})
			if a.Verdict == Reject && (a.Code != 550 || d.Applied != PolicyReject) {
				t.Fatalf("%q: decision %+v for %+v", txt, a, d)
			}
		}
	})
}

func FuzzAuthResults(f *testing.F) {
	f.Add("mx.mailyard.test; dkim=pass header.d=example.com")
	f.Add("(comment (nested)) MX.MAILYARD.TEST 1; spf=pass")
	f.Add(`"mx.mailyard.test"; none`)
	f.Add("mx.other.example; none")
	f.Add("(unterminated mx.mailyard.test; none")
	f.Add("\fmx.mailyard.test") // CI found: a form feed before the id
	f.Fuzz(func(t *testing.T, value string) {
		if !utf8.ValidString(value) {
			return
		}
		value = strings.NewReplacer("\r", "", "\n", "").Replace(value)
		header := "Received: x\r\nAuthentication-Results: " + value + "\r\n\tcontinued\r\nFrom: a@b.example\r\n\r\n"
		body := "Authentication-Results: mx.mailyard.test; body line\r\n"
		out, err := io.ReadAll(RemoveForgedAuthResults(strings.NewReader(header+body), authServID))
		if err != nil {
			t.Fatal(err)
		}
		stripped, removed := StripForgedAuthResults([]byte(header), authServID)
		if string(out) != string(stripped)+body {
			t.Fatalf("reader and function disagree:\n%q\n%q", out, string(stripped)+body)
		}
		id, idErr := AuthServID(value + " continued")
		ours := idErr == nil && strings.EqualFold(id, authServID)
		if ours != (removed == 1) {
			t.Fatalf("value %q: id %q (%v), removed %d", value, id, idErr, removed)
		}
		// Nothing claiming our id survives, and stripping is idempotent.
		again, n := StripForgedAuthResults(stripped, authServID)
		if n != 0 || string(again) != string(stripped) {
			t.Fatalf("second strip removed %d", n)
		}
		if !strings.HasSuffix(string(out), body) || !strings.HasPrefix(string(out), "Received: x\r\n") {
			t.Fatalf("other content changed: %q", out)
		}
		// Our own header for a result carrying the fuzzed text in its
		// reason stays one field of 4 lines (id, dkim, spf, dmarc).
		r := Result{SPF: SPFResult{Status: StatusFail, Reason: value, Value: value}, DMARC: DMARCResult{Status: StatusNone, Reason: value}}
		ar := FormatAuthResults(authServID, r)
		if strings.Count(ar, "\r\n") != 4 || !strings.HasPrefix(ar, "Authentication-Results: "+authServID+";") {
			t.Fatalf("formatted %q", ar)
		}
		if got, err := AuthServID(strings.TrimPrefix(ar, "Authentication-Results:")); err != nil || got != authServID {
			t.Fatalf("our header's id %q %v", got, err)
		}
	})
}

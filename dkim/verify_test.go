package dkim

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-msgauth/authres"
	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/internal/testclock"
)

const authServID = "mx.mailyard.test"

// crlf turns a test literal with LF line ends into a wire message.
func crlf(s string) string { return strings.ReplaceAll(s, "\n", "\r\n") }

// zones builds a mock resolver from name -> TXT records.
func zones(txt map[string][]string) *mockdns.Resolver {
	z := map[string]mockdns.Zone{}
	for name, recs := range txt {
		z[strings.ToLower(strings.TrimSuffix(name, "."))+"."] = mockdns.Zone{TXT: recs}
	}
	return &mockdns.Resolver{Zones: z}
}

func verify(t testing.TB, res Resolver, msg string, env Envelope, opts VerifyOptions) Result {
	t.Helper()
	if opts.AuthServID == "" {
		opts.AuthServID = authServID
	}
	r, err := Verify(context.Background(), res, strings.NewReader(msg), env, opts)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

func dkimStatuses(r Result) string {
	var s []string
	for _, d := range r.DKIM {
		s = append(s, d.Domain+"="+string(d.Status))
	}
	return strings.Join(s, " ")
}

// RFC 6376 Appendix A.2, verified with the Appendix C key.
const rfc6376Message = `DKIM-Signature: v=1; a=rsa-sha256; s=brisbane; d=example.com;
      c=simple/simple; q=dns/txt; i=joe@football.example.com;
      h=Received : From : To : Subject : Date : Message-ID;
      bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
      b=AuUoFEfDxTDkHlLXSZEpZj79LICEps6eda7W3deTVFOk4yAUoqOB
      4nujc7YopdG5dWLSdNg6xNAZpOPr+kHxt1IrE+NahM6L/LbvaHut
      KVdkLLkpVaVVQPzeRDI009SO2Il5Lu7rDNH6mZckBdrIx0orEtZV
      4bmp/YzhwvcubU4=;
Received: from client1.football.example.com  [192.0.2.1]
      by submitserver.example.com with SUBMISSION;
      Fri, 11 Jul 2003 21:01:54 -0700 (PDT)
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game. Are you hungry yet?

Joe.
`

const rfc6376Key = "v=DKIM1; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQ" +
	"KBgQDwIRP/UC3SBsEmGqZ9ZJW3/DkMoGeLnQg1fWn7/zYt" +
	"IxN2SnFCjxOCKG9v3b4jYfcTNh5ijSsq631uBItLa7od+v" +
	"/RtdC2UzJ1lWT947qR+Rcac2gbto/NMqJ0fzfVjH4OuKhi" +
	"tdY9tf6mcwGjaNBcWToIMmPSPDdQPNUYckcQ2QIDAQAB"

// RFC 8463 Appendix A.3: one Ed25519 and one RSA signature.
const rfc8463Message = `DKIM-Signature: v=1; a=ed25519-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=brisbane; t=1528637909; h=from : to :
 subject : date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=/gCrinpcQOoIfuHNQIbq4pgh9kyIK3AQUdt9OdqQehSwhEIug4D11Bus
 Fa3bT3FY5OsU7ZbnKELq+eXdp1Q1Dw==
DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed;
 d=football.example.com; i=@football.example.com;
 q=dns/txt; s=test; t=1528637909; h=from : to : subject :
 date : message-id : from : subject : date;
 bh=2jUSOH9NhtVGCQWNr9BrIAPreKQjO6Sn7XIkfJVOzv8=;
 b=F45dVWDfMbQDGHJFlXUNB2HKfbCeLRyhDXgFpEL8GwpsRe0IeIixNTe3
 DhCVlUrSjV4BwcVcOF6+FF3Zo9Rpo1tFOeS9mPYQTnGdaSGsgeefOsk2Jz
 dA+L10TeYt9BgDfQNZtKdN1WO//KgIqXP7OdEFE4LjFYNcUxZQ4FADY+8=
From: Joe SixPack <joe@football.example.com>
To: Suzie Q <suzie@shopping.example.net>
Subject: Is dinner ready?
Date: Fri, 11 Jul 2003 21:00:37 -0700 (PDT)
Message-ID: <20030712040037.46341.5F8J@football.example.com>

Hi.

We lost the game.  Are you hungry yet?

Joe.
`

var rfc8463Keys = map[string][]string{
	"brisbane._domainkey.football.example.com": {"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
	"test._domainkey.football.example.com": {"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWR" +
		"iGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutAC" +
		"DfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2EeC3" +
		"Ip3G+2kryOTIKT+l/K4w3QIDAQAB"},
}

func TestRFC6376AppendixA(t *testing.T) {
	res := zones(map[string][]string{"brisbane._domainkey.example.com": {rfc6376Key}})
	r := verify(t, res, crlf(rfc6376Message), Envelope{}, VerifyOptions{})
	if len(r.DKIM) != 1 || r.DKIM[0].Status != StatusPass {
		t.Fatalf("RFC 6376 A.2: %+v", r.DKIM)
	}
	d := r.DKIM[0]
	if d.Domain != "example.com" || d.Selector != "brisbane" || d.Identifier != "joe@football.example.com" || d.Algorithm != "rsa-sha256" {
		t.Fatalf("fields: %+v", d)
	}
	// The example's d= (example.com) and From (football.example.com) share
	// an organizational domain; with no DMARC record DMARC is none.
	if r.DMARC.Status != StatusNone {
		t.Fatalf("dmarc %+v", r.DMARC)
	}
	// One changed byte in the body breaks it.
	tampered := strings.Replace(crlf(rfc6376Message), "hungry", "Hungry", 1)
	if r := verify(t, res, tampered, Envelope{}, VerifyOptions{}); r.DKIM[0].Status != StatusFail {
		t.Fatalf("tampered RFC 6376 example: %+v", r.DKIM)
	}
}

func TestRFC8463AppendixA(t *testing.T) {
	r := verify(t, zones(rfc8463Keys), crlf(rfc8463Message), Envelope{}, VerifyOptions{})
	if got := dkimStatuses(r); got != "football.example.com=pass football.example.com=pass" {
		t.Fatalf("RFC 8463 A.3: %s %+v", got, r.DKIM)
	}
	if r.DKIM[0].Algorithm != "ed25519-sha256" || r.DKIM[1].Algorithm != "rsa-sha256" {
		t.Fatalf("algorithms: %+v", r.DKIM)
	}
	// With the Ed25519 key revoked (empty p=) only RSA passes.
	keys := map[string][]string{
		"brisbane._domainkey.football.example.com": {"v=DKIM1; k=ed25519; p="},
		"test._domainkey.football.example.com":     rfc8463Keys["test._domainkey.football.example.com"],
	}
	r = verify(t, zones(keys), crlf(rfc8463Message), Envelope{}, VerifyOptions{})
	if got := dkimStatuses(r); got != "football.example.com=permerror football.example.com=pass" {
		t.Fatalf("revoked ed25519: %s", got)
	}
}

// signed builds a message, signs it with keys and returns the signed
// message and the DNS zone publishing the keys.
func signed(t testing.TB, keys []Key, msg string, opts SignOptions) (string, map[string][]string) {
	t.Helper()
	sig, err := Sign(context.Background(), keys, strings.NewReader(msg), opts)
	if err != nil {
		t.Fatalf("Sign: %v", err)
	}
	z := map[string][]string{}
	for _, k := range keys {
		z[k.RecordName()] = []string{k.TXT()}
	}
	return sig + msg, z
}

const plainMessage = `From: Alice <alice@example.com>
To: Bob <bob@example.net>
Cc: carol@example.net
Subject: Quarterly numbers
Date: Mon, 2 Mar 2026 10:00:00 +0000
Message-ID: <q1@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8

Hello Bob,

the numbers are attached.   Trailing spaces here:   
Alice
`

func activeKeys(t testing.TB, algs ...Algorithm) ([]Key, *Keys) {
	t.Helper()
	ctx := context.Background()
	ks, _ := newTestKeys(t, testclock.New(time.Now()), nil)
	for _, a := range algs {
		sel := "sel-" + string(a)
		if _, err := ks.Generate(ctx, "example.com", sel, a); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.Activate(ctx, "example.com", sel); err != nil {
			t.Fatal(err)
		}
	}
	keys, err := ks.Signing(ctx, "example.com")
	if err != nil {
		t.Fatal(err)
	}
	return keys, ks
}

func TestSignVerifyRoundTrip(t *testing.T) {
	keys, _ := activeKeys(t, RSA, Ed25519)
	for _, tc := range []struct {
		name string
		keys []Key
		want string
	}{
		{"rsa", keys[:1], "example.com=pass"},
		{"ed25519", keys[1:], "example.com=pass"},
		{"dual", keys, "example.com=pass example.com=pass"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg, z := signed(t, tc.keys, crlf(plainMessage), SignOptions{})
			z["_dmarc.example.com"] = []string{"v=DMARC1; p=reject"}
			r := verify(t, zones(z), msg, Envelope{}, VerifyOptions{})
			if got := dkimStatuses(r); got != tc.want {
				t.Fatalf("got %s, want %s: %+v", got, tc.want, r.DKIM)
			}
			if r.DMARC.Status != StatusPass || !r.DMARC.AlignedDKIM {
				t.Fatalf("dmarc: %+v", r.DMARC)
			}
			if d := Action(r, ActionPolicy{}); d.Verdict != Accept {
				t.Fatalf("action %+v", d)
			}
			if !strings.Contains(msg, "c=relaxed/relaxed") {
				t.Fatalf("not relaxed/relaxed:\n%s", msg)
			}
			// From is oversigned: h= names it once more than it occurs.
			hdr, _, _ := strings.Cut(msg, "\r\n\r\n")
			for _, f := range splitFields([]byte(hdr + "\r\n")) {
				if f.Name != "DKIM-Signature" {
					continue
				}
				tags, err := parseTagList(f.Value())
				if err != nil {
					t.Fatal(err)
				}
				h := strings.ToLower(stripFWS(tags["h"]))
				if strings.Count(h, "from") != 2 || !strings.Contains(h, "subject") || !strings.Contains(h, "message-id") || !strings.Contains(h, "content-type") {
					t.Fatalf("h=%s", h)
				}
				if strings.Contains(h, "list-id") {
					t.Fatalf("absent, not oversigned field signed: h=%s", h)
				}
			}
			// LF-only input (as some submission clients send) signs
			// the same canonical content.
			lfMsg, lz := signed(t, tc.keys, plainMessage, SignOptions{})
			if r := verify(t, zones(lz), crlf(lfMsg), Envelope{}, VerifyOptions{}); !strings.HasPrefix(dkimStatuses(r), "example.com=pass") {
				t.Fatalf("LF message: %s", dkimStatuses(r))
			}
		})
	}
}

func TestVerdicts(t *testing.T) {
	keys, ks := activeKeys(t, RSA)
	ctx := context.Background()
	good, z := signed(t, keys, crlf(plainMessage), SignOptions{})

	// A key that did not sign: the selector's published key is another.
	other, err := ks.Generate(ctx, "example.com", "other", RSA)
	if err != nil {
		t.Fatal(err)
	}
	forgedZone := map[string][]string{keys[0].RecordName(): {other.TXT()}}

	cases := []struct {
		name   string
		msg    string
		zone   map[string][]string
		opts   VerifyOptions
		status Status
		reason string
	}{
		{"good", good, z, VerifyOptions{}, StatusPass, ""},
		{"forged signature", good, forgedZone, VerifyOptions{}, StatusFail, "signature did not verify"},
		{"broken body hash", strings.Replace(good, "numbers are attached", "numbers are ATTACHED", 1), z, VerifyOptions{}, StatusFail, "body hash did not verify"},
		{"changed subject", strings.Replace(good, "Subject: Quarterly", "Subject: Urgent", 1), z, VerifyOptions{}, StatusFail, "signature did not verify"},
		{"added From (oversigned)", strings.Replace(good, "To: Bob", "From: Mallory <m@evil.test>\r\nTo: Bob", 1), z, VerifyOptions{}, StatusFail, "signature did not verify"},
		{"no key in DNS", good, map[string][]string{}, VerifyOptions{}, StatusPermError, "no key"},
		{"expired by our clock", good, z, VerifyOptions{Now: func() time.Time { return time.Now().Add(48 * time.Hour) }}, StatusPass, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := verify(t, zones(tc.zone), tc.msg, Envelope{}, tc.opts)
			if len(r.DKIM) != 1 || r.DKIM[0].Status != tc.status || !strings.Contains(r.DKIM[0].Reason, tc.reason) {
				t.Fatalf("got %+v, want %s (%q)", r.DKIM, tc.status, tc.reason)
			}
		})
	}

	t.Run("expired x=", func(t *testing.T) {
		// Signed two hours ago with a one-hour expiry: past x= by the
		// wall clock, which go-msgauth checks.
		past := func() time.Time { return time.Now().Add(-2 * time.Hour) }
		msg, z := signed(t, keys, crlf(plainMessage), SignOptions{Expiration: time.Hour, Now: past})
		r := verify(t, zones(z), msg, Envelope{}, VerifyOptions{})
		if r.DKIM[0].Status != StatusPermError || !strings.Contains(r.DKIM[0].Reason, "expired") {
			t.Fatalf("expired: %+v", r.DKIM)
		}
		// Not yet expired by the wall clock, expired by ours.
		msg, z = signed(t, keys, crlf(plainMessage), SignOptions{Expiration: time.Hour})
		if r := verify(t, zones(z), msg, Envelope{}, VerifyOptions{}); r.DKIM[0].Status != StatusPass {
			t.Fatalf("fresh x=: %+v", r.DKIM)
		}
		later := func() time.Time { return time.Now().Add(2 * time.Hour) }
		r = verify(t, zones(z), msg, Envelope{}, VerifyOptions{Now: later})
		if r.DKIM[0].Status != StatusPermError || !strings.Contains(r.DKIM[0].Reason, "expired") {
			t.Fatalf("expired by injected clock: %+v", r.DKIM)
		}
	})

	t.Run("temporary DNS failure", func(t *testing.T) {
		res := &mockdns.Resolver{Zones: map[string]mockdns.Zone{
			keys[0].RecordName() + ".": {Err: &net.DNSError{Err: "timeout", Name: keys[0].RecordName(), IsTimeout: true}},
		}}
		r := verify(t, res, good, Envelope{}, VerifyOptions{})
		if r.DKIM[0].Status != StatusTempError {
			t.Fatalf("timeout: %+v", r.DKIM)
		}
	})
}

// signWithLength makes an rsa-sha256 simple/simple signature with l=
// over the first l octets of body, by hand, since neither go-msgauth nor
// this package would ever sign one. body must already be in canonical
// simple form (CRLF lines, no trailing empty lines).
func signWithLength(t *testing.T, key *rsa.PrivateKey, domain, selector, header, body string, l int) string {
	t.Helper()
	bh := sha256.Sum256([]byte(body[:l]))
	value := "v=1; a=rsa-sha256; c=simple/simple; d=" + domain + "; s=" + selector +
		"; l=" + itoa(l) + "; h=From:To:Subject; bh=" + base64.StdEncoding.EncodeToString(bh[:]) + "; b="
	h := sha256.New()
	for _, f := range splitFields([]byte(header)) {
		h.Write(f.Raw)
	}
	io.WriteString(h, "DKIM-Signature: "+value)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, h.Sum(nil))
	if err != nil {
		t.Fatal(err)
	}
	return "DKIM-Signature: " + value + base64.StdEncoding.EncodeToString(sig) + "\r\n" + header + "\r\n" + body
}

func itoa(n int) string {
	var b []byte
	for n > 0 || len(b) == 0 {
		b = append([]byte{byte('0' + n%10)}, b...)
		n /= 10
	}
	return string(b)
}

func TestBodyLengthSignatureWithAppendedContent(t *testing.T) {
	keys, _ := activeKeys(t, RSA)
	key := keys[0]
	header := "From: Bank <service@example.com>\r\nTo: you@example.net\r\nSubject: Statement\r\n"
	body := "Your statement is ready.\r\n"
	msg := signWithLength(t, key.private.(*rsa.PrivateKey), "example.com", key.Selector, header, body, len(body))
	appended := msg + "\r\nPS: wire the money to account 666.\r\n"
	z := map[string][]string{key.RecordName(): {key.TXT()}, "_dmarc.example.com": {"v=DMARC1; p=reject"}}

	r := verify(t, zones(z), appended, Envelope{}, VerifyOptions{})
	if len(r.DKIM) != 1 || r.DKIM[0].Status != StatusPolicy || !r.DKIM[0].BodyLength {
		t.Fatalf("l= with appended content: %+v", r.DKIM)
	}
	// It must not vouch for the From domain either.
	if r.DMARC.Status != StatusFail || r.DMARC.AlignedDKIM {
		t.Fatalf("dmarc trusted an l= signature: %+v", r.DMARC)
	}
	if d := Action(r, ActionPolicy{}); d.Verdict != Reject {
		t.Fatalf("action: %+v", d)
	}
	if !strings.Contains(r.AuthResults, "dkim=policy") {
		t.Fatalf("Authentication-Results: %s", r.AuthResults)
	}
}

func TestSPF(t *testing.T) {
	res := &mockdns.Resolver{Zones: map[string]mockdns.Zone{
		"strict.example.":    {TXT: []string{"v=spf1 ip4:192.0.2.0/24 -all"}},
		"soft.example.":      {TXT: []string{"v=spf1 ip4:192.0.2.0/24 ~all"}},
		"mxhost.example.":    {TXT: []string{"v=spf1 mx -all"}, MX: []net.MX{{Host: "mx.mxhost.example.", Pref: 10}}},
		"mx.mxhost.example.": {A: []string{"198.51.100.25"}},
		"nospf.example.":     {TXT: []string{"some other text"}},
		"helo.example.":      {TXT: []string{"v=spf1 ip4:203.0.113.9 -all"}},
		"broken.example.":    {Err: &net.DNSError{Err: "server misbehaving", Name: "broken.example", IsTemporary: true}},
	}}
	msg := crlf("From: a@example.org\nSubject: x\n\nbody\n")
	for _, tc := range []struct {
		env      Envelope
		want     Status
		identity string
	}{
		{Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "h.example", MailFrom: "a@strict.example"}, StatusPass, "mailfrom"},
		{Envelope{RemoteIP: net.ParseIP("203.0.113.1"), Helo: "h.example", MailFrom: "a@strict.example"}, StatusFail, "mailfrom"},
		{Envelope{RemoteIP: net.ParseIP("203.0.113.1"), Helo: "h.example", MailFrom: "a@soft.example"}, StatusSoftFail, "mailfrom"},
		{Envelope{RemoteIP: net.ParseIP("198.51.100.25"), Helo: "h.example", MailFrom: "a@mxhost.example"}, StatusPass, "mailfrom"},
		{Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "h.example", MailFrom: "a@nospf.example"}, StatusNone, "mailfrom"},
		{Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "h.example", MailFrom: "a@unknown.example"}, StatusNone, "mailfrom"},
		{Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "h.example", MailFrom: "a@broken.example"}, StatusTempError, "mailfrom"},
		// Null sender: the HELO identity is checked (RFC 7208 §2.4).
		{Envelope{RemoteIP: net.ParseIP("203.0.113.9"), Helo: "helo.example", MailFrom: ""}, StatusPass, "helo"},
		{Envelope{RemoteIP: net.ParseIP("192.0.2.7"), Helo: "helo.example", MailFrom: ""}, StatusFail, "helo"},
		{Envelope{Helo: "helo.example", MailFrom: "a@strict.example"}, StatusNone, "mailfrom"},
	} {
		r := verify(t, res, msg, tc.env, VerifyOptions{})
		if r.SPF.Status != tc.want || r.SPF.Identity != tc.identity {
			t.Errorf("%+v: got %+v, want %s/%s", tc.env, r.SPF, tc.want, tc.identity)
		}
		wantProp := "smtp.mailfrom="
		if tc.identity == "helo" {
			wantProp = "smtp.helo="
		}
		if !strings.Contains(r.AuthResults, "spf="+string(tc.want)+" ") || !strings.Contains(r.AuthResults, wantProp) {
			t.Errorf("%+v: Authentication-Results %q", tc.env, r.AuthResults)
		}
	}
}

func TestDMARC(t *testing.T) {
	keys, _ := activeKeys(t, Ed25519)
	key := keys[0]
	signedAs := func(from string) string {
		m := strings.Replace(crlf(plainMessage), "From: Alice <alice@example.com>", "From: "+from, 1)
		msg, _ := signed(t, keys, m, SignOptions{})
		return msg
	}
	base := map[string][]string{key.RecordName(): {key.TXT()}}
	withRecords := func(extra map[string][]string) *mockdns.Resolver {
		z := map[string][]string{}
		for k, v := range base {
			z[k] = v
		}
		for k, v := range extra {
			z[k] = v
		}
		return zones(z)
	}
	spfPass := Envelope{RemoteIP: net.ParseIP("192.0.2.1"), Helo: "mail.example.com", MailFrom: "bounce@example.com"}
	spfZone := map[string][]string{"example.com": {"v=spf1 ip4:192.0.2.1 -all"}}

	for _, tc := range []struct {
		name     string
		from     string
		records  map[string][]string
		env      Envelope
		rand     int
		status   Status
		policy   Policy
		applied  Policy
		verdict  Verdict
		recordAt string
	}{
		{"aligned dkim", "alice@example.com", map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}, Envelope{}, 0,
			StatusPass, PolicyReject, PolicyNone, Accept, "example.com"},
		{"From of another domain with p=reject", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject"}}, spfPass, 0,
			StatusFail, PolicyReject, PolicyReject, Reject, "bank.example"},
		{"quarantine goes to junk", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=quarantine"}}, Envelope{}, 0,
			StatusFail, PolicyQuarantine, PolicyQuarantine, Junk, "bank.example"},
		{"pct=0 sampling downgrades quarantine", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=quarantine; pct=0"}}, Envelope{}, 0,
			StatusFail, PolicyQuarantine, PolicyNone, Accept, "bank.example"},
		{"pct=50 sampled in", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject; pct=50"}}, Envelope{}, 10,
			StatusFail, PolicyReject, PolicyReject, Reject, "bank.example"},
		{"pct=50 sampled out", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject; pct=50"}}, Envelope{}, 70,
			StatusFail, PolicyReject, PolicyQuarantine, Junk, "bank.example"},
		{"subdomain uses sp= of the organizational domain", "news@mail.bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject; sp=quarantine"}}, Envelope{}, 0,
			StatusFail, PolicyQuarantine, PolicyQuarantine, Junk, "bank.example"},
		{"relaxed alignment of a subdomain From", "alice@mail.example.com", map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}, Envelope{}, 0,
			StatusPass, PolicyReject, PolicyNone, Accept, "example.com"},
		{"strict alignment of a subdomain From", "alice@mail.example.com", map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject; adkim=s"}}, Envelope{}, 0,
			StatusFail, PolicyReject, PolicyReject, Reject, "example.com"},
		{"spf alone aligns", "alice@example.com", map[string][]string{"_dmarc.example.com": {"v=DMARC1; p=reject"}}, spfPass, 0,
			StatusPass, PolicyReject, PolicyNone, Accept, "example.com"},
		{"no record", "ceo@bank.example", nil, Envelope{}, 0, StatusNone, "", PolicyNone, Accept, ""},
		{"two records: no policy (RFC 7489 §6.6.3)", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=reject", "v=DMARC1; p=none"}}, Envelope{}, 0,
			StatusNone, "", PolicyNone, Accept, ""},
		{"invalid record", "ceo@bank.example", map[string][]string{"_dmarc.bank.example": {"v=DMARC1; p=bogus"}}, Envelope{}, 0,
			StatusPermError, "", PolicyNone, Accept, "bank.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			recs := map[string][]string{}
			for k, v := range tc.records {
				recs[k] = v
			}
			for k, v := range spfZone {
				recs[k] = v
			}
			r := verify(t, withRecords(recs), signedAs(tc.from), tc.env, VerifyOptions{Rand: func(int) int { return tc.rand }})
			d := r.DMARC
			if d.Status != tc.status || d.Policy != tc.policy || d.Applied != tc.applied || d.RecordDomain != tc.recordAt {
				t.Fatalf("got %+v", d)
			}
			if got := Action(r, ActionPolicy{}); got.Verdict != tc.verdict {
				t.Fatalf("verdict %v, want %v (%+v)", got.Verdict, tc.verdict, got)
			}
		})
	}

	// The administrator's disposition overrides the domain's request.
	failing := Result{DMARC: DMARCResult{Status: StatusFail, FromDomain: "bank.example", Policy: PolicyReject, Applied: PolicyReject}}
	if d := Action(failing, ActionPolicy{}); d.Verdict != Reject || d.Code != 550 || d.Enhanced != "5.7.1" || d.Check != "dmarc" || !strings.Contains(d.Reason, "bank.example") {
		t.Fatalf("reject decision: %+v", d)
	}
	if d := Action(failing, ActionPolicy{OnReject: DeliverToJunk}); d.Verdict != Junk {
		t.Fatalf("reject as junk: %+v", d)
	}
	if d := Action(failing, ActionPolicy{OnReject: MarkOnly}); d.Verdict != Accept || d.Check != "dmarc" {
		t.Fatalf("mark only: %+v", d)
	}
	quarantine := Result{DMARC: DMARCResult{Status: StatusFail, FromDomain: "bank.example", Policy: PolicyQuarantine, Applied: PolicyQuarantine}}
	if d := Action(quarantine, ActionPolicy{OnQuarantine: RejectMessage}); d.Verdict != Reject {
		t.Fatalf("quarantine as reject: %+v", d)
	}
	if d := Action(Result{DMARC: DMARCResult{Status: StatusTempError}}, ActionPolicy{}); d.Verdict != Accept {
		t.Fatalf("temperror: %+v", d)
	}

	// Several From addresses: DMARC cannot apply (RFC 7489 §6.6.1).
	multi := strings.Replace(signedAs("alice@example.com"), "From: alice@example.com", "From: alice@example.com, eve@evil.test", 1)
	if r := verify(t, withRecords(nil), multi, Envelope{}, VerifyOptions{}); r.DMARC.Status != StatusPermError {
		t.Fatalf("two From addresses: %+v", r.DMARC)
	}
}

func TestOrganizationalDomain(t *testing.T) {
	for in, want := range map[string]string{
		"mail.example.com":   "example.com",
		"Example.COM.":       "example.com",
		"a.b.example.co.uk":  "example.co.uk",
		"x.example.test":     "example.test",
		"com":                "com",
		"foo.blogspot.com":   "foo.blogspot.com",
		"a.foo.blogspot.com": "foo.blogspot.com",
	} {
		if got := OrganizationalDomain(in); got != want {
			t.Errorf("OrganizationalDomain(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestForgedAuthResultsRemoved(t *testing.T) {
	msg := crlf(`Received: from x by y; Mon, 2 Mar 2026 10:00:00 +0000
Authentication-Results: mx.mailyard.test; dkim=pass header.d=bank.example
Authentication-Results: (sneaky comment (nested)) MX.Mailyard.Test;
	spf=pass smtp.mailfrom=bank.example
Authentication-Results: "mx.mailyard.test" 1; dmarc=pass
Authentication-Results: mx.other.example; spf=fail smtp.mailfrom=x@y.example
Authentication-Results: mx.mailyard.test.evil.example; dkim=pass
From: a@example.org
Subject: hi
X-Note: Authentication-Results: mx.mailyard.test; in a value

Authentication-Results: mx.mailyard.test; this is the body
`)
	r := verify(t, zones(nil), msg, Envelope{}, VerifyOptions{})
	if r.ForgedAuthResults != 3 {
		t.Fatalf("counted %d forged fields, want 3", r.ForgedAuthResults)
	}
	out, err := io.ReadAll(RemoveForgedAuthResults(strings.NewReader(msg), authServID))
	if err != nil {
		t.Fatal(err)
	}
	want := crlf(`Received: from x by y; Mon, 2 Mar 2026 10:00:00 +0000
Authentication-Results: mx.other.example; spf=fail smtp.mailfrom=x@y.example
Authentication-Results: mx.mailyard.test.evil.example; dkim=pass
From: a@example.org
Subject: hi
X-Note: Authentication-Results: mx.mailyard.test; in a value

Authentication-Results: mx.mailyard.test; this is the body
`)
	if string(out) != want {
		t.Fatalf("stripped message:\n%s\nwant:\n%s", out, want)
	}
	// Our own header, prepended, parses back with our id.
	id, results, err := authres.Parse(strings.TrimPrefix(strings.TrimSpace(r.AuthResults), "Authentication-Results:"))
	if err != nil || id != authServID || len(results) != 3 {
		t.Fatalf("our header %q parses to %q %v %v", r.AuthResults, id, results, err)
	}
	if strings.Count(r.AuthResults, "\r\n") != 4 || !strings.HasSuffix(r.AuthResults, "\r\n") {
		t.Fatalf("folding: %q", r.AuthResults)
	}
	// A header without a body, and a header over the bound.
	out, err = io.ReadAll(RemoveForgedAuthResults(strings.NewReader("Authentication-Results: mx.mailyard.test; none\r\nFrom: a@b.example\r\n"), authServID))
	if err != nil || string(out) != "From: a@b.example\r\n" {
		t.Fatalf("header only: %q %v", out, err)
	}
	huge := "X-Big: " + strings.Repeat("a", 2<<20) + "\r\n\r\nbody"
	if _, err := io.ReadAll(RemoveForgedAuthResults(strings.NewReader(huge), authServID)); !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("huge header: %v", err)
	}
	if _, err := Verify(context.Background(), zones(nil), strings.NewReader(huge), Envelope{}, VerifyOptions{AuthServID: authServID}); !errors.Is(err, ErrHeaderTooLarge) {
		t.Fatalf("Verify huge header: %v", err)
	}
}

func TestAuthServID(t *testing.T) {
	for in, want := range map[string]string{
		"mx.example.com; spf=pass":        "mx.example.com",
		"  mx.example.com 1; none":        "mx.example.com",
		"(c) (d (e)) mx.example.com;none": "mx.example.com",
		`"quoted\"id"; none`:              `quoted"id`,
		"mx.example.com":                  "mx.example.com",
		"\r\n\tmx.example.com;dkim=pass":  "mx.example.com",
		"\fmx.example.com; none":          "mx.example.com", // lenient readers trim it
		"\u00a0(c)\vmx.example.com; none": "mx.example.com",
	} {
		got, err := AuthServID(in)
		if err != nil || got != want {
			t.Errorf("AuthServID(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	for _, bad := range []string{"", "   ", "(unterminated", `"open`, "; spf=pass"} {
		if got, err := AuthServID(bad); err == nil {
			t.Errorf("AuthServID(%q) = %q, want an error", bad, got)
		}
	}
}

func TestVerifyReadsOnceAndStreams(t *testing.T) {
	keys, _ := activeKeys(t, RSA)
	big := crlf(plainMessage) + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 64<<10)
	msg, z := signed(t, keys, big, SignOptions{})
	cr := &countingReader{r: strings.NewReader(msg)}
	r, err := Verify(context.Background(), zones(z), cr, Envelope{}, VerifyOptions{AuthServID: authServID})
	if err != nil || r.DKIM[0].Status != StatusPass {
		t.Fatalf("%v %+v", err, r.DKIM)
	}
	if cr.n != int64(len(msg)) {
		t.Fatalf("read %d bytes of %d", cr.n, len(msg))
	}
	// A cancelled context stops it.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := Verify(ctx, zones(z), strings.NewReader(msg), Envelope{}, VerifyOptions{AuthServID: authServID}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
	if _, err := Sign(ctx, keys, strings.NewReader(msg), SignOptions{}); !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled sign: %v", err)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

func TestSignEdgeCases(t *testing.T) {
	keys, _ := activeKeys(t, RSA)
	ctx := context.Background()
	if sig, err := Sign(ctx, nil, strings.NewReader("From: a@b\r\n\r\n"), SignOptions{}); sig != "" || err != nil {
		t.Fatalf("no keys: %q %v", sig, err)
	}
	if _, err := Sign(ctx, keys, strings.NewReader("Subject: no from\r\n\r\nbody\r\n"), SignOptions{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("no From: %v", err)
	}
	// A message without a body still signs and verifies.
	msg, z := signed(t, keys, "From: a@example.com\r\nSubject: header only\r\n", SignOptions{})
	if r := verify(t, zones(z), msg, Envelope{}, VerifyOptions{}); dkimStatuses(r) != "example.com=pass" {
		t.Fatalf("header-only message: %+v", r.DKIM)
	}
	if _, err := Verify(ctx, zones(nil), strings.NewReader(msg), Envelope{}, VerifyOptions{}); err == nil {
		t.Fatal("Verify without AuthServID succeeded")
	}
}

// The default header lists are handed out as copies: a caller editing
// its slice changes neither the next caller's list nor what Sign signs
// with zero SignOptions.
func TestDefaultHeaderListsAreCopies(t *testing.T) {
	keys, _ := activeKeys(t, RSA)
	msg := "From: a@example.com\r\nSubject: s\r\n\r\nbody\r\n"
	before, err := Sign(context.Background(), keys, strings.NewReader(msg), SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range []func() []string{DefaultSignedHeaders, DefaultOversignedHeaders} {
		want := list()
		got := list()
		for i := range got {
			got[i] = "X-Changed"
		}
		if again := list(); !slices.Equal(again, want) {
			t.Errorf("after a caller edited its copy the list is %q, want %q", again, want)
		}
	}
	after, err := Sign(context.Background(), keys, strings.NewReader(msg), SignOptions{})
	if err != nil {
		t.Fatal(err)
	}
	h := func(sig string) string {
		for _, tag := range strings.Split(sig, ";") {
			if v, ok := strings.CutPrefix(strings.TrimSpace(tag), "h="); ok {
				return v
			}
		}
		return ""
	}
	if !strings.Contains(h(before), "Subject") {
		t.Fatalf("h= of the default signature = %q, want Subject in it", h(before))
	}
	if h(after) != h(before) {
		t.Errorf("h= after callers edited their lists = %q, want %q", h(after), h(before))
	}
}

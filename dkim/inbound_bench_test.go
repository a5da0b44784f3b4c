package dkim

import (
	"bytes"
	"context"
	"net"
	"testing"
)

// BenchmarkVerifyInbound is what the MX adds per message with checks on,
// in one goroutine: one 4 KB rsa-sha256 signed message (as in
// bench/inbound-auth.sh) verified with DKIM, SPF for 127.0.0.1 and DMARC,
// the answers coming from a CachingResolver as in the reference server.
// Compare its time per op with the server's CPU per message with checks
// off to see the share of the budget it takes.
//
//	go test -run '^$' -bench BenchmarkVerifyInbound -benchmem -count 5 ./dkim
func BenchmarkVerifyInbound(b *testing.B) {
	key := benchKey(b, RSA)
	body := benchMessage(4 << 10)
	sig, err := Sign(context.Background(), []Key{key}, bytes.NewReader(body), SignOptions{})
	if err != nil {
		b.Fatal(err)
	}
	msg := append([]byte(sig), body...)
	res := &CachingResolver{Resolver: zones(map[string][]string{
		key.RecordName():     {key.TXT()},
		"example.com":        {"v=spf1 ip4:127.0.0.1 -all"},
		"_dmarc.example.com": {"v=DMARC1; p=reject"},
	})}
	env := Envelope{RemoteIP: net.IPv4(127, 0, 0, 1), Helo: "mx.example.com", MailFrom: "alice@example.com"}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		r, err := Verify(context.Background(), res, bytes.NewReader(msg), env, VerifyOptions{AuthServID: authServID})
		if err != nil || r.DKIM[0].Status != StatusPass || r.SPF.Status != StatusPass || r.DMARC.Status != StatusPass {
			b.Fatalf("%v %+v %+v %+v", err, r.DKIM, r.SPF, r.DMARC)
		}
	}
}

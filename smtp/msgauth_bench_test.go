package smtp

import (
	"context"
	"os"
	"strings"
	"sync/atomic"
	"testing"

	gosmtp "github.com/emersion/go-smtp"

	"github.com/mailyard/mailyard/dkim"
)

// BenchmarkInboundPath measures the MX path end to end on the real store
// (fsync included), 8 parallel connections, 4 KB DKIM-signed messages,
// without and with message authentication (DKIM + SPF + DMARC through an
// in-process resolver behind a dkim.CachingResolver, as in the reference
// server; Authentication-Results stamped). The budget:
// verification costs under 10% of inbound throughput. BENCH_UNSIGNED=1
// sends the message without its signature, which separates the DKIM
// cryptography from the rest (spooling, SPF, DMARC, the header field).
//
//	go test -run '^$' -bench BenchmarkInboundPath -benchtime 3000x ./smtp
func BenchmarkInboundPath(b *testing.B) {
	for _, verify := range []bool{false, true} {
		name := "plain"
		if verify {
			name = "verify"
		}
		b.Run(name, func(b *testing.B) {
			m := startMsgAuthStackResolver(b, verify, true)
			m.user(b, "bob@example.test", 0)
			keys, err := m.keys.Signing(context.Background(), "example.test")
			if err != nil {
				b.Fatal(err)
			}
			line := strings.Repeat("x", 76) + "\r\n"
			body := "From: <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: bench\r\nMessage-ID: <b@example.test>\r\n\r\n" +
				strings.Repeat(line, (4096-100)/len(line))
			sig, err := dkim.Sign(context.Background(), keys, strings.NewReader(body), dkim.SignOptions{})
			if err != nil {
				b.Fatal(err)
			}
			msg := sig + body
			if os.Getenv("BENCH_UNSIGNED") != "" {
				msg = body
			}
			b.SetBytes(int64(len(msg)))
			b.ReportAllocs()
			b.SetParallelism(4) // 8 clients on 2 cores
			var failed atomic.Int64
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				c, err := gosmtp.Dial(m.ts.addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer c.Close()
				for pb.Next() {
					if err := send(c, "alice@example.test", []string{"bob@example.test"}, msg); err != nil {
						failed.Add(1)
						c.Reset()
					}
				}
			})
			if n := failed.Load(); n > 0 {
				b.Fatalf("%d messages refused", n)
			}
		})
	}
}

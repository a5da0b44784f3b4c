package dkim

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/cputime"
)

// benchMessage returns a CRLF message of about size bytes: a realistic
// header and a body of 76-column text lines.
func benchMessage(size int) []byte {
	var b bytes.Buffer
	b.WriteString(crlf(`From: Alice <alice@example.com>
To: Bob <bob@example.net>
Cc: Carol <carol@example.net>
Subject: Benchmark message
Date: Mon, 2 Mar 2026 10:00:00 +0000
Message-ID: <bench@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: 8bit

`))
	line := strings.Repeat("The quick brown fox jumps over the lazy dog.  ", 2)[:74] + "\r\n"
	for b.Len() < size {
		b.WriteString(line)
	}
	return b.Bytes()
}

func benchKey(b *testing.B, alg Algorithm) Key {
	var priv crypto.Signer
	switch alg {
	case RSA:
		k, err := rsa.GenerateKey(rand.Reader, RSABits)
		if err != nil {
			b.Fatal(err)
		}
		priv = k
	case Ed25519:
		_, k, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			b.Fatal(err)
		}
		priv = k
	}
	return Key{Domain: "example.com", Selector: "b-" + string(alg), Algorithm: alg, State: StateActive, private: priv}
}

var benchSizes = []struct {
	name string
	size int
}{{"4KB", 4 << 10}, {"1MB", 1 << 20}}

// BenchmarkSign compares this package's signer (impl=ours, the
// canonicaliser the verifier uses) with go-msgauth's (impl=go-msgauth,
// msgauthSignStream, what Sign was before) on the same messages: 10 KiB
// and 1 MiB, RSA-2048, Ed25519 and dual signing (both keys), the body
// streamed from a reader in both. cpu-ns/op is the process's CPU time
// per message (user and system, GC and go-msgauth's goroutines included).
//
//	go test -run '^$' -bench BenchmarkSign -benchmem -count 5 ./dkim
func BenchmarkSign(b *testing.B) {
	rsaKey, edKey := benchKey(b, RSA), benchKey(b, Ed25519)
	impls := []struct {
		name string
		sign func(context.Context, []Key, io.Reader, SignOptions) (string, error)
	}{{"ours", Sign}, {"go-msgauth", msgauthSignStream}}
	for _, ks := range []struct {
		name string
		keys []Key
	}{{"rsa", []Key{rsaKey}}, {"ed25519", []Key{edKey}}, {"dual", []Key{rsaKey, edKey}}} {
		for _, sz := range []struct {
			name string
			size int
		}{{"10KiB", 10 << 10}, {"1MiB", 1 << 20}} {
			msg := benchMessage(sz.size)
			for _, impl := range impls {
				b.Run("impl="+impl.name+"/"+ks.name+"/"+sz.name, func(b *testing.B) {
					b.ReportAllocs()
					b.SetBytes(int64(len(msg)))
					cpu0 := startCPU()
					for b.Loop() {
						sig, err := impl.sign(context.Background(), ks.keys, bytes.NewReader(msg), SignOptions{})
						if err != nil || strings.Count(sig, "DKIM-Signature:") != len(ks.keys) {
							b.Fatal(sig, err)
						}
					}
					b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
					cpu0.report(b)
				})
			}
		}
	}
}

// BenchmarkVerify measures the whole inbound check of a signed message:
// DKIM (key from an in-memory resolver), SPF without a client IP (so no
// SPF lookups: the DNS cost is the network's, not ours), DMARC record
// lookup and alignment, and the Authentication-Results field.
func BenchmarkVerify(b *testing.B) {
	for _, alg := range []Algorithm{RSA, Ed25519} {
		key := benchKey(b, alg)
		for _, sz := range benchSizes {
			body := benchMessage(sz.size)
			sig, err := Sign(context.Background(), []Key{key}, bytes.NewReader(body), SignOptions{})
			if err != nil {
				b.Fatal(err)
			}
			msg := append([]byte(sig), body...)
			res := zones(map[string][]string{key.RecordName(): {key.TXT()}, "_dmarc.example.com": {"v=DMARC1; p=reject"}})
			b.Run(string(alg)+"/"+sz.name, func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(msg)))
				cpu0 := startCPU()
				for b.Loop() {
					r, err := Verify(context.Background(), res, bytes.NewReader(msg), Envelope{}, VerifyOptions{AuthServID: authServID})
					if err != nil || r.DKIM[0].Status != StatusPass || r.DMARC.Status != StatusPass {
						b.Fatalf("%v %+v %+v", err, r.DKIM, r.DMARC)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
				cpu0.report(b)
			})
		}
	}
}

// cpuMark is the process's CPU time when a benchmark loop started.
type cpuMark struct {
	at time.Duration
	ok bool
}

func startCPU() cpuMark {
	at, ok := cputime.Process()
	return cpuMark{at, ok}
}

// report adds cpu-ns/op: the process's CPU time (user and system, GC and
// other goroutines included) per iteration since m, which holds better
// than wall time on a machine shared with other jobs.
func (m cpuMark) report(b *testing.B) {
	if now, ok := cputime.Process(); ok && m.ok {
		b.ReportMetric(float64(now-m.at)/float64(b.N), "cpu-ns/op")
	}
}

package imap

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// ftsBenchWord is word i of the benchmark's vocabulary of made-up words
// (a few letters each, none a substring of a number).
func ftsBenchWord(i int) string {
	const letters = "bcdfghjklmnpqrstvwxz"
	var b strings.Builder
	for n := i + 20*20*20; n > 0; n /= 20 {
		b.WriteByte(letters[n%20])
		if b.Len()%2 == 1 {
			b.WriteByte("aeiou"[n%5])
		}
	}
	return b.String()
}

// BenchmarkSearchBodyIndexed is SEARCH BODY of one word over a mailbox
// of MAILYARD_FTS_BENCH_MESSAGES messages (default 100,000), over the
// wire, answered from the store's full-text index. Each message is a
// short text/plain of 12 words from a vocabulary of 5,000, so a word is
// in about 240 messages, all of which the server then reads to confirm.
// It reports p50 and p99 of the command's latency. The store fills the
// index in the background after each Deliver; the benchmark waits for
// it to finish (IndexPendingText) before the timed searches.
func BenchmarkSearchBodyIndexed(b *testing.B) {
	n := 100000
	if v, err := strconv.Atoi(os.Getenv("MAILYARD_FTS_BENCH_MESSAGES")); err == nil && v > 0 {
		n = v
	}
	const vocab = 5000
	e := newEnvIn(b, memDir(b), func(o *Options) { o.AllowInsecureAuth = true })
	start := time.Now()
	var wg sync.WaitGroup
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				words := make([]string, 12)
				for j := range words {
					words[j] = ftsBenchWord((i*7919 + j*104729) % vocab)
				}
				msg := fmt.Sprintf("From: s%d@example.org\r\nSubject: message %d\r\nContent-Type: text/plain\r\n\r\n%s\r\n", i, i, strings.Join(words, " "))
				if _, err := e.st.Deliver(context.Background(), store.Delivery{Recipients: []store.Recipient{{Account: e.aliceID}}}, strings.NewReader(msg)); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	b.Logf("%d messages delivered in %v", n, time.Since(start).Round(time.Millisecond))
	// The store indexes in the background, after Deliver returns; what
	// is timed here is a search over the whole index.
	start = time.Now()
	if _, err := e.st.IndexPendingText(context.Background()); err != nil {
		b.Fatal(err)
	}
	b.Logf("index completed in %v", time.Since(start).Round(time.Millisecond))
	r := e.raw()
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	r.expectOK("SELECT INBOX")
	var lat []time.Duration
	var hits int
	b.ResetTimer()
	i := 0
	for b.Loop() {
		w := ftsBenchWord((i * 31) % vocab)
		i++
		t0 := time.Now()
		got := r.expectOK("UID SEARCH BODY " + w)
		lat = append(lat, time.Since(t0))
		if len(got) != 1 {
			b.Fatalf("SEARCH BODY %s: %q", w, got)
		}
		hits += len(strings.Fields(got[0])) - 2
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(hits)/float64(len(lat)), "hits/op")
}

package imap

import (
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"
)

// TestTextScannerMatchesWholeText: streamed in pieces of any size, the
// scanner finds exactly the patterns that the whole text, lower-cased at
// once, contains, also across pieces and inside multi-byte characters.
func TestTextScannerMatchesWholeText(t *testing.T) {
	alphabet := []string{"a", "B", "z", "Ü", "ß", "ẞ", "İ", "€", "\x00", "\xff", " ", "\r\n"}
	patterns := []string{"ab", "üß", "zzz", "€a", "ba b", "i̇", "\xff", "a\x00", "ü"}
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 2000; round++ {
		var sb strings.Builder
		for n := rng.IntN(200); n > 0; n-- {
			sb.WriteString(alphabet[rng.IntN(len(alphabet))])
		}
		text := sb.String()
		hits := make(map[string]bool)
		s := newTextScanner(patterns, hits)
		for rest := text; rest != ""; {
			k := min(len(rest), 1+rng.IntN(7))
			io.WriteString(s, rest[:k])
			rest = rest[k:]
		}
		s.Close()
		lower := strings.ToLower(text)
		for _, p := range patterns {
			if want := strings.Contains(lower, p); hits[p] != want {
				t.Fatalf("text %q: pattern %q found=%v, want %v", text, p, hits[p], want)
			}
		}
	}
}

// TestSearchBodyMemory: SEARCH BODY over a large message streams its
// text through a window; the server does not hold the text (nor copies
// of it) in memory. The text part is 8 MiB (the default
// MaxSearchBytes); the budget for the whole command, a few MiB.
func TestSearchBodyMemory(t *testing.T) {
	e := newEnv(t)
	line := strings.Repeat("the quick brown fox ", 3) + "\r\n"
	text := strings.Repeat(line, (8<<20-4096)/len(line))
	e.deliver(e.aliceID, "", "From: carol@example.org\r\nSubject: big\r\nContent-Type: text/plain\r\n\r\n"+text+"Needle\r\n")
	text = ""
	send := sinkSession(t, e)
	send("SEARCH BODY nothing") // warms what the session keeps
	for _, tc := range []struct{ cmd, want string }{
		{"SEARCH BODY needle", "* SEARCH 1"},
		{"SEARCH TEXT NEEDLE", "* SEARCH 1"},
		{"SEARCH BODY haystack", "* SEARCH"},
		{"SEARCH OR BODY haystack TEXT carol@", "* SEARCH 1"},
	} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		got, _ := send(tc.cmd)
		runtime.ReadMemStats(&after)
		if fmt.Sprint(got) != fmt.Sprint([]string{tc.want}) {
			t.Errorf("%s: %q, want %q", tc.cmd, got, tc.want)
		}
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 4<<20 && !raceEnabled {
			t.Errorf("%s: %d MiB allocated", tc.cmd, alloc>>20)
		}
	}
}

// TestSearchHugePartHeader: a part header of 7 MiB of short fields, which
// go-message would parse into 600 MiB, costs SEARCH a few MiB: header
// blocks are read within imapserver.MaxHeaderBlockBytes, as for FETCH.
func TestSearchHugePartHeader(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", "From: mallory@example.net\r\nSubject: bomb\r\nContent-Type: multipart/mixed; boundary=q\r\n\r\n"+
		"--q\r\nContent-Type: text/plain\r\n\r\nfirst needle\r\n--q\r\n"+strings.Repeat("A: b\r\n", (7<<20)/6)+"\r\nbody\r\n--q--\r\n")
	send := sinkSession(t, e)
	send("SEARCH BODY nothing")
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	got, _ := send("SEARCH BODY needle")
	runtime.ReadMemStats(&after)
	if fmt.Sprint(got) != "[* SEARCH 1]" {
		t.Errorf("SEARCH BODY needle: %q", got)
	}
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 16<<20 && !raceEnabled {
		t.Errorf("SEARCH BODY needle: %d MiB allocated", alloc>>20)
	}
}

package inflate

import (
	"bytes"
	"compress/flate"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPartialFlushGivesOutput: zlib's Z_PARTIAL_FLUSH of "5 NAMESPACE\r\n"
// (raw deflate, level 6, as Python's zlib makes it) decodes without more
// input; compress/flate would block waiting for the next block.
func TestPartialFlushGivesOutput(t *testing.T) {
	b, _ := hex.DecodeString("3255f073f4750d0e707476e5e50208")
	pr, pw := io.Pipe()
	defer pw.Close()
	go pw.Write(b) // and no more: the stream stays open
	r := NewReader(pr)
	got := make(chan string, 1)
	go func() {
		buf := make([]byte, 100)
		n, _ := io.ReadAtLeast(r, buf, len("5 NAMESPACE\r\n"))
		got <- string(buf[:n])
	}()
	select {
	case s := <-got:
		if s != "5 NAMESPACE\r\n" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no output after a partial flush")
	}
}

// TestRoundTrip: whatever compress/flate writes, at any level and with
// sync flushes anywhere, reads back the same.
func TestRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(5, 6))
	for round := 0; round < 50; round++ {
		var in bytes.Buffer
		for n := rng.IntN(20000); n > 0; n-- {
			if rng.IntN(3) == 0 {
				in.WriteByte(byte(rng.IntN(256)))
			} else {
				in.WriteString("abc ")
			}
		}
		var z bytes.Buffer
		w, _ := flate.NewWriter(&z, rng.IntN(10))
		data := in.Bytes()
		for len(data) > 0 {
			k := min(len(data), 1+rng.IntN(3000))
			w.Write(data[:k])
			if rng.IntN(2) == 0 {
				w.Flush()
			}
			data = data[k:]
		}
		w.Close()
		out, err := io.ReadAll(NewReader(&z))
		if err != nil || !bytes.Equal(out, in.Bytes()) {
			t.Fatalf("round %d: %d bytes back of %d (%v)", round, len(out), in.Len(), err)
		}
	}
}

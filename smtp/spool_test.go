package smtp

import (
	"bytes"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"testing/iotest"
)

func TestSpoolInMemoryAndSpilled(t *testing.T) {
	for _, size := range []int{0, 10, 1000, 4096, 100_000} {
		dir := t.TempDir()
		sp := newSpool(dir, 4096)
		data := bytes.Repeat([]byte("0123456789abcdef\r\n"), size/18+1)[:size]
		n, err := sp.ReadFrom(iotest.OneByteReader(bytes.NewReader(data)))
		if err != nil || n != int64(size) || sp.Size() != int64(size) {
			t.Fatalf("size %d: ReadFrom = %d, %v", size, n, err)
		}
		for round := 0; round < 2; round++ { // readable twice, from the start
			r, err := sp.Reader()
			if err != nil {
				t.Fatal(err)
			}
			got, _ := io.ReadAll(r)
			if !bytes.Equal(got, data) {
				t.Fatalf("size %d round %d: read back %d bytes, differ", size, round, len(got))
			}
		}
		if spilled := sp.file != nil; spilled != (size > 4096) {
			t.Fatalf("size %d: spilled to a file = %v", size, spilled)
		}
		// The temp file has no name while in use: a crash now would
		// leave no message content in the spool directory.
		if files, _ := os.ReadDir(dir); len(files) != 0 {
			t.Fatalf("size %d: %d named temp files while spooled", size, len(files))
		}
		if err := sp.Close(); err != nil {
			t.Fatal(err)
		}
		if files, _ := os.ReadDir(dir); len(files) != 0 {
			t.Fatalf("size %d: temp file left after Close", size)
		}
	}
}

func TestSpoolReaderError(t *testing.T) {
	sp := newSpool(t.TempDir(), 16)
	defer sp.Close()
	boom := errors.New("client went away")
	_, err := sp.ReadFrom(io.MultiReader(strings.NewReader(strings.Repeat("x", 100)), iotest.ErrReader(boom)))
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v, want the reader's error", err)
	}
}

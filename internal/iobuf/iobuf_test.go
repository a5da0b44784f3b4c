package iobuf

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

// onlyReader hides any WriterTo, so the copy needs a buffer.
type onlyReader struct{ io.Reader }

func TestCopy(t *testing.T) {
	src := strings.Repeat("0123456789", 10000) // several buffers' worth
	var out bytes.Buffer
	n, err := Copy(onlyWriter{&out}, onlyReader{strings.NewReader(src)})
	if err != nil || n != int64(len(src)) || out.String() != src {
		t.Fatalf("Copy: %d, %v, equal %v", n, err, out.String() == src)
	}
}

// onlyWriter hides any ReaderFrom.
type onlyWriter struct{ io.Writer }

func TestCopyN(t *testing.T) {
	var out bytes.Buffer
	n, err := CopyN(onlyWriter{&out}, onlyReader{strings.NewReader("hello world")}, 5)
	if err != nil || n != 5 || out.String() != "hello" {
		t.Fatalf("CopyN 5: %d, %v, %q", n, err, out.String())
	}
	out.Reset()
	n, err = CopyN(onlyWriter{&out}, onlyReader{strings.NewReader("short")}, 10)
	if !errors.Is(err, io.EOF) || n != 5 || out.String() != "short" {
		t.Fatalf("CopyN past the end: %d, %v, %q", n, err, out.String())
	}
}

func TestCopyAllocates(t *testing.T) {
	src := bytes.Repeat([]byte("x"), 100<<10)
	br := bytes.NewReader(src)
	var r io.Reader = onlyReader{br}
	var w io.Writer = onlyWriter{io.Discard}
	Copy(w, r) // fill the pool
	allocs := testing.AllocsPerRun(20, func() {
		br.Reset(src)
		CopyN(w, r, int64(len(src)))
	})
	// The LimitedReader, not a buffer.
	if allocs > 1 {
		t.Fatalf("%v allocations per copy", allocs)
	}
}

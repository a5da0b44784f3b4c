package msgheader

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

// AppendBlock reads the whole block or refuses it: a block of exactly
// max bytes is read, one byte more is ErrTooLarge; lines longer than the
// reader's buffer are read whole, and the body stays in the reader.
func TestAppendBlock(t *testing.T) {
	msg := "A: 1\r\nB: " + strings.Repeat("x", 5000) + "\r\n\r\nbody\r\n"
	hdr := len(msg) - len("body\r\n")
	br := bufio.NewReaderSize(strings.NewReader(msg), 16)
	got, err := AppendBlock([]byte("kept"), br, hdr)
	if err != nil || string(got) != "kept"+msg[:hdr] {
		t.Fatalf("block %.40q, %v", got, err)
	}
	if rest, _ := io.ReadAll(br); string(rest) != "body\r\n" {
		t.Fatalf("rest %q", rest)
	}
	if _, err := AppendBlock(nil, bufio.NewReader(strings.NewReader(msg)), hdr-1); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("one byte over: %v", err)
	}
	if got, err := AppendBlock(nil, bufio.NewReader(strings.NewReader("A: 1\r\nno colon\r\n")), 100); err != nil || string(got) != "A: 1\r\nno colon\r\n" {
		t.Fatalf("all header: %q, %v", got, err)
	}
}

// ReadBlockMax cuts the block at its bound and at no line count.
func TestReadBlockMax(t *testing.T) {
	in := strings.Repeat("A: b\r\n", MaxBlockLines+10) + "\r\nbody"
	br := bufio.NewReader(strings.NewReader(in))
	got, err := ReadBlockMax(br, len(in))
	if err != nil || string(got) != in[:len(in)-4] {
		t.Fatalf("block of %d bytes, %v", len(got), err)
	}
	got, _ = ReadBlockMax(bufio.NewReader(strings.NewReader(in)), 9)
	if string(got) != "A: b\r\nA: " {
		t.Fatalf("cut block %q", got)
	}
}

// FuzzHeaderLimit: the header block ReadBlock reads is the input up to
// its first empty line when that is within the bounds, and otherwise a
// prefix of it within the bounds; the block and the rest are the input.
// AppendBlock with the same byte bound reads the same block, or refuses
// one that is longer. The fuzzer's inputs are mostly small, so the seeds
// carry blocks at and past the bounds.
func FuzzHeaderLimit(f *testing.F) {
	f.Add("A: b\r\n\r\nbody", 0, 0)
	f.Add("A: b\nno colon\n\nbody", 1, 3)
	f.Add("A: b\r\n", MaxBlockLines-1, 0)
	f.Add("A: b\r\n", MaxBlockLines, 0)
	f.Add("A: b\n", MaxBlockLines+1, 0)
	f.Add("A: b\r", 0, MaxBlockBytes-6)
	f.Add("\r\n", 0, MaxBlockBytes-1)
	f.Add("x", 0, MaxBlockBytes+1)
	f.Fuzz(func(t *testing.T, tail string, lines, longLine int) {
		if lines < 0 || lines > 3*MaxBlockLines || longLine < 0 || longLine > 2*MaxBlockBytes {
			return
		}
		in := strings.Repeat("F: v\r\n", lines) + "X: " + strings.Repeat("y", longLine) + tail
		br := bufio.NewReaderSize(strings.NewReader(in), 16+len(tail)%5000)
		block, err := ReadBlock(br)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		if string(block)+string(rest) != in {
			t.Fatalf("block of %d bytes + rest of %d is not the input", len(block), len(rest))
		}
		// The header as an unbounded reader splits it.
		whole, n := in, 0
		for pos := 0; pos < len(in); {
			end := len(in)
			if i := strings.IndexByte(in[pos:], '\n'); i >= 0 {
				end = pos + i + 1
			}
			line := in[pos:end]
			n++
			if line == "\n" || line == "\r\n" {
				whole = in[:end]
				break
			}
			pos = end
		}
		switch {
		case len(whole) <= MaxBlockBytes && n <= MaxBlockLines:
			if string(block) != whole {
				t.Fatalf("block of %d bytes, want the %d of the header", len(block), len(whole))
			}
		case len(block) > MaxBlockBytes || strings.Count(string(block), "\n") > MaxBlockLines:
			t.Fatalf("block of %d bytes, %d lines", len(block), strings.Count(string(block), "\n"))
		case !strings.HasPrefix(whole, string(block)) || len(block) == 0:
			t.Fatalf("block of %d bytes is not a start of the header", len(block))
		}
		strict, err := AppendBlock(nil, bufio.NewReaderSize(strings.NewReader(in), 16), MaxBlockBytes)
		switch {
		case len(whole) > MaxBlockBytes:
			if !errors.Is(err, ErrTooLarge) {
				t.Fatalf("AppendBlock of a %d-byte header: %v", len(whole), err)
			}
		case err != nil || string(strict) != whole:
			t.Fatalf("AppendBlock: %d bytes, %v; want the %d of the header", len(strict), err, len(whole))
		}
	})
}

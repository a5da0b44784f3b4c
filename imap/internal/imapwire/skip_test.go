package imapwire

import (
	"bufio"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestLiteralHeaderAtEnd(t *testing.T) {
	for _, tc := range []struct {
		line    string
		cut     bool
		size    int64
		nonSync bool
		ok      bool
		err     bool
	}{
		{line: "a CREATE {5}\r", size: 5, ok: true},
		{line: "a CREATE {5+}\r", size: 5, nonSync: true, ok: true},
		{line: "a CREATE {5+} \r", size: 5, nonSync: true, ok: true},
		{line: "a CREATE {5+}", size: 5, nonSync: true, ok: true}, // lone LF
		{line: "a APPEND INBOX ~{12+}\r", size: 12, nonSync: true, ok: true},
		{line: "5+}\r", cut: false},           // the start of the line: an atom
		{line: "5+}\r", cut: true, err: true}, // the "{" may have been cut off
		{line: "a CREATE x}\r"},               // an atom that ends with "}"
		{line: "a CREATE x5}\r"},              // likewise
		{line: "a CREATE {}\r"},               // no size: not a literal
		{line: "a CREATE {99999999999999999999+}\r", err: true},
		{line: "a CREATE {9223372036854775808}\r", err: true},
		{line: "a CREATE {5+}x\r"},
	} {
		size, nonSync, ok, err := literalHeaderAtEnd([]byte(tc.line), tc.cut)
		if (err != nil) != tc.err || ok != tc.ok || size != tc.size || nonSync != tc.nonSync {
			t.Errorf("%q (cut %v): %d %v %v %v", tc.line, tc.cut, size, nonSync, ok, err)
		}
	}
}

// TestRefusedLiteralStopsDecoding: a literal refused by
// CheckBufferedLiteralFunc records the error, nothing after it is decoded,
// and Skip goes to where the next command begins.
func TestRefusedLiteralStopsDecoding(t *testing.T) {
	refuse := errors.New("too big")
	for _, tc := range []struct {
		name, in, next string
		skipErr        bool
	}{
		// Synchronising: no data comes; the next line is a command.
		{name: "sync", in: "{4294967295}\r\nuser pass\r\n", next: "user pass\r\n"},
		// Non-synchronising: the data and the rest of the line go.
		{name: "non-sync", in: "{5+}\r\nab\r\nc rest\r\nnext\r\n", next: "next\r\n"},
		// ... and so do the literals at the end of the rest of the line.
		{name: "non-sync, then more", in: "{5+}\r\nab\r\nc {3+}\r\nx\r\n\r\nnext\r\n", next: "next\r\n"},
		// ... but not what follows a synchronising one there.
		{name: "non-sync, then sync", in: "{5+}\r\nab\r\nc {3}\r\nnext\r\n", next: "next\r\n"},
		// Beyond the limit: an error, and the connection is closed.
		{name: "too large", in: "{200+}\r\n" + strings.Repeat("x", 200), skipErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := bufio.NewReader(strings.NewReader(tc.in))
			dec := NewDecoder(r, ConnSideServer)
			dec.CheckBufferedLiteralFunc = func(int64, bool) error { return refuse }
			var s string
			if dec.ExpectAString(&s) || !errors.Is(dec.Err(), refuse) {
				t.Fatalf("ExpectAString = %q, error %v; want the refusal", s, dec.Err())
			}
			if dec.ExpectSP() || dec.ExpectAString(&s) || dec.ExpectCRLF() {
				t.Fatalf("decoded on after the refusal")
			}
			if dec.AtCommandEnd() {
				t.Fatalf("AtCommandEnd after a refused literal")
			}
			err := dec.Skip(100)
			var skipErr *SkipError
			if errors.As(err, &skipErr) != tc.skipErr || (err != nil && !tc.skipErr) {
				t.Fatalf("Skip: %v", err)
			}
			if tc.skipErr {
				return
			}
			rest, _ := io.ReadAll(r)
			if string(rest) != tc.next {
				t.Fatalf("after Skip: %q, want %q", rest, tc.next)
			}
		})
	}
}

// TestSkipAfterSyntaxError: the bytes the parser read count towards the
// literal header at the end of the line.
func TestSkipAfterSyntaxError(t *testing.T) {
	r := bufio.NewReader(strings.NewReader("{12+}\r\nz DELETE x\r\n\r\nnext\r\n"))
	dec := NewDecoder(r, ConnSideServer)
	// The parser stops inside the header, as an atom would.
	if !dec.Special('{') {
		t.Fatal("no {")
	}
	var n uint32
	if !dec.Number(&n) || n != 12 {
		t.Fatalf("number %d", n)
	}
	if err := dec.Skip(100); err != nil {
		t.Fatal(err)
	}
	if rest, _ := io.ReadAll(r); string(rest) != "next\r\n" {
		t.Fatalf("after Skip: %q", rest)
	}
}

// TestMaxDepth: nesting beyond MaxDepth is a DecoderExpectError. (An
// empty list nests nothing: n parentheses are n-1 levels.)
func TestMaxDepth(t *testing.T) {
	in := strings.Repeat("(", MaxDepth+2) + strings.Repeat(")", MaxDepth+2) + "\r\n"
	dec := NewDecoder(bufio.NewReader(strings.NewReader(in)), ConnSideServer)
	var item func() error
	item = func() error {
		if isList, err := dec.List(item); err != nil || isList {
			return err
		}
		return dec.Err()
	}
	err := item()
	var expectErr *DecoderExpectError
	if !errors.As(err, &expectErr) {
		t.Fatalf("error %v, want a DecoderExpectError", err)
	}

	in = strings.Repeat("(", MaxDepth+1) + strings.Repeat(")", MaxDepth+1) + "\r\n"
	dec = NewDecoder(bufio.NewReader(strings.NewReader(in)), ConnSideServer)
	if err := item(); err != nil {
		t.Fatalf("%d levels: %v", MaxDepth, err)
	}
}

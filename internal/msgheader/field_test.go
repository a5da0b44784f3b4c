package msgheader

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-message/textproto"
)

// Scan gives every byte of the block before its empty line to one entry;
// lines that are not fields are entries that are not Valid, with their
// folded lines.
func TestScan(t *testing.T) {
	const block = " lead: x\r\n\tfold\r\nFrom : a@example.org\r\n b\r\nno colon\r\n cont\r\n: empty\r\n\r\r\nX: 1\r\n\r\nBody: no"
	type entry struct {
		raw, name, value string
		valid            bool
	}
	var got []entry
	Scan([]byte(block), func(f Field) {
		got = append(got, entry{string(f.Raw), string(f.Name), string(f.Value), f.Valid()})
	})
	want := []entry{
		{" lead: x\r\n\tfold\r\n", " lead", " x\r\n\tfold\r\n", false},
		{"From : a@example.org\r\n b\r\n", "From", " a@example.org\r\n b\r\n", true},
		{"no colon\r\n cont\r\n", "", "", false},
		{": empty\r\n", "", "", false},
		{"\r\r\n", "", "", false},
		{"X: 1\r\n", "X", " 1\r\n", true},
	}
	if len(got) != len(want) {
		t.Fatalf("entries %#v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("entry %d: %#v, want %#v", i, got[i], want[i])
		}
	}
}

func writeHeader(t *testing.T, h textproto.Header) string {
	t.Helper()
	var b bytes.Buffer
	if err := textproto.WriteHeader(&b, h); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// FuzzReadHeader: the block and the rest are the input; the block ends
// at its first empty line; Scan's entries are the block before that
// line; where go-message reads the header without error, the fields are
// the same (line ends aside).
func FuzzReadHeader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody",
		"A: 1\r\n b\r\nno colon\r\n\r\n",
		" x\r\n\r\n",
		"A: 1\nB: 2\n\nbody\n",
		"all header",
		"\r\nbody",
		"",
		"A: 1\r\n\r\r\nB: 2\r\n\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		br := bufio.NewReaderSize(strings.NewReader(s), 16)
		block, h, err := ReadHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		if string(block)+string(rest) != s {
			t.Fatalf("block %q + rest %q", block, rest)
		}
		if i := strings.Index("\n"+string(block), "\n\r\n"); i >= 0 && i+2 < len(block) {
			t.Fatalf("block %q goes on after an empty line", block)
		}
		if i := strings.Index("\n"+string(block), "\n\n"); i >= 0 && i+1 < len(block) {
			t.Fatalf("block %q goes on after an empty line", block)
		}
		var entries []byte
		Scan(block, func(f Field) { entries = append(entries, f.Raw...) })
		if !strings.HasPrefix(string(block), string(entries)) || !isBlankLine(block[len(entries):]) && len(entries) != len(block) {
			t.Fatalf("entries %q of block %q", entries, block)
		}
		want, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(string(block))))
		if err != nil || !strings.HasSuffix(string(block), "\n") {
			return
		}
		// go-message ends each field with CRLF; the block keeps the
		// message's line ends.
		if g, w := writeHeader(t, h), writeHeader(t, want); lf(g) != lf(w) {
			t.Fatalf("fields %q, go-message %q", g, w)
		}
	})
}

// On a well-formed header, ParseHeader gives the fields go-message's
// textproto.ReadHeader gives, raw bytes included; lines that are not
// fields stay in the block and out of the fields.
func TestParseHeaderAsGoMessage(t *testing.T) {
	const valid = "Received: from a\r\n\tby b\r\nSubject : folded\r\n  twice\r\nX-Dup: 1\r\nx-dup: 2\r\nTo: <a@example.org>\r\n\r\n"
	block, h, err := ReadHeader(bufio.NewReader(strings.NewReader(valid + "body\r\n")))
	if err != nil || string(block) != valid {
		t.Fatalf("block %q, %v", block, err)
	}
	want, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(valid)))
	if err != nil {
		t.Fatal(err)
	}
	if got, w := writeHeader(t, h), writeHeader(t, want); got != w || got != valid {
		t.Fatalf("written %q, go-message %q", got, w)
	}
	if h.Get("Subject") != want.Get("Subject") || strings.Join(h.Values("X-Dup"), ",") != "1,2" {
		t.Fatalf("Subject %q, X-Dup %q", h.Get("Subject"), h.Values("X-Dup"))
	}

	const hostile = " lead\r\nFrom: a@example.org\r\nno colon\r\nBad\x01Name: x\r\n: empty name\r\nX-After: two\r\nlast line"
	block, h, err = ReadHeader(bufio.NewReader(strings.NewReader(hostile)))
	if err != nil || string(block) != hostile {
		t.Fatalf("block %q, %v", block, err)
	}
	if got := writeHeader(t, h); got != "From: a@example.org\r\nBad\x01Name: x\r\nX-After: two\r\n\r\n" {
		t.Fatalf("fields %q", got)
	}
}

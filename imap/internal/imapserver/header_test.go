package imapserver

import (
	"bufio"
	"bytes"
	"io"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-message/textproto"
	"github.com/mailyard/mailyard/internal/msgheader"
)

// A part's header ends at a line that is not a field without ending the
// part list, and at a boundary for a part that is headers alone (RFC 2046
// §5.1.1).
func TestMultipartPartHeaders(t *testing.T) {
	const msg = "Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\njunk line\r\n\r\none\r\n" +
		"--b\r\nContent-Type: text/plain\r\n" +
		"--b\r\nContent-Type: text/html\r\n\r\nthree\r\n--b--\r\n"
	bs, ok := ExtractBodyStructure(strings.NewReader(msg)).(*imap.BodyStructureMultiPart)
	if !ok || len(bs.Children) != 3 || bs.Children[2].MediaType() != "text/html" {
		t.Fatalf("BODYSTRUCTURE %#v", bs)
	}
	for i, want := range []string{"one", "", "three"} {
		got := bodySection(msg, &imap.FetchItemBodySection{Part: []int{i + 1}})
		if string(got) != want {
			t.Errorf("BODY[%d] = %q, want %q", i+1, got, want)
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

// bodySection is the section item of msg, as WriteBodySection writes it.
func bodySection(msg string, item *imap.FetchItemBodySection) []byte {
	var b bytes.Buffer
	WriteBodySection(&b, strings.NewReader(msg), item)
	return b.Bytes()
}

func lf(s string) string { return strings.ReplaceAll(s, "\r\n", "\n") }

// FuzzReadHeader: the block and the rest are the input, and so are
// BODY[HEADER] and BODY[TEXT]; the block ends at its first empty line;
// where go-message reads the header without error, the fields are the
// same (line ends aside).
func FuzzReadHeader(f *testing.F) {
	for _, s := range []string{
		"Subject: x\r\n\r\nbody",
		"A: 1\r\n b\r\nno colon\r\n\r\n",
		" x\r\n\r\n",
		"A: 1\nB: 2\n\nbody\n",
		"all header",
		"\r\nbody",
		"",
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\njunk\r\n\r\none\r\n--b--\r\n",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		br := bufio.NewReaderSize(strings.NewReader(s), 16)
		block, h, err := msgheader.ReadHeader(br)
		if err != nil {
			t.Fatal(err)
		}
		rest, _ := io.ReadAll(br)
		if string(block)+string(rest) != s {
			t.Fatalf("block %q + rest %q", block, rest)
		}
		hdr := bodySection(s, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader})
		text := bodySection(s, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText})
		if string(hdr)+string(text) != s {
			t.Fatalf("BODY[HEADER] %q + BODY[TEXT] %q", hdr, text)
		}
		if i := strings.Index("\n"+string(block), "\n\r\n"); i >= 0 && i+2 < len(block) {
			t.Fatalf("block %q goes on after an empty line", block)
		}
		if i := strings.Index("\n"+string(block), "\n\n"); i >= 0 && i+1 < len(block) {
			t.Fatalf("block %q goes on after an empty line", block)
		}
		want, err := textproto.ReadHeader(bufio.NewReader(strings.NewReader(string(block))))
		if err != nil || !strings.HasSuffix(string(block), "\n") {
			return
		}
		var g, w bytes.Buffer
		textproto.WriteHeader(&g, h)
		textproto.WriteHeader(&w, want)
		// go-message ends each field with CRLF; the block keeps the
		// message's line ends, as BODY[] does.
		if lf(g.String()) != lf(w.String()) {
			t.Fatalf("fields %q, go-message %q", g.String(), w.String())
		}
	})
}

package imapserver

import (
	"bufio"
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
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

// bodySection is the section item of msg, as WriteBodySection writes it.
func bodySection(msg string, item *imap.FetchItemBodySection) []byte {
	var b bytes.Buffer
	WriteBodySection(&b, strings.NewReader(msg), item)
	return b.Bytes()
}

// FuzzReadHeader: BODY[HEADER] is the header block msgheader.ReadHeader
// reads, and BODY[HEADER] and BODY[TEXT] together are the message (the
// block's own properties are msgheader's FuzzReadHeader).
func FuzzReadHeader(f *testing.F) {
	f.Add("A: 1\r\n b\r\nno colon\r\n\r\nbody")
	f.Add("all header")
	f.Add("Content-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\njunk\r\n\r\none\r\n--b--\r\n")
	f.Add("Content-Type: message/rfc822\r\n\r\nSubject: inner\r\n\r\r\nX: y\r\n\r\ntext")
	f.Fuzz(func(t *testing.T, s string) {
		block, _, err := msgheader.ReadHeader(bufio.NewReaderSize(strings.NewReader(s), 16))
		if err != nil {
			t.Fatal(err)
		}
		hdr := bodySection(s, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader})
		text := bodySection(s, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierText})
		if string(hdr) != string(block) || string(hdr)+string(text) != s {
			t.Fatalf("BODY[HEADER] %q + BODY[TEXT] %q, block %q", hdr, text, block)
		}
	})
}

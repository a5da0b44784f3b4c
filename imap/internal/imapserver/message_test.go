package imapserver

import (
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
)

// TestBodyStructurePartsAreBounded: a multipart of 20000 parts is
// described with MaxMIMEParts parts in all, the message counted.
func TestBodyStructurePartsAreBounded(t *testing.T) {
	msg := "Content-Type: multipart/mixed; boundary=q\r\n\r\n" +
		strings.Repeat("--q\r\nContent-Type: text/plain\r\n\r\nx\r\n", 20000) + "--q--\r\n"
	bs, ok := ExtractBodyStructure(strings.NewReader(msg)).(*imap.BodyStructureMultiPart)
	if !ok {
		t.Fatalf("not a multipart")
	}
	if n := len(bs.Children); n != MaxMIMEParts-1 {
		t.Fatalf("%d parts described, want %d", n, MaxMIMEParts-1)
	}
}

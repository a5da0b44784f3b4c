package imap

import (
	"fmt"
	"strings"
	"testing"
)

// TestPreview: PREVIEW (RFC 8970) as the RFC's examples use it, with and
// without LAZY, over a plain, an HTML, a multipart, an empty, a long and
// a KOI8-R message.
func TestPreview(t *testing.T) {
	e := newEnv(t)
	long := strings.Repeat("word ", 100)
	msgs := []struct{ msg, want string }{
		{"Subject: plain\r\n\r\nLorem ipsum dolor sit amet,\r\n  consectetur\tadipiscing elit.\r\n", "Lorem ipsum dolor sit amet, consectetur adipiscing elit."},
		{"Subject: html\r\nContent-Type: text/html\r\n\r\n<html><head><style>p{}</style></head><body><p>Hello&nbsp;<b>world</b></p>\r\n<p>again</p></body></html>\r\n", "Hello world again"},
		{"Subject: mixed\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nSee the attachment.\r\n--b\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b--\r\n", "See the attachment."},
		{"Subject: empty\r\n\r\n", ""},
		{"Subject: long\r\n\r\n" + long + "\r\n", strings.TrimSpace(long[:256])},
		{"Subject: koi8\r\nContent-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n=F0=D2=C9=D7=C5=D4 =CD=C9=D2\r\n", "Привет мир"},
	}
	for _, m := range msgs {
		e.deliver(e.aliceID, "", m.msg)
	}
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "PREVIEW")
	r.expectOK("ENABLE UTF8=ACCEPT") // the Cyrillic preview as a quoted string
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1 (RFC822.SIZE PREVIEW)")
	mustHave(t, u, fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d PREVIEW %q)", len(msgs[0].msg), msgs[0].want))
	for _, lazy := range []string{"PREVIEW", "PREVIEW (LAZY)", "PREVIEW (lazy LAZY)"} {
		u = r.expectOK("FETCH 1:6 (" + lazy + ")")
		if len(u) != len(msgs) {
			t.Fatalf("FETCH %s: %q", lazy, u)
		}
		for i, m := range msgs {
			want := fmt.Sprintf("* %d FETCH (PREVIEW %q)", i+1, m.want)
			if m.want == "" {
				want = fmt.Sprintf(`* %d FETCH (PREVIEW "")`, i+1)
			}
			if len([]rune(m.want)) > 256 {
				t.Fatalf("test wants a preview over 256 characters")
			}
			if u[i] != want {
				t.Fatalf("FETCH %s of message %d: got %q, want %q", lazy, i+1, u[i], want)
			}
		}
	}
	// Other items after PREVIEW, with and without its modifier.
	u = r.expectOK("FETCH 1 (PREVIEW UID)")
	mustHave(t, u, fmt.Sprintf("* 1 FETCH (UID 1 PREVIEW %q)", msgs[0].want))
	u = r.expectOK("FETCH 1 (PREVIEW (LAZY) RFC822.SIZE)")
	mustHave(t, u, fmt.Sprintf("* 1 FETCH (RFC822.SIZE %d PREVIEW %q)", len(msgs[0].msg), msgs[0].want))
	u = r.expectOK("FETCH 1 PREVIEW")
	mustHave(t, u, fmt.Sprintf("* 1 FETCH (PREVIEW %q)", msgs[0].want))
	u = r.expectOK("FETCH 1 PREVIEW (CHANGEDSINCE 1)") // a fetch modifier, not PREVIEW's
	mustHave(t, u, "PREVIEW ", "MODSEQ (")
	u = r.expectOK("FETCH 1 PREVIEW (lazy)")
	mustHave(t, u, fmt.Sprintf("* 1 FETCH (PREVIEW %q)", msgs[0].want))
	r.expectStatus("FETCH 1 (PREVIEW (LAZY EAGER))", "BAD")
	r.expectStatus("FETCH 1 (PREVIEW (EAGER))", "BAD") // not a modifier: an item list where an item goes
	r.expectStatus("FETCH 1 (PREVIEW ())", "BAD")
	// PREVIEW reads the message but does not set \Seen (RFC 8970).
	u = r.expectOK("FETCH 1 (FLAGS)")
	mustNotHave(t, u, `\Seen`)
}

package imap

import (
	"strings"
	"testing"
)

// binaryMsg has a base64 leaf, a message/rfc822 part whose body is a
// base64 leaf, a part in an encoding nobody knows and a Latin-1
// quoted-printable part.
const binaryMsg = "From: Erin <erin@example.org>\r\n" +
	"Subject: parts\r\n" +
	"MIME-Version: 1.0\r\n" +
	"Content-Type: multipart/mixed; boundary=\"b\"\r\n" +
	"\r\n" +
	"prologue\r\n" +
	"--b\r\n" +
	"Content-Type: application/octet-stream\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"AAEC/w==\r\n" +
	"--b\r\n" +
	"Content-Type: message/rfc822\r\n" +
	"\r\n" +
	"From: inner@example.net\r\n" +
	"Subject: inner\r\n" +
	"X-Extra: yes\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"aW5uZXIgdGV4dA==\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: x-rot13\r\n" +
	"\r\n" +
	"uryyb\r\n" +
	"--b\r\n" +
	"Content-Type: text/plain; charset=iso-8859-1\r\n" +
	"Content-Transfer-Encoding: quoted-printable\r\n" +
	"\r\n" +
	"caf=E9\r\n" +
	"--b--\r\n"

// singleMsg is a message whose body is one base64 leaf.
const singleMsg = "From: Erin <erin@example.org>\r\n" +
	"Subject: single\r\n" +
	"Content-Type: text/plain\r\n" +
	"Content-Transfer-Encoding: base64\r\n" +
	"\r\n" +
	"c2luZ2xlIGJvZHk=\r\n"

// literal returns what raw.cmd makes of a FETCH item with a literal8
// value.
func literal(item, value string) string {
	return item + " ~{" + itoa(len(value)) + "}\n" + value
}

// RFC 3516, RFC 9051 §6.4.5: BINARY[n] decodes the part's transfer encoding;
// BINARY.SIZE is the decoded size.
func TestBinaryPartNumbers(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", binaryMsg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")

	u := r.expectOK("FETCH 1 (BINARY.PEEK[1] BINARY.SIZE[1])")
	mustHave(t, u, literal("BINARY[1]", "\x00\x01\x02\xff"), "BINARY.SIZE[1] 4")
	u = r.expectOK("FETCH 1 BINARY.PEEK[1]<1.2>")
	// The origin of a partial fetch is in the response, as for BODY.
	mustHave(t, u, literal("BINARY[1]<1>", "\x01\x02"))
	u = r.expectOK("FETCH 1 (BINARY.PEEK[2.1] BINARY.SIZE[2.1])")
	mustHave(t, u, literal("BINARY[2.1]", "inner text"), "BINARY.SIZE[2.1] 10")
	// A charset is no transfer encoding: the octets stay as they are.
	u = r.expectOK("FETCH 1 (BINARY.PEEK[4] BINARY.SIZE[4])")
	mustHave(t, u, literal("BINARY[4]", "caf\xe9"), "BINARY.SIZE[4] 4")
	u = r.expectOK("FETCH 1 BINARY.SIZE[9]")
	mustHave(t, u, "BINARY.SIZE[9] 0")

	// RFC 9051 §6.4.5: an encoding the server cannot decode is NO
	// [UNKNOWN-CTE], for the part and for its size.
	r.expectStatus("FETCH 1 BINARY.PEEK[3]", "NO [UNKNOWN-CTE]")
	r.expectStatus("FETCH 1 BINARY.SIZE[3]", "NO [UNKNOWN-CTE]")
	// BODY gives the part as stored.
	u = r.expectOK("FETCH 1 BODY.PEEK[3]")
	mustHave(t, u, "BODY[3] {5}\nuryyb")
}

// Dovecot takes BODY's section-text in BINARY[...] as well, and imaptest's
// fetch-binary-mime expects it: the same octets as BODY[same section],
// except that the TEXT of a leaf is decoded as BINARY[n] is.
func TestBinarySectionText(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", binaryMsg)
	e.deliver(e.aliceID, "", singleMsg)
	e.deliver(e.aliceID, "", multipartMsg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")

	// Each BINARY section below that is not a leaf's TEXT is BODY's.
	for _, c := range []struct{ seq, section string }{
		{"1", "1.MIME"},
		{"1", "2.MIME"},
		{"1", "2.HEADER"},
		{"1", "2.HEADER.FIELDS (subject X-Extra x-none)"},
		{"1", "2.HEADER.FIELDS.NOT (Subject x-extra)"},
		{"1", "3.MIME"},
		{"1", "HEADER"},
		{"1", "TEXT"}, // a multipart: nothing to decode
		{"2", "HEADER.FIELDS (Subject)"},
		{"3", "2.TEXT"}, // a leaf without transfer encoding
		{"3", "1.MIME"},
	} {
		body := r.expectOK("FETCH " + c.seq + " BODY.PEEK[" + c.section + "]")
		value := body[0][strings.Index(body[0], "}\n")+2 : len(body[0])-1]
		item := "[" + strings.ToUpper(c.section) + "]"
		if i := strings.IndexByte(item, '('); i >= 0 {
			item = item[:i] // the field names come back quoted
		}
		u := r.expectOK("FETCH " + c.seq + " (BINARY.PEEK[" + c.section + "] BINARY.SIZE[" + c.section + "])")
		mustHave(t, u, "BINARY"+item, "~{"+itoa(len(value))+"}\n"+value)
		mustHave(t, u, "BINARY.SIZE"+item, "] "+itoa(len(value))+")")
	}
	u := r.expectOK("FETCH 1 BINARY.PEEK[2.HEADER.FIELDS (subject X-Extra)]")
	mustHave(t, u, literal(`BINARY[2.HEADER.FIELDS ("subject" "X-Extra")]`, "Subject: inner\r\nX-Extra: yes\r\n\r\n"))

	// The TEXT of a message whose body is a leaf is that leaf decoded.
	u = r.expectOK("FETCH 1 (BINARY.PEEK[2.TEXT] BINARY.SIZE[2.TEXT])")
	mustHave(t, u, literal("BINARY[2.TEXT]", "inner text"), "BINARY.SIZE[2.TEXT] 10")
	u = r.expectOK("FETCH 2 (BINARY.PEEK[TEXT] BINARY.SIZE[TEXT])")
	mustHave(t, u, literal("BINARY[TEXT]", "single body"), "BINARY.SIZE[TEXT] 11")
	u = r.expectOK("FETCH 2 BINARY.PEEK[TEXT]<7.4>")
	mustHave(t, u, literal("BINARY[TEXT]<7>", "body"))
	u = r.expectOK("FETCH 1 BINARY.PEEK[2.HEADER]<0.5>")
	mustHave(t, u, literal("BINARY[2.HEADER]<0>", "From:"))
	// A leaf's own TEXT (not a message): its content, decoded, as BINARY[n].
	u = r.expectOK("FETCH 1 BINARY.PEEK[1.TEXT]")
	mustHave(t, u, literal("BINARY[1.TEXT]", "\x00\x01\x02\xff"))
	r.expectStatus("FETCH 1 BINARY.PEEK[3.TEXT]", "NO [UNKNOWN-CTE]")
	// Header sections are never decoded, whatever the part's encoding.
	u = r.expectOK("FETCH 1 BINARY.SIZE[3.MIME]")
	mustHave(t, u, "BINARY.SIZE[3.MIME] ")

	// Without .PEEK the message is seen, as with BODY; BINARY.SIZE does
	// not set \Seen.
	u = r.expectOK("FETCH 2 BINARY.SIZE[HEADER]")
	mustNotHave(t, u, `\Seen`)
	u = r.expectOK("FETCH 2 BINARY[HEADER]")
	mustHave(t, u, `\Seen`)

	// What BODY refuses, BINARY refuses too.
	for _, item := range []string{
		"BINARY.PEEK[1.FOO]", "BINARY.PEEK[1.]", "BINARY.PEEK[FOO]", "BINARY.PEEK[1.HEADER.FIELDS]",
		"BINARY.PEEK[1.MIME", "BINARY.SIZE[TEXT]<0.1>", "BINARY.PEEK[1.2.]",
	} {
		r.expectStatus("FETCH 1 "+item, "BAD")
	}
}

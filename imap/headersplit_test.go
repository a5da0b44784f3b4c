package imap

import (
	"fmt"
	"strings"
	"testing"
)

// bodyLiteral returns what raw.cmd makes of a FETCH item with a literal
// value.
func bodyLiteral(item, value string) string {
	return fmt.Sprintf("%s {%d}\n%s", item, len(value), value)
}

// A header line that is not a field (no colon; a control character or a
// space in the name; a first line that starts with white space) does not
// end the header: the header ends at the first empty line (RFC 5322
// §2.1), and the line stays in it, as Dovecot keeps it. So BODY[HEADER]
// and BODY[TEXT] together are BODY[], and every reader of sections
// (FETCH, SEARCH, ENVELOPE, BODYSTRUCTURE) sees the body that BODY[]
// shows. Before, the header parser stopped at such a line and the
// sections came out empty, hiding the body from clients and scanners
// that read sections.
func TestHeaderSplitWithMalformedLines(t *testing.T) {
	type hostile struct {
		header, text string
		junk         string // a word of the malformed line
		body         string // a word of the body
	}
	msgs := []hostile{
		{"From: Carol <carol@example.org>\r\nSubject: hostile one\r\nThis line has no colon\r\nX-After: two\r\n\r\n",
			"body text zebra\r\n", "colon", "zebra"},
		{"From: Carol <carol@example.org>\r\nSubject: hostile two\r\nBad\x01Name: ctl\r\nX-After: two\r\n\r\n",
			"body text yak\r\n", "ctl", "yak"},
		{"From: Carol <carol@example.org>\r\nSubject: hostile three\r\nBad Name: spaced\r\nX-After: two\r\n\r\n",
			"body text gnu\r\n", "spaced", "gnu"},
		{" leading white space\r\nFrom: Carol <carol@example.org>\r\nSubject: hostile four\r\nX-After: two\r\n\r\n",
			"body text okapi\r\n", "leading", "okapi"},
		// All header, the last line no field: BODY[TEXT] is empty.
		{"From: Carol <carol@example.org>\r\nSubject: hostile five\r\nX-After: two\r\nno colon at the end", "", "", ""},
	}
	e := newEnv(t)
	for _, m := range msgs {
		e.deliver(e.aliceID, "", m.header+m.text)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	for i, m := range msgs {
		seq := i + 1
		fetch := func(item string) []string {
			return r.expectOK(fmt.Sprintf("FETCH %d %s", seq, item))
		}
		u := fetch("BODY.PEEK[]")
		mustHave(t, u, bodyLiteral("BODY[]", m.header+m.text))
		u = fetch("BODY.PEEK[HEADER]")
		mustHave(t, u, bodyLiteral("BODY[HEADER]", m.header))
		u = fetch("RFC822.HEADER")
		mustHave(t, u, bodyLiteral("RFC822.HEADER", m.header))
		u = fetch("BODY.PEEK[TEXT]")
		mustHave(t, u, bodyLiteral("BODY[TEXT]", m.text))
		u = fetch("BINARY.PEEK[TEXT]")
		mustHave(t, u, fmt.Sprintf("BINARY[TEXT] ~{%d}\n%s", len(m.text), m.text))
		u = fetch("BODY.PEEK[HEADER.FIELDS (X-After Subject)]")
		mustHave(t, u, bodyLiteral(`BODY[HEADER.FIELDS ("X-After" "Subject")]`,
			fmt.Sprintf("Subject: %s\r\nX-After: two\r\n\r\n", strings.TrimSpace(strings.SplitN(strings.SplitN(m.header, "Subject:", 2)[1], "\r\n", 2)[0]))))
		u = fetch("ENVELOPE")
		mustHave(t, u, `"hostile `, `(("Carol" NIL "carol" "example.org"))`)
		u = fetch("BODYSTRUCTURE")
		mustHave(t, u, fmt.Sprintf(`("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" %d %d`, len(m.text), strings.Count(m.text, "\n")))

		want := fmt.Sprintf("* SEARCH %d", seq)
		u = r.expectOK("SEARCH HEADER X-After two")
		mustHave(t, u, "* SEARCH 1 2 3 4 5")
		u = r.expectOK("SEARCH SUBJECT " + strings.Fields(strings.SplitN(m.header, "Subject: ", 2)[1])[1])
		mustHave(t, u, want)
		if m.body != "" {
			u = r.expectOK("SEARCH BODY " + m.body)
			mustHave(t, u, want)
			u = r.expectOK("SEARCH TEXT " + m.body)
			mustHave(t, u, want)
			// The malformed line is header, not body (as in Dovecot).
			u = r.expectOK("SEARCH BODY " + m.junk)
			mustNotHave(t, u, want)
		}
	}
}

// The same holds for the header of a message/rfc822 part: its HEADER and
// TEXT sections split at the empty line, and SEARCH BODY finds the text.
func TestHeaderSplitOfNestedMessage(t *testing.T) {
	const inner = "Subject: inner\r\ninner junk line\r\nX-I: 2\r\n\r\n"
	const msg = "From: Carol <carol@example.org>\r\nSubject: nest\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\npart body wombat\r\n" +
		"--b\r\nContent-Type: message/rfc822\r\n\r\n" + inner + "inner body lemur\r\n--b--\r\n"
	e := newEnv(t)
	e.deliver(e.aliceID, "", msg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1 BODY.PEEK[2.HEADER]")
	mustHave(t, u, bodyLiteral("BODY[2.HEADER]", inner))
	u = r.expectOK("FETCH 1 BODY.PEEK[2.TEXT]")
	mustHave(t, u, bodyLiteral("BODY[2.TEXT]", "inner body lemur"))
	u = r.expectOK("FETCH 1 BODY.PEEK[2.HEADER.FIELDS (X-I)]")
	mustHave(t, u, bodyLiteral(`BODY[2.HEADER.FIELDS ("X-I")]`, "X-I: 2\r\n\r\n"))
	u = r.expectOK("FETCH 1 BODYSTRUCTURE")
	mustHave(t, u, fmt.Sprintf(`("message" "rfc822" NIL NIL NIL "7bit" %d (NIL "inner" `, len(inner)+len("inner body lemur")),
		`(NIL "inner" NIL NIL NIL NIL NIL NIL NIL NIL) ("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 16 0 `)
	u = r.expectOK("SEARCH BODY lemur")
	mustHave(t, u, "* SEARCH 1")
}

// A line that is not a field in the header of a multipart's part does
// not end the part list: the part and those after it are in
// BODYSTRUCTURE, part sections and SEARCH (go-message's multipart reader
// stopped there, so a scanner reading parts saw none).
func TestHeaderSplitOfMultipartPart(t *testing.T) {
	const msg = "From: Carol <carol@example.org>\r\nSubject: parts\r\n" +
		"Content-Type: multipart/mixed; boundary=b\r\n\r\n" +
		"--b\r\nContent-Type: text/plain\r\njunk part line\r\n\r\npart one quokka\r\n" +
		"--b\r\nContent-Type: text/plain\r\n\r\npart two tapir\r\n--b--\r\n"
	e := newEnv(t)
	e.deliver(e.aliceID, "", msg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1 BODY.PEEK[1]")
	mustHave(t, u, bodyLiteral("BODY[1]", "part one quokka"))
	u = r.expectOK("FETCH 1 BODY.PEEK[2]")
	mustHave(t, u, bodyLiteral("BODY[2]", "part two tapir"))
	u = r.expectOK("FETCH 1 BODYSTRUCTURE")
	mustHave(t, u, `(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 15 0 NIL NIL NIL NIL)("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 14 0 NIL NIL NIL NIL) "mixed"`)
	for _, w := range []string{"quokka", "tapir"} {
		u = r.expectOK("SEARCH BODY " + w)
		mustHave(t, u, "* SEARCH 1")
	}
}

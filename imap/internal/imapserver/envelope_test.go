// mailyard: tests for envelope.go and envelope_address.go.

package imapserver

import (
	"bufio"
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

func TestParseAddressList(t *testing.T) {
	groupStart := func(name string) Address { return Address{Mailbox: name} }
	groupEnd := Address{}
	for _, tc := range []struct {
		in   string
		want []Address
	}{
		// imaptest fetch-envelope
		{"From Real <fromuser@fromdomain.org>", []Address{{Name: "From Real", Mailbox: "fromuser", Host: "fromdomain.org"}}},
		{"user@domain", []Address{{Mailbox: "user", Host: "domain"}}},
		{"user@domain (Real Name)", []Address{{Name: "Real Name", Mailbox: "user", Host: "domain"}}},
		{"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;", []Address{
			groupStart("group"), {Mailbox: "g1", Host: "d1.org"}, {Mailbox: "g2", Host: "d2.org"}, groupEnd,
			groupStart("group2"), {Mailbox: "g3", Host: "d3.org"}, groupEnd}},
		{"<@route:user@domain>", []Address{{ADL: "@route", Mailbox: "user", Host: "domain"}}},
		{"", nil},
		// imaptest search-addresses: CFWS inside the addr-spec (RFC 5322 §3.4.1, §4.4)
		{"<user-from (comment)@ (comment) domain.org>", []Address{{Mailbox: "user-from", Host: "domain.org"}}},
		{"groupname: groupuser1@domain.org, groupuser2@domain.org;,  groupname2: groupuser3@domain.org;", []Address{
			groupStart("groupname"), {Mailbox: "groupuser1", Host: "domain.org"}, {Mailbox: "groupuser2", Host: "domain.org"}, groupEnd,
			groupStart("groupname2"), {Mailbox: "groupuser3", Host: "domain.org"}, groupEnd}},
		// display names: quotes removed, encoded-words kept
		{`"Doe, John" <john@example.org>`, []Address{{Name: "Doe, John", Mailbox: "john", Host: "example.org"}}},
		{`"a \"q\" b" <a@b>`, []Address{{Name: `a "q" b`, Mailbox: "a", Host: "b"}}},
		{"=?iso-8859-1?q?J=F6rg?= <j@x.org>", []Address{{Name: "=?iso-8859-1?q?J=F6rg?=", Mailbox: "j", Host: "x.org"}}},
		{"John Q. Public <jqp@x.org>", []Address{{Name: "John Q. Public", Mailbox: "jqp", Host: "x.org"}}},
		{"<@a.example,@b.example:u@d>", []Address{{ADL: "@a.example,@b.example", Mailbox: "u", Host: "d"}}},
		{"undisclosed-recipients:;", []Address{groupStart("undisclosed-recipients"), groupEnd}},
		{`"first last"@example.org`, []Address{{Mailbox: `"first last"`, Host: "example.org"}}},
		{"a@[192.0.2.1]", []Address{{Mailbox: "a", Host: "[192.0.2.1]"}}},
		{"a@b, , ,c@d", []Address{{Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"root", []Address{{Mailbox: "root", Host: missingDomain}}},
		// malformed: only the broken element goes
		{"a@b.c, broken@@x, c@d.e", []Address{{Mailbox: "a", Host: "b.c"}, {Mailbox: "c", Host: "d.e"}}},
		{"John Smith, x@y", []Address{{Mailbox: "x", Host: "y"}}},
		{"A <a@b, c@d", []Address{{Name: "A", Mailbox: "a", Host: "b"}, {Mailbox: "c", Host: "d"}}},
		{"<a:b@c>, d@e", []Address{{Mailbox: "d", Host: "e"}}},
		{"<>", nil},
		{"g: a@b", []Address{groupStart("g"), {Mailbox: "a", Host: "b"}, groupEnd}},
		{"g: (unterminated", []Address{groupStart("g"), groupEnd}},
		{`"unterminated <a@b>`, nil},
		{":;", nil},
		{"a) <a@b>", []Address{{Name: "a)", Mailbox: "a", Host: "b"}}}, // once looped forever
	} {
		if got := ParseAddressList(tc.in); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("ParseAddressList(%q)\n got %+v\nwant %+v", tc.in, got, tc.want)
		}
	}
}

func TestExtractEnvelope(t *testing.T) {
	hdr := "Message-ID: <msg@id>\r\n" +
		"Date: Sat, 01 Feb 2007 01:02:03 +0200\r\n" + // wrong weekday on purpose
		"Subject: =?iso-8859-1?q?h=E9llo?=\r\n world\r\n" +
		"Subject: second one is ignored\r\n" +
		"from: a@b.c\r\n" +
		"Reply-To: \r\n" +
		"In-Reply-To: <x@y>\r\n\t<z@w>\r\n" +
		"\r\n" +
		"To: not@header\r\n"
	got := ExtractEnvelope([]byte(hdr))
	want := &Envelope{
		Date:      "Sat, 01 Feb 2007 01:02:03 +0200",
		Subject:   "=?iso-8859-1?q?h=E9llo?= world",
		From:      []Address{{Mailbox: "a", Host: "b.c"}},
		InReplyTo: "<x@y>\t<z@w>",
		MessageID: "<msg@id>",
	}
	want.Sender, want.ReplyTo = want.From, want.From
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if env := ExtractEnvelope([]byte("Date: bogus date\nX: y\n")); env.Date != "bogus date" {
		t.Errorf("bogus Date: %q", env.Date)
	}
}

func TestWriteEnvelope(t *testing.T) {
	env := ExtractEnvelope([]byte("Date: Sat, 01 Feb 2007 01:02:03 +0200\r\nFrom: <@route:user@domain>\r\n" +
		"To: group: g1@d1.org;\r\nSubject: caf\xc3\xa9\r\n\r\n"))
	for _, tc := range []struct {
		utf8 bool
		want string
	}{
		{false, `("Sat, 01 Feb 2007 01:02:03 +0200" "=?utf-8?q?caf=C3=A9?=" ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL NIL NIL)) NIL NIL NIL NIL)`},
		{true, `("Sat, 01 Feb 2007 01:02:03 +0200" "café" ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL NIL NIL)) NIL NIL NIL NIL)`},
	} {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		enc := imapwire.NewEncoder(bw, imapwire.ConnSideServer)
		enc.QuotedUTF8 = tc.utf8
		writeEnvelope(enc, env)
		if err := bw.Flush(); err != nil {
			t.Fatal(err)
		}
		if got := buf.String(); got != tc.want {
			t.Errorf("utf8=%v\n got %s\nwant %s", tc.utf8, got, tc.want)
		}
	}
}

// FuzzParseAddressList: any input parses without panicking, in work
// linear in its length, into addresses the writer can send.
func FuzzParseAddressList(f *testing.F) {
	for _, s := range []string{
		"group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;", "<@route:user@domain>",
		"<user-from (comment)@ (comment) domain.org>", "a@b.c, broken@@x, c@d.e",
		`"a \" b" <a@b>`, "((((((", `"`, "<@a,@b", "g:;;;:<>@@..",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		l := ParseAddressList(s)
		if len(l) > len(s) {
			t.Fatalf("%d addresses from %d bytes", len(l), len(s))
		}
		depth := 0
		for _, a := range l {
			switch {
			case a.IsGroupEnd():
				depth--
			case a.IsGroupStart():
				depth++
			case a.Mailbox == "":
				t.Fatalf("address without mailbox: %+v", a)
			}
			if depth < 0 || depth > 1 {
				t.Fatalf("unbalanced group markers in %+v", l)
			}
		}
		if depth != 0 {
			t.Fatalf("unclosed group in %+v", l)
		}
	})
}

// FuzzExtractEnvelope: any header block yields an envelope.
func FuzzExtractEnvelope(f *testing.F) {
	f.Add([]byte("From: a@b\r\nSubject: x\r\n y\r\n\r\nbody"))
	f.Add([]byte("\r\n\r\n"))
	f.Add([]byte(" continuation first\nFrom:\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		if ExtractEnvelope(b) == nil {
			t.Fatal("nil envelope")
		}
	})
}

// TestParseAddressListLinear: a header larger than the largest header
// block FETCH reads (msgheader.MaxBlockBytes) is parsed quickly (only its
// first 128 KiB);
// inputs like these took minutes when every ":" rescanned the address
// being built.
func TestParseAddressListLinear(t *testing.T) {
	// Each shape is parsed at two sizes 8x apart: linear parsing takes
	// about 8x as long, quadratic 64x. The fastest of a few runs is
	// compared, so a loaded machine (CI runs every package at once)
	// does not decide the verdict as an absolute time limit did.
	shapes := []func(n int) string{
		func(n int) string { return strings.Repeat("a.", n) + "a@b" + strings.Repeat(":", 2*n) },
		func(n int) string { return strings.Repeat(":x", 4*n) },
		func(n int) string { return strings.Repeat("w ", n) + "<a>" + strings.Repeat(":", 2*n) },
	}
	// The two sizes take turns, so a stall of the machine hits both
	// rather than all runs of one.
	fastest := func(small, large string) (ts, tl time.Duration) {
		ts, tl = time.Duration(1<<63-1), time.Duration(1<<63-1)
		timed := func(s string) time.Duration {
			start := time.Now()
			ParseAddressList(s)
			return time.Since(start)
		}
		for range 7 {
			ts = min(ts, timed(small))
			tl = min(tl, timed(large))
		}
		return max(ts, time.Microsecond), max(tl, time.Microsecond)
	}
	for i, shape := range shapes {
		small, large := shape(1<<13), shape(1<<16)
		ts, tl := fastest(small, large)
		ratio := float64(tl) / float64(ts)
		t.Logf("shape %d: %v -> %v (%.1fx)", i, ts, tl, ratio)
		if ratio > 24 {
			t.Errorf("shape %d: %d bytes took %v, %d bytes %v (%.0fx for 8x the input)", i, len(small), ts, len(large), tl, ratio)
		}
	}
}

// ENVELOPE is read from the header BODY[HEADER] returns, to its first
// empty line: a line of CRs before the CRLF is not empty (it did end
// ENVELOPE's own scan, which lost the fields after it).
func TestEnvelopeReadsTheWholeHeader(t *testing.T) {
	msg := "Subject: first\r\n\r\r\nFrom: a@example.org\r\n\r\nFrom: body@example.org\r\n"
	hdr := bodySection(msg, &imap.FetchItemBodySection{Specifier: imap.PartSpecifierHeader})
	if string(hdr) != "Subject: first\r\n\r\r\nFrom: a@example.org\r\n\r\n" {
		t.Fatalf("BODY[HEADER] %q", hdr)
	}
	env := ExtractEnvelope([]byte(msg))
	if env.Subject != "first" || len(env.From) != 1 || env.From[0].Addr() != "a@example.org" {
		t.Fatalf("ENVELOPE %+v", env)
	}
}

package imap

import (
	"strings"
	"testing"
)

// TestEnvelopeFromRawHeader: ENVELOPE carries the header's strings as
// they are and its address lists with groups and source routes (RFC 9051
// §7.5.2; the cases of imaptest's fetch-envelope).
func TestEnvelopeFromRawHeader(t *testing.T) {
	e := newEnv(t)
	msgs := []string{
		"Message-ID: <msg@id>\r\nIn-Reply-To: <reply@to.id>\r\nDate: Sat, 01 Feb 2007 01:02:03 +0200\r\n" +
			"Subject: subject header\r\nFrom: From Real <fromuser@fromdomain.org>\r\nTo: To Real <touser@todomain.org>\r\n" +
			"Cc: Cc Real <ccuser@ccdomain.org>\r\nBcc: Bcc Real <bccuser@bccdomain.org>\r\n" +
			"Sender: Sender Real <senderuser@senderdomain.org>\r\nReply-To: ReplyTo Real <replytouser@replytodomain.org>\r\n\r\nbody\r\n",
		"Date: Sat, 01 Feb 2007 01:02:03 +0200\r\nFrom: user@domain (Real Name)\r\n" +
			"To: group: g1@d1.org, g2@d2.org;, group2: g3@d3.org;\r\nSender: \r\nReply-To: \r\n\r\nbody\r\n",
		"From: <@route:user@domain>\r\nDate: bogus date\r\nSubject: =?iso-8859-1?q?h=E9llo?=\r\n world\r\n\r\nbody\r\n",
		"From: a@b.c, broken@@x, c@d.e\r\nTo: <user-to (comment)@ (comment) domain.org>\r\n\r\nbody\r\n",
	}
	for _, m := range msgs {
		e.deliver(e.aliceID, "", m)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1:* ENVELOPE")
	for _, want := range []string{
		`* 1 FETCH (ENVELOPE ("Sat, 01 Feb 2007 01:02:03 +0200" "subject header" (("From Real" NIL "fromuser" "fromdomain.org")) (("Sender Real" NIL "senderuser" "senderdomain.org")) (("ReplyTo Real" NIL "replytouser" "replytodomain.org")) (("To Real" NIL "touser" "todomain.org")) (("Cc Real" NIL "ccuser" "ccdomain.org")) (("Bcc Real" NIL "bccuser" "bccdomain.org")) "<reply@to.id>" "<msg@id>"))`,
		`* 2 FETCH (ENVELOPE ("Sat, 01 Feb 2007 01:02:03 +0200" NIL (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) (("Real Name" NIL "user" "domain")) ((NIL NIL "group" NIL) (NIL NIL "g1" "d1.org") (NIL NIL "g2" "d2.org") (NIL NIL NIL NIL) (NIL NIL "group2" NIL) (NIL NIL "g3" "d3.org") (NIL NIL NIL NIL)) NIL NIL NIL NIL))`,
		`* 3 FETCH (ENVELOPE ("bogus date" "=?iso-8859-1?q?h=E9llo?= world" ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) ((NIL "@route" "user" "domain")) NIL NIL NIL NIL NIL))`,
		`* 4 FETCH (ENVELOPE (NIL NIL ((NIL NIL "a" "b.c") (NIL NIL "c" "d.e")) ((NIL NIL "a" "b.c") (NIL NIL "c" "d.e")) ((NIL NIL "a" "b.c") (NIL NIL "c" "d.e")) ((NIL NIL "user-to" "domain.org")) NIL NIL NIL NIL))`,
	} {
		mustHave(t, u, want)
	}
}

// TestBodyStructureEnvelope: the ENVELOPE inside the BODYSTRUCTURE of a
// message/rfc822 part is taken from that part's header as it is, too.
func TestBodyStructureEnvelope(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", "From: outer@example.org\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n"+
		"--b\r\nContent-Type: message/rfc822\r\n\r\n"+
		"Date: Sat, 01 Feb 2007 01:02:03 +0200\r\nSubject: =?utf-8?q?inner?=\r\nFrom: <@r:in@example.org>\r\n"+
		"Content-Type: multipart/mixed\r\n\r\nno boundary\r\n"+
		"--b--\r\n")
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1 BODYSTRUCTURE")
	mustHave(t, u, `("Sat, 01 Feb 2007 01:02:03 +0200" "=?utf-8?q?inner?=" ((NIL "@r" "in" "example.org")) ((NIL "@r" "in" "example.org")) ((NIL "@r" "in" "example.org")) NIL NIL NIL NIL NIL)`,
		// the inner multipart without parts still gets one (RFC 9051 §9)
		`(("text" "plain" ("charset" "us-ascii") NIL NIL "7bit" 0 0`)
}

// TestSearchAddressesOnEnvelope: FROM/TO/CC/BCC match the envelope's
// address fields (RFC 9051 §6.4.4), so comments inside the addr-spec do
// not hide an address; names, substrings and groups still match
// (imaptest's search-addresses).
func TestSearchAddressesOnEnvelope(t *testing.T) {
	e := newEnv(t)
	for _, m := range []string{
		"From: user-from@domain.org\r\nTo: user-to@domain.org\r\n\r\nbody\r\n",
		"From: RealFrom <user-from@domain.org>\r\n\r\nbody\r\n",
		"From: <user-from (comment)@ (comment) domain.org>\r\n\r\nbody\r\n",
		"From: user-from@domain.org (RealFrom)\r\n\r\nbody\r\n",
		"From: =?utf-8?q?J=C3=B6rg?= <j@x.org>\r\n\r\nbody\r\n",
		"To: groupname: groupuser1@domain.org, groupuser2@domain.org;,\r\n  groupname2: groupuser3@domain.org;\r\n\r\nbody\r\n",
	} {
		e.deliver(e.aliceID, "", m)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"SEARCH FROM user-from@domain.org", "* SEARCH 1 2 3 4"},
		{"SEARCH FROM realfrom", "* SEARCH 2 4"},
		{"SEARCH FROM ser-fro", "* SEARCH 1 2 3 4"},
		{"SEARCH FROM \"RealFrom <user-from@\"", "* SEARCH 2 4"}, // 4: the comment is its name
		{"SEARCH CHARSET UTF-8 FROM j\u00f6rg", "* SEARCH 5"},
		{"SEARCH TO groupname2", "* SEARCH 6"},
		{"SEARCH TO groupuser3", "* SEARCH 6"},
		{"SEARCH TO groupuser4", "* SEARCH"},
		{"SEARCH HEADER FROM \"\"", "* SEARCH 1 2 3 4 5"},
	} {
		u := r.expectOK(tc.cmd)
		found := false
		for _, l := range u {
			if strings.TrimSpace(l) == tc.want {
				found = true
			}
		}
		if !found {
			t.Errorf("%s: want %q, got %q", tc.cmd, tc.want, u)
		}
	}
}

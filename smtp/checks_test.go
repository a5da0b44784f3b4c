package smtp

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"regexp"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/emersion/go-message"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-message/textproto"
	"pgregory.net/rapid"
)

func TestSenderRouting(t *testing.T) {
	cases := map[string]string{
		"user@example.test":             "",
		"user+tag@example.test":         "",
		"user%remote.test@example.test": "percent-hack",
		"remote!user@example.test":      "bang-path",
		"user@remote.test@example.test": "quoted-at",
		"user@[192.0.2.1]":              "address-literal",
		"user@[IPv6:2001:db8::1]":       "address-literal",
	}
	for addr, want := range cases {
		if got := senderRouting(addr); got != want {
			t.Errorf("senderRouting(%q) = %q, want %q", addr, got, want)
		}
	}
}

func TestAddressSyntax(t *testing.T) {
	for addr, ok := range map[string]bool{
		"a@b": true, "@b": false, "a@": false, "ab": false, "a\x00@b": false, "a\rb@c": false,
		strings.Repeat("a", 250) + "@b.c": true, strings.Repeat("a", 251) + "@b.c": false, "ü@例え.jp": true,
	} {
		if got := addressSyntax(addr) == ""; got != ok {
			t.Errorf("addressSyntax(%q) ok=%v, want %v", addr, got, ok)
		}
	}
}

func TestSendSet(t *testing.T) {
	s := newSendSet([]string{"Alice@Example.test", "team@example.test"})
	for addr, want := range map[string]bool{
		"alice@example.test": true, "ALICE@EXAMPLE.TEST": true, "alice+x@example.test": true,
		"team+x@example.test": true, "bob@example.test": false, "": false, "alice@example.test.evil": false,
		"+alice@example.test": false, "alice@example.test+x": false,
	} {
		if got := s.allows(addr); got != want {
			t.Errorf("allows(%q) = %v, want %v", addr, got, want)
		}
	}
}

func TestReadHeaderBlock(t *testing.T) {
	msg := "A: 1\r\nB: " + strings.Repeat("x", 5000) + "\r\n\r\nbody\r\n"
	br := bufio.NewReaderSize(strings.NewReader(msg), 16)
	h, err := readHeaderBlock(br, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	rest, _ := io.ReadAll(br)
	if string(h)+string(rest) != msg || string(rest) != "body\r\n" {
		t.Errorf("split %q | %q", h, rest)
	}
	if _, err := readHeaderBlock(bufio.NewReader(strings.NewReader(msg)), 100); err != errHeaderTooLarge {
		t.Errorf("over the bound: %v", err)
	}
	h, err = readHeaderBlock(bufio.NewReader(strings.NewReader("A: 1\r\n")), 100)
	if err != nil || string(h) != "A: 1\r\n" {
		t.Errorf("header-only message: %q %v", h, err)
	}
}

func TestTraceHeaders(t *testing.T) {
	got := string(traceHeaders(traceInfo{
		From: "a@b", Helo: "evil (fake)\r;x", IP: netip.MustParseAddr("2001:db8::1"), Hostname: "mx.test",
		TLS: true, UTF8: true, ID: "ID1", Recipient: "r@x", Date: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
	}))
	want := "Return-Path: <a@b>\r\nReceived: from evil??fake???x (unknown [IPv6:2001:db8::1])\r\n" +
		"\tby mx.test (Mailyard) with UTF8SMTPS id ID1\r\n\tfor <r@x>;\r\n\tThu, 02 Jan 2025 03:04:05 +0000\r\n"
	if got != want {
		t.Errorf("got\n%q\nwant\n%q", got, want)
	}
	for _, tc := range []struct {
		utf8, tls, auth bool
		want            string
	}{{false, false, false, "ESMTP"}, {false, true, false, "ESMTPS"}, {false, false, true, "ESMTPA"},
		{false, true, true, "ESMTPSA"}, {true, true, true, "UTF8SMTPSA"}} {
		if got := withProtocol(tc.utf8, tc.tls, tc.auth); got != tc.want {
			t.Errorf("withProtocol(%v,%v,%v) = %s", tc.utf8, tc.tls, tc.auth, got)
		}
	}
	if got := addressLiteral(netip.MustParseAddr("::ffff:192.0.2.1")); got != "[192.0.2.1]" {
		t.Errorf("mapped IPv4 literal %s", got)
	}
}

// normalizeReference is the obvious whole-buffer version of lineNormalizer.
func normalizeReference(b []byte) []byte {
	var out []byte
	for i := 0; i < len(b); i++ {
		switch {
		case b[i] == '\r' && i+1 < len(b) && b[i+1] == '\n':
			out = append(out, '\r', '\n')
			i++
		case b[i] == '\r' || b[i] == '\n':
			out = append(out, '\r', '\n')
		default:
			out = append(out, b[i])
		}
	}
	return out
}

var bareLineEnd = regexp.MustCompile(`\r[^\n]|[^\r]\n|^\n|\r$`)

func TestLineNormalizer(t *testing.T) {
	in := "a\nb\rc\r\nd\r\r\ne\n\n.\n\r"
	got, err := io.ReadAll(newLineNormalizer(strings.NewReader(in)))
	if err != nil {
		t.Fatal(err)
	}
	if want := "a\r\nb\r\nc\r\nd\r\n\r\ne\r\n\r\n.\r\n\r\n"; string(got) != want {
		t.Errorf("got %q, want %q", got, want)
	}
	rapid.Check(t, func(rt *rapid.T) {
		in := rapid.SliceOf(rapid.SampledFrom([]byte("\r\n.a\x00"))).Draw(rt, "in")
		var r io.Reader = bytes.NewReader(in)
		if rapid.Bool().Draw(rt, "one-byte reads") {
			r = iotest.OneByteReader(r)
		}
		n := newLineNormalizer(r)
		var got []byte
		buf := make([]byte, rapid.IntRange(1, 7).Draw(rt, "read size"))
		for {
			k, err := n.Read(buf)
			got = append(got, buf[:k]...)
			if err == io.EOF {
				break
			}
			if err != nil {
				rt.Fatal(err)
			}
		}
		if want := normalizeReference(in); !bytes.Equal(got, want) {
			rt.Fatalf("got %q, want %q", got, want)
		}
		if loc := bareLineEnd.FindIndex(got); loc != nil {
			rt.Fatalf("bare line ending at %d in %q", loc[0], got)
		}
	})
}

func TestCheckHeaderSendersParsesOnlyTheBlock(t *testing.T) {
	may := newSendSet([]string{"a@example.test"})
	if _, r := checkHeaderSenders([]byte("From: a@example.test\r\n\r\n"), may); r != nil {
		t.Errorf("own address refused: %v", r)
	}
	if _, r := checkHeaderSenders([]byte("From: =?utf-8?q?B=C3=B6b?= <b@example.test>\r\n\r\n"), may); r == nil || r.Code != 550 {
		t.Errorf("encoded display name hid a foreign address: %v", r)
	}
	if _, r := checkHeaderSenders([]byte("From: undisclosed:;\r\n\r\n"), may); r == nil {
		t.Error("From with an empty group accepted")
	}
}

// FuzzCheckHeaderSenders: for any header block, the check does not panic,
// and when it accepts, every From and Sender address is one the user may
// use, as an independent parse of the same block confirms.
func FuzzCheckHeaderSenders(f *testing.F) {
	for _, s := range []string{
		"From: a@example.test\r\n\r\n",
		"From: A <a@example.test>, b@example.test\r\nSender: a@example.test\r\n\r\n",
		"From: a@example.test\r\nFrom: b@example.test\r\n\r\n",
		"From:\r\n a@example.test\r\n\r\n",
		"From: \"x@example.test\" <b@example.test>\r\n\r\n",
		"From: =?utf-8?b?w7w=?= <a@example.test>\r\n\r\n",
		" bad first line\r\n\r\n",
		"From: a@example.test (comment) \r\nSender: <a@example.test>\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	may := newSendSet([]string{"a@example.test", "a+x@example.test"})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > DefaultMaxHeaderBytes {
			return
		}
		block, err := readHeaderBlock(bufio.NewReader(newLineNormalizer(bytes.NewReader(data))), DefaultMaxHeaderBytes*2+1)
		if err != nil {
			t.Fatalf("readHeaderBlock: %v", err)
		}
		if _, r := checkHeaderSenders(block, may); r != nil {
			return
		}
		h, err := parseHeaderForTest(block)
		if err != nil {
			t.Fatalf("accepted a header that does not parse: %v", err)
		}
		for _, key := range []string{"From", "Sender"} {
			list, err := h.AddressList(key)
			if err != nil {
				t.Fatalf("accepted unparsable %s: %v", key, err)
			}
			for _, a := range list {
				if !may.allows(a.Address) {
					t.Fatalf("accepted %s address %q", key, a.Address)
				}
			}
		}
	})
}

// FuzzEnvelopeAddress: the envelope checks never panic, and an address that
// passes both carries no relay syntax and no control characters.
func FuzzEnvelopeAddress(f *testing.F) {
	for _, s := range []string{"a@b", "a%b@c", "b!a@c", "a@b@c", "a@[1.2.3.4]", "\x00@b", "@", "a@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		if addressSyntax(addr) != "" || senderRouting(addr) != "" {
			return
		}
		at := strings.LastIndexByte(addr, '@')
		local, domain := addr[:at], addr[at+1:]
		if strings.ContainsAny(local, "@%!") || strings.HasPrefix(domain, "[") {
			t.Fatalf("relay syntax passed: %q", addr)
		}
		if strings.ContainsFunc(addr, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			t.Fatalf("control character passed: %q", addr)
		}
		if s := headerSafe(addr); strings.ContainsAny(s, "\r\n;()<>") {
			t.Fatalf("header-unsafe: %q", s)
		}
	})
}

// FuzzLineNormalizer: no bare CR or LF ever comes out.
func FuzzLineNormalizer(f *testing.F) {
	for _, s := range []string{"a\nb", "\r\n.\r", "\n.\n", "\r\r\n", "\r"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := io.ReadAll(newLineNormalizer(iotest.HalfReader(bytes.NewReader(in))))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, normalizeReference(in)) {
			t.Fatalf("got %q", got)
		}
		if loc := bareLineEnd.FindIndex(got); loc != nil {
			t.Fatalf("bare line ending at %d in %q", loc[0], got)
		}
	})
}

func parseHeaderForTest(block []byte) (mail.Header, error) {
	th, err := textproto.ReadHeader(bufio.NewReader(bytes.NewReader(block)))
	if err != nil && err != io.EOF {
		return mail.Header{}, err
	}
	return mail.Header{Header: message.Header{Header: th}}, nil
}

package smtp

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"

	gosmtp "github.com/emersion/go-smtp"
)

// TestMXEndOfDataAfterBareCR: a last line that ends "\r\r\n" (a bare CR,
// then the line's CRLF) followed by ".\r\n" is the end of the data, as
// Postfix reads it (RFC 5321 §4.1.1.4: the end is "." alone on a line,
// and the CRLF before it ends the previous line). The client gets its
// reply at once instead of waiting for a timeout, and the transaction it
// pipelined behind the end runs as the next one (RFC 2920 §3.1). Over
// plaintext and after STARTTLS, where go-smtp reads through a new reader.
func TestMXEndOfDataAfterBareCR(t *testing.T) {
	serverTLS, clientTLS := testTLS(t)
	for _, starttls := range []bool{false, true} {
		t.Run(fmt.Sprintf("starttls=%v", starttls), func(t *testing.T) {
			ts := startServer(t, Options{TLSConfig: serverTLS})
			r := dialRaw(t, ts.addr)
			r.expect("EHLO client.test", 250)
			if starttls {
				r.expect("STARTTLS", 220)
				tc := tls.Client(r.conn, clientTLS)
				if err := tc.Handshake(); err != nil {
					t.Fatalf("handshake: %v", err)
				}
				r = &rawClient{t: t, conn: tc, r: bufio.NewReader(tc)}
				r.expect("EHLO client.test", 250)
			}
			r.write("MAIL FROM:<sender@remote.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n")
			for _, want := range []int{250, 250, 354} {
				if code, text := r.reply(); code != want {
					t.Fatalf("got %d %s, want %d", code, text, want)
				}
			}
			// A dot-stuffed line after a bare CR is unstuffed too: it is
			// at the start of a line.
			r.write("Subject: first\r\n\r\none\r\r\n..two\r\r\n.\r\n" +
				"MAIL FROM:<second@remote.test>\r\nRCPT TO:<bob@example.test>\r\nDATA\r\n")
			for i, want := range []int{250, 250, 250, 354} {
				code, text := r.reply()
				if code != want {
					t.Fatalf("reply %d after the end of data: got %d %s, want %d", i, code, text, want)
				}
				if i == 0 && !strings.Contains(text, "message accepted") {
					t.Fatalf("end of data: %d %s", code, text)
				}
			}
			r.write("Subject: second\r\n\r\nbody\r\n.\r\nQUIT\r\n")
			if code, text := r.reply(); code != 250 {
				t.Fatalf("second message: %d %s", code, text)
			}
			if code, text := r.reply(); code != 221 {
				t.Fatalf("QUIT: %d %s", code, text)
			}
			msgs := ts.store.stored()
			if len(msgs) != 2 {
				t.Fatalf("%d messages stored, want 2", len(msgs))
			}
			// The bare CRs become line ends of their own (normalize.go).
			if body := ts.store.body(t, 0); !strings.HasSuffix(body, "Subject: first\r\n\r\none\r\n\r\n.two\r\n\r\n") {
				t.Errorf("first message %q", body)
			}
			if rc := msgs[1].Delivery.Recipients; len(rc) != 1 || rc[0].Account != "bob" {
				t.Errorf("second message to %v, want bob", rc)
			}
		})
	}
}

// TestMXEndOfDataVariantsAfterBareCR: the end of data needs the CR of the
// CRLF right before the ".": a dot line after a bare CR or LF, or one that
// ends in a bare CR, is content (the smuggling variants, see
// TestMXSmuggling), also when CRs pile up.
func TestMXEndOfDataVariantsAfterBareCR(t *testing.T) {
	for _, fake := range []string{"\r\r.\r\n", "\r\r\n.\r\r\n", "\r\r\n.\r\r.\r\n", "\n\r\r.\r\n", "\r\r\n\x00.\r\n"} {
		t.Run(fmt.Sprintf("%q", fake), func(t *testing.T) {
			ts := startServer(t, Options{})
			r := dialRaw(t, ts.addr)
			r.expect("EHLO client.test", 250)
			r.expect("MAIL FROM:<sender@remote.test>", 250)
			r.expect("RCPT TO:<alice@example.test>", 250)
			r.expect("DATA", 354)
			r.write("Subject: first\r\n\r\nfirst" + fake + "RSET\r\nlast\r\n.\r\n")
			if code, text := r.reply(); code != 250 {
				t.Fatalf("end of data: %d %s", code, text)
			}
			r.expect("NOOP", 250)
			if n := len(ts.store.stored()); n != 1 {
				t.Fatalf("%d messages stored, want 1", n)
			}
			if body := ts.store.body(t, 0); !strings.HasSuffix(body, "RSET\r\nlast\r\n") {
				t.Errorf("message ended early: %q", body)
			}
		})
	}
}

// TestMXBDATBareCRDotLine: in a BDAT chunk "\r\r\n.\r\n" is content like
// any other bytes (RFC 3030 §2: the chunk size alone delimits the data).
func TestMXBDATBareCRDotLine(t *testing.T) {
	ts := startServer(t, Options{})
	r := dialRaw(t, ts.addr)
	r.expect("EHLO client.test", 250)
	r.expect("MAIL FROM:<sender@remote.test>", 250)
	r.expect("RCPT TO:<alice@example.test>", 250)
	chunk := "Subject: chunks\r\n\r\none\r\r\n.\r\nthree\r\n"
	r.write(fmt.Sprintf("BDAT %d LAST\r\n%s", len(chunk), chunk))
	if code, text := r.reply(); code != 250 {
		t.Fatalf("BDAT LAST: %d %s", code, text)
	}
	r.expect("NOOP", 250)
	if body := ts.store.body(t, 0); !strings.HasSuffix(body, "Subject: chunks\r\n\r\none\r\n\r\n.\r\nthree\r\n") {
		t.Errorf("stored %q", body)
	}
}

// FuzzDotReader checks dotReader against the definition: the data is
// split into lines after every CRLF, a line "." ends it, and one leading
// dot is removed from every other line (RFC 5321 §4.5.2). Nothing after
// the end is read, whatever the size of the reads.
func FuzzDotReader(f *testing.F) {
	for _, s := range []string{
		"a\r\n.\r\nMAIL", "a\r\r\n.\r\nQUIT\r\n", "..x\r\n.\r\n", ".\r\r\n.\r\n", "a\n.\n.\r\n",
		"a\r.\r\n\r\n.\r\n", "\r\n\x00.\r\n.\r\n", ".\rx\r\n.\r\n", "no end\r\n", "a\r\n.\r",
	} {
		f.Add([]byte(s), uint8(0))
		f.Add([]byte(s), uint8(1))
	}
	f.Fuzz(func(t *testing.T, in []byte, size uint8) {
		want, consumed, complete := dotReference(in)
		// Small and uneven fills of the buffered reader, as a network
		// gives them.
		br := bufio.NewReaderSize(iotest.HalfReader(bytes.NewReader(in)), 16)
		dr := &dotReader{br: br, limit: -1}
		var got []byte
		buf := make([]byte, int(size)%7+1)
		var err error
		for err == nil {
			var n int
			n, err = dr.Read(buf)
			got = append(got, buf[:n]...)
		}
		if !complete {
			if err != io.ErrUnexpectedEOF {
				t.Fatalf("%q without an end: %v, want io.ErrUnexpectedEOF", in, err)
			}
			return
		}
		if err != io.EOF || !bytes.Equal(got, want) {
			t.Fatalf("%q: read %q, %v; want %q, EOF", in, got, err, want)
		}
		if rest, _ := io.ReadAll(br); !bytes.Equal(rest, in[consumed:]) {
			t.Fatalf("%q: %q left after the end, want %q", in, rest, in[consumed:])
		}
	})
}

// dotReference is the DATA content of in by the definition, how many
// bytes the end line ends at, and whether there is an end line.
func dotReference(in []byte) (out []byte, consumed int, complete bool) {
	for pos := 0; pos < len(in); {
		i := bytes.Index(in[pos:], []byte("\r\n"))
		if i < 0 {
			return out, 0, false
		}
		line := in[pos : pos+i+2]
		pos += i + 2
		if string(line) == ".\r\n" {
			return out, pos, true
		}
		out = append(out, bytes.TrimPrefix(line, []byte("."))...)
	}
	return out, 0, false
}

// TestDotReaderLimit: past the limit the reader says the message is too
// large, as go-smtp's does, having given exactly the limit.
func TestDotReaderLimit(t *testing.T) {
	dr := &dotReader{br: bufio.NewReader(strings.NewReader("..abcdef\r\n.\r\n")), limit: 4}
	got, err := io.ReadAll(dr)
	if string(got) != ".abc" || err != gosmtp.ErrDataTooLarge {
		t.Fatalf("read %q, %v; want \".abc\", ErrDataTooLarge", got, err)
	}
}

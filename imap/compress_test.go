package imap

import (
	"bufio"
	"compress/flate"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
)

// deflateConn is the client side of COMPRESS=DEFLATE (RFC 4978): raw
// deflate both ways, a sync flush after each write.
type deflateConn struct {
	net.Conn
	r io.Reader
	w *flate.Writer
}

func newDeflateConn(c net.Conn, buffered io.Reader) *deflateConn {
	w, _ := flate.NewWriter(c, flate.DefaultCompression)
	return &deflateConn{Conn: c, r: flate.NewReader(io.MultiReader(buffered, c)), w: w}
}

func (d *deflateConn) Read(p []byte) (int, error) { return d.r.Read(p) }

func (d *deflateConn) Write(p []byte) (int, error) {
	n, err := d.w.Write(p)
	if err == nil {
		err = d.w.Flush()
	}
	return n, err
}

// compress turns COMPRESS DEFLATE on for r; extra is sent, compressed,
// right after the command, before its OK is read (a pipelined command).
func (r *raw) compress(extra string) {
	r.t.Helper()
	r.n++
	tag := fmt.Sprintf("t%d", r.n)
	r.send(tag + " COMPRESS DEFLATE\r\n")
	var pre []byte
	if extra != "" {
		var sb strings.Builder
		w, _ := flate.NewWriter(&sb, flate.BestCompression)
		io.WriteString(w, extra)
		w.Flush()
		pre = []byte(sb.String())
		r.send(string(pre))
	}
	if l := r.line(); l != tag+" OK DEFLATE active" {
		r.t.Fatalf("COMPRESS: got %q", l)
	}
	// What the reader buffered beyond the OK is compressed already.
	buffered, _ := r.r.Peek(r.r.Buffered())
	dc := newDeflateConn(r.conn, strings.NewReader(string(buffered)))
	// The pipelined bytes went out with a compressor of their own; this
	// one continues the stream after a sync flush, which is valid.
	r.conn = dc
	r.r = bufio.NewReader(dc)
}

func TestCompressDeflate(t *testing.T) {
	e := newEnv(t)
	big := "From: a@example.org\r\nSubject: big\r\n\r\n" + strings.Repeat("all work and no play makes jack a dull boy\r\n", 20000)
	e.deliver(e.aliceID, "", simpleMsg)
	e.deliver(e.aliceID, "", multipartMsg)
	e.deliver(e.aliceID, "", big)

	// Not before login.
	r := e.rawTLS()
	mustNotHave(t, r.expectOK("CAPABILITY"), "COMPRESS")
	r.expectStatus("COMPRESS DEFLATE", "BAD")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	mustHave(t, r.expectOK("CAPABILITY"), "COMPRESS=DEFLATE")
	r.expectStatus("COMPRESS GZIP", "BAD")

	r.compress("p1 SELECT INBOX\r\n")
	u, st := r.readUntil("p1")
	if !strings.HasPrefix(st, "OK") {
		t.Fatalf("pipelined SELECT: %q", st)
	}
	mustHave(t, u, "* 3 EXISTS")
	for i, want := range []string{simpleMsg, multipartMsg, big} {
		u := r.expectOK(fmt.Sprintf("FETCH %d BODY.PEEK[]", i+1))
		got := u[0][strings.IndexByte(u[0], '\n')+1:]
		got = strings.TrimSuffix(got, ")")
		if got != want {
			t.Fatalf("message %d: %d bytes differ from the %d stored", i+1, len(got), len(want))
		}
	}
	mustNotHave(t, r.expectOK("CAPABILITY"), "COMPRESS")
	r.expectStatus("COMPRESS DEFLATE", "NO [COMPRESSIONACTIVE]")

	// IDLE's updates come compressed too.
	r.send("i IDLE\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+") {
		t.Fatalf("IDLE: %q", l)
	}
	e.deliver(e.aliceID, "", simpleMsg)
	if l := r.line(); l != "* 4 EXISTS" {
		t.Fatalf("IDLE: got %q", l)
	}
	r.send("DONE\r\n")
	if _, st := r.readUntil("i"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	r.expectOK("LOGOUT")
}

// TestCompressAfterSTARTTLS: COMPRESS over a STARTTLS connection (RFC
// 4978 §3: TLS here never compresses, so COMPRESS is allowed).
func TestCompressAfterSTARTTLS(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", multipartMsg)
	r := e.raw()
	r.starttls(e.client)
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	r.compress("")
	r.expectOK("SELECT INBOX")
	u := r.expectOK("FETCH 1 BODY.PEEK[]")
	if !strings.Contains(u[0], "inner body giraffe") {
		t.Fatalf("got %q", u)
	}
}

// TestCompressPartialFlush: a client that ends each write with zlib's
// Z_PARTIAL_FLUSH, as isync's mbsync does, gets its answer. The bytes are
// Python zlib's (raw deflate, level 6) for "5 NAMESPACE\r\n": a fixed
// block and an empty one, not byte-aligned, after which compress/flate's
// reader would wait for more.
func TestCompressPartialFlush(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.compress("")
	partial, _ := hex.DecodeString("3255f073f4750d0e707476e5e50208")
	dc := r.conn.(*deflateConn)
	if _, err := dc.Conn.Write(partial); err != nil {
		t.Fatal(err)
	}
	if _, st := r.readUntil("5"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("NAMESPACE after a partial flush: %q", st)
	}
}

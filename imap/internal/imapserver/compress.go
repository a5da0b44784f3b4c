package imapserver

// mailyard: this file is ours, not upstream's.

import (
	"bytes"
	"compress/flate"
	"io"
	"strings"
	"sync"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
	"github.com/mailyard/mailyard/imap/internal/inflate"
)

// mailyard: COMPRESS=DEFLATE (RFC 4978).
//
// Memory: nothing is allocated before COMPRESS. Then the connection
// keeps an inflater (a 32 KiB window and its tables, some 42 KiB, and a
// 4 KiB read buffer) for as long as it lives: the client's deflate
// stream may refer back 32 KiB at any time. The deflater is taken from
// a pool for each write and given back after a sync flush
// (Z_SYNC_FLUSH, RFC 4978 §4): a fresh deflater continues the stream
// validly, since a deflate stream is a sequence of blocks and the sync
// flush ends one at a byte boundary; it only never refers back to
// earlier writes. An idle compressed connection thus holds no deflater.

// CapCompressDeflate is announced after login (RFC 4978 §3).
const CapCompressDeflate imap.Cap = "COMPRESS=DEFLATE"

// compressLevel trades ratio for CPU: flate's fastest level, as each
// write is compressed on its own.
const compressLevel = flate.BestSpeed

var deflaters sync.Pool // *flate.Writer

// handleCompress implements COMPRESS (RFC 4978 §3):
//
//	command-auth =/ compress
//	compress     = "COMPRESS" SP algorithm
func (c *Conn) handleCompress(tag string, dec *imapwire.Decoder) error {
	var alg string
	if !dec.ExpectSP() || !dec.ExpectAtom(&alg) || !dec.ExpectCRLF() {
		return dec.Err()
	}
	if err := c.checkState(imap.ConnStateAuthenticated); err != nil {
		return err
	}
	if !strings.EqualFold(alg, "DEFLATE") || !c.server.options.caps().Has(CapCompressDeflate) {
		return newClientBugError("Unknown compression algorithm")
	}
	if c.compressed {
		// TLS has no compression here (crypto/tls has none), so only a
		// second COMPRESS gets this.
		return &imap.Error{Type: imap.StatusResponseTypeNo, Code: "COMPRESSIONACTIVE", Text: "Compression is already active"}
	}
	// The OK goes out uncompressed; everything after it, both ways, is
	// compressed (RFC 4978 §3). What the client sent after the command
	// line is compressed already.
	enc := newResponseEncoder(c)
	defer enc.end()
	err := writeStatusResp(enc.Encoder, tag, &imap.StatusResponse{Type: imap.StatusResponseTypeOK, Text: "DEFLATE active"})
	if err != nil {
		return err
	}
	var pending []byte
	if n := c.br.Buffered(); n > 0 {
		b, _ := c.br.Peek(n)
		pending = bytes.Clone(b)
	}
	under := c.rw
	var src io.Reader = under
	if len(pending) > 0 {
		src = io.MultiReader(bytes.NewReader(pending), under)
	}
	c.compressed = true
	// Not compress/flate's reader: it gives nothing after a partial
	// flush, which mbsync sends (package inflate).
	c.setReadWriter(&deflateRW{r: inflate.NewReader(src), w: under})
	return nil
}

// deflateRW is a compressed connection: reads inflate, writes deflate
// with a sync flush each.
type deflateRW struct {
	r io.ReadCloser
	w io.Writer
}

func (d *deflateRW) Read(p []byte) (int, error) { return d.r.Read(p) }

func (d *deflateRW) Write(p []byte) (int, error) {
	fw, _ := deflaters.Get().(*flate.Writer)
	if fw == nil {
		var err error
		if fw, err = flate.NewWriter(d.w, compressLevel); err != nil {
			return 0, err // not reached: the level is valid
		}
	} else {
		fw.Reset(d.w)
	}
	n, err := fw.Write(p)
	if err == nil {
		err = fw.Flush()
	}
	fw.Reset(io.Discard) // keeps no reference to the connection in the pool
	deflaters.Put(fw)
	return n, err
}

package dav

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/klauspost/compress/gzip"
)

// Answers are compressed with gzip (RFC 9110 §8.4.1.3) when the client
// accepts it (Accept-Encoding, §12.5.3) and they are at least
// compressMin bytes: GET and HEAD of an object, the multi-status
// answers of PROPFIND and REPORT, and the answers of POST (the outbox's
// schedule-response, RFC 6638 §5 and §10.2, a VFREEBUSY per recipient;
// a sharing POST's answer has no body). A multi-status is compressed as
// it streams: the first compressMin bytes are held to decide, then
// every write goes through one gzip writer, so a 10,000-object REPORT
// holds no more than the writer's window whatever its length. The
// answers of those methods all say Vary: Accept-Encoding (§12.5.5),
// compressed or not.
//
// Entity tags (§8.8.3): the ETag of a gzip-coded GET differs from the
// stored object's, as §8.8.3.3 asks of a content coding: it is the
// stored tag with gzipETagSuffix. If-Match and If-None-Match accept
// either form for the stored version (both name it), so a client that
// PUTs or DELETEs with the ETag its GET returned keeps working. The
// getetag properties of PROPFIND and REPORT are those of the stored
// objects, compressed or not: they are inside the body, and a content
// coding of a multi-status is not a representation of any object.
const (
	compressMin    = 1024
	gzipETagSuffix = "-gzip"
)

// gzipOut is a gzip writer and the buffer its output goes through to
// the connection: deflate hands its output on in pieces of a few hundred
// bytes, and each write to the connection costs far more than a copy
// (under HTTP/2 a hand-off to the connection's goroutine; in
// examples/mailserver a new write deadline too), so the pieces go on
// gzipOutBuffer bytes at a time.
type gzipOut struct {
	gz  *gzip.Writer
	buf *bufio.Writer
}

// gzipOutBuffer is the size of gzipOut's buffer: a 10,000-object
// REPORT's 370 KB of gzip in a dozen writes.
const gzipOutBuffer = 32 << 10

// gzipPool reuses gzip writers (and their window and hash tables) and
// their buffers across answers. BestSpeed: a DAV answer is mostly XML
// and iCalendar, which deflate's fast level already shrinks several
// times over, at a fraction of the CPU of the default level. The writer
// is klauspost/compress's, which codes a 10,000-object REPORT in about
// half the CPU of compress/gzip's at the same level, to the same size
// within 1% (bench/README.md, dav).
var gzipPool = sync.Pool{New: func() any {
	buf := bufio.NewWriterSize(nil, gzipOutBuffer)
	gz, _ := gzip.NewWriterLevel(buf, gzip.BestSpeed)
	return &gzipOut{gz: gz, buf: buf}
}}

// compressible reports whether the answer to r may be content-coded.
func compressible(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodPost, "PROPFIND", "REPORT":
		return true
	}
	return false
}

// acceptsGzip reports whether an Accept-Encoding field value admits
// gzip (RFC 9110 §12.5.3): gzip or x-gzip (§8.4.1.3), or "*", with a
// qvalue above 0. An explicit "gzip;q=0" refuses it even if "*" is
// there.
func acceptsGzip(values []string) bool {
	star, named := false, false
	for _, v := range values {
		for _, p := range strings.Split(v, ",") {
			coding, params, _ := strings.Cut(p, ";")
			coding = strings.ToLower(strings.TrimSpace(coding))
			if coding != "gzip" && coding != "x-gzip" && coding != "*" {
				continue
			}
			ok := qvalue(params) > 0
			if coding == "*" {
				star = ok
				continue
			}
			if !ok {
				return false
			}
			named = true
		}
	}
	return named || star
}

// qvalue reads the q parameter of an Accept-Encoding member (RFC 9110
// §12.4.2), 1 without one and 0 for one that does not parse.
func qvalue(params string) float64 {
	for _, p := range strings.Split(params, ";") {
		k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(k), "q") {
			continue
		}
		q, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || q < 0 || q > 1 {
			return 0
		}
		return q
	}
	return 1
}

// gzipWriter content-codes an answer with gzip once it is known to be
// worth it; see compressMin. Statuses other than 200 and 207, and
// answers already carrying a Content-Encoding, pass through.
type gzipWriter struct {
	http.ResponseWriter
	head    bool // a HEAD: decided by Content-Length alone
	status  int  // held until decided
	held    bool
	decided bool
	buf     []byte
	out     *gzipOut // while compressing
}

func newGzipWriter(w http.ResponseWriter, r *http.Request) *gzipWriter {
	return &gzipWriter{ResponseWriter: w, head: r.Method == http.MethodHead}
}

// Unwrap lets http.ResponseController reach the connection.
func (g *gzipWriter) Unwrap() http.ResponseWriter { return g.ResponseWriter }

func (g *gzipWriter) WriteHeader(code int) {
	if g.decided || g.held {
		return // superfluous, as net/http's own writer ignores it
	}
	hd := g.Header()
	eligible := (code == http.StatusOK || code == http.StatusMultiStatus) && hd.Get("Content-Encoding") == ""
	if cl := hd.Get("Content-Length"); cl != "" {
		// The size is known (GET, HEAD): decide now. A 304 names the
		// tag the 200 would have had (RFC 9110 §15.4.5).
		n, err := strconv.ParseInt(cl, 10, 64)
		big := err == nil && n >= compressMin
		if code == http.StatusNotModified && big && hd.Get("Content-Encoding") == "" {
			gzipETag(hd)
		}
		g.decide(code, eligible && big)
		return
	}
	if !eligible || g.head {
		g.decide(code, false)
		return
	}
	g.status, g.held = code, true
}

// decide sends the header, coded or not.
func (g *gzipWriter) decide(code int, compress bool) {
	g.decided = true
	if compress {
		hd := g.Header()
		hd.Del("Content-Length")
		hd.Set("Content-Encoding", "gzip")
		gzipETag(hd)
		g.ResponseWriter.WriteHeader(code)
		if !g.head {
			g.out = gzipPool.Get().(*gzipOut)
			g.out.buf.Reset(g.ResponseWriter)
			g.out.gz.Reset(g.out.buf)
		}
		return
	}
	g.ResponseWriter.WriteHeader(code)
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if !g.decided && !g.held {
		g.WriteHeader(http.StatusOK)
	}
	if g.held {
		if len(g.buf)+len(p) < compressMin {
			g.buf = append(g.buf, p...)
			return len(p), nil
		}
		g.held = false
		g.decide(g.status, true)
		if _, err := g.out.gz.Write(g.buf); err != nil {
			return 0, err
		}
		g.buf = nil
	}
	if g.out != nil {
		return g.out.gz.Write(p)
	}
	return g.ResponseWriter.Write(p)
}

// Flush sends what is compressed so far (http.Flusher).
func (g *gzipWriter) Flush() {
	if g.held {
		return // under compressMin so far: nothing worth a packet
	}
	if g.out != nil {
		_ = g.out.gz.Flush()
		_ = g.out.buf.Flush()
	}
	if f, ok := g.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

// finish ends the answer: a held one too short to compress is sent as
// it is, a compressed one gets gzip's trailer.
func (g *gzipWriter) finish() {
	switch {
	case g.held:
		g.held = false
		g.decide(g.status, false)
		_, _ = g.ResponseWriter.Write(g.buf)
		g.buf = nil
	case g.out != nil:
		_ = g.out.gz.Close()
		_ = g.out.buf.Flush()
		g.out.buf.Reset(nil)
		g.out.gz.Reset(g.out.buf)
		gzipPool.Put(g.out)
		g.out = nil
	}
}

// gzipETag gives the ETag of hd, if any, the suffix of the gzip-coded
// representation.
func gzipETag(hd http.Header) {
	if et := hd.Get("ETag"); len(et) >= 2 && et[len(et)-1] == '"' {
		hd.Set("ETag", et[:len(et)-1]+gzipETagSuffix+`"`)
	}
}

// stripGzipETag returns the stored entity tag a tag from a header names:
// the tag of a gzip-coded GET names the same stored version.
func stripGzipETag(etag string) string {
	return strings.TrimSuffix(etag, gzipETagSuffix)
}

// identityCoding reports whether Content-Encoding field values name no
// coding but identity.
func identityCoding(values []string) bool {
	for _, v := range values {
		for _, c := range strings.Split(v, ",") {
			if c = strings.TrimSpace(c); c != "" && !strings.EqualFold(c, "identity") {
				return false
			}
		}
	}
	return true
}

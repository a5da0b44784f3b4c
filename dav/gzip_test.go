package dav

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
)

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("body is no gzip: %v", err)
	}
	out, err := io.ReadAll(zr)
	if err != nil {
		t.Fatalf("gzip body: %v", err)
	}
	return out
}

// TestGzipReport: a REPORT answer over compressMin is gzip-coded for a
// client that accepts it, decodes to the same bytes as the identity
// answer, and says Vary: Accept-Encoding either way; a small answer and
// a client refusing gzip (q=0, or not naming it) get identity.
func TestGzipReport(t *testing.T) {
	e := newEnv(t)
	for i := range 40 {
		e.do("PUT", e.calPath(fmt.Sprintf("g%02d.ics", i)), event(fmt.Sprintf("g%02d", i), fmt.Sprintf("202701%02dT100000Z", i%28+1))).expect(t, http.StatusCreated)
	}
	body := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>`
	path := "/dav/calendars/" + e.aliceID + "/calendar/"
	plain := e.do("REPORT", path, body, "Depth", "1", "Accept-Encoding", "identity").expect(t, http.StatusMultiStatus)
	if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("identity answer: Content-Encoding %q, Vary %q", plain.Header.Get("Content-Encoding"), plain.Header.Get("Vary"))
	}
	if len(plain.multistatus(t)) != 40 {
		t.Fatalf("identity answer has %d responses", len(plain.multistatus(t)))
	}
	for _, ae := range []string{"gzip", "br;q=1.0, gzip;q=0.8", "x-gzip", "*", "deflate, *;q=0.1"} {
		z := e.do("REPORT", path, body, "Depth", "1", "Accept-Encoding", ae).expect(t, http.StatusMultiStatus)
		if z.Header.Get("Content-Encoding") != "gzip" || z.Header.Get("Vary") != "Accept-Encoding" {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q, Vary %q", ae, z.Header.Get("Content-Encoding"), z.Header.Get("Vary"))
		}
		if got := gunzip(t, z.body); !bytes.Equal(got, plain.body) {
			t.Fatalf("Accept-Encoding %q: decoded answer differs from the identity one", ae)
		}
		if len(z.body)*3 > len(plain.body) {
			t.Fatalf("Accept-Encoding %q: %d bytes coded for %d plain", ae, len(z.body), len(plain.body))
		}
	}
	for _, ae := range []string{"gzip;q=0", "deflate", "*;q=0", "*, gzip;q=0", "gzip;q=abc"} {
		r := e.do("REPORT", path, body, "Depth", "1", "Accept-Encoding", ae).expect(t, http.StatusMultiStatus)
		if r.Header.Get("Content-Encoding") != "" || !bytes.Equal(r.body, plain.body) {
			t.Fatalf("Accept-Encoding %q: Content-Encoding %q", ae, r.Header.Get("Content-Encoding"))
		}
	}
	// Under compressMin: sent as it is, still with Vary.
	small := e.do("PROPFIND", "/dav/", propfindBody("D:current-user-principal"), "Depth", "0", "Accept-Encoding", "gzip").expect(t, http.StatusMultiStatus)
	if len(small.body) >= compressMin || small.Header.Get("Content-Encoding") != "" || small.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("small answer: %d bytes, Content-Encoding %q, Vary %q", len(small.body), small.Header.Get("Content-Encoding"), small.Header.Get("Vary"))
	}
	small.multistatus(t)
	// Errors pass through uncoded.
	nf := e.do("GET", e.calPath("none.ics"), "", "Accept-Encoding", "gzip").expect(t, http.StatusNotFound)
	if nf.Header.Get("Content-Encoding") != "" {
		t.Fatal("a 404 was coded")
	}
}

// TestGzipGetETag: a GET over compressMin answered with gzip carries the
// stored ETag with gzipETagSuffix (RFC 9110 §8.8.3.3), and that tag
// works in If-None-Match (304, naming the same tag) and in If-Match of
// PUT and DELETE; a small object and an identity GET keep the stored
// tag and Content-Length.
func TestGzipGetETag(t *testing.T) {
	e := newEnv(t)
	big := event("big", "20270110T100000Z", "DESCRIPTION:"+strings.Repeat("agenda ", 300))
	e.do("PUT", e.calPath("big.ics"), big).expect(t, http.StatusCreated)
	e.do("PUT", e.calPath("small.ics"), event("small", "20270111T100000Z")).expect(t, http.StatusCreated)

	plain := e.do("GET", e.calPath("big.ics"), "", "Accept-Encoding", "identity").expect(t, http.StatusOK)
	tag := plain.Header.Get("ETag")
	if plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Content-Length") != fmt.Sprint(len(big)) || string(plain.body) != big {
		t.Fatalf("identity GET: %v", plain.Header)
	}
	z := e.do("GET", e.calPath("big.ics"), "", "Accept-Encoding", "gzip").expect(t, http.StatusOK)
	ztag := z.Header.Get("ETag")
	if z.Header.Get("Content-Encoding") != "gzip" || z.Header.Get("Content-Length") == fmt.Sprint(len(big)) || z.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip GET: %v", z.Header)
	}
	if ztag != strings.TrimSuffix(tag, `"`)+gzipETagSuffix+`"` {
		t.Fatalf("gzip GET ETag %s, identity %s", ztag, tag)
	}
	if string(gunzip(t, z.body)) != big {
		t.Fatal("gzip GET does not decode to the object")
	}
	head := e.do("HEAD", e.calPath("big.ics"), "", "Accept-Encoding", "gzip").expect(t, http.StatusOK)
	if head.Header.Get("Content-Encoding") != "gzip" || head.Header.Get("ETag") != ztag || len(head.body) != 0 {
		t.Fatalf("HEAD: %v", head.Header)
	}
	nm := e.do("GET", e.calPath("big.ics"), "", "Accept-Encoding", "gzip", "If-None-Match", ztag).expect(t, http.StatusNotModified)
	if nm.Header.Get("ETag") != ztag {
		t.Fatalf("304 ETag %s, want %s", nm.Header.Get("ETag"), ztag)
	}
	e.do("GET", e.calPath("big.ics"), "", "Accept-Encoding", "identity", "If-None-Match", ztag).expect(t, http.StatusNotModified)
	e.do("GET", e.calPath("big.ics"), "", "Accept-Encoding", "gzip", "If-None-Match", tag).expect(t, http.StatusNotModified)

	s := e.do("GET", e.calPath("small.ics"), "", "Accept-Encoding", "gzip").expect(t, http.StatusOK)
	if s.Header.Get("Content-Encoding") != "" || strings.HasSuffix(s.Header.Get("ETag"), gzipETagSuffix+`"`) {
		t.Fatalf("small GET: %v", s.Header)
	}

	// The coded tag names the stored version for If-Match.
	big2 := strings.Replace(big, "agenda", "minutes", 1)
	e.do("PUT", e.calPath("big.ics"), big2, "If-Match", ztag).expect(t, http.StatusNoContent)
	e.do("PUT", e.calPath("big.ics"), big, "If-Match", ztag).expect(t, http.StatusPreconditionFailed)
	z2 := e.do("GET", e.calPath("big.ics"), "", "Accept-Encoding", "gzip").expect(t, http.StatusOK)
	e.do("DELETE", e.calPath("big.ics"), "", "If-Match", ztag).expect(t, http.StatusPreconditionFailed)
	e.do("DELETE", e.calPath("big.ics"), "", "If-Match", z2.Header.Get("ETag")).expect(t, http.StatusNoContent)
}

// TestCodedRequestBodyRefused: a request body with a content coding is
// refused with 415 and Accept-Encoding: identity (RFC 9110 §15.5.16,
// §12.5.3), before it is read, and nothing is stored.
func TestCodedRequestBodyRefused(t *testing.T) {
	e := newEnv(t)
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, _ = zw.Write([]byte(event("coded", "20270110T100000Z")))
	_ = zw.Close()
	for _, ce := range []string{"gzip", "identity, gzip", "br"} {
		r := e.do("PUT", e.calPath("coded.ics"), b.String(), "Content-Encoding", ce).expect(t, http.StatusUnsupportedMediaType)
		if r.Header.Get("Accept-Encoding") != "identity" {
			t.Fatalf("Content-Encoding %q: Accept-Encoding %q", ce, r.Header.Get("Accept-Encoding"))
		}
		e.do("REPORT", "/dav/calendars/"+e.aliceID+"/calendar/", b.String(), "Content-Encoding", ce).expect(t, http.StatusUnsupportedMediaType)
	}
	e.do("GET", e.calPath("coded.ics"), "").expect(t, http.StatusNotFound)
	e.do("PUT", e.calPath("plain.ics"), event("plain", "20270110T100000Z"), "Content-Encoding", "identity").expect(t, http.StatusCreated)
}

func TestAcceptsGzip(t *testing.T) {
	for v, want := range map[string]bool{
		"": false, "gzip": true, "GZIP": true, "x-gzip": true, "gzip;q=0": false, "gzip; q=0.001": true,
		"gzip;q=0.0": false, "identity": false, "*": true, "*;q=0": false, "*, gzip;q=0": false,
		"deflate, br": false, "br, gzip;q=1.0": true, "gzip;q=2": false, "gzip;level=1": true,
	} {
		if got := acceptsGzip([]string{v}); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", v, got, want)
		}
	}
}

// TestGzipOutboxPost: the schedule-response of an outbox POST (RFC 6638
// §5) over compressMin is gzip-coded for a client that accepts it, says
// Vary: Accept-Encoding, and decodes to the identity answer (but for the
// replies' DTSTAMP, the time they were made).
func TestGzipOutboxPost(t *testing.T) {
	e := newSchedEnv(t)
	for i := range 10 {
		start := fmt.Sprintf("202603%02dT090000Z", i+1)
		e.putAs(bob, bobPW, e.bobID, fmt.Sprintf("b%d.ics", i), ev(fmt.Sprintf("b%d", i), start, strings.Replace(start, "T09", "T10", 1))).expect(t, http.StatusCreated)
	}
	outbox := "/dav/calendars/" + e.aliceID + "/outbox/"
	body := fbRequestBody(alice, alice, bob, room, "nobody@example.com")
	post := func(ae string) resp {
		return e.do(http.MethodPost, outbox, body, "Content-Type", "text/calendar", "Accept-Encoding", ae).expect(t, http.StatusOK)
	}
	plain := post("identity")
	if len(plain.body) < compressMin || plain.Header.Get("Content-Encoding") != "" || plain.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("identity answer: %d bytes, Content-Encoding %q, Vary %q", len(plain.body), plain.Header.Get("Content-Encoding"), plain.Header.Get("Vary"))
	}
	z := post("gzip")
	if z.Header.Get("Content-Encoding") != "gzip" || z.Header.Get("Vary") != "Accept-Encoding" {
		t.Fatalf("gzip answer: Content-Encoding %q, Vary %q", z.Header.Get("Content-Encoding"), z.Header.Get("Vary"))
	}
	stamp := regexp.MustCompile(`DTSTAMP:\d{8}T\d{6}Z`)
	if got, want := stamp.ReplaceAll(gunzip(t, z.body), nil), stamp.ReplaceAll(plain.body, nil); !bytes.Equal(got, want) {
		t.Fatalf("decoded answer differs from the identity one:\n%s\n---\n%s", got, want)
	}
}

// TestBodyTooLargeCloses: a request body over Limits.MaxRequestBody is
// answered 413 with Connection: close, and the connection closed (RFC
// 9110 §15.5.14), for a client that accepts gzip as for one that does
// not: net/http closes only when it learns of the limit through its own
// writer, under the gzipWriter.
func TestBodyTooLargeCloses(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxRequestBody = 64 << 10 })
	huge := `<D:propfind xmlns:D="DAV:"><D:prop>` + strings.Repeat("<D:displayname/>", 10000) + `</D:prop></D:propfind>`
	for _, ae := range []string{"identity", "gzip"} {
		r := e.do("PROPFIND", "/dav/", huge, "Depth", "0", "Accept-Encoding", ae).expect(t, http.StatusRequestEntityTooLarge)
		if !r.Close {
			t.Errorf("Accept-Encoding %s: the connection stays open after the 413 (Connection %q)", ae, r.Header.Get("Connection"))
		}
	}
}

package dav

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// TestReportMemoryBounded: a calendar-query over 10,000 objects of 4 KiB
// (40 MiB of calendar data, 51 MiB of XML) streams its answer, as it is
// and gzip-coded: the heap in use never grows by more than 8 MiB (one page of objects, parsing
// garbage and the HTTP buffers, with the client in the same process),
// where holding the answer would take over 50.
func TestReportMemoryBounded(t *testing.T) {
	if testing.Short() || raceEnabled {
		t.Skip("stores 10,000 objects and measures the heap: not in -short or -race runs")
	}
	e := newEnv(t)
	ctx := context.Background()
	c, err := e.st.Collection(ctx, e.aliceID, store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10000
	pad := "DESCRIPTION:" + strings.Repeat("x", 70) + "\r\n"
	for i := range n {
		start := time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(i) * time.Hour)
		data := event(fmt.Sprintf("e%05d", i), start.Format("20060102T150405Z"), strings.TrimSuffix(strings.Repeat(pad, 55), "\r\n"))
		o := store.Object{Name: fmt.Sprintf("e%05d.ics", i), UID: fmt.Sprintf("e%05d", i), Data: []byte(data),
			Component: "VEVENT", Start: start, End: start.Add(time.Hour)}
		if _, err := e.st.PutObject(ctx, c.ID, o, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	body := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="20260101T000000Z" end="20290101T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	// Log in first: the password hash (Argon2id, 19 MiB) is not the
	// report's memory. Later requests hit the credentials cache.
	e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(t, http.StatusMultiStatus)
	// Collect garbage promptly, so that the heap in use is close to what
	// is live: with the default GOGC it may double before a collection.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	// identity: the answer as it is; gzip: coded as it streams (gzip.go),
	// read here through a gzip reader as a client would.
	for _, enc := range []string{"identity", "gzip"} {
		t.Run(enc, func(t *testing.T) {
			req, _ := http.NewRequest("REPORT", e.srv.URL+"/dav/calendars/"+e.aliceID+"/calendar/", strings.NewReader(body))
			req.SetBasicAuth(alice, alicePW)
			req.Header.Set("Depth", "1")
			req.Header.Set("Accept-Encoding", enc)
			runtime.GC()
			var base runtime.MemStats
			runtime.ReadMemStats(&base)
			var peak atomic.Uint64
			done := make(chan struct{})
			sampled := make(chan struct{})
			go func() {
				defer close(sampled)
				var m runtime.MemStats
				for {
					runtime.ReadMemStats(&m)
					if m.HeapInuse > peak.Load() {
						peak.Store(m.HeapInuse)
					}
					select {
					case <-done:
						return
					case <-time.After(2 * time.Millisecond):
					}
				}
			}()
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			wire := &countWriter{}
			counter := &countWriter{}
			var body io.Reader = io.TeeReader(res.Body, wire)
			if enc == "gzip" {
				if res.Header.Get("Content-Encoding") != "gzip" {
					t.Fatalf("Content-Encoding %q", res.Header.Get("Content-Encoding"))
				}
				zr, zerr := gzip.NewReader(body)
				if zerr != nil {
					t.Fatal(zerr)
				}
				body = zr
			}
			_, err = io.Copy(counter, body)
			res.Body.Close()
			close(done)
			<-sampled
			if err != nil || res.StatusCode != http.StatusMultiStatus {
				t.Fatalf("status %d, %v", res.StatusCode, err)
			}
			if counter.responses != n {
				t.Fatalf("%d responses, want %d", counter.responses, n)
			}
			growth := int64(peak.Load()) - int64(base.HeapInuse)
			t.Logf("streamed %d MiB (%d KiB on the wire) in %d responses; heap in use grew by at most %.1f MiB",
				counter.bytes>>20, wire.bytes>>10, counter.responses, float64(growth)/(1<<20))
			if counter.bytes < 40<<20 {
				t.Fatalf("only %d bytes sent", counter.bytes)
			}
			if growth > 8<<20 {
				t.Fatalf("heap grew by %d MiB while streaming %d MiB", growth>>20, counter.bytes>>20)
			}
		})
	}
}

// countWriter counts bytes and DAV:response elements.
type countWriter struct {
	bytes     int64
	responses int
	tail      []byte
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.bytes += int64(len(p))
	buf := append(c.tail, p...)
	c.responses += bytes.Count(buf, []byte("<D:response>")) - bytes.Count(c.tail, []byte("<D:response>"))
	if len(buf) > 16 {
		buf = buf[len(buf)-16:]
	}
	c.tail = append(c.tail[:0], buf...)
	return len(p), nil
}

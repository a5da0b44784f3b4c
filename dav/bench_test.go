package dav

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/internal/cputime"
	"github.com/mailyard/mailyard/store"
)

// BenchmarkCalendarQueryMonth: the month query of bench/dav.sh (issue
// 14) over HTTP against a 10,000-event calendar of which 1,000 recur
// weekly, events spread over two years.
func BenchmarkCalendarQueryMonth(b *testing.B) {
	benchCalendarQuery(b, `<C:comp-filter name="VEVENT">
<C:time-range start="20260601T000000Z" end="20260701T000000Z"/></C:comp-filter>`)
}

// BenchmarkFullReport: the full_report phase of bench/dav.sh, every
// object of the same calendar with its data in one answer.
func BenchmarkFullReport(b *testing.B) {
	benchCalendarQuery(b, "")
}

// benchCalendarQuery stores the 10,000-event calendar and times the
// calendar-query with calendar-data whose VCALENDAR comp-filter holds
// inner, over HTTP.
func benchCalendarQuery(b *testing.B, inner string) {
	e := newEnv(b)
	ctx := context.Background()
	c, err := e.st.Collection(ctx, e.aliceID, store.KindCalendar, "calendar")
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 9, 0, 0, 0, time.UTC)
	for i := range 10000 {
		start := base.Add(time.Duration(i*7%17520) * time.Hour / 4 * 4)
		var extra []string
		if i%10 == 0 {
			extra = append(extra, "RRULE:FREQ=WEEKLY;COUNT=52")
		}
		data := event(fmt.Sprintf("e%05d", i), start.Format("20060102T150405Z"), extra...)
		obj, err := calendar.Parse([]byte(data), calendar.Limits{})
		if err != nil {
			b.Fatal(err)
		}
		s, en := obj.Bounds()
		if _, err := e.st.PutObject(ctx, c.ID, store.Object{Name: fmt.Sprintf("e%05d.ics", i), UID: obj.UID(), Data: []byte(data),
			Component: "VEVENT", Start: s, End: en}, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	body := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR">` +
		inner + `</C:comp-filter></C:filter></C:calendar-query>`
	url := e.srv.URL + "/dav/calendars/" + e.aliceID + "/calendar/"
	e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(b, http.StatusMultiStatus) // log in once
	ok := func(status int, data []byte) bool { return status == http.StatusMultiStatus && len(data) > 0 }
	// The same report as a client that accepts gzip asks it (every
	// client library and Radicale's answers do) and as one that does
	// not: wire-B/op is the body on the wire, compressed or not.
	for _, enc := range []string{"identity", "gzip"} {
		b.Run(enc, func(b *testing.B) {
			timeRequests(b, http.DefaultClient, "REPORT", url, body, []string{"Depth", "1", "Accept-Encoding", enc}, ok)
		})
	}
	// h2: as bench/davload meets examples/mailserver, over TLS and
	// HTTP/2 with Go's client asking for gzip by itself and decoding the
	// answer inside the timed exchange (wire-B/op is then the decoded
	// body).
	b.Run("h2", func(b *testing.B) {
		srv := httptest.NewUnstartedServer(e.h)
		srv.EnableHTTP2 = true
		srv.StartTLS()
		b.Cleanup(srv.Close)
		timeRequests(b, srv.Client(), "REPORT", srv.URL+"/dav/calendars/"+e.aliceID+"/calendar/", body, []string{"Depth", "1"}, ok)
	})
}

// BenchmarkFreeBusyQuery: one user's week of free/busy over HTTP, with
// 20 events (a quarter of them recurring daily).
func BenchmarkFreeBusyQuery(b *testing.B) {
	e := newEnv(b)
	for i := range 20 {
		var extra []string
		if i%4 == 0 {
			extra = append(extra, "RRULE:FREQ=DAILY")
		}
		start := time.Date(2026, 6, 1+i, 9+i%8, 0, 0, 0, time.UTC)
		e.do("PUT", e.calPath(fmt.Sprintf("fb%d.ics", i)), event(fmt.Sprintf("fb%d", i), start.Format("20060102T150405Z"), extra...)).expect(b, http.StatusCreated)
	}
	body := `<C:free-busy-query ` + reportNS + `><C:time-range start="20260608T000000Z" end="20260615T000000Z"/></C:free-busy-query>`
	url := e.srv.URL + "/dav/calendars/" + e.aliceID + "/calendar/"
	for b.Loop() {
		req, _ := http.NewRequest("REPORT", url, strings.NewReader(body))
		req.SetBasicAuth(alice, alicePW)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// BenchmarkAddressbookQuery: FN contains over 10,000 contacts, 10 of
// which match.
func BenchmarkAddressbookQuery(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	c, err := e.st.Collection(ctx, e.aliceID, store.KindAddressBook, "contacts")
	if err != nil {
		b.Fatal(err)
	}
	for i := range 10000 {
		fn := fmt.Sprintf("Person %05d", i)
		if i%1000 == 0 {
			fn = fmt.Sprintf("Zebra %05d", i)
		}
		data := vcardText(fmt.Sprintf("c%05d", i), fn, fmt.Sprintf("p%d@example.org", i))
		if _, err := e.st.PutObject(ctx, c.ID, store.Object{Name: fmt.Sprintf("c%05d.vcf", i), UID: fmt.Sprintf("c%05d", i), Data: []byte(data), Component: "VCARD"}, store.PutOptions{}); err != nil {
			b.Fatal(err)
		}
	}
	body := `<CR:addressbook-query ` + reportNS + `><D:prop><D:getetag/><CR:address-data/></D:prop><CR:filter><CR:prop-filter name="FN"><CR:text-match>zebra</CR:text-match></CR:prop-filter></CR:filter></CR:addressbook-query>`
	url := e.srv.URL + "/dav/addressbooks/" + e.aliceID + "/contacts/"
	e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(b, http.StatusMultiStatus)
	b.ResetTimer()
	for b.Loop() {
		req, _ := http.NewRequest("REPORT", url, strings.NewReader(body))
		req.SetBasicAuth(alice, alicePW)
		req.Header.Set("Depth", "1")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := io.Copy(io.Discard, res.Body)
		res.Body.Close()
		if res.StatusCode != http.StatusMultiStatus || n == 0 {
			b.Fatalf("status %d", res.StatusCode)
		}
	}
}

// BenchmarkFreeBusyOutbox50: the free/busy phase of bench/dav.sh as a
// client asks it, one VFREEBUSY request POSTed to the schedule outbox
// (RFC 6638 §5) listing 50 attendees, each with 100 events of which a
// tenth recur weekly without end; the range is one week.
func BenchmarkFreeBusyOutbox50(b *testing.B) {
	e := newEnv(b)
	ctx := context.Background()
	var attendees []string
	for u := range 50 {
		addr := fmt.Sprintf("fb%02d@example.com", u)
		usr, err := e.dir.CreateUser(ctx, directory.User{Address: addr}, "pw")
		if err != nil {
			b.Fatal(err)
		}
		attendees = append(attendees, addr)
		def, _, err := e.h.ensureCalendarHome(ctx, usr.ID)
		if err != nil {
			b.Fatal(err)
		}
		base := time.Date(2026, 5, 1, 8, 0, 0, 0, time.UTC)
		for i := range 100 {
			start := base.Add(time.Duration(i*37%1440) * time.Hour) // over 60 days
			var extra []string
			if i%10 == 0 {
				extra = append(extra, "RRULE:FREQ=WEEKLY\r\n")
			}
			ics := ev(fmt.Sprintf("u%d-e%d", u, i), start.Format("20060102T150405Z"), start.Add(time.Hour).Format("20060102T150405Z"), extra...)
			p, err := e.h.validate([]byte(ics), true, def)
			if err != nil {
				b.Fatal(err)
			}
			o := store.Object{Name: fmt.Sprintf("e%d.ics", i), UID: p.uid, ContentType: p.mediaType, Data: []byte(ics), Component: p.component, Start: p.start, End: p.end}
			if _, err := e.st.PutObject(ctx, def.ID, o, store.PutOptions{}); err != nil {
				b.Fatal(err)
			}
		}
	}
	body := strings.Replace(strings.Replace(fbRequestBody(alice, attendees...),
		"DTSTART:20260301T000000Z", "DTSTART:20260601T000000Z", 1), "DTEND:20260401T000000Z", "DTEND:20260608T000000Z", 1)
	url := e.srv.URL + "/dav/calendars/" + e.aliceID + "/outbox/"
	e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(b, http.StatusMultiStatus)
	timeRequests(b, http.DefaultClient, "POST", url, body, []string{"Content-Type", "text/calendar"}, func(status int, data []byte) bool {
		return status == http.StatusOK && strings.Count(string(data), "2.0;") == 50
	})
}

// timeRequests times alice's request over HTTP through hc, with the
// headers (name, value, ...), once per benchmark iteration; ok judges
// each answer. It reports the 99th percentile of the latencies, the
// bytes of the answer's body as received (wire-B/op: net/http's client
// decodes nothing when the request names its Accept-Encoding) and the
// CPU time of the whole process, server and client, per request
// (cpu-ms/op, which the machine's load changes far less than the
// latency) beside the mean.
func timeRequests(b *testing.B, hc *http.Client, method, url, body string, hdr []string, ok func(status int, data []byte) bool) {
	var lat []time.Duration
	var wire int64
	cpu0, cpuOK := cputime.Process()
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.SetBasicAuth(alice, alicePW)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		res, err := hc.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		data, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if !ok(res.StatusCode, data) {
			b.Fatalf("status %d: %.300s", res.StatusCode, data)
		}
		lat = append(lat, time.Since(t0))
		wire += int64(len(data))
	}
	b.StopTimer()
	cpu1, _ := cputime.Process()
	reportP99(b, lat)
	if len(lat) > 0 {
		b.ReportMetric(float64(wire)/float64(len(lat)), "wire-B/op")
		if cpuOK {
			b.ReportMetric(float64((cpu1-cpu0).Microseconds())/1000/float64(len(lat)), "cpu-ms/op")
		}
	}
}

// reportP99 adds the 99th percentile of the latencies to the benchmark's
// output.
func reportP99(b *testing.B, lat []time.Duration) {
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
}

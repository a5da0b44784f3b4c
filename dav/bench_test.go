package dav

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/store"
)

// BenchmarkCalendarQueryMonth: the month query of bench/dav.sh (issue
// 14) over HTTP against a 10,000-event calendar of which 1,000 recur
// weekly, events spread over two years.
func BenchmarkCalendarQueryMonth(b *testing.B) {
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
	body := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/><C:calendar-data/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="20260601T000000Z" end="20260701T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	url := e.srv.URL + "/dav/calendars/" + e.aliceID + "/calendar/"
	e.do("PROPFIND", "/dav/", "", "Depth", "0").expect(b, http.StatusMultiStatus) // log in once
	var lat []time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
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
		lat = append(lat, time.Since(t0))
	}
	b.StopTimer()
	if len(lat) > 0 {
		slices.Sort(lat)
		b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
	}
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

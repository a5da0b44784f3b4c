package dav

import (
	"bytes"
	"context"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-webdav/caldav"

	"github.com/mailyard/mailyard/store"
)

const reportNS = `xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav" xmlns:CR="urn:ietf:params:xml:ns:carddav"`

// seedCalendar stores a single event in January 2027, a weekly series
// from 2026 with an EXDATE, an event in March and a todo.
func seedCalendar(t testing.TB, e *env) {
	t.Helper()
	e.do("PUT", e.calPath("jan.ics"), event("jan", "20270110T100000Z")).expect(t, http.StatusCreated)
	e.do("PUT", e.calPath("weekly.ics"), event("weekly", "20261201T090000Z", "RRULE:FREQ=WEEKLY;COUNT=20", "EXDATE:20270112T090000Z")).expect(t, http.StatusCreated)
	e.do("PUT", e.calPath("mar.ics"), event("mar", "20270310T100000Z")).expect(t, http.StatusCreated)
	e.do("PUT", e.calPath("task.ics"), todo("task")).expect(t, http.StatusCreated)
}

func hrefs(ms map[string]msResponse) []string {
	var out []string
	for h := range ms {
		out = append(out, h)
	}
	slices.Sort(out)
	return out
}

// TestCalendarQueryGoWebdav: a time-range query through go-webdav's
// client finds the single event and the recurring one by an instance.
func TestCalendarQueryGoWebdav(t *testing.T) {
	e := newEnv(t)
	seedCalendar(t, e)
	cc := e.calClient(alice, alicePW)
	q := &caldav.CalendarQuery{
		CompRequest: caldav.CalendarCompRequest{Name: "VCALENDAR", AllProps: true, AllComps: true},
		CompFilter: caldav.CompFilter{Name: "VCALENDAR", Comps: []caldav.CompFilter{{
			Name: "VEVENT", Start: time.Date(2027, 1, 8, 0, 0, 0, 0, time.UTC), End: time.Date(2027, 1, 11, 0, 0, 0, 0, time.UTC)}}},
	}
	objs, err := cc.QueryCalendar(context.Background(), "/dav/calendars/"+e.aliceID+"/calendar/", q)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		got = append(got, o.Path)
	}
	slices.Sort(got)
	if want := []string{e.calPath("jan.ics")}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	// 2027-01-12 is excluded, 2027-01-19 an instance of the series.
	q.CompFilter.Comps[0].Start, q.CompFilter.Comps[0].End = time.Date(2027, 1, 12, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 13, 0, 0, 0, 0, time.UTC)
	if objs, err = cc.QueryCalendar(context.Background(), "/dav/calendars/"+e.aliceID+"/calendar/", q); err != nil || len(objs) != 0 {
		t.Fatalf("EXDATE day: %d objects, %v", len(objs), err)
	}
	q.CompFilter.Comps[0].Start, q.CompFilter.Comps[0].End = time.Date(2027, 1, 19, 0, 0, 0, 0, time.UTC), time.Date(2027, 1, 20, 0, 0, 0, 0, time.UTC)
	objs, err = cc.QueryCalendar(context.Background(), "/dav/calendars/"+e.aliceID+"/calendar/", q)
	if err != nil || len(objs) != 1 || objs[0].Path != e.calPath("weekly.ics") || objs[0].ETag == "" {
		t.Fatalf("series instance: %+v, %v", objs, err)
	}
	mg, err := cc.MultiGetCalendar(context.Background(), "/dav/calendars/"+e.aliceID+"/calendar/", &caldav.CalendarMultiGet{
		Paths: []string{e.calPath("jan.ics"), e.calPath("mar.ics")}, CompRequest: caldav.CalendarCompRequest{Name: "VCALENDAR", AllProps: true, AllComps: true}})
	if err != nil || len(mg) != 2 {
		t.Fatalf("multiget: %d, %v", len(mg), err)
	}
}

func TestCalendarQueryRaw(t *testing.T) {
	e := newEnv(t)
	seedCalendar(t, e)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	todos := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VTODO"/></C:comp-filter></C:filter></C:calendar-query>`
	ms := e.do("REPORT", cal, todos, "Depth", "1").multistatus(t)
	if got := hrefs(ms); !slices.Equal(got, []string{e.calPath("task.ics")}) {
		t.Fatalf("todos: %v", got)
	}
	ms[e.calPath("task.ics")].prop(t, nsDAV, "getetag")
	summary := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:prop-filter name="SUMMARY"><C:text-match>EVENT MAR</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	if got := hrefs(e.do("REPORT", cal, summary, "Depth", "1").multistatus(t)); !slices.Equal(got, []string{e.calPath("mar.ics")}) {
		t.Fatalf("text-match: %v", got)
	}
	// Expanded instances in the range, as UTC (RFC 4791 §9.6.5).
	expand := `<C:calendar-query ` + reportNS + `><D:prop><C:calendar-data><C:expand start="20270101T000000Z" end="20270120T000000Z"/></C:calendar-data></D:prop>
<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20270101T000000Z" end="20270120T000000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	ms = e.do("REPORT", cal, expand, "Depth", "1").multistatus(t)
	data := ms[e.calPath("weekly.ics")].prop(t, nsCalDAV, "calendar-data").Text
	if n := strings.Count(data, "BEGIN:VEVENT"); n != 2 || strings.Contains(data, "RRULE") || !strings.Contains(data, "RECURRENCE-ID") {
		t.Fatalf("expanded data (%d instances):\n%s", n, data)
	}
	// Partial retrieval (RFC 4791 §9.6.1).
	partial := `<C:calendar-multiget ` + reportNS + `><D:prop><C:calendar-data><C:comp name="VCALENDAR"><C:prop name="VERSION"/><C:comp name="VEVENT"><C:prop name="SUMMARY"/></C:comp></C:comp></C:calendar-data></D:prop>
<D:href>` + e.calPath("jan.ics") + `</D:href><D:href>` + e.calPath("none.ics") + `</D:href><D:href>/dav/calendars/` + e.bobID + `/calendar/x.ics</D:href></C:calendar-multiget>`
	ms = e.do("REPORT", cal, partial, "Depth", "1").multistatus(t)
	data = ms[e.calPath("jan.ics")].prop(t, nsCalDAV, "calendar-data").Text
	if !strings.Contains(data, "SUMMARY:Event jan") || strings.Contains(data, "DTSTART") || !strings.Contains(data, "UID:jan") {
		t.Fatalf("partial data:\n%s", data)
	}
	if ms[e.calPath("none.ics")].status != http.StatusNotFound || ms["/dav/calendars/"+e.bobID+"/calendar/x.ics"].status != http.StatusForbidden {
		t.Fatalf("multiget statuses: %+v", ms)
	}
	bad := []struct {
		body   string
		status int
		cond   string
	}{
		{`<C:calendar-query ` + reportNS + `><C:filter><C:comp-filter name="VEVENT"/></C:filter></C:calendar-query>`, 403, "valid-filter"},
		{`<C:calendar-query ` + reportNS + `><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="2027"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`, 403, "valid-filter"},
		{`<C:calendar-query ` + reportNS + `><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:prop-filter name="SUMMARY"><C:text-match collation="i;klingon">x</C:text-match></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`, 403, "supported-collation"},
		{`<C:calendar-query ` + reportNS + `><D:prop><C:calendar-data><C:limit-recurrence-set start="20270101T000000Z" end="20270120T000000Z"/></C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR"/></C:filter></C:calendar-query>`, 501, ""},
		{`<CR:addressbook-query ` + reportNS + `/>`, 403, "supported-report"},
	}
	for _, b := range bad {
		r := e.do("REPORT", cal, b.body, "Depth", "1").expect(t, b.status)
		if b.cond != "" && !strings.Contains(string(r.body), b.cond) {
			t.Errorf("%s: body %s", b.cond, r.body)
		}
	}
}

func TestFreeBusyQuery(t *testing.T) {
	e := newEnv(t)
	seedCalendar(t, e)
	e.do("PUT", e.calPath("free.ics"), event("free", "20270111T100000Z", "TRANSP:TRANSPARENT")).expect(t, http.StatusCreated)
	e.do("PUT", e.calPath("private.ics"), event("private", "20270111T140000Z", "CLASS:PRIVATE", "STATUS:TENTATIVE")).expect(t, http.StatusCreated)
	body := `<C:free-busy-query ` + reportNS + `><C:time-range start="20270110T000000Z" end="20270115T000000Z"/></C:free-busy-query>`
	r := e.do("REPORT", "/dav/calendars/"+e.aliceID+"/calendar/", body, "Depth", "1").expect(t, http.StatusOK)
	s := strings.ReplaceAll(string(r.body), "\r\n ", "")
	for _, want := range []string{"BEGIN:VFREEBUSY", "FREEBUSY:20270110T100000Z/20270110T110000Z", "FREEBUSY;FBTYPE=BUSY-TENTATIVE:20270111T140000Z/20270111T150000Z"} {
		if !strings.Contains(s, want) {
			t.Errorf("lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "20270111T100000Z") || strings.Contains(s, "Event private") {
		t.Errorf("transparent event busy or private details shown:\n%s", s)
	}
	got, err := FreeBusy(context.Background(), e.st, FreeBusyQuery{Accounts: []string{e.aliceID, e.bobID},
		From: time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := []BusyPeriod{
		{time.Date(2027, 1, 10, 10, 0, 0, 0, time.UTC), time.Date(2027, 1, 10, 11, 0, 0, 0, time.UTC), "BUSY"},
		{time.Date(2027, 1, 11, 14, 0, 0, 0, time.UTC), time.Date(2027, 1, 11, 15, 0, 0, 0, time.UTC), "BUSY-TENTATIVE"},
	}
	if !slices.Equal(got[e.aliceID], want) || len(got[e.bobID]) != 0 {
		t.Fatalf("FreeBusy = %+v", got)
	}
	// A store without store.AccountsQuerier is read account by account,
	// to the same answer.
	if _, ok := Store(e.st).(store.AccountsQuerier); !ok {
		t.Fatal("the test store is no store.AccountsQuerier: the one-read path is not tested")
	}
	plain, err := FreeBusy(context.Background(), struct{ Store }{e.st}, FreeBusyQuery{Accounts: []string{e.aliceID, e.bobID},
		From: time.Date(2027, 1, 10, 0, 0, 0, 0, time.UTC), To: time.Date(2027, 1, 15, 0, 0, 0, 0, time.UTC)})
	if err != nil || !slices.Equal(plain[e.aliceID], want) || len(plain[e.bobID]) != 0 || len(plain) != 2 {
		t.Fatalf("FreeBusy over a plain Store = %+v, %v", plain, err)
	}
	if _, err := FreeBusy(context.Background(), e.st, FreeBusyQuery{From: want[0].End, To: want[0].Start}); err == nil {
		t.Fatal("inverted range accepted")
	}
}

// TestFloatingLocation: floating times are read in
// Options.FloatingLocation by queries (RFC 4791 §9.9).
func TestFloatingLocation(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Skip("no time zone data:", err)
	}
	for _, c := range []struct {
		loc  *time.Location
		want int
	}{{nil, 0}, {berlin, 1}} {
		e := newEnv(t, func(o *Options) { o.FloatingLocation = c.loc })
		e.do("PUT", e.calPath("f.ics"), event("f", "20270105T090000")).expect(t, http.StatusCreated)
		// 09:00 in Berlin is 08:00Z in January; in UTC it would be 09:00Z.
		q := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">
<C:time-range start="20270105T080000Z" end="20270105T083000Z"/></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
		if got := len(e.do("REPORT", "/dav/calendars/"+e.aliceID+"/calendar/", q, "Depth", "1").multistatus(t)); got != c.want {
			t.Errorf("location %v: %d matches, want %d", c.loc, got, c.want)
		}
	}
}

// TestMultigetEachHrefOnce: a multiget naming one resource many times,
// also spelt differently, answers it once; a multiget naming more than
// Limits.MaxMultigetHrefs distinct resources is refused with 413, and
// one naming that many, repeated, is answered.
func TestMultigetEachHrefOnce(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.Limits.MaxMultigetHrefs = 3 })
	seedCalendar(t, e)
	mg := func(hrefs ...string) resp {
		var b strings.Builder
		b.WriteString(`<C:calendar-multiget ` + reportNS + `><D:prop><D:getetag/><C:calendar-data/></D:prop>`)
		for _, h := range hrefs {
			b.WriteString("<D:href>" + h + "</D:href>")
		}
		b.WriteString(`</C:calendar-multiget>`)
		return e.do("REPORT", "/dav/calendars/"+e.aliceID+"/calendar/", b.String(), "Depth", "1")
	}
	jan, mar, weekly := e.calPath("jan.ics"), e.calPath("mar.ics"), e.calPath("weekly.ics")
	janAlias := strings.Replace(jan, "jan.ics", "%6Aan.ics", 1) // the same resource
	r := mg(jan, jan, mar, janAlias, weekly, mar, jan)
	ms := r.multistatus(t)
	if n := bytes.Count(r.body, []byte("<D:response>")); n != 3 || len(ms) != 3 {
		t.Fatalf("%d responses for 3 resources named 7 times: %v", n, responseHrefs(ms))
	}
	if ms[jan].prop(t, nsCalDAV, "calendar-data").Text == "" {
		t.Fatal("no calendar-data for jan")
	}
	var hrefs []string
	for range 50 {
		hrefs = append(hrefs, jan, janAlias, mar, weekly, e.calPath("none.ics"))
	}
	mg(hrefs...).expect(t, http.StatusRequestEntityTooLarge)
	mg(jan, mar, weekly, e.calPath("none.ics")).expect(t, http.StatusRequestEntityTooLarge)
}

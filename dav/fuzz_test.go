package dav

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzReport sends arbitrary REPORT and PROPFIND bodies to a handler with
// a seeded calendar and address book: no body may crash it or make it
// fail with a server error.
func FuzzReport(f *testing.F) {
	e := newEnv(f)
	seedCalendar(f, e)
	e.do("PUT", e.cardPath("a.vcf"), vcardText("a", "Ann", "ann@example.org")).expect(f, http.StatusCreated)
	for _, s := range []string{
		`<C:calendar-query ` + reportNS + `><D:prop><C:calendar-data><C:expand start="20270101T000000Z" end="20270120T000000Z"/></C:calendar-data></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT"><C:time-range start="20270101T000000Z"/><C:prop-filter name="SUMMARY"><C:text-match negate-condition="yes">x</C:text-match><C:param-filter name="X"><C:is-not-defined/></C:param-filter></C:prop-filter></C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`,
		`<C:calendar-multiget ` + reportNS + `><D:prop><C:calendar-data><C:comp name="VCALENDAR"><C:allprop/><C:comp name="VEVENT"><C:prop name="UID"/></C:comp></C:comp></C:calendar-data></D:prop><D:href>jan.ics</D:href><D:href>/dav/calendars/x/y/z.ics</D:href></C:calendar-multiget>`,
		`<C:free-busy-query ` + reportNS + `><C:time-range start="20270110T000000Z" end="20270115T000000Z"/></C:free-busy-query>`,
		`<D:sync-collection ` + reportNS + `><D:sync-token/><D:sync-level>1</D:sync-level><D:limit><D:nresults>1</D:nresults></D:limit><D:prop><D:getetag/></D:prop></D:sync-collection>`,
		`<CR:addressbook-query ` + reportNS + `><D:prop><CR:address-data><CR:prop name="FN"/></CR:address-data></D:prop><CR:filter test="allof"><CR:prop-filter name="EMAIL" test="allof"><CR:text-match match-type="ends-with" collation="i;unicode-casemap">org</CR:text-match></CR:prop-filter></CR:filter></CR:addressbook-query>`,
		`<D:propfind xmlns:D="DAV:"><D:propname/></D:propfind>`,
	} {
		f.Add(s, true)
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, body string, calendar bool) {
		path := "/dav/addressbooks/" + e.aliceID + "/contacts/"
		if calendar {
			path = "/dav/calendars/" + e.aliceID + "/calendar/"
		}
		for _, method := range []string{"REPORT", "PROPFIND"} {
			req := httptest.NewRequest(method, path, strings.NewReader(body))
			req.SetBasicAuth(alice, alicePW)
			req.Header.Set("Depth", "1")
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, req)
			if w.Code >= 500 && w.Code != http.StatusNotImplemented && w.Code != http.StatusInsufficientStorage {
				t.Fatalf("%s %q: %d %s", method, body, w.Code, w.Body)
			}
		}
	})
}

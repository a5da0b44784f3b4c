package dav

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// TestMaxInstancesPerQuery: Limits.MaxInstances bounds the instances
// one report expands over all its objects, not per object: a
// calendar-query (and a calendar-multiget) with expand over ten daily
// series of 30 instances, under a limit of 50, returns whole objects
// holding at most 50 instances and ends with a 507 for the request-URI
// (DAV:number-of-matches-within-limits); without expand every object
// is returned.
func TestMaxInstancesPerQuery(t *testing.T) {
	const limit = 50
	e := newEnv(t, func(o *Options) { o.Limits.MaxInstances = limit })
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	var hrefList strings.Builder
	for i := range 10 {
		name := fmt.Sprintf("daily%d.ics", i)
		e.do("PUT", e.calPath(name), event(fmt.Sprintf("daily%d", i), fmt.Sprintf("202701%02dT%02d0000Z", 1, 8+i), "RRULE:FREQ=DAILY;COUNT=30")).expect(t, http.StatusCreated)
		hrefList.WriteString("<D:href>" + e.calPath(name) + "</D:href>")
	}
	const rangeEl = `<C:time-range start="20270101T000000Z" end="20270201T000000Z"/>`
	expandProp := `<D:prop><C:calendar-data><C:expand start="20270101T000000Z" end="20270201T000000Z"/></C:calendar-data></D:prop>`
	check := func(what, body string) {
		t.Helper()
		ms := e.do("REPORT", cal, body, "Depth", "1").multistatus(t)
		instances, objects := 0, 0
		for href, m := range ms {
			if href == cal {
				continue
			}
			objects++
			data := m.prop(t, nsCalDAV, "calendar-data").Text
			if n := strings.Count(data, "BEGIN:VEVENT"); n != 30 {
				t.Fatalf("%s: %s expanded to %d instances, want all 30", what, href, n)
			}
			instances += 30
		}
		c, ok := ms[cal]
		if !ok || c.status != http.StatusInsufficientStorage || c.err.child(nsDAV, "number-of-matches-within-limits") == nil {
			t.Fatalf("%s: no 507 for the collection: %+v", what, c)
		}
		if instances > limit || objects == 0 || objects >= 10 {
			t.Fatalf("%s: %d objects, %d instances; limit %d", what, objects, instances, limit)
		}
	}
	check("calendar-query", `<C:calendar-query `+reportNS+`>`+expandProp+
		`<C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">`+rangeEl+`</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`)
	check("calendar-multiget", `<C:calendar-multiget `+reportNS+`>`+expandProp+hrefList.String()+`</C:calendar-multiget>`)

	plain := `<C:calendar-query ` + reportNS + `><D:prop><D:getetag/></D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">` + rangeEl + `</C:comp-filter></C:comp-filter></C:filter></C:calendar-query>`
	if ms := e.do("REPORT", cal, plain, "Depth", "1").multistatus(t); len(ms) != 10 {
		t.Fatalf("query without expand: %d responses, want the 10 objects", len(ms))
	}
}

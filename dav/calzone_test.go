package dav

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// TestCalendarTimezoneExpand: calendar-multiget's expand and a
// calendar-query's expand read an object's floating times in the
// calendar's calendar-timezone (RFC 4791 §5.2.2, §9.6.5), not in
// Options.FloatingLocation, and a calendar-query's own CALDAV:timezone
// wins over it (§7.3).
func TestCalendarTimezoneExpand(t *testing.T) {
	e := newEnv(t)
	cal := "/dav/calendars/" + e.aliceID + "/calendar/"
	// Floating 10:00 daily, three times: 15:00Z in New York (EST).
	e.do("PUT", e.calPath("floating.ics"), event("floating", "20270110T100000", "RRULE:FREQ=DAILY;COUNT=3")).expect(t, http.StatusCreated)
	e.do("PROPPATCH", cal, propSet(`<C:calendar-timezone>`+xmlEscape(vtimezoneNY)+`</C:calendar-timezone>`)).expect(t, http.StatusMultiStatus)
	expand := `<C:calendar-data><C:expand start="20270101T000000Z" end="20270201T000000Z"/></C:calendar-data>`
	check := func(what string, ms map[string]msResponse, want string) {
		t.Helper()
		data := ms[e.calPath("floating.ics")].prop(t, nsCalDAV, "calendar-data").Text
		if n := strings.Count(data, "BEGIN:VEVENT"); n != 3 {
			t.Fatalf("%s: %d instances, want 3:\n%s", what, n, data)
		}
		for _, day := range []string{"10", "11", "12"} {
			if !strings.Contains(data, "DTSTART:202701"+day+"T"+want+"Z") {
				t.Fatalf("%s: no instance on the %s at %sZ:\n%s", what, day, want, data)
			}
		}
	}
	mg := `<C:calendar-multiget ` + reportNS + `><D:prop>` + expand + `</D:prop><D:href>` + e.calPath("floating.ics") + `</D:href></C:calendar-multiget>`
	check("multiget", e.do("REPORT", cal, mg, "Depth", "1").multistatus(t), "150000")
	query := func(tz string) map[string]msResponse {
		el := ""
		if tz != "" {
			el = "<C:timezone>" + xmlEscape(tz) + "</C:timezone>"
		}
		q := `<C:calendar-query ` + reportNS + `><D:prop>` + expand + `</D:prop><C:filter><C:comp-filter name="VCALENDAR"><C:comp-filter name="VEVENT">` +
			`<C:time-range start="20270101T000000Z" end="20270201T000000Z"/></C:comp-filter></C:comp-filter></C:filter>` + el + `</C:calendar-query>`
		return e.do("REPORT", cal, q, "Depth", "1").multistatus(t)
	}
	check("calendar-query", query(""), "150000")
	check("calendar-query in UTC", query(vtimezoneUTC), "100000")
}

// TestOutboxFreeBusyCalendarTimezone: the schedule outbox's free/busy
// (RFC 6638 §5) reads each recipient calendar's floating times in that
// calendar's calendar-timezone (RFC 4791 §5.2.2); a calendar without one
// stays in Options.FloatingLocation (UTC here).
func TestOutboxFreeBusyCalendarTimezone(t *testing.T) {
	e := newSchedEnv(t)
	bobCal := "/dav/calendars/" + e.bobID + "/calendar/"
	e.putAs(bob, bobPW, e.bobID, "f.ics", ev("bf", "20260302T100000", "20260302T110000")).expect(t, http.StatusCreated)
	e.putAs(alice, alicePW, e.aliceID, "f.ics", ev("af", "20260303T100000", "20260303T110000")).expect(t, http.StatusCreated)
	e.do("PROPPATCH", bobCal, propSet(`<C:calendar-timezone>`+xmlEscape(vtimezoneNY)+`</C:calendar-timezone>`), "Auth", bob+":"+bobPW).expect(t, http.StatusMultiStatus)
	got := scheduleResponse(t, e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/outbox/", fbRequestBody(alice, alice, bob), "Content-Type", "text/calendar"))
	if !strings.Contains(got[bob][1], "FREEBUSY:20260302T150000Z/20260302T160000Z") {
		t.Errorf("bob's floating event in his calendar's New York time:\n%s", got[bob][1])
	}
	if !strings.Contains(got[alice][1], "FREEBUSY:20260303T100000Z/20260303T110000Z") {
		t.Errorf("alice's floating event in UTC:\n%s", got[alice][1])
	}
}

// walkGuard is a store whose QueryAccounts walk fails any records read
// made from inside it (store.AccountsQuerier: fn must not call the
// store).
type walkGuard struct {
	*sqlite.Store
	inWalk bool
}

func (g *walkGuard) QueryAccounts(ctx context.Context, accounts []string, kind store.CollectionKind, q store.ObjectQuery, fn func(*store.Collection, *store.Object) error) error {
	g.inWalk = true
	defer func() { g.inWalk = false }()
	return g.Store.QueryAccounts(ctx, accounts, kind, q, fn)
}

func (g *walkGuard) GetRecord(ctx context.Context, ns, key string) (store.Record, error) {
	if g.inWalk {
		return store.Record{}, errors.New("records read inside the QueryAccounts walk")
	}
	return g.Store.GetRecord(ctx, ns, key)
}

// TestFreeBusyCalendarTimezoneOneRead: FreeBusy over a
// store.AccountsQuerier reads each calendar's calendar-timezone after
// the walk, not inside it, and places floating and all-day events in it.
func TestFreeBusyCalendarTimezoneOneRead(t *testing.T) {
	e := newSchedEnv(t)
	bobCal := "/dav/calendars/" + e.bobID + "/calendar/"
	e.putAs(bob, bobPW, e.bobID, "f.ics", ev("bf", "20260302T100000", "20260302T110000")).expect(t, http.StatusCreated)
	e.putAs(bob, bobPW, e.bobID, "d.ics", ev("bd", "20260304", "20260305")).expect(t, http.StatusCreated)
	e.putAs(bob, bobPW, e.bobID, "u.ics", ev("bu", "20260303T100000Z", "20260303T110000Z")).expect(t, http.StatusCreated)
	e.do("PROPPATCH", bobCal, propSet(`<C:calendar-timezone>`+xmlEscape(vtimezoneNY)+`</C:calendar-timezone>`), "Auth", bob+":"+bobPW).expect(t, http.StatusMultiStatus)
	g := &walkGuard{Store: e.st}
	got, err := FreeBusy(context.Background(), g, FreeBusyQuery{Accounts: []string{e.bobID},
		From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 3, 8, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	want := []BusyPeriod{
		{Start: time.Date(2026, 3, 2, 15, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 2, 16, 0, 0, 0, time.UTC), Type: "BUSY"},
		{Start: time.Date(2026, 3, 3, 10, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 3, 11, 0, 0, 0, time.UTC), Type: "BUSY"},
		{Start: time.Date(2026, 3, 4, 5, 0, 0, 0, time.UTC), End: time.Date(2026, 3, 5, 5, 0, 0, 0, time.UTC), Type: "BUSY"},
	}
	if !slices.Equal(got[e.bobID], want) {
		t.Fatalf("bob's busy time %v, want %v", got[e.bobID], want)
	}
}

package dav

import (
	"net/http"
	"strings"
	"testing"
)

// An organizer's PUT that changes nothing the attendees are told about
// sends no REQUEST; a significant change or SCHEDULE-FORCE-SEND does
// (RFC 6638 §7.2).
func TestOrganizerPutWithoutSignificantChange(t *testing.T) {
	imip := &recordingIMIP{}
	e := newSchedEnv(t, func(o *Options) { o.IMIP = imip })
	p := "/dav/calendars/" + e.aliceID + "/calendar/s1.ics"
	body := meeting("s1", "20260310T100000Z", "20260310T110000Z", alice, 0, bob, "carla@elsewhere.org")
	e.do(http.MethodPut, p, body, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	if n := len(imip.messages()); n != 1 {
		t.Fatalf("%d iMIP messages after the first PUT", n)
	}
	bobCopy, _ := e.copyOf(e.bobID, "s1")

	// The client stores its copy again with an alarm, a new DTSTAMP and
	// without the SCHEDULE-STATUS the server recorded.
	noisy := strings.Replace(body, "DTSTAMP:20260101T000000Z", "DTSTAMP:20260105T000000Z", 1)
	noisy = strings.Replace(noisy, "END:VEVENT", "TRANSP:TRANSPARENT\r\nBEGIN:VALARM\r\nACTION:DISPLAY\r\nDESCRIPTION:x\r\nTRIGGER:-PT15M\r\nEND:VALARM\r\nEND:VEVENT", 1)
	e.do(http.MethodPut, p, noisy, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	if n := len(imip.messages()); n != 1 {
		t.Fatalf("a PUT without a significant change sent iMIP: %d messages", n)
	}
	if again, _ := e.copyOf(e.bobID, "s1"); again.ETag != bobCopy.ETag {
		t.Error("a PUT without a significant change rewrote bob's copy")
	}
	data := string(e.do(http.MethodGet, p, "").expect(t, http.StatusOK).body)
	if got := attendeeParam(t, data, "carla@elsewhere.org", "SCHEDULE-STATUS"); got != "1.1" {
		t.Errorf("SCHEDULE-STATUS of the earlier REQUEST not kept: %q", got)
	}

	// SCHEDULE-FORCE-SEND=REQUEST sends to that attendee, and is not stored.
	forced := strings.Replace(noisy, "RSVP=TRUE:mailto:carla", "RSVP=TRUE;SCHEDULE-FORCE-SEND=REQUEST:mailto:carla", 1)
	e.do(http.MethodPut, p, forced, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	if n := len(imip.messages()); n != 2 {
		t.Fatalf("SCHEDULE-FORCE-SEND: %d messages", n)
	}
	if again, _ := e.copyOf(e.bobID, "s1"); again.ETag != bobCopy.ETag {
		t.Error("SCHEDULE-FORCE-SEND for carla re-sent to bob")
	}
	if data := string(e.do(http.MethodGet, p, "").body); strings.Contains(data, "SCHEDULE-FORCE-SEND") {
		t.Errorf("SCHEDULE-FORCE-SEND stored:\n%s", data)
	}

	// A new time is significant: every attendee is told.
	moved := strings.Replace(noisy, "DTSTART:20260310T100000Z", "DTSTART:20260310T093000Z", 1)
	e.do(http.MethodPut, p, strings.Replace(moved, "SEQUENCE:0", "SEQUENCE:1", 1), "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	if n := len(imip.messages()); n != 3 {
		t.Fatalf("a moved meeting: %d messages", n)
	}
	if again, _ := e.copyOf(e.bobID, "s1"); !strings.Contains(string(again.Data), "DTSTART:20260310T093000Z") {
		t.Errorf("bob's copy not moved:\n%s", again.Data)
	}
}

func TestSignificantState(t *testing.T) {
	base := meeting("x", "20260310T100000Z", "20260310T110000Z", alice, 0, bob)
	parse := func(s string) string { return significantState(decodeCal(t, s)) }
	same := strings.Replace(base, "RSVP=TRUE", "RSVP=TRUE;SCHEDULE-STATUS=1.2", 1)
	if parse(base) != parse(same) {
		t.Error("SCHEDULE-STATUS counts as significant")
	}
	for _, diff := range []string{
		strings.Replace(base, "SUMMARY:Planning", "SUMMARY:Review", 1),
		strings.Replace(base, "DTEND:20260310T110000Z", "DTEND:20260310T120000Z", 1),
		strings.Replace(base, "END:VEVENT", "LOCATION:Room 1\r\nEND:VEVENT", 1),
		strings.Replace(base, "END:VEVENT", "ATTENDEE:mailto:dave@example.com\r\nEND:VEVENT", 1),
		strings.Replace(base, "END:VEVENT", "STATUS:CANCELLED\r\nEND:VEVENT", 1),
	} {
		if parse(base) == parse(diff) {
			t.Errorf("not significant:\n%s", diff)
		}
	}
}

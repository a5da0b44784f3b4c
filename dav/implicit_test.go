package dav

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-ical"
	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/store"
)

// imipSent is one message handed to the recording IMIP.
type imipSent struct {
	from   string
	to     []string
	method string
	data   string
}

// recordingIMIP records what the handler hands to Options.IMIP.
type recordingIMIP struct {
	mu   sync.Mutex
	sent []imipSent
}

func (r *recordingIMIP) Send(_ context.Context, from string, to []string, method string, cal *ical.Calendar) error {
	data, err := encodeCalendar(cal)
	if err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sent = append(r.sent, imipSent{from: from, to: to, method: method, data: string(data)})
	return nil
}

func (r *recordingIMIP) messages() []imipSent {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]imipSent(nil), r.sent...)
}

// meeting is an event organised by org with the attendees (each
// "address" or "address;PARAM=..." for extra parameters).
func meeting(uid, start, end, org string, seq int, attendees ...string) string {
	var b strings.Builder
	b.WriteString("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:" + uid +
		"\r\nDTSTAMP:20260101T000000Z\r\nDTSTART:" + start + "\r\nDTEND:" + end + "\r\nSUMMARY:Planning\r\n" +
		"SEQUENCE:" + string(rune('0'+seq)) + "\r\nORGANIZER:mailto:" + org + "\r\n")
	for _, a := range attendees {
		addr, params, _ := strings.Cut(a, ";")
		if params != "" {
			params = ";" + params
		}
		b.WriteString("ATTENDEE;PARTSTAT=NEEDS-ACTION;RSVP=TRUE" + params + ":mailto:" + addr + "\r\n")
	}
	b.WriteString("END:VEVENT\r\nEND:VCALENDAR\r\n")
	return b.String()
}

// attendeeParam returns a parameter of an attendee in an object's first
// scheduled component, failing if the attendee is missing.
func attendeeParam(t *testing.T, data, addr, param string) string {
	t.Helper()
	cal, err := ical.NewDecoder(strings.NewReader(data)).Decode()
	if err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	for _, a := range scheduledComponents(cal)[0].Props[ical.PropAttendee] {
		if strings.EqualFold(a.Value, "mailto:"+addr) {
			return a.Params.Get(param)
		}
	}
	t.Fatalf("no ATTENDEE %s in\n%s", addr, data)
	return ""
}

// inboxMessage returns the inbox message of an account for a UID.
func (e *schedEnv) inboxMessage(account, uid string) (string, bool) {
	e.t.Helper()
	c, err := e.st.Collection(context.Background(), account, store.KindCalendar, inboxName)
	if err != nil {
		e.t.Fatal(err)
	}
	o, err := e.st.ObjectByUID(context.Background(), c.ID, uid)
	if err != nil {
		return "", false
	}
	return string(o.Data), true
}

// copyOf returns an account's calendar copy of a UID.
func (e *schedEnv) copyOf(account, uid string) (store.Object, bool) {
	e.t.Helper()
	_, o, found, err := e.h.findByUID(context.Background(), account, uid)
	if err != nil {
		e.t.Fatal(err)
	}
	return o, found
}

func TestImplicitScheduling(t *testing.T) {
	imip := &recordingIMIP{}
	e := newSchedEnv(t, func(o *Options) { o.IMIP = imip })
	alicePath := "/dav/calendars/" + e.aliceID + "/calendar/m1.ics"
	body := meeting("m1", "20260310T100000Z", "20260310T110000Z", alice, 0, bob, room, "carla@elsewhere.org", "ghost@example.com")
	r := e.do(http.MethodPut, alicePath, body, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	if r.Header.Get("ETag") != "" {
		t.Error("a PUT whose data the server changed returned an ETag (RFC 4791 §5.3.4)")
	}
	// Bob: a REQUEST in his inbox, a copy in his calendar that needs action.
	msg, ok := e.inboxMessage(e.bobID, "m1")
	if !ok || !strings.Contains(msg, "METHOD:REQUEST") {
		t.Fatalf("bob's inbox: %v\n%s", ok, msg)
	}
	bobCopy, ok := e.copyOf(e.bobID, "m1")
	if !ok {
		t.Fatal("bob's calendar has no copy")
	}
	if got := attendeeParam(t, string(bobCopy.Data), bob, "PARTSTAT"); got != "NEEDS-ACTION" {
		t.Errorf("bob's copy PARTSTAT %q", got)
	}
	if strings.Contains(string(bobCopy.Data), "METHOD") || strings.Contains(string(bobCopy.Data), "SCHEDULE-STATUS") {
		t.Errorf("bob's copy has METHOD or SCHEDULE-STATUS:\n%s", bobCopy.Data)
	}
	// Alice's copy records every outcome; the room accepted.
	orgData := string(e.do(http.MethodGet, alicePath, "").expect(t, http.StatusOK).body)
	for addr, want := range map[string]string{bob: "1.2", room: "1.2", "carla@elsewhere.org": "1.1", "ghost@example.com": "3.7"} {
		if got := attendeeParam(t, orgData, addr, "SCHEDULE-STATUS"); got != want {
			t.Errorf("SCHEDULE-STATUS of %s = %q, want %s", addr, got, want)
		}
	}
	if got := attendeeParam(t, orgData, room, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("room PARTSTAT %q, want ACCEPTED", got)
	}
	if got := attendeeParam(t, orgData, room, "CUTYPE"); got != "ROOM" {
		t.Errorf("room CUTYPE %q, want ROOM", got)
	}
	if _, ok := e.copyOf(e.roomID, "m1"); !ok {
		t.Error("the room's calendar has no booking")
	}
	// The remote attendee went to IMIP as a REQUEST from alice.
	sent := imip.messages()
	if len(sent) != 1 || sent[0].method != "REQUEST" || sent[0].from != alice || len(sent[0].to) != 1 || sent[0].to[0] != "carla@elsewhere.org" ||
		!strings.Contains(sent[0].data, "METHOD:REQUEST") || strings.Contains(sent[0].data, "SCHEDULE-STATUS") {
		t.Fatalf("IMIP got %+v", sent)
	}

	// Bob accepts: alice's copy shows it and her inbox has the REPLY.
	bobPath := "/dav/calendars/" + e.bobID + "/calendar/" + bobCopy.Name
	accepted := strings.Replace(string(bobCopy.Data), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1)
	if attendeeParam(t, accepted, bob, "PARTSTAT") != "ACCEPTED" {
		t.Fatalf("test edit failed:\n%s", accepted)
	}
	e.do(http.MethodPut, bobPath, accepted, "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	orgData = string(e.do(http.MethodGet, alicePath, "").expect(t, http.StatusOK).body)
	if got := attendeeParam(t, orgData, bob, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("alice's copy: bob PARTSTAT %q, want ACCEPTED", got)
	}
	if msg, ok := e.inboxMessage(e.aliceID, "m1"); !ok || !strings.Contains(msg, "METHOD:REPLY") {
		t.Errorf("alice's inbox: %v\n%s", ok, msg)
	}

	// A second, overlapping booking of the room is declined, and the
	// room keeps no copy of it.
	bobMeeting := "/dav/calendars/" + e.bobID + "/calendar/m2.ics"
	e.do(http.MethodPut, bobMeeting, meeting("m2", "20260310T103000Z", "20260310T113000Z", bob, 0, room),
		"Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	m2 := string(e.do(http.MethodGet, bobMeeting, "", "Auth", bob+":"+bobPW).expect(t, http.StatusOK).body)
	if got := attendeeParam(t, m2, room, "PARTSTAT"); got != "DECLINED" {
		t.Errorf("overlapping booking: room PARTSTAT %q, want DECLINED", got)
	}
	if _, ok := e.copyOf(e.roomID, "m2"); ok {
		t.Error("the room stored a declined booking")
	}
	// A later, free slot is accepted.
	e.do(http.MethodPut, "/dav/calendars/"+e.bobID+"/calendar/m3.ics", meeting("m3", "20260310T110000Z", "20260310T120000Z", bob, 0, room),
		"Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	m3 := string(e.do(http.MethodGet, "/dav/calendars/"+e.bobID+"/calendar/m3.ics", "", "Auth", bob+":"+bobPW).body)
	if got := attendeeParam(t, m3, room, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("free slot: room PARTSTAT %q, want ACCEPTED", got)
	}

	// Alice removes bob: his copy is cancelled, his inbox has the CANCEL.
	without := meeting("m1", "20260310T100000Z", "20260310T110000Z", alice, 1, room, "carla@elsewhere.org")
	e.do(http.MethodPut, alicePath, without, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	bobCopy, _ = e.copyOf(e.bobID, "m1")
	if !strings.Contains(string(bobCopy.Data), "STATUS:CANCELLED") {
		t.Errorf("bob's copy after removal:\n%s", bobCopy.Data)
	}
	if msg, _ := e.inboxMessage(e.bobID, "m1"); !strings.Contains(msg, "METHOD:CANCEL") {
		t.Errorf("bob's inbox after removal:\n%s", msg)
	}
	// The room's booking is re-checked against its own copy, not refused.
	orgData = string(e.do(http.MethodGet, alicePath, "").body)
	if got := attendeeParam(t, orgData, room, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("room PARTSTAT after the update %q", got)
	}

	// Alice deletes the meeting: the room is free again, carla is told.
	e.do(http.MethodDelete, alicePath, "").expect(t, http.StatusNoContent)
	if _, ok := e.copyOf(e.roomID, "m1"); ok {
		t.Error("the room kept a cancelled booking")
	}
	sent = imip.messages()
	if last := sent[len(sent)-1]; last.method != "CANCEL" || last.to[0] != "carla@elsewhere.org" || !strings.Contains(last.data, "STATUS:CANCELLED") {
		t.Errorf("last IMIP message %+v", last)
	}
}

func TestImplicitSchedulingClientAgent(t *testing.T) {
	e := newSchedEnv(t) // no IMIP
	path := "/dav/calendars/" + e.aliceID + "/calendar/c1.ics"
	body := meeting("c1", "20260311T100000Z", "20260311T110000Z", alice, 0, bob+";SCHEDULE-AGENT=CLIENT", "dan@elsewhere.org")
	e.do(http.MethodPut, path, body, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	if _, ok := e.copyOf(e.bobID, "c1"); ok {
		t.Error("SCHEDULE-AGENT=CLIENT: bob got a copy")
	}
	data := string(e.do(http.MethodGet, path, "").body)
	if got := attendeeParam(t, data, bob, "SCHEDULE-STATUS"); got != "" {
		t.Errorf("SCHEDULE-AGENT=CLIENT: SCHEDULE-STATUS %q", got)
	}
	if got := attendeeParam(t, data, "dan@elsewhere.org", "SCHEDULE-STATUS"); got != "5.3" {
		t.Errorf("remote attendee without IMIP: SCHEDULE-STATUS %q, want 5.3", got)
	}
}

func TestImplicitSchedulingAttendeeDelete(t *testing.T) {
	e := newSchedEnv(t)
	path := "/dav/calendars/" + e.aliceID + "/calendar/d1.ics"
	e.do(http.MethodPut, path, meeting("d1", "20260312T100000Z", "20260312T110000Z", alice, 0, bob), "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	bobCopy, ok := e.copyOf(e.bobID, "d1")
	if !ok {
		t.Fatal("bob has no copy")
	}
	e.do(http.MethodDelete, "/dav/calendars/"+e.bobID+"/calendar/"+bobCopy.Name, "", "Auth", bob+":"+bobPW).expect(t, http.StatusNoContent)
	data := string(e.do(http.MethodGet, path, "").body)
	if got := attendeeParam(t, data, bob, "PARTSTAT"); got != "DECLINED" {
		t.Errorf("after bob deleted his copy: PARTSTAT %q, want DECLINED", got)
	}
	// A stale reply (older SEQUENCE) does not overwrite the organizer's copy.
	e.do(http.MethodPut, path, meeting("d1", "20260312T100000Z", "20260312T110000Z", alice, 2, bob), "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	stale := strings.Replace(meeting("d1", "20260312T100000Z", "20260312T110000Z", alice, 1, bob), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=TENTATIVE", 1)
	e.do(http.MethodPut, "/dav/calendars/"+e.bobID+"/calendar/"+bobCopy.Name, stale, "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	data = string(e.do(http.MethodGet, path, "").body)
	if got := attendeeParam(t, data, bob, "PARTSTAT"); got != "NEEDS-ACTION" {
		t.Errorf("a stale reply changed PARTSTAT to %q", got)
	}
}

func TestManualResourcePolicy(t *testing.T) {
	e := newSchedEnv(t)
	const beamer = "beamer@example.com"
	res, err := e.dir.CreateResource(context.Background(), directory.Resource{Address: beamer, Kind: directory.ResourceEquipment,
		Policy: directory.ResourcePolicyManual, Approvers: []string{e.bobID}})
	if err != nil {
		t.Fatal(err)
	}
	path := "/dav/calendars/" + e.aliceID + "/calendar/b1.ics"
	e.do(http.MethodPut, path, meeting("b1", "20260314T100000Z", "20260314T110000Z", alice, 0, beamer), "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	data := string(e.do(http.MethodGet, path, "").body)
	if got := attendeeParam(t, data, beamer, "PARTSTAT"); got != "NEEDS-ACTION" {
		t.Errorf("manual resource answered %q at once", got)
	}
	if _, ok := e.copyOf(res.ID, "b1"); !ok {
		t.Error("the held booking is not in the resource's calendar")
	}
	// Bob, the approver, has it in his inbox and (transparent) calendar.
	if msg, ok := e.inboxMessage(e.bobID, "b1"); !ok || !strings.Contains(msg, "METHOD:REQUEST") {
		t.Fatalf("approver's inbox: %v %s", ok, msg)
	}
	bobCopy, ok := e.copyOf(e.bobID, "b1")
	if !ok || !strings.Contains(string(bobCopy.Data), "TRANSP:TRANSPARENT") {
		t.Fatalf("approver's copy %v:\n%s", ok, bobCopy.Data)
	}
	// Bob accepts for the beamer.
	accepted := strings.Replace(string(bobCopy.Data), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1)
	e.do(http.MethodPut, "/dav/calendars/"+e.bobID+"/calendar/"+bobCopy.Name, accepted, "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	data = string(e.do(http.MethodGet, path, "").body)
	if got := attendeeParam(t, data, beamer, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("after approval: beamer PARTSTAT %q in the organizer's copy", got)
	}
	resCopy, _ := e.copyOf(res.ID, "b1")
	if got := attendeeParam(t, string(resCopy.Data), beamer, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("after approval: beamer PARTSTAT %q in its own copy", got)
	}
	// An update of the same SEQUENCE keeps the approval.
	e.do(http.MethodPut, path, strings.Replace(meeting("b1", "20260314T100000Z", "20260314T110000Z", alice, 0, beamer), "Planning", "Planning II", 1),
		"Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	data = string(e.do(http.MethodGet, path, "").body)
	if got := attendeeParam(t, data, beamer, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("after an update: beamer PARTSTAT %q", got)
	}
	// A conflicting booking is declined without asking anyone.
	p2 := "/dav/calendars/" + e.aliceID + "/calendar/b2.ics"
	e.do(http.MethodPut, p2, meeting("b2", "20260314T103000Z", "20260314T104500Z", alice, 0, beamer), "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	if got := attendeeParam(t, string(e.do(http.MethodGet, p2, "").body), beamer, "PARTSTAT"); got != "DECLINED" {
		t.Errorf("conflicting booking: %q", got)
	}
	// Holding bookings for approval does not make the approver busy.
	got := scheduleResponse(t, e.do(http.MethodPost, "/dav/calendars/"+e.aliceID+"/outbox/", fbRequestBody(alice, bob), "Content-Type", "text/calendar"))
	if strings.Contains(got[bob][1], "\nFREEBUSY") {
		t.Errorf("the approver's copies make him busy:\n%s", got[bob][1])
	}
}

func TestSchedulingUIDHijack(t *testing.T) {
	e := newSchedEnv(t)
	e.do(http.MethodPut, "/dav/calendars/"+e.aliceID+"/calendar/h1.ics", meeting("h1", "20260315T100000Z", "20260315T110000Z", alice, 0, room),
		"Content-Type", "text/calendar").expect(t, http.StatusCreated)
	// Bob reuses the UID of alice's booking to move it.
	bobPath := "/dav/calendars/" + e.bobID + "/calendar/h1.ics"
	e.do(http.MethodPut, bobPath, meeting("h1", "20260316T100000Z", "20260316T110000Z", bob, 5, room),
		"Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	data := string(e.do(http.MethodGet, bobPath, "", "Auth", bob+":"+bobPW).body)
	if got := attendeeParam(t, data, room, "SCHEDULE-STATUS"); got != "3.8" {
		t.Errorf("SCHEDULE-STATUS %q, want 3.8", got)
	}
	roomCopy, _ := e.copyOf(e.roomID, "h1")
	if !strings.Contains(string(roomCopy.Data), "20260315T100000Z") || !strings.Contains(string(roomCopy.Data), "ORGANIZER:mailto:"+alice) {
		t.Errorf("the room's booking was changed:\n%s", roomCopy.Data)
	}
}

func TestDeliveredCopyKeepsOtherObjects(t *testing.T) {
	e := newSchedEnv(t)
	other := ev("other", "20260320T100000Z", "20260320T110000Z")
	e.putAs(bob, bobPW, e.bobID, "n1.ics", other).expect(t, http.StatusCreated)
	e.do(http.MethodPut, "/dav/calendars/"+e.aliceID+"/calendar/n1.ics", meeting("n1", "20260321T100000Z", "20260321T110000Z", alice, 0, bob),
		"Content-Type", "text/calendar").expect(t, http.StatusCreated)
	if got := string(e.do(http.MethodGet, "/dav/calendars/"+e.bobID+"/calendar/n1.ics", "", "Auth", bob+":"+bobPW).body); got != other {
		t.Errorf("bob's n1.ics was replaced:\n%s", got)
	}
	if o, ok := e.copyOf(e.bobID, "n1"); !ok || o.Name == "n1.ics" {
		t.Errorf("bob's copy: %v %q", ok, o.Name)
	}
}

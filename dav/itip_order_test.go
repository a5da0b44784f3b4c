package dav

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"
)

// stamped replaces the DTSTAMP of an iCalendar text.
func stamped(ics, stamp string) string {
	return strings.Replace(ics, "DTSTAMP:20260101T000000Z", "DTSTAMP:"+stamp, 1)
}

// TestIMIPRepliesByDTSTAMP: iMIP replies of one attendee arriving out of
// order (RFC 5546 §2.1.5): of replies to the same SEQUENCE the later
// DTSTAMP decides, so a reply stamped before the one applied changes
// nothing, and the server's reply stamp never leaves in a message.
func TestIMIPRepliesByDTSTAMP(t *testing.T) {
	imip := &recordingIMIP{}
	e := newSchedEnv(t, func(o *Options) { o.IMIP = imip })
	ctx := context.Background()
	const carla = "carla@elsewhere.org"
	path := "/dav/calendars/" + e.aliceID + "/calendar/r1.ics"
	base := meeting("r1", "20260317T100000Z", "20260317T110000Z", alice, 0, carla)
	e.do(http.MethodPut, path, base, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	reply := func(partstat, stamp string) {
		t.Helper()
		msg := withMethod(stamped(strings.Replace(base, "PARTSTAT=NEEDS-ACTION", "PARTSTAT="+partstat, 1), stamp), "REPLY")
		if _, err := e.h.ReceiveIMIP(ctx, carla, alice, decodeCal(t, msg)); err != nil {
			t.Fatal(err)
		}
	}
	partstat := func() string {
		t.Helper()
		return attendeeParam(t, string(e.do(http.MethodGet, path, "").expect(t, http.StatusOK).body), carla, "PARTSTAT")
	}
	reply("ACCEPTED", "20260105T120000Z")
	if got := partstat(); got != "ACCEPTED" {
		t.Fatalf("after the first reply: %q", got)
	}
	reply("DECLINED", "20260103T120000Z") // written earlier, arrived later
	if got := partstat(); got != "ACCEPTED" {
		t.Fatalf("an older reply overrode a newer one: %q", got)
	}
	reply("TENTATIVE", "20260105T120000Z") // the same moment still counts
	reply("DECLINED", "20260106T080000Z")
	if got := partstat(); got != "DECLINED" {
		t.Fatalf("after the newest reply: %q", got)
	}
	// The stamp is the server's: an update alice sends does not carry it.
	copyData := string(e.do(http.MethodGet, path, "").body)
	if !strings.Contains(copyData, paramReplyStamp) {
		t.Fatalf("the organizer's copy keeps no reply stamp:\n%s", copyData)
	}
	moved := strings.Replace(strings.Replace(copyData, "DTSTART:20260317T100000Z", "DTSTART:20260317T090000Z", 1), "SEQUENCE:0", "SEQUENCE:1", 1)
	e.do(http.MethodPut, path, moved, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
	sent := imip.messages()
	if len(sent) != 2 || sent[1].method != methodRequest || strings.Contains(sent[1].data, paramReplyStamp) {
		t.Fatalf("the update's REQUEST: %+v", sent)
	}
}

// TestLocalReplyStamped: the REPLY the server makes for a local
// attendee is stamped when made (RFC 5545 §3.8.7.2), so each later
// answer of the attendee wins over the earlier one even though the
// attendee's copy keeps the organizer's DTSTAMP.
func TestLocalReplyStamped(t *testing.T) {
	e := newSchedEnv(t)
	e.putAs(alice, alicePW, e.aliceID, "m1.ics", meeting("m1", "20260317T100000Z", "20260317T110000Z", alice, 0, bob)).expect(t, http.StatusCreated)
	cp, ok := e.copyOf(e.bobID, "m1")
	if !ok {
		t.Fatal("bob got no copy")
	}
	before := time.Now().UTC().Add(-time.Second).Format(utcStamp)
	bobPath := "/dav/calendars/" + e.bobID + "/calendar/" + cp.Name
	for _, ps := range []string{"ACCEPTED", "DECLINED", "ACCEPTED"} {
		data := strings.Replace(string(cp.Data), "PARTSTAT=NEEDS-ACTION", "PARTSTAT="+ps, 1)
		e.do(http.MethodPut, bobPath, data, "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusNoContent)
		org := string(e.do(http.MethodGet, "/dav/calendars/"+e.aliceID+"/calendar/m1.ics", "").body)
		if got := attendeeParam(t, org, bob, "PARTSTAT"); got != ps {
			t.Fatalf("alice sees bob's PARTSTAT %q, want %s", got, ps)
		}
		if got := attendeeParam(t, org, bob, paramReplyStamp); got < before {
			t.Fatalf("reply stamp %q is not the time of the reply (after %s)", got, before)
		}
		reply, _ := e.inboxMessage(e.aliceID, "m1")
		if got := dtstampOf(scheduledComponents(decodeCal(t, reply))[0]); got < before {
			t.Fatalf("the REPLY's DTSTAMP %q is not when it was made", got)
		}
	}
}

// TestIMIPCancelOrder: a CANCEL with a SEQUENCE lower than the
// attendee's copy is obsolete and changes nothing (RFC 5546 §2.1.5); a
// CANCEL naming one RECURRENCE-ID cancels that instance only (§3.2.5):
// the series stays, and the instance is free in free/busy.
func TestIMIPCancelOrder(t *testing.T) {
	e := newSchedEnv(t)
	ctx := context.Background()
	const org = "dave@elsewhere.org"
	bobPath := "/dav/calendars/" + e.bobID + "/calendar/w1.ics"
	weekly := strings.Replace(meeting("w1", "20260302T100000Z", "20260302T110000Z", org, 2, bob), "SUMMARY:Planning",
		"SUMMARY:Planning\r\nRRULE:FREQ=WEEKLY;COUNT=4", 1)
	e.do(http.MethodPut, bobPath, weekly, "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusCreated)

	stale := withMethod(meeting("w1", "20260302T100000Z", "20260302T110000Z", org, 1, bob), "CANCEL")
	res, err := e.h.ReceiveIMIP(ctx, org, bob, decodeCal(t, stale))
	if err != nil || res.Applied {
		t.Fatalf("stale CANCEL: %+v %v", res, err)
	}
	if body := string(e.do(http.MethodGet, bobPath, "", "Auth", bob+":"+bobPW).body); strings.Contains(body, "CANCELLED") {
		t.Fatalf("a CANCEL of SEQUENCE 1 cancelled the copy of SEQUENCE 2:\n%s", body)
	}

	one := withMethod(strings.Replace(meeting("w1", "20260309T100000Z", "20260309T110000Z", org, 2, bob), "SUMMARY:Planning",
		"SUMMARY:Planning\r\nRECURRENCE-ID:20260309T100000Z", 1), "CANCEL")
	if res, err := e.h.ReceiveIMIP(ctx, org, bob, decodeCal(t, one)); err != nil || !res.Applied {
		t.Fatalf("CANCEL of one instance: %+v %v", res, err)
	}
	body := string(e.do(http.MethodGet, bobPath, "", "Auth", bob+":"+bobPW).expect(t, http.StatusOK).body)
	cal := decodeCal(t, body)
	comps := scheduledComponents(cal)
	if len(comps) != 2 || !strings.Contains(body, "RRULE:FREQ=WEEKLY") {
		t.Fatalf("the series was not kept:\n%s", body)
	}
	for _, c := range comps {
		status := ""
		if p := c.Props.Get("STATUS"); p != nil {
			status = p.Value
		}
		if (componentKey(c) == "") != (status != "CANCELLED") {
			t.Fatalf("component %q has STATUS %q:\n%s", componentKey(c), status, body)
		}
	}
	busy, err := FreeBusy(ctx, e.st, FreeBusyQuery{Accounts: []string{e.bobID},
		From: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), To: time.Date(2026, 4, 1, 0, 0, 0, 0, time.UTC)})
	if err != nil {
		t.Fatal(err)
	}
	var days []int
	for _, p := range busy[e.bobID] {
		days = append(days, p.Start.Day())
	}
	if len(days) != 3 || days[0] != 2 || days[1] != 16 || days[2] != 23 {
		t.Fatalf("bob's busy days after the instance was cancelled: %v", days)
	}
}

package dav

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/emersion/go-ical"
)

func decodeCal(t *testing.T, s string) *ical.Calendar {
	t.Helper()
	cal, err := ical.NewDecoder(strings.NewReader(s)).Decode()
	if err != nil {
		t.Fatal(err)
	}
	return cal
}

func withMethod(ics, method string) string {
	return strings.Replace(ics, "VERSION:2.0\r\n", "VERSION:2.0\r\nMETHOD:"+method+"\r\n", 1)
}

func TestReceiveIMIP(t *testing.T) {
	imip := &recordingIMIP{}
	e := newSchedEnv(t, func(o *Options) { o.IMIP = imip })
	ctx := context.Background()
	const carla = "carla@elsewhere.org"
	path := "/dav/calendars/" + e.aliceID + "/calendar/r1.ics"
	e.do(http.MethodPut, path, meeting("r1", "20260317T100000Z", "20260317T110000Z", alice, 0, carla), "Content-Type", "text/calendar").expect(t, http.StatusCreated)

	reply := withMethod(strings.Replace(meeting("r1", "20260317T100000Z", "20260317T110000Z", alice, 0, carla), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1), "REPLY")
	// From someone else: only to the inbox.
	res, err := e.h.ReceiveIMIP(ctx, "mallory@elsewhere.org", alice, decodeCal(t, reply))
	if err != nil || res.Applied || !res.Inbox {
		t.Fatalf("spoofed reply: %+v %v", res, err)
	}
	if got := attendeeParam(t, string(e.do(http.MethodGet, path, "").body), carla, "PARTSTAT"); got != "NEEDS-ACTION" {
		t.Errorf("a spoofed reply set PARTSTAT %q", got)
	}
	// From carla: applied.
	res, err = e.h.ReceiveIMIP(ctx, carla, alice, decodeCal(t, reply))
	if err != nil || !res.Applied || !res.Inbox {
		t.Fatalf("carla's reply: %+v %v", res, err)
	}
	if got := attendeeParam(t, string(e.do(http.MethodGet, path, "").body), carla, "PARTSTAT"); got != "ACCEPTED" {
		t.Errorf("after carla's reply: PARTSTAT %q", got)
	}
	// A trusted system sender may speak for carla.
	declined := strings.Replace(reply, "PARTSTAT=ACCEPTED", "PARTSTAT=DECLINED", 1)
	if res, err := e.h.ReceiveIMIP(ctx, "calendar@linked.example", alice, decodeCal(t, declined), "calendar@linked.example"); err != nil || !res.Applied {
		t.Fatalf("trusted sender: %+v %v", res, err)
	}

	// Bob accepted an outside invitation; its organizer cancels it.
	bobPath := "/dav/calendars/" + e.bobID + "/calendar/x1.ics"
	outside := strings.Replace(meeting("x1", "20260318T100000Z", "20260318T110000Z", "dave@elsewhere.org", 0, bob), "PARTSTAT=NEEDS-ACTION", "PARTSTAT=ACCEPTED", 1)
	e.do(http.MethodPut, bobPath, outside, "Auth", bob+":"+bobPW, "Content-Type", "text/calendar").expect(t, http.StatusCreated)
	if sent := imip.messages(); sent[len(sent)-1].method != "REPLY" || sent[len(sent)-1].from != bob || sent[len(sent)-1].to[0] != "dave@elsewhere.org" {
		t.Errorf("bob's acceptance did not go out as a REPLY: %+v", sent[len(sent)-1])
	}
	cancel := withMethod(meeting("x1", "20260318T100000Z", "20260318T110000Z", "dave@elsewhere.org", 1, bob), "CANCEL")
	if res, err := e.h.ReceiveIMIP(ctx, "dave@elsewhere.org", bob, decodeCal(t, cancel)); err != nil || !res.Applied {
		t.Fatalf("cancel: %+v %v", res, err)
	}
	if body := string(e.do(http.MethodGet, bobPath, "", "Auth", bob+":"+bobPW).body); !strings.Contains(body, "STATUS:CANCELLED") {
		t.Errorf("bob's copy after the CANCEL:\n%s", body)
	}
	// A REQUEST from outside goes to the inbox only.
	req := withMethod(meeting("x2", "20260319T100000Z", "20260319T110000Z", "dave@elsewhere.org", 0, bob), "REQUEST")
	if res, err := e.h.ReceiveIMIP(ctx, "dave@elsewhere.org", bob, decodeCal(t, req)); err != nil || res.Applied || !res.Inbox {
		t.Fatalf("request: %+v %v", res, err)
	}
	if _, ok := e.copyOf(e.bobID, "x2"); ok {
		t.Error("an outside REQUEST was put in the calendar")
	}
	if _, err := e.h.ReceiveIMIP(ctx, carla, "nobody@example.com", decodeCal(t, req)); !errors.Is(err, ErrNotCalendarUser) {
		t.Errorf("unknown recipient: %v", err)
	}
	if _, err := e.h.ReceiveIMIP(ctx, carla, bob, decodeCal(t, meeting("x3", "20260319T100000Z", "20260319T110000Z", carla, 0, bob))); !errors.Is(err, ErrInvalidITIP) {
		t.Errorf("no METHOD: %v", err)
	}
}

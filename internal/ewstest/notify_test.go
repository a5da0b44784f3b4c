package ewstest

import (
	"bufio"
	"net/http"
	"strings"
	"testing"
	"time"
)

func subscribeReq(folders string, timeout string) string {
	return `<m:Subscribe><m:PullSubscriptionRequest><t:FolderIds>` + folders + `</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType><t:EventType>DeletedEvent</t:EventType><t:EventType>MovedEvent</t:EventType><t:EventType>NewMailEvent</t:EventType></t:EventTypes><t:Timeout>` + timeout + `</t:Timeout></m:PullSubscriptionRequest></m:Subscribe>`
}

func getEventsReq(id, wm string) string {
	return `<m:GetEvents><m:SubscriptionId>` + id + `</m:SubscriptionId><m:Watermark>` + wm + `</m:Watermark></m:GetEvents>`
}

// events returns the event names of one GetEvents call and the last
// watermark.
func (e *env) events(user, id, wm string) ([]string, string, bool) {
	e.t.Helper()
	n := e.ok(user, "", getEventsReq(id, wm)).child("Notification")
	var names []string
	for _, ev := range n.Kids {
		if w := ev.text("Watermark"); w != "" {
			wm = w
			if ev.Local != "StatusEvent" {
				names = append(names, ev.Local)
			}
		}
	}
	return names, wm, n.text("MoreEvents") == "true"
}

func TestPullNotifications(t *testing.T) {
	clock := &fakeClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	e := newEnv(t, Options{Now: clock.Now})
	m := e.ok("alice", "", subscribeReq(distinguished("inbox"), "5"))
	id, wm := m.text("SubscriptionId"), m.text("Watermark")
	ids := e.createItems("alice", "", distinguished("inbox"), `<t:Message><t:Subject>a</t:Subject></t:Message>`, `MessageDisposition="SaveOnly"`)
	e.createItems("alice", "", distinguished("calendar"), calItem("not watched", "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "UTC", ""), `SendMeetingInvitations="SendToNone"`)
	e.ok("alice", "", update("AlwaysOverwrite", itemID(ids[0], ""), setField("item:Subject", "Message", "<t:Subject>b</t:Subject>")))
	e.ok("alice", "", `<m:DeleteItem DeleteType="MoveToDeletedItems"><m:ItemIds>`+itemID(ids[0], "")+`</m:ItemIds></m:DeleteItem>`)
	if _, err := e.srv.AddMessage("alice@example.test", "inbox", []byte("Subject: delivered\r\n\r\nx\r\n"), false, false, clock.Now()); err != nil {
		t.Fatal(err)
	}
	names, wm2, more := e.events("alice", id, wm)
	if strings.Join(names, " ") != "CreatedEvent ModifiedEvent MovedEvent CreatedEvent NewMailEvent" || more {
		t.Fatalf("events: %v more=%v", names, more)
	}
	// Not acknowledged: the same events again from the old watermark.
	if again, _, _ := e.events("alice", id, wm); len(again) != 5 {
		t.Fatalf("replay: %v", again)
	}
	if after, _, _ := e.events("alice", id, wm2); len(after) != 0 {
		t.Fatalf("after acknowledging: %v", after)
	}
	// Another account cannot read the subscription.
	if rc := e.code("bob", "", getEventsReq(id, wm2)); rc != "ErrorSubscriptionAccessDenied" {
		t.Fatalf("bob: %s", rc)
	}
	if rc := e.code("alice", "", getEventsReq(id, "bogus")); rc != "ErrorInvalidWatermark" {
		t.Fatalf("bad watermark: %s", rc)
	}
	// Not polled within the timeout: expired.
	clock.Add(6 * time.Minute)
	if rc := e.code("alice", "", getEventsReq(id, wm2)); rc != "ErrorExpiredSubscription" {
		t.Fatalf("expired: %s", rc)
	}
	if rc := e.code("alice", "", getEventsReq(id, wm2)); rc != "ErrorSubscriptionNotFound" {
		t.Fatalf("after expiry: %s", rc)
	}
	// Many events come in pages with MoreEvents.
	m = e.ok("alice", "", subscribeReq(distinguished("inbox"), "5"))
	id, wm = m.text("SubscriptionId"), m.text("Watermark")
	var items strings.Builder
	for range maxEventsPerCall + 5 {
		items.WriteString(`<t:Message><t:Subject>x</t:Subject></t:Message>`)
	}
	e.createItems("alice", "", distinguished("inbox"), items.String(), `MessageDisposition="SaveOnly"`)
	first, wm, more := e.events("alice", id, wm)
	if len(first) != maxEventsPerCall || !more {
		t.Fatalf("first page: %d more=%v", len(first), more)
	}
	if rest, _, more := e.events("alice", id, wm); len(rest) != 5 || more {
		t.Fatalf("second page: %d more=%v", len(rest), more)
	}
	e.ok("alice", "", `<m:Unsubscribe><m:SubscriptionId>`+id+`</m:SubscriptionId></m:Unsubscribe>`)
	if rc := e.code("alice", "", getEventsReq(id, wm)); rc != "ErrorSubscriptionNotFound" {
		t.Fatalf("after unsubscribe: %s", rc)
	}
}

// TestStreamingNotifications: a streaming subscription's events come
// over one GetStreamingEvents response as a sequence of envelopes: those
// queued before at once, a change made while connected as it happens,
// and ConnectionStatus Closed when the connection timeout has passed.
func TestStreamingNotifications(t *testing.T) {
	e := newEnv(t, Options{StreamingMinute: 300 * time.Millisecond})
	m := e.ok("alice", "", `<m:Subscribe><m:StreamingSubscriptionRequest><t:FolderIds>`+distinguished("calendar")+
		`</t:FolderIds><t:EventTypes><t:EventType>CreatedEvent</t:EventType><t:EventType>ModifiedEvent</t:EventType></t:EventTypes></m:StreamingSubscriptionRequest></m:Subscribe>`)
	id := m.text("SubscriptionId")
	if id == "" || m.child("Watermark") != nil {
		t.Fatalf("streaming Subscribe: %q watermark %v", id, m.child("Watermark"))
	}
	if rc := e.code("alice", "", getEventsReq(id, "x")); rc != "ErrorInvalidPullSubscriptionId" {
		t.Fatalf("GetEvents on a streaming subscription: %s", rc)
	}
	create := func(subject string) {
		e.createItems("alice", "", distinguished("calendar"), calItem(subject, "2026-01-01T10:00:00Z", "2026-01-01T11:00:00Z", "UTC", ""), `SendMeetingInvitations="SendToNone"`)
	}
	create("before")
	stream := func(timeout string) *bufio.Reader {
		req, err := http.NewRequest("POST", e.url, strings.NewReader(envelope("Exchange2016", "",
			`<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>`+id+`</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>`+timeout+`</m:ConnectionTimeout></m:GetStreamingEvents>`)))
		if err != nil {
			t.Fatal(err)
		}
		req.SetBasicAuth("alice", pw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return bufio.NewReader(resp.Body)
	}
	// next reads one envelope: its events and connection status.
	next := func(r *bufio.Reader) ([]string, string) {
		t.Helper()
		doc, err := r.ReadString('>')
		for err == nil && !strings.HasSuffix(doc, "</s:Envelope>") {
			var more string
			more, err = r.ReadString('>')
			doc += more
		}
		if err != nil {
			t.Fatalf("reading the stream: %v (%q)", err, doc)
		}
		n, perr := parseXML(strings.NewReader(doc))
		if perr != nil {
			t.Fatal(perr)
		}
		msg := n.child("Body").child("GetStreamingEventsResponse").child("ResponseMessages").child("GetStreamingEventsResponseMessage")
		var names []string
		for _, notif := range msg.child("Notifications").kids() {
			for _, ev := range notif.Kids {
				if ev.Local != "SubscriptionId" {
					names = append(names, ev.Local)
				}
			}
		}
		return names, msg.text("ConnectionStatus")
	}
	r := stream("2")
	if names, status := next(r); strings.Join(names, " ") != "CreatedEvent" || status != "OK" {
		t.Fatalf("first envelope: %v %s", names, status)
	}
	create("while connected")
	if names, status := next(r); strings.Join(names, " ") != "CreatedEvent" || status != "OK" {
		t.Fatalf("live envelope: %v %s", names, status)
	}
	if names, status := next(r); len(names) != 0 || status != "Closed" {
		t.Fatalf("last envelope: %v %s", names, status)
	}
	// Sent events are gone: a new connection starts with none.
	r = stream("1")
	if names, status := next(r); len(names) != 0 || status != "OK" {
		t.Fatalf("reconnected: %v %s", names, status)
	}
	for _, bad := range []string{"0", "31", "x"} {
		if rc := e.code("alice", "", `<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>`+id+`</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>`+bad+`</m:ConnectionTimeout></m:GetStreamingEvents>`); rc != "ErrorInvalidArgument" {
			t.Errorf("ConnectionTimeout %s: %s", bad, rc)
		}
	}
	if rc := e.code("bob", "", `<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>`+id+`</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>`); rc != "ErrorSubscriptionAccessDenied" {
		t.Errorf("another account's subscription: %s", rc)
	}
	pull := e.ok("alice", "", subscribeReq(distinguished("inbox"), "5")).text("SubscriptionId")
	if rc := e.code("alice", "", `<m:GetStreamingEvents><m:SubscriptionIds><t:SubscriptionId>`+pull+`</t:SubscriptionId></m:SubscriptionIds><m:ConnectionTimeout>1</m:ConnectionTimeout></m:GetStreamingEvents>`); rc != "ErrorInvalidSubscription" {
		t.Errorf("a pull subscription: %s", rc)
	}
}

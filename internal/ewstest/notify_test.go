package ewstest

import (
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

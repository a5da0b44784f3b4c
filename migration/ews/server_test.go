package ews_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
)

// These tests run the client against internal/ewstest, the stateful EWS
// server that python3-exchangelib checks in .ci/interop-ews.sh, over TLS.

const (
	svcLogin = "svc-migrate"
	svcPass  = "Svc-Pa55"
	owner    = "anna@example.test"
)

// testServer is an ewstest server behind an httptest TLS listener with
// a service account (impersonation allowed) and one user mailbox.
type testServer struct {
	ews *ewstest.Server
	hs  *httptest.Server
}

func newTestServer(t testing.TB, opts ewstest.Options) *testServer {
	t.Helper()
	s := &testServer{ews: ewstest.New(opts)}
	for _, u := range []ewstest.User{
		{Login: svcLogin, Password: svcPass, SMTP: "svc-migrate@example.test", Impersonate: true},
		{Login: "anna", Password: "Anna-Pa55", SMTP: owner},
	} {
		if err := s.ews.AddUser(u); err != nil {
			t.Fatal(err)
		}
	}
	s.hs = httptest.NewTLSServer(s.ews)
	t.Cleanup(s.hs.Close)
	return s
}

// client is a client for the service account with impersonation.
func (s *testServer) client(t testing.TB, change func(*ews.Options)) *ews.Client {
	t.Helper()
	return clientFor(t, s.hs, ews.Options{Username: svcLogin, Password: svcPass}, change)
}

// TestServerOperations runs every operation of the client against the
// test server, logged in with Basic and with a full NTLM exchange (the
// server refusing Basic).
func TestServerOperations(t *testing.T) {
	for _, auth := range []ews.Auth{ews.AuthBasic, ews.AuthNTLM} {
		t.Run(string(auth), func(t *testing.T) {
			srv := newTestServer(t, ewstest.Options{NoBasic: auth == ews.AuthNTLM, NoNTLM: auth == ews.AuthBasic})
			if _, err := srv.ews.AddFolder(owner, "inbox", "Проекты", "IPF.Note"); err != nil {
				t.Fatal(err)
			}
			if err := srv.ews.Generate(owner, ewstest.Generate{Messages: 7, CalendarItems: 3, Recurring: 1, Contacts: 2}); err != nil {
				t.Fatal(err)
			}
			mb := srv.client(t, func(o *ews.Options) {
				o.Auth = auth
				if auth == ews.AuthNTLM {
					o.Username = `EXAMPLE\` + svcLogin
				}
			}).Mailbox(owner)
			ctx := context.Background()
			checkOperations(ctx, t, srv, mb)
		})
	}
}

func checkOperations(ctx context.Context, t *testing.T, srv *testServer, mb *ews.Mailbox) {
	fs, err := mb.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"}, ews.FolderRef{Distinguished: "calendar"})
	if err != nil || len(fs) != 2 || fs[0].DisplayName != "Inbox" || fs[0].TotalCount != 7 || fs[0].ChildFolderCount != 1 || fs[1].Kind != "CalendarFolder" {
		t.Fatalf("GetFolder: %+v %v", fs, err)
	}
	changes, state, err := mb.SyncFolderHierarchy(ctx, "")
	if err != nil || state == "" {
		t.Fatalf("SyncFolderHierarchy: %v", err)
	}
	names := map[string]string{}
	for _, c := range changes {
		names[c.Folder.DisplayName] = c.Kind
	}
	if names["Проекты"] != "Create" || names["Inbox"] != "Create" || names["Calendar"] != "Create" {
		t.Errorf("hierarchy: %v", names)
	}
	if again, _, err := mb.SyncFolderHierarchy(ctx, state); err != nil || len(again) != 0 {
		t.Errorf("hierarchy from the last state: %v %v", again, err)
	}

	// Items in pages of 3: 7 messages in three pages, the sync state of
	// each page resuming exactly after it.
	var ids []ews.ItemID
	state, pages := "", 0
	for last := false; !last; pages++ {
		var ch []ews.ItemChange
		ch, state, last, err = mb.SyncFolderItems(ctx, ews.FolderRef{Distinguished: "inbox"}, state, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ch {
			if c.Kind != "Create" || c.ItemKind != "Message" {
				t.Errorf("change %+v", c)
			}
			ids = append(ids, c.ItemID)
		}
	}
	if len(ids) != 7 || pages != 3 {
		t.Fatalf("SyncFolderItems: %d items in %d pages", len(ids), pages)
	}
	read := 0
	err = mb.GetItem(ctx, ids, ews.ShapeMIME, func(it ews.Item) error {
		if it.Err != nil || it.Message == nil || it.Message.MimeContent == nil || it.Message.DateTimeReceived == nil || it.Message.IsRead == nil {
			t.Fatalf("GetItem: %+v", it)
		}
		raw, err := it.Message.MIME()
		if err != nil || !strings.Contains(string(raw), "Subject:") {
			t.Fatalf("MIME: %v %q", err, raw)
		}
		if *it.Message.IsRead {
			read++
		}
		return nil
	})
	if err != nil || read != 3 {
		t.Fatalf("GetItem: %v, %d read", err, read)
	}

	// Create, update and delete a calendar item; a pull subscription on
	// the calendar sees each (DeleteItem moves to Deleted Items: a
	// MovedEvent).
	sub, wm, err := mb.Subscribe(ctx, []ews.FolderRef{{Distinguished: "calendar"}}, 5)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	end := start.Add(time.Hour)
	id, err := mb.CreateCalendarItem(ctx, ews.FolderRef{}, ews.CalendarItem{Subject: "Planning", Start: &start, End: &end,
		StartTimeZone: &ews.TimeZoneDefinition{ID: "UTC"}})
	if err != nil || id.ID == "" {
		t.Fatalf("CreateItem: %v %v", id, err)
	}
	id2, err := mb.UpdateCalendarItem(ctx, id, ews.CalendarItem{Subject: "Planning (moved)", Start: &start, End: &end})
	if err != nil || id2.ChangeKey == id.ChangeKey {
		t.Fatalf("UpdateItem: %v %v", id2, err)
	}
	// The old change key is stale now: NeverOverwrite refuses.
	if _, err := mb.UpdateCalendarItem(ctx, id, ews.CalendarItem{Subject: "stale"}); err == nil {
		t.Error("an update with a stale change key succeeded")
	}
	var got *ews.CalendarItem
	if err := mb.GetItem(ctx, []ews.ItemID{id2}, ews.ShapeCalendar, func(it ews.Item) error { got = it.CalendarItem; return it.Err }); err != nil || got == nil || got.Subject != "Planning (moved)" {
		t.Fatalf("GetItem calendar: %+v %v", got, err)
	}
	if err := mb.DeleteItem(ctx, id2); err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for {
		evs, more, err := mb.GetEvents(ctx, sub, wm)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range evs {
			if e.Kind != "StatusEvent" {
				kinds = append(kinds, e.Kind)
			}
			wm = e.Watermark
		}
		if !more {
			break
		}
	}
	if strings.Join(kinds, " ") != "CreatedEvent ModifiedEvent MovedEvent" {
		t.Errorf("events: %v", kinds)
	}
	if len(srv.ews.Invitations()) != 0 {
		t.Errorf("the server recorded invitations: %+v", srv.ews.Invitations())
	}
}

// TestServerImpersonation: the service account reaches a mailbox with
// the impersonation right and is refused (an auth error) without it.
func TestServerImpersonation(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	mb := srv.client(t, nil).Mailbox(owner)
	ctx := context.Background()
	if _, err := mb.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"}); err != nil {
		t.Fatalf("allowed: %v", err)
	}
	if err := srv.ews.SetImpersonation(svcLogin, false); err != nil {
		t.Fatal(err)
	}
	_, err := mb.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
	var e *ews.Error
	if migration.ClassOf(err) != migration.ErrClassAuth || !errors.As(err, &e) || !strings.HasPrefix(e.Code, "ErrorImpersonat") {
		t.Fatalf("denied: %v (class %q)", err, migration.ClassOf(err))
	}
	// A wrong password is an auth error too (HTTP 401).
	bad := srv.client(t, func(o *ews.Options) { o.Password = "wrong" }).Mailbox(owner)
	if _, err := bad.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"}); migration.ClassOf(err) != migration.ErrClassAuth {
		t.Fatalf("wrong password: %v", err)
	}
}

// TestServerThrottling: ErrorServerBusy's BackOffMilliseconds is waited
// out before the retry, and a call throttled more often than MaxRetries
// fails as a connection error.
func TestServerThrottling(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	mb := srv.client(t, nil).Mailbox(owner)
	ctx := context.Background()
	const backoff = 150 * time.Millisecond
	srv.ews.ThrottleNext(2, backoff, false)
	began := time.Now()
	if _, err := mb.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"}); err != nil {
		t.Fatalf("throttled twice, then: %v", err)
	}
	if waited := time.Since(began); waited < 2*backoff {
		t.Errorf("retried after %v, before the %v the server asked for", waited, 2*backoff)
	}

	few := srv.client(t, func(o *ews.Options) { o.MaxRetries = 1 }).Mailbox(owner)
	srv.ews.ThrottleNext(3, time.Millisecond, false)
	_, err := few.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
	var e *ews.Error
	if migration.ClassOf(err) != migration.ErrClassConnection || !errors.As(err, &e) || e.Code != "ErrorServerBusy" {
		t.Fatalf("throttled past MaxRetries: %v", err)
	}
	// HTTP 503 with Retry-After is throttling too.
	srv.ews.ThrottleNext(1, time.Second, true)
	if _, err := mb.GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"}); err != nil {
		t.Fatalf("after a 503: %v", err)
	}
}

// TestServerNTLMConcurrent: concurrent calls over NTLM all authenticate.
// Regression: the three legs of an NTLM handshake (negotiate, challenge,
// authenticate) authenticate one connection, but calls shared one pool
// of connections, so a handshake's legs could go over different ones and
// fail with 401.
func TestServerNTLMConcurrent(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{NoBasic: true})
	c := srv.client(t, func(o *ews.Options) { o.Auth = ews.AuthNTLM; o.MaxConcurrent = 4; o.CallTimeout = 20 * time.Second })
	ctx := context.Background()
	errs := make(chan error, 40)
	for range cap(errs) {
		go func() {
			_, err := c.Mailbox(owner).GetFolder(ctx, ews.FolderRef{Distinguished: "inbox"})
			errs <- err
		}()
	}
	for range cap(errs) {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
}

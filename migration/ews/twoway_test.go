package ews_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// offsetClock is the EWS test server's clock: real time plus an offset
// the test moves, so that Exchange's LastModifiedTime can be earlier or
// later than the store's modification time.
type offsetClock struct{ off atomic.Int64 }

func (c *offsetClock) Now() time.Time { return time.Now().Add(time.Duration(c.off.Load())) }

// twoWayEnv is an Exchange mailbox on the test server and a target
// account in a SQLite store in dir.
type twoWayEnv struct {
	srv     *testServer
	clock   *offsetClock
	dir     string
	st      *sqlite.Store
	users   *builtin.Directory
	account string
	client  *ews.Client
	mb      *ews.Mailbox // the Exchange user's own edits
}

func newTwoWayEnv(t *testing.T) *twoWayEnv {
	t.Helper()
	e := &twoWayEnv{clock: &offsetClock{}, dir: t.TempDir()}
	e.srv = newTestServer(t, ewstest.Options{Now: e.clock.Now})
	e.client = e.srv.client(t, nil)
	e.mb = e.client.Mailbox(owner)
	e.open(t)
	ctx := t.Context()
	if _, err := e.users.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	u, err := e.users.CreateUser(ctx, directory.User{Address: targetAddr}, "Target-Pa55")
	if err != nil {
		t.Fatal(err)
	}
	e.account = u.ID
	return e
}

// open opens (or reopens) the store.
func (e *twoWayEnv) open(t *testing.T) {
	t.Helper()
	st, err := sqlite.Open(context.Background(), e.dir, sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	e.st, e.users = st, builtin.New(st, builtin.Options{Accounts: st})
}

func (e *twoWayEnv) syncer(t *testing.T, access ews.AccessList, onCycle func(ews.CycleReport)) *ews.Syncer {
	t.Helper()
	return e.syncerEvery(t, access, 300*time.Millisecond, onCycle)
}

// syncerEvery is a syncer with scheduled passes every interval.
func (e *twoWayEnv) syncerEvery(t *testing.T, access ews.AccessList, interval time.Duration, onCycle func(ews.CycleReport)) *ews.Syncer {
	t.Helper()
	s, err := ews.NewSyncer(ews.SyncerOptions{Store: e.st, Directory: e.users, Client: e.client, Access: access,
		Interval: interval, PollInterval: 50 * time.Millisecond, OnCycle: onCycle})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

var twoWay = ews.AccessList{Mode: ews.AllowList, Entries: []string{targetAddr}}

func (e *twoWayEnv) calendar(t *testing.T) store.Collection {
	t.Helper()
	all, err := e.st.ListCollections(t.Context(), e.account, store.KindCalendar)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range all {
		if c.Name != "inbox" && c.Name != "outbox" {
			return c
		}
	}
	t.Fatalf("no calendar: %+v", all)
	return store.Collection{}
}

// events are the target calendar's events by SUMMARY.
func (e *twoWayEnv) events(t *testing.T) map[string]store.Object {
	t.Helper()
	objs, err := e.st.QueryObjects(t.Context(), e.calendar(t).ID, store.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]store.Object{}
	for _, o := range objs {
		cal, err := calendar.Parse(o.Data, calendar.Limits{})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range cal.Calendar().Events() {
			if s := ev.Props.Get("SUMMARY"); s != nil && ev.Props.Get("RECURRENCE-ID") == nil {
				text, err := s.Text()
				if err != nil {
					t.Fatal(err)
				}
				out[text] = o
			}
		}
	}
	return out
}

// exchange is the Exchange calendar's items by subject.
func (e *twoWayEnv) exchange(t *testing.T) map[string]*ews.CalendarItem {
	t.Helper()
	ctx := t.Context()
	var ids []ews.ItemID
	state := ""
	for last := false; !last; {
		var ch []ews.ItemChange
		var err error
		ch, state, last, err = e.mb.SyncFolderItems(ctx, ews.FolderRef{Distinguished: "calendar"}, state, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ch {
			ids = append(ids, c.ItemID)
		}
	}
	out := map[string]*ews.CalendarItem{}
	err := e.mb.GetItem(ctx, ids, ews.ShapeCalendar, func(it ews.Item) error {
		var ee *ews.Error
		if errors.As(it.Err, &ee) && ee.Code == "ErrorItemNotFound" {
			return nil // deleted since the listing, by the sync
		}
		if it.Err != nil {
			return it.Err
		}
		out[it.CalendarItem.Subject] = it.CalendarItem
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func icsEvent(uid, summary string, start time.Time) []byte {
	return fmt.Appendf(nil, "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"+
		"DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		uid, start.UTC().Format("20060102T150405Z"), start.Add(time.Hour).UTC().Format("20060102T150405Z"), strings.ReplaceAll(summary, ",", `\,`))
}

// put writes an event into the target calendar as a CalDAV client would.
func (e *twoWayEnv) put(t *testing.T, name, uid, summary string, start time.Time) store.Object {
	t.Helper()
	data := icsEvent(uid, summary, start)
	parsed, err := calendar.Parse(data, calendar.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	o := store.Object{Name: name, UID: uid, ContentType: "text/calendar", Data: data, Component: "VEVENT"}
	o.Start, o.End = parsed.Bounds()
	stored, err := e.st.PutObject(t.Context(), e.calendar(t).ID, o, store.PutOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return stored
}

func (e *twoWayEnv) createExchange(t *testing.T, subject string, start time.Time) ews.ItemID {
	t.Helper()
	end := start.Add(time.Hour)
	id, err := e.mb.CreateCalendarItem(t.Context(), ews.FolderRef{}, ews.CalendarItem{Subject: subject, Start: &start, End: &end,
		StartTimeZone: &ews.TimeZoneDefinition{ID: "UTC"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func (e *twoWayEnv) editExchange(t *testing.T, id ews.ItemID, subject string, start time.Time) ews.ItemID {
	t.Helper()
	end := start.Add(time.Hour)
	id, err := e.mb.UpdateCalendarItem(t.Context(), ews.ItemID{ID: id.ID}, ews.CalendarItem{Subject: subject, Start: &start, End: &end,
		StartTimeZone: &ews.TimeZoneDefinition{ID: "UTC"}})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// cycles collects the reports of a running syncer.
type cycles struct {
	mu   sync.Mutex
	list []ews.CycleReport
	t    *testing.T
}

func (c *cycles) add(r ews.CycleReport) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.list = append(c.list, r)
}

func (c *cycles) since(n int) []ews.CycleReport {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]ews.CycleReport(nil), c.list[n:]...)
}

func (c *cycles) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.list)
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > limit {
			t.Fatalf("%s: not within %v", what, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
	return time.Since(start)
}

// run starts s on the target in the background; the returned function
// stops it and waits.
func run(t *testing.T, s *ews.Syncer) func() {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx, []ews.Job{{Target: targetAddr, Mailbox: owner}}) }()
	stop := func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Run: %v", err)
		}
	}
	t.Cleanup(func() {
		select {
		case <-ctx.Done():
		default:
			stop()
		}
	})
	return stop
}

// quiet checks that the sync writes nothing more: after a scheduled
// pass that wrote nothing, three more scheduled passes (each with the
// notifications and store changes in between) leave the store calendar's
// sync token and every Exchange ChangeKey as they were.
func (e *twoWayEnv) quiet(t *testing.T, c *cycles, phase string) {
	t.Helper()
	// The baseline is a scheduled pass that wrote nothing, reported
	// after now: passes run one after another, so any pass running now
	// (and so its writes) ended before it.
	start := c.len()
	waitFor(t, 60*time.Second, "a scheduled pass that writes nothing", func() bool {
		n := c.len()
		if n <= start {
			return false
		}
		got := c.since(n - 1)
		return len(got) == 1 && got[0].Trigger == "schedule" && got[0].Pulled+got[0].Pushed+got[0].Deleted == 0 && got[0].Err == nil
	})
	token := e.calendar(t).SyncToken
	keys := map[string]string{}
	for s, ci := range e.exchange(t) {
		keys[s] = ci.ItemID.ChangeKey
	}
	from := c.len()
	// A pass woken by a notification or a store change can still come
	// after the baseline: the wake-up of a write made before it, left
	// waiting while the loop chose the schedule's tick (a pass longer
	// than the interval, as on a loaded machine, leaves the tick and the
	// poll both ready, and select takes either). Such a pass finds
	// nothing to do. What must not happen is a pass that writes, or
	// wake-ups that keep coming: so every pass from here on writes
	// nothing, and the wait ends when three scheduled passes ran, two of
	// them after the last wake-up. Wake-ups that never stop (a write
	// the sync does not count, coming back each time) fail the wait.
	waitFor(t, 60*time.Second, phase+": three scheduled passes, the last two with no wake-up since", func() bool {
		got := c.since(from)
		scheduled, after := 0, 0
		for _, r := range got {
			switch r.Trigger {
			case "schedule":
				scheduled++
				after++
			case "change", "notification":
				after = 0
			}
		}
		return scheduled >= 3 && after >= 2
	})
	for _, r := range c.since(from) {
		if r.Pulled+r.Pushed+r.Deleted+r.Conflicts != 0 || r.Err != nil {
			t.Errorf("%s: after the sync settled, a pass (%s) wrote: %+v", phase, r.Trigger, r)
		}
	}
	if got := e.calendar(t).SyncToken; got != token {
		t.Errorf("the store calendar changed with nobody editing: sync token %d -> %d", token, got)
	}
	for s, ci := range e.exchange(t) {
		if keys[s] != ci.ItemID.ChangeKey {
			t.Errorf("Exchange item %q changed with nobody editing", s)
		}
	}
}

// TestTwoWaySync: an event created on each side appears on the other
// within 10 s (Exchange's by its pull notification, Mailyard's by the
// store's change feed), edits and deletions follow, and no pass after
// that writes anything: an edit never loops. It runs with passes
// scheduled every 300 ms, and with passes scheduled faster than they
// run, as on a loaded machine, where a wake-up left over from the last
// write can come after scheduled passes (regression: quiet counted such
// a wake-up as a loop, and the test failed at a load average of 50).
func TestTwoWaySync(t *testing.T) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"idle", 300 * time.Millisecond}, {"passes longer than the interval", time.Millisecond}} {
		t.Run(tc.name, func(t *testing.T) { testTwoWaySync(t, tc.interval) })
	}
}

func testTwoWaySync(t *testing.T, interval time.Duration) {
	e := newTwoWayEnv(t)
	c := &cycles{t: t}
	stop := run(t, e.syncerEvery(t, twoWay, interval, c.add))
	waitFor(t, 30*time.Second, "the first pass", func() bool { return c.len() > 0 })
	if r := c.since(0)[0]; r.Err != nil || !r.TwoWay || r.Trigger != "start" {
		t.Fatalf("first pass: %+v", r)
	}
	e.calendar(t) // made by the first pass

	start := time.Date(2027, 1, 5, 10, 0, 0, 0, time.UTC)
	id := e.createExchange(t, "made in Exchange", start)
	took := waitFor(t, 10*time.Second, "Exchange's event in Mailyard", func() bool { _, ok := e.events(t)["made in Exchange"]; return ok })
	t.Logf("Exchange -> Mailyard in %v", took)

	e.put(t, "mine.ics", "mine-1@example.com", "made in Mailyard", start.Add(24*time.Hour))
	took = waitFor(t, 10*time.Second, "Mailyard's event in Exchange", func() bool { _, ok := e.exchange(t)["made in Mailyard"]; return ok })
	t.Logf("Mailyard -> Exchange in %v", took)
	if ci := e.exchange(t)["made in Mailyard"]; ci.UID != "mine-1@example.com" || !ci.Start.Equal(start.Add(24*time.Hour)) {
		t.Errorf("pushed item: UID %q start %v", ci.UID, ci.Start)
	}
	e.quiet(t, c, "creates")

	// Edits either way.
	e.editExchange(t, id, "edited in Exchange", start.Add(2*time.Hour))
	waitFor(t, 10*time.Second, "Exchange's edit in Mailyard", func() bool { _, ok := e.events(t)["edited in Exchange"]; return ok })
	e.put(t, "mine.ics", "mine-1@example.com", "edited in Mailyard", start.Add(25*time.Hour))
	waitFor(t, 10*time.Second, "Mailyard's edit in Exchange", func() bool { _, ok := e.exchange(t)["edited in Mailyard"]; return ok })
	if n := len(e.events(t)); n != 2 {
		t.Errorf("%d events in Mailyard, want 2", n)
	}
	e.quiet(t, c, "edits")

	// Deletions either way.
	if err := e.mb.DeleteItem(t.Context(), ews.ItemID{ID: id.ID}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Exchange's deletion in Mailyard", func() bool { _, ok := e.events(t)["edited in Exchange"]; return !ok })
	if err := e.st.DeleteObject(t.Context(), e.calendar(t).ID, "mine.ics", ""); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "Mailyard's deletion in Exchange", func() bool { return len(e.exchange(t)) == 0 })
	e.quiet(t, c, "deletions")
	stop()
	if inv := e.srv.ews.Invitations(); len(inv) != 0 {
		t.Errorf("the sync sent invitations: %+v", inv)
	}
}

// TestTwoWayConflict: an event changed on both sides since the last
// sync keeps the later change on both sides, and the loser is in the
// conflict log, for either side winning and for a change against a
// deletion.
func TestTwoWayConflict(t *testing.T) {
	e := newTwoWayEnv(t)
	ctx := t.Context()
	s := e.syncer(t, twoWay, nil)
	once := e.passes(t, s)
	once("first pass")
	start := time.Date(2027, 2, 1, 9, 0, 0, 0, time.UTC)
	id := e.createExchange(t, "v1", start)
	if r := once("import"); r.Pulled != 1 {
		t.Fatalf("import: %+v", r)
	}
	obj := e.events(t)["v1"]

	// Exchange changed an hour ago, Mailyard now: Mailyard wins.
	e.clock.off.Store(int64(-time.Hour))
	e.editExchange(t, id, "exchange edit (earlier)", start)
	e.put(t, obj.Name, obj.UID, "mailyard edit (later)", start)
	r := once("first conflict")
	if r.Conflicts != 1 || r.Pushed != 1 || r.Pulled != 0 {
		t.Errorf("first conflict: %+v", r)
	}
	if _, ok := e.exchange(t)["mailyard edit (later)"]; !ok {
		t.Errorf("Exchange does not have the later change: %v", keysOf(e.exchange(t)))
	}
	if _, ok := e.events(t)["mailyard edit (later)"]; !ok || len(e.events(t)) != 1 {
		t.Errorf("Mailyard lost its later change: %v", keysOf(e.events(t)))
	}

	// Mailyard changed now, Exchange an hour from now: Exchange wins.
	e.put(t, obj.Name, obj.UID, "mailyard edit (earlier)", start)
	e.clock.off.Store(int64(time.Hour))
	e.editExchange(t, id, "exchange edit (later)", start)
	r = once("second conflict")
	if r.Conflicts != 1 || r.Pulled != 1 || r.Pushed != 0 {
		t.Errorf("second conflict: %+v", r)
	}
	if _, ok := e.events(t)["exchange edit (later)"]; !ok || len(e.events(t)) != 1 {
		t.Errorf("Mailyard does not have the later change: %v", keysOf(e.events(t)))
	}
	if _, ok := e.exchange(t)["exchange edit (later)"]; !ok {
		t.Errorf("Exchange lost its later change: %v", keysOf(e.exchange(t)))
	}

	// Deleted in Mailyard, changed in Exchange: the change wins.
	e.clock.off.Store(0)
	if err := e.st.DeleteObject(ctx, e.calendar(t).ID, obj.Name, ""); err != nil {
		t.Fatal(err)
	}
	e.editExchange(t, id, "exchange edit after a deletion", start)
	if r := once("deletion conflict"); r.Conflicts != 1 {
		t.Errorf("deletion conflict: %+v", r)
	}
	if _, ok := e.events(t)["exchange edit after a deletion"]; !ok {
		t.Errorf("the change lost against a deletion: %v", keysOf(e.events(t)))
	}

	// Nothing more to do: a pass writes nothing.
	if r := once("settled"); r.Pulled+r.Pushed+r.Deleted+r.Conflicts != 0 {
		t.Errorf("a pass after the conflicts wrote: %+v", r)
	}

	log, err := s.Conflicts(ctx, targetAddr, 0, 0)
	if err != nil || len(log) != 3 {
		t.Fatalf("conflict log: %d entries, %v", len(log), err)
	}
	want := []struct {
		winner ews.Side
		loser  string
	}{{ews.SideMailyard, "SUMMARY:exchange edit (earlier)"}, {ews.SideExchange, "SUMMARY:mailyard edit (earlier)"}, {ews.SideExchange, ""}}
	for i, w := range want {
		c := log[i]
		if c.Winner != w.winner || c.UID != obj.UID || c.Target != targetAddr || !strings.Contains(string(c.Loser), w.loser) || (w.loser == "") != (len(c.Loser) == 0) {
			t.Errorf("conflict %d: %+v (loser %q), want winner %s, loser with %q", i, c, c.Loser, w.winner, w.loser)
		}
	}
	if !log[0].MailyardModified.After(log[0].ExchangeModified) || !log[1].ExchangeModified.After(log[1].MailyardModified) {
		t.Errorf("conflict times: %+v", log[:2])
	}
	// The same log is readable without a syncer, and pages.
	if page, err := ews.ReadConflicts(ctx, e.st, targetAddr, 1, 1); err != nil || len(page) != 1 || page[0].Winner != ews.SideExchange {
		t.Errorf("ReadConflicts page: %+v %v", page, err)
	}
	if other, err := ews.ReadConflicts(ctx, e.st, "other@example.com", 0, 0); err != nil || len(other) != 0 {
		t.Errorf("another target's log: %+v %v", other, err)
	}

	// The log keeps MaxConflicts entries per target, the oldest go.
	s2, err := ews.NewSyncer(ews.SyncerOptions{Store: e.st, Directory: e.users, Client: e.client, Access: twoWay, MaxConflicts: 2})
	if err != nil {
		t.Fatal(err)
	}
	e.put(t, obj.Name, obj.UID, "mailyard edit (last)", start)
	e.clock.off.Store(int64(-time.Hour))
	e.editExchange(t, id, "exchange edit (last and earlier)", start)
	if r := s2.SyncOnce(ctx, ews.Job{Target: targetAddr, Mailbox: owner}); r.Err != nil || r.Conflicts != 1 {
		t.Fatalf("fourth conflict: %+v", r)
	}
	kept, err := s2.Conflicts(ctx, targetAddr, 0, 0)
	if err != nil || len(kept) != 2 || !kept[0].Time.Equal(log[2].Time) || !strings.Contains(string(kept[1].Loser), "exchange edit (last and earlier)") {
		t.Errorf("log bounded to 2: %+v %v", kept, err)
	}
}

// TestTwoWayResume: a stopped sync, started again on the reopened
// store, carries over what both sides did while it was stopped, without
// importing the calendar again.
func TestTwoWayResume(t *testing.T) {
	e := newTwoWayEnv(t)
	c := &cycles{t: t}
	stop := run(t, e.syncer(t, twoWay, c.add))
	start := time.Date(2027, 3, 1, 9, 0, 0, 0, time.UTC)
	for i := range 5 {
		e.createExchange(t, fmt.Sprintf("before %d", i), start.Add(time.Duration(i)*24*time.Hour))
	}
	waitFor(t, 30*time.Second, "the first events", func() bool { return len(e.events(t)) == 5 })
	stop()

	e.createExchange(t, "while stopped, Exchange", start.Add(10*24*time.Hour))
	e.put(t, "stopped.ics", "stopped-1@example.com", "while stopped, Mailyard", start.Add(11*24*time.Hour))
	e.st.Close()
	e.open(t)

	c = &cycles{t: t}
	run(t, e.syncer(t, twoWay, c.add))
	waitFor(t, 30*time.Second, "the first pass after the restart", func() bool { return c.len() > 0 })
	r := c.since(0)[0]
	if r.Err != nil || r.Trigger != "start" || r.Pulled != 1 || r.Pushed != 1 {
		t.Errorf("first pass after the restart: %+v (want 1 pulled and 1 pushed)", r)
	}
	if _, ok := e.events(t)["while stopped, Exchange"]; !ok || len(e.events(t)) != 7 {
		t.Errorf("Mailyard after the restart: %v", keysOf(e.events(t)))
	}
	if _, ok := e.exchange(t)["while stopped, Mailyard"]; !ok || len(e.exchange(t)) != 7 {
		t.Errorf("Exchange after the restart: %v", keysOf(e.exchange(t)))
	}
	e.quiet(t, c, "restart")
}

// TestOneWaySync: a target the access list does not select gets
// Exchange's calendar, but its own events stay in Mailyard.
func TestOneWaySync(t *testing.T) {
	e := newTwoWayEnv(t)
	ctx := t.Context()
	s := e.syncer(t, ews.AccessList{Mode: ews.DenyList, Entries: []string{"@example.com"}}, nil)
	job := ews.Job{Target: targetAddr, Mailbox: owner}
	start := time.Date(2027, 4, 1, 9, 0, 0, 0, time.UTC)
	e.createExchange(t, "from Exchange", start)
	if r := s.SyncOnce(ctx, job); r.Err != nil || r.TwoWay || r.Pulled != 1 {
		t.Fatalf("one-way pass: %+v", r)
	}
	e.put(t, "local.ics", "local-1@example.com", "local", start)
	if r := s.SyncOnce(ctx, job); r.Err != nil || r.Pushed != 0 {
		t.Fatalf("one-way pass: %+v", r)
	}
	if ex := e.exchange(t); len(ex) != 1 {
		t.Errorf("a one-way target's event went to Exchange: %v", keysOf(ex))
	}
}

func TestAccessList(t *testing.T) {
	for _, tc := range []struct {
		list   ews.AccessList
		target string
		want   bool
	}{
		{ews.AccessList{}, "a@example.com", false},
		{ews.AccessList{Mode: ews.AllowList, Entries: []string{"A@Example.com"}}, "a@example.com", true},
		{ews.AccessList{Mode: ews.AllowList, Entries: []string{"a@example.com"}}, "b@example.com", false},
		{ews.AccessList{Mode: ews.AllowList, Entries: []string{"@example.com"}}, "b@EXAMPLE.com", true},
		{ews.AccessList{Mode: ews.DenyList, Entries: []string{"a@example.com"}}, "a@example.com", false},
		{ews.AccessList{Mode: ews.DenyList, Entries: []string{"a@example.com"}}, "b@example.com", true},
		{ews.AccessList{Mode: ews.DenyList}, "b@example.com", true},
	} {
		if got := tc.list.TwoWay(tc.target); got != tc.want {
			t.Errorf("%+v.TwoWay(%s) = %v", tc.list, tc.target, got)
		}
	}
	for _, bad := range []ews.AccessList{{Mode: "maybe"}, {Mode: ews.AllowList, Entries: []string{"nobody"}}, {Entries: []string{"@"}}} {
		if _, err := ews.NewSyncer(ews.SyncerOptions{Store: &sqlite.Store{}, Directory: &builtin.Directory{}, Client: &ews.Client{}, Access: bad}); err == nil {
			t.Errorf("access list %+v accepted", bad)
		}
	}
}

func keysOf[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestTwoWayForeignCopy: an event that another writer puts into the
// Mailyard calendar as a copy of an Exchange item the sync has not
// pulled yet (the migration applying a meeting request, a client
// importing the invitation) is paired with that item by UID, not sent
// to Exchange as a second item, even by a pass that only pushes (woken
// by the store's change feed). Regression: the push-only pass created
// a duplicate in Exchange.
func TestTwoWayForeignCopy(t *testing.T) {
	e := newTwoWayEnv(t)
	c := &cycles{t: t}
	// No scheduled pass and no notification poll within the test: only
	// the start and the store's feed wake the sync.
	s, err := ews.NewSyncer(ews.SyncerOptions{Store: e.st, Directory: e.users, Client: e.client, Access: twoWay,
		Interval: time.Hour, PollInterval: time.Hour, OnCycle: c.add})
	if err != nil {
		t.Fatal(err)
	}
	run(t, s)
	waitFor(t, 30*time.Second, "the first pass", func() bool { return c.len() > 0 })
	start := time.Date(2027, 7, 5, 9, 0, 0, 0, time.UTC)
	id := e.createExchange(t, "invitation", start)
	var uid string
	if err := e.mb.GetItem(t.Context(), []ews.ItemID{id}, ews.ShapeCalendar, func(it ews.Item) error {
		uid = it.CalendarItem.UID
		return it.Err
	}); err != nil {
		t.Fatal(err)
	}
	n := c.len()
	e.put(t, "copy.ics", uid, "invitation", start)
	waitFor(t, 30*time.Second, "a pass woken by the store's change", func() bool {
		for _, r := range c.since(n) {
			if r.Trigger == "change" {
				return true
			}
		}
		return false
	})
	for _, r := range c.since(n) {
		if r.Err != nil {
			t.Errorf("pass: %+v", r)
		}
	}
	// Counted over every item: e.exchange keys by subject, which both
	// copies would share.
	ctx := t.Context()
	var ids []ews.ItemID
	for state, last := "", false; !last; {
		var ch []ews.ItemChange
		ch, state, last, err = e.mb.SyncFolderItems(ctx, ews.FolderRef{Distinguished: "calendar"}, state, 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ch {
			ids = append(ids, c.ItemID)
		}
	}
	n = 0
	if err := e.mb.GetItem(ctx, ids, ews.ShapeCalendar, func(it ews.Item) error {
		if it.Err == nil && it.CalendarItem.UID == uid {
			n++
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if n != 1 {
		t.Errorf("%d Exchange items with the event's UID, want 1", n)
	}
}

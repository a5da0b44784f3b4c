package ews_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-ical"
	"github.com/emersion/go-vcard"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/memstore"
	"github.com/mailyard/mailyard/store/sqlite"
)

// Every store backend is a migration target.
var (
	_ ews.Target = (*sqlite.Store)(nil)
	_ ews.Target = (*memstore.Store)(nil)
)

const targetAddr = "anna@example.com"

// migrateEnv is a source mailbox on the EWS test server and an empty
// target account in a SQLite store.
type migrateEnv struct {
	srv     *testServer
	st      *sqlite.Store
	dir     *builtin.Directory
	account string
	client  *ews.Client
}

// The mailbox of the end-to-end tests: 200 messages in the inbox, 50
// calendar items (10 series with exceptions, three time zones), 30
// contacts, and a few messages in other folders.
var testMailbox = ewstest.Generate{Messages: 200, CalendarItems: 50, Recurring: 10, Contacts: 30}

func newMigrateEnv(t *testing.T) *migrateEnv {
	t.Helper()
	e := &migrateEnv{srv: newTestServer(t, ewstest.Options{})}
	if err := e.srv.ews.Generate(owner, testMailbox); err != nil {
		t.Fatal(err)
	}
	for _, f := range [][2]string{{"inbox", "Проекты"}, {"inbox/Проекты", "2026"}, {"msgfolderroot", "Archive 2019"}} {
		if _, err := e.srv.ews.AddFolder(owner, f[0], f[1], "IPF.Note"); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2025, 11, 3, 8, 0, 0, 0, time.UTC)
	for i, path := range []string{"inbox/Проекты", "inbox/Проекты/2026", "sentitems", "sentitems", "deleteditems", "junkemail", "drafts", "msgfolderroot/Archive 2019"} {
		raw := fmt.Sprintf("From: anna@example.test\r\nTo: bob@example.org\r\nSubject: folder message %d\r\nMessage-ID: <f%d@example.test>\r\nDate: Mon, 3 Nov 2025 08:00:00 +0000\r\n\r\nbody %d\r\n", i, i, i)
		if _, err := e.srv.ews.AddMessage(owner, path, []byte(raw), i%2 == 0, i%3 == 0, base.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	e.st, e.dir, e.account = newTarget(t)
	e.client = e.srv.client(t, nil)
	return e
}

// newTarget opens a SQLite store in a temporary directory with the
// target account targetAddr, and returns the store, its directory and
// the account's ID.
// firstPass makes a target store (newTarget) and a Migrator from the
// test server into it, and runs the Migrator's first pass on testJob.
func (s *testServer) firstPass(t *testing.T) (*ews.Migrator, ews.Result, *sqlite.Store, string) {
	t.Helper()
	st, dir, account := newTarget(t)
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: dir, Client: s.client(t, nil)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Sync(t.Context(), testJob)
	if err != nil {
		t.Fatal(err)
	}
	return m, res, st, account
}

func newTarget(t *testing.T) (*sqlite.Store, *builtin.Directory, string) {
	t.Helper()
	ctx := context.Background()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st})
	if _, err := dir.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	u, err := dir.CreateUser(ctx, directory.User{Address: targetAddr}, "Target-Pa55")
	if err != nil {
		t.Fatal(err)
	}
	return st, dir, u.ID
}

func (e *migrateEnv) migrator(t *testing.T, st ews.Target) *ews.Migrator {
	t.Helper()
	if st == nil {
		st = e.st
	}
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: e.dir, Client: e.client, PageSize: 30})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

var testJob = ews.Job{Target: targetAddr, Mailbox: owner}

func TestMigrateMailbox(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	m := e.migrator(t, nil)
	res, err := m.Sync(ctx, testJob)
	if err != nil {
		t.Fatal(err)
	}
	// Drafts are excluded by default; everything else arrives.
	if res.Messages != 200+7 || res.Events != 50 || res.Contacts != 30 {
		t.Errorf("first pass: %d messages, %d events, %d contacts", res.Messages, res.Events, res.Contacts)
	}
	targets := map[string]string{}
	for _, f := range res.Folders {
		targets[f.Source] = f.Target
		if f.Excluded != (f.Source == "Drafts") {
			t.Errorf("folder %+v", f)
		}
	}
	want := map[string]string{
		"INBOX": "INBOX", "INBOX/Проекты": "INBOX/Проекты", "INBOX/Проекты/2026": "INBOX/Проекты/2026",
		"Sent Items": "Sent", "Deleted Items": "Trash", "Junk Email": "Junk", "Drafts": "", "Archive 2019": "Archive 2019",
	}
	for src, tgt := range want {
		if got, ok := targets[src]; !ok || got != tgt {
			t.Errorf("folder %q -> %q (present %v), want %q", src, got, ok, tgt)
		}
	}
	e.compareMail(t, want)
	e.compareCalendar(t)
	e.compareContacts(t)

	// A second pass copies nothing.
	res, err = m.Sync(ctx, testJob)
	if err != nil {
		t.Fatal(err)
	}
	if res.Messages != 0 || res.Events != 0 || res.Contacts != 0 || res.Deleted != 0 {
		t.Errorf("second pass: %+v", res)
	}
	e.compareMail(t, want)

	// A change on the source reaches the target on the next pass; a
	// deleted contact is deleted.
	mb := e.client.Mailbox(owner)
	if err := mb.DeleteItem(ctx, e.itemIDs(t, ews.FolderRef{Distinguished: "contacts"})[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := e.srv.ews.AddMessage(owner, "inbox", []byte("Subject: late\r\nMessage-ID: <late@example.test>\r\n\r\nlate\r\n"), false, false, time.Now()); err != nil {
		t.Fatal(err)
	}
	if res, err = m.Sync(ctx, testJob); err != nil || res.Messages != 1 || res.Deleted != 1 || res.Contacts != 0 {
		t.Fatalf("third pass: %+v %v", res, err)
	}
	e.compareMail(t, want)
	e.compareContacts(t)

	// Read-state changes on the source reach the copies: every third
	// generated message is read; the first becomes unread, the second
	// read.
	inbox := e.itemIDs(t, ews.FolderRef{Distinguished: "inbox"})
	e.setRead(t, inbox[0], false)
	e.setRead(t, inbox[1], true)
	// A flag set and one cleared on the source (every fifth generated
	// message is flagged) come as Updates.
	e.setFlag(t, inbox[2], true)
	e.setFlag(t, inbox[5], false)
	if res, err = m.Sync(ctx, testJob); err != nil || res.Messages != 0 {
		t.Fatalf("fourth pass: %+v %v", res, err)
	}
	e.compareMail(t, want)
}

// TestMigrateResume stops passes at many points, after the store has
// committed a message or an object and before the checkpoint covering
// it, and reruns until a pass finishes: every item arrives exactly once.
func TestMigrateResume(t *testing.T) { testMigrateResume(t, false) }

// TestMigrateResumeBatches is TestMigrateResume with a store that takes
// a page's messages in batches (store.BatchAppender), as store/sqlite
// does: a pass stopped after a batch's commit and before its checkpoint
// is resumed without duplicates too.
func TestMigrateResumeBatches(t *testing.T) { testMigrateResume(t, true) }

func testMigrateResume(t *testing.T, batches bool) {
	e := newMigrateEnv(t)
	want := map[string]string{"INBOX": "INBOX", "INBOX/Проекты": "INBOX/Проекты", "INBOX/Проекты/2026": "INBOX/Проекты/2026",
		"Sent Items": "Sent", "Deleted Items": "Trash", "Junk Email": "Junk", "Archive 2019": "Archive 2019"}
	cs := &cancelStore{Target: e.st}
	var target ews.Target = cs
	// Writes between cancellations; a batch of messages counts as one
	// write, so a pass with batches makes fewer.
	first, step := 40, 13
	if batches {
		target = &cancelBatchStore{cs}
		first, step = 12, 5
	}
	m := e.migrator(t, target)
	passes := 0
	for ; passes < 40; passes++ {
		ctx, cancel := context.WithCancel(context.Background())
		cs.arm(cancel, first+step*(passes%5))
		_, err := m.Sync(ctx, testJob)
		cancel()
		if err == nil {
			break
		}
		if migration.ClassOf(err) != migration.ErrClassCanceled && !errors.Is(err, context.Canceled) {
			t.Fatalf("pass %d: %v (class %s)", passes, err, migration.ClassOf(err))
		}
	}
	if passes < 3 || passes == 40 {
		t.Fatalf("%d interrupted passes", passes)
	}
	// Every pass but the last was stopped after a commit of its own.
	if got := cs.appends.Load(); got != 207 {
		t.Errorf("%d appends over %d passes, want one per message (207)", got, passes+1)
	}
	if b := cs.batches.Load(); batches != (b > 0) || b >= 207 {
		t.Errorf("%d batches of 207 messages (batches: %v)", b, batches)
	}
	e.compareMail(t, want)
	e.compareCalendar(t)
	e.compareContacts(t)
}

// cancelStore cancels a pass's context right after the n-th message
// append or object write has committed, so the pass ends before its
// checkpoint.
type cancelStore struct {
	ews.Target
	mu      sync.Mutex
	cancel  context.CancelFunc
	left    int
	appends atomic.Int64
	batches atomic.Int64 // AppendBatch calls (cancelBatchStore)
}

func (s *cancelStore) arm(cancel context.CancelFunc, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancel, s.left = cancel, n
}

func (s *cancelStore) count() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.left--; s.left == 0 {
		s.cancel()
	}
}

func (s *cancelStore) Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error) {
	msg, err := s.Target.Append(ctx, account, mailbox, r, opts)
	if err == nil {
		s.appends.Add(1)
		s.count()
	}
	return msg, err
}

// cancelBatchStore is a cancelStore that also takes batches of messages
// (store.BatchAppender); a batch counts as one write.
type cancelBatchStore struct{ *cancelStore }

func (s *cancelBatchStore) AppendBatch(ctx context.Context, account, mailbox string, msgs []store.AppendMessage) ([]store.Message, error) {
	out, err := s.Target.(store.BatchAppender).AppendBatch(ctx, account, mailbox, msgs)
	if err == nil {
		s.appends.Add(int64(len(out)))
		s.batches.Add(1)
		s.count()
	}
	return out, err
}

func (s *cancelStore) PutObject(ctx context.Context, id int64, o store.Object, opts store.PutOptions) (store.Object, error) {
	o, err := s.Target.PutObject(ctx, id, o, opts)
	if err == nil {
		s.count()
	}
	return o, err
}

// itemIDs lists the items of a source folder by SyncFolderItems.
func (e *migrateEnv) itemIDs(t *testing.T, folder ews.FolderRef) []ews.ItemID {
	t.Helper()
	var ids []ews.ItemID
	state := ""
	for last := false; !last; {
		var ch []ews.ItemChange
		var err error
		ch, state, last, err = e.client.Mailbox(owner).SyncFolderItems(context.Background(), folder, state, 512)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range ch {
			ids = append(ids, c.ItemID)
		}
	}
	return ids
}

// mailEntry is one message as compared: its bytes' digest, read and
// flagged state and received time.
type mailEntry struct {
	sum           string
	seen, flagged bool
	date          int64
}

// compareMail checks that each target mailbox holds exactly the messages
// of the source folders mapped to it.
func (e *migrateEnv) compareMail(t *testing.T, folders map[string]string) {
	t.Helper()
	ctx := context.Background()
	mb := e.client.Mailbox(owner)
	fs, _, err := mb.SyncFolderHierarchy(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]ews.FolderID{}
	for _, c := range fs {
		ids[c.Folder.DisplayName] = c.Folder.FolderID
	}
	wantBy := map[string][]mailEntry{}
	for src, tgt := range folders {
		if tgt == "" {
			continue
		}
		segs := strings.Split(src, "/")
		name := segs[len(segs)-1]
		if name == "INBOX" {
			name = "Inbox"
		}
		items := e.itemIDs(t, ews.FolderRef{ID: ids[name]})
		err := mb.GetItem(ctx, items, ews.ShapeMIME, func(it ews.Item) error {
			if it.Message == nil {
				return nil // a deleted contact in Deleted Items
			}
			raw, err := it.Message.MIME()
			if err != nil {
				return err
			}
			sum := sha256.Sum256(raw)
			wantBy[tgt] = append(wantBy[tgt], mailEntry{hex.EncodeToString(sum[:]), *it.Message.IsRead, it.Message.Flagged(), it.Message.DateTimeReceived.Unix()})
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	for tgt, want := range wantBy {
		msgs, err := e.st.ListMessages(ctx, e.account, tgt, nil)
		if err != nil {
			t.Fatalf("%s: %v", tgt, err)
		}
		var got []mailEntry
		for _, m := range msgs {
			body, err := e.st.OpenBody(ctx, e.account, tgt, m.UID)
			if err != nil {
				t.Fatal(err)
			}
			raw, err := io.ReadAll(body)
			body.Close()
			if err != nil {
				t.Fatal(err)
			}
			sum := sha256.Sum256(raw)
			got = append(got, mailEntry{hex.EncodeToString(sum[:]), slices.Contains(m.Flags, store.FlagSeen), slices.Contains(m.Flags, store.FlagFlagged), m.InternalDate.Unix()})
		}
		sortEntries(want)
		sortEntries(got)
		if !slices.Equal(got, want) {
			t.Errorf("mailbox %s: %d messages, want %d (equal sets: %v)", tgt, len(got), len(want), len(got) == len(want))
		}
	}
}

func sortEntries(es []mailEntry) {
	sort.Slice(es, func(i, j int) bool { return fmt.Sprint(es[i]) < fmt.Sprint(es[j]) })
}

// compareCalendar checks that the default calendar holds one object per
// series and that their instances over two years, expanded by
// internal/calendar, are those the server's CalendarView lists.
func (e *migrateEnv) compareCalendar(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	from := testMailbox.Start
	if from.IsZero() {
		from = time.Date(2026, 1, 5, 0, 0, 0, 0, time.UTC)
	}
	from = from.AddDate(0, 0, -1)
	to := from.AddDate(2, 0, 0)
	want := e.calendarView(t, from, to)
	colls, err := e.st.ListCollections(ctx, e.account, store.KindCalendar)
	if err != nil || len(colls) != 1 {
		t.Fatalf("calendars: %+v %v", colls, err)
	}
	objs, err := e.st.QueryObjects(ctx, colls[0].ID, store.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(objs) != testMailbox.CalendarItems {
		t.Errorf("%d calendar objects, want %d", len(objs), testMailbox.CalendarItems)
	}
	var got []string
	series := 0
	for _, o := range objs {
		obj, err := calendar.Parse(o.Data, calendar.Limits{})
		if err != nil {
			t.Fatalf("object %s: %v", o.Name, err)
		}
		for _, c := range obj.Calendar().Children {
			if c.Name == ical.CompEvent && c.Props.Get(ical.PropRecurrenceRule) != nil {
				series++
			}
		}
		exp, err := obj.Expand(from, to, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range exp.Children {
			if c.Name != ical.CompEvent {
				continue
			}
			start, err := c.Props.DateTime(ical.PropDateTimeStart, time.UTC)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, o.UID+" "+start.UTC().Format(time.RFC3339))
		}
	}
	if series != testMailbox.Recurring {
		t.Errorf("%d series, want %d", series, testMailbox.Recurring)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("%d instances expanded, CalendarView has %d", len(got), len(want))
		d := diff(got, want)
		for _, l := range d {
			t.Log(l)
		}
		for _, o := range objs {
			if len(d) > 0 && strings.HasSuffix(strings.Fields(d[0])[1], o.UID) {
				t.Logf("%s", o.Data)
			}
		}
	}
	if len(want) < 200 {
		t.Errorf("only %d instances in two years: the series do not recur", len(want))
	}
}

func diff(got, want []string) []string {
	var out []string
	for _, g := range got {
		if !slices.Contains(want, g) {
			out = append(out, "extra "+g)
		}
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			out = append(out, "missing "+w)
		}
	}
	return out[:min(len(out), 20)]
}

// calendarView asks the server for the instances in [from, to) by a
// FindItem CalendarView, the server's own expansion, as "UID start".
func (e *migrateEnv) calendarView(t *testing.T, from, to time.Time) []string {
	t.Helper()
	resp := e.soap(t, `<m:FindItem Traversal="Shallow">
 <m:ItemShape><t:BaseShape>IdOnly</t:BaseShape><t:AdditionalProperties><t:FieldURI FieldURI="calendar:UID"/><t:FieldURI FieldURI="calendar:Start"/></t:AdditionalProperties></m:ItemShape>
 <m:CalendarView MaxEntriesReturned="100000" StartDate="`+from.Format(time.RFC3339)+`" EndDate="`+to.Format(time.RFC3339)+`"/>
 <m:ParentFolderIds><t:DistinguishedFolderId Id="calendar"/></m:ParentFolderIds>
</m:FindItem>`)
	var env struct {
		Root struct {
			Last  bool `xml:"IncludesLastItemInRange,attr"`
			Items []struct {
				UID   string    `xml:"UID"`
				Start time.Time `xml:"Start"`
			} `xml:"Items>CalendarItem"`
		} `xml:"Body>FindItemResponse>ResponseMessages>FindItemResponseMessage>RootFolder"`
	}
	if err := xml.Unmarshal(resp, &env); err != nil {
		t.Fatal(err)
	}
	if !env.Root.Last {
		t.Fatal("CalendarView did not return the whole range")
	}
	var out []string
	for _, it := range env.Root.Items {
		out = append(out, it.UID+" "+it.Start.UTC().Format(time.RFC3339))
	}
	slices.Sort(out)
	return out
}

// soap sends one operation to the server as the mailbox's owner, over
// plain SOAP, and returns the answer.
func (e *migrateEnv) soap(t *testing.T, op string) []byte {
	t.Helper()
	body := `<?xml version="1.0" encoding="utf-8"?>
<soap:Envelope xmlns:soap="http://schemas.xmlsoap.org/soap/envelope/" xmlns:m="http://schemas.microsoft.com/exchange/services/2006/messages" xmlns:t="http://schemas.microsoft.com/exchange/services/2006/types">
<soap:Header><t:RequestServerVersion Version="Exchange2016"/></soap:Header>
<soap:Body>` + op + `</soap:Body></soap:Envelope>`
	req, err := http.NewRequest("POST", e.srv.hs.URL+"/EWS/Exchange.asmx", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth("anna", "Anna-Pa55")
	req.Header.Set("Content-Type", "text/xml; charset=utf-8")
	resp, err := e.srv.hs.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(out), `ResponseClass="Success"`) {
		t.Fatalf("%s: %v\n%s", op, err, out)
	}
	return out
}

// setRead changes a source message's read state.
func (e *migrateEnv) setRead(t *testing.T, id ews.ItemID, read bool) {
	e.soap(t, `<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange>`+
		`<t:ItemId Id="`+id.ID+`"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="message:IsRead"/><t:Message><t:IsRead>`+
		fmt.Sprint(read)+`</t:IsRead></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`)
}

// setFlag sets or clears a source message's follow-up flag.
func (e *migrateEnv) setFlag(t *testing.T, id ews.ItemID, flagged bool) {
	status := "NotFlagged"
	if flagged {
		status = "Flagged"
	}
	e.soap(t, `<m:UpdateItem MessageDisposition="SaveOnly" ConflictResolution="AlwaysOverwrite"><m:ItemChanges><t:ItemChange>`+
		`<t:ItemId Id="`+id.ID+`"/><t:Updates><t:SetItemField><t:FieldURI FieldURI="item:Flag"/><t:Message><t:Flag><t:FlagStatus>`+
		status+`</t:FlagStatus></t:Flag></t:Message></t:SetItemField></t:Updates></t:ItemChange></m:ItemChanges></m:UpdateItem>`)
}

// compareContacts checks that the default address book holds one vCard
// per source contact, with its name and first e-mail address.
func (e *migrateEnv) compareContacts(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	mb := e.client.Mailbox(owner)
	ids := e.itemIDs(t, ews.FolderRef{Distinguished: "contacts"})
	var want []string
	err := mb.GetItem(ctx, ids, ews.ShapeContact, func(it ews.Item) error {
		email := ""
		if len(it.Contact.EmailAddresses) > 0 {
			email = it.Contact.EmailAddresses[0].Value
		}
		want = append(want, it.Contact.DisplayName+" "+email)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	books, err := e.st.ListCollections(ctx, e.account, store.KindAddressBook)
	if err != nil || len(books) != 1 {
		t.Fatalf("address books: %+v %v", books, err)
	}
	objs, err := e.st.QueryObjects(ctx, books[0].ID, store.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, o := range objs {
		card, err := vcard.NewDecoder(strings.NewReader(string(o.Data))).Decode()
		if err != nil {
			t.Fatalf("%s: %v", o.Name, err)
		}
		got = append(got, card.PreferredValue(vcard.FieldFormattedName)+" "+card.PreferredValue(vcard.FieldEmail))
	}
	slices.Sort(got)
	slices.Sort(want)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("contacts:\n got %q\nwant %q", got, want)
	}
}

// TestMigrateProgressAndErrors: progress counts what the pass copied
// over all folders; failures are the collectors' classified errors,
// naming the target.
func TestMigrateProgressAndErrors(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	var mu sync.Mutex
	var most migration.Progress
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: e.st, Directory: e.dir, Client: e.client, PageSize: 50,
		Progress: func(p migration.Progress) {
			mu.Lock()
			defer mu.Unlock()
			if p.DoneMessages >= most.DoneMessages {
				most = p
			}
		}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Sync(ctx, testJob)
	if err != nil {
		t.Fatal(err)
	}
	if most.Target != targetAddr || most.DoneMessages != res.Messages || most.DoneBytes != res.Bytes || res.Messages != 207 {
		t.Errorf("last progress %+v, result %d messages %d bytes", most, res.Messages, res.Bytes)
	}

	_, err = m.Sync(ctx, ews.Job{Target: "nobody@example.com", Mailbox: owner})
	if migration.ClassOf(err) != migration.ErrClassConfig {
		t.Errorf("unknown target: %v", err)
	}
	if err := e.srv.ews.SetImpersonation(svcLogin, false); err != nil {
		t.Fatal(err)
	}
	_, err = m.Sync(ctx, testJob)
	var me *migration.Error
	if !errors.As(err, &me) || me.Class != migration.ErrClassAuth || me.Target != targetAddr {
		t.Errorf("impersonation denied: %#v", err)
	}
}

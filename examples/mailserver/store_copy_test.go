package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/postgres"
	"github.com/mailyard/mailyard/store/sqlite"
)

// errKilled stands for the copy process dying.
var errKilled = errors.New("killed")

// dyingTarget fails the copy like a killed process: after `left`
// messages it breaks off the next body halfway through its stream (so
// the transaction holding it must leave nothing behind).
type dyingTarget struct {
	copyTarget
	left int
}

func (d *dyingTarget) ImportMessage(ctx context.Context, account, mailbox string, m store.Message, body io.Reader) error {
	if d.left == 0 {
		return d.copyTarget.ImportMessage(ctx, account, mailbox, m, io.MultiReader(io.LimitReader(body, m.Size/2), errReader{}))
	}
	d.left--
	return d.copyTarget.ImportMessage(ctx, account, mailbox, m, body)
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errKilled }

// fillDataDir makes an SQLite data directory with some of everything
// store copy moves: users, a DKIM key and a share (records), mail with
// flags, keywords, zoned dates, an expunge and a deleted default
// mailbox, subscriptions, calendar and contact objects, and a queue.
// queuedBody is the body of the message fillDataDir queues.
const queuedBody = "Subject: queued\r\n\r\nfor remote recipients\r\n"

func fillDataDir(t *testing.T) (dir string, accounts []string) {
	t.Helper()
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	id := regexp.MustCompile(`\(id (\S+)\)`)
	alice := id.FindStringSubmatch(mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret"))[1]
	bob := id.FindStringSubmatch(mustCLI(t, d, "user", "add", "bob@example.test", "-password", "secret"))[1]
	mustCLI(t, d, "dkim", "keygen", "example.test", "-selector", "s1")
	mustCLI(t, d, "share", "add", "alice@example.test", "calendar", "bob@example.test")

	ctx := context.Background()
	st, err := sqlite.Open(ctx, d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.CreateMailbox(ctx, alice, "Work/Projects", store.SpecialNone); err != nil {
		t.Fatal(err)
	}
	zone := time.FixedZone("", -(4*3600 + 30*60))
	for i := range 12 {
		mbox := []string{"INBOX", "Work/Projects", "Sent"}[i%3]
		body := fmt.Sprintf("From: a@example.test\r\nSubject: message %d\r\n\r\n%s\r\n", i, strings.Repeat("line\r\n", i*50))
		_, err := st.Append(ctx, alice, mbox, strings.NewReader(body), store.AppendOptions{
			Flags: [][]string{{`\Seen`}, {`\Flagged`, "$Important"}, {"project-x"}}[i%3], InternalDate: time.Date(2020, 1, 1+i, 10, 0, 0, 0, zone)})
		must(err)
	}
	// One delivery to both accounts shares a body.
	_, err = st.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: alice}, {Account: bob}}}, strings.NewReader("Subject: both\r\n\r\nhi\r\n"))
	must(err)
	// An expunge and a flag change move HIGHESTMODSEQ and UIDNEXT past
	// what the remaining messages show.
	_, err = st.StoreFlags(ctx, alice, "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 2, Stop: 2}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	must(err)
	_, err = st.Expunge(ctx, alice, "INBOX", nil)
	must(err)
	_, err = st.StoreFlags(ctx, alice, "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 1}}, Op: store.FlagsAdd, Flags: []string{store.FlagAnswered}})
	must(err)
	must(st.DeleteMailbox(ctx, alice, "Junk"))
	must(st.SetSubscribed(ctx, alice, "Trash", false))
	must(st.SetSubscribed(ctx, alice, "Ghost", true))
	must(st.SetMetadata(ctx, alice, "", []store.MetadataEntry{{Name: "/shared/comment", Value: []byte("server")}}, store.MetadataLimits{}))
	must(st.SetMetadata(ctx, alice, "Trash", []store.MetadataEntry{{Name: "/private/comment", Value: []byte("bin\x00")}, {Name: "/shared/x", Value: []byte{}}}, store.MetadataLimits{}))

	cal, err := st.Collection(ctx, alice, store.KindCalendar, "calendar")
	must(err)
	for i := range 3 {
		uid := fmt.Sprintf("ev%d@example.test", i)
		data := "BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:" + uid + "\r\nDTSTAMP:20200101T000000Z\r\nDTSTART:20200102T100000Z\r\nDTEND:20200102T110000Z\r\nSUMMARY:e\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n"
		_, err := st.PutObject(ctx, cal.ID, store.Object{Name: fmt.Sprintf("ev%d.ics", i), UID: uid, ContentType: "text/calendar", Data: []byte(data),
			Component: "VEVENT", Start: time.Date(2020, 1, 2, 10, 0, 0, 0, time.UTC), End: time.Date(2020, 1, 2, 11, 0, 0, 0, time.UTC)}, store.PutOptions{IfNoneMatch: true})
		must(err)
	}
	// An edit and a deletion: the source's sync token is past its
	// object count, and its log holds a tombstone.
	_, err = st.PutObject(ctx, cal.ID, store.Object{Name: "gone.ics", UID: "gone@example.test", ContentType: "text/calendar", Component: "VEVENT",
		Data: []byte("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//t//t//EN\r\nBEGIN:VEVENT\r\nUID:gone@example.test\r\nDTSTAMP:20200101T000000Z\r\nDTSTART:20200103T100000Z\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n")}, store.PutOptions{})
	must(err)
	must(st.DeleteObject(ctx, cal.ID, "gone.ics", ""))
	work, err := st.CreateCollection(ctx, store.Collection{Account: bob, Kind: store.KindAddressBook, Name: "work", DisplayName: "Work"})
	must(err)
	_, err = st.PutObject(ctx, work.ID, store.Object{Name: "c.vcf", UID: "c1", ContentType: "text/vcard", Data: []byte("BEGIN:VCARD\r\nVERSION:4.0\r\nUID:c1\r\nFN:C\r\nEND:VCARD\r\n"), Component: "VCARD"}, store.PutOptions{})
	must(err)
	now := time.Now().Round(time.Second)
	// The queued message's body, as the queue keeps it on SQLite.
	must(os.MkdirAll(filepath.Join(d, "queue"), 0o700))
	must(os.WriteFile(filepath.Join(d, "queue", "0001aaa"), []byte(queuedBody), 0o600))
	must(st.EnqueueRecipients(ctx, []queue.Recipient{
		{Msg: "0001aaa", Index: 0, From: "alice@example.test", Address: "x@remote.test", Size: 10, Created: now, Next: now, Attempts: 2, LastError: "451 later"},
		{Msg: "0001aaa", Index: 1, From: "alice@example.test", Address: "y@remote.test", Size: 10, Created: now, Next: now, Held: true},
	}))
	return d, []string{alice, bob}
}

// store copy moves a data directory into PostgreSQL: killed halfway,
// it continues when run again without duplicating anything, and the
// server's admin commands then read the same mail, keys and users
// from the database.
func TestStoreCopy(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	d, accts := fillDataDir(t)
	ctx := context.Background()

	// A first run dies on the sixth message, mid-body.
	src, err := sqlite.Open(ctx, d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	dst, err := postgres.Open(ctx, dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	nss, err := storedNamespaces(d)
	if err != nil {
		t.Fatal(err)
	}
	var log strings.Builder
	c := &copier{src: src, dst: &dyingTarget{copyTarget: dst, left: 5}, out: &log, namespaces: nss}
	if err := c.run(ctx); !errors.Is(err, errKilled) {
		t.Fatalf("first run: %v, want it killed", err)
	}
	held := int64(0)
	for _, a := range accts {
		u, _, err := dst.Usage(ctx, a)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
		held += u.Messages
	}
	if held != 5 {
		t.Fatalf("after the kill the target holds %d messages, want the 5 committed before it", held)
	}
	src.Close()
	dst.Close()

	// Run again through the command: it continues and verifies.
	out := mustCLI(t, d, "store", "copy", "--to", dsn)
	if copied, there := copyCounts(out); !strings.Contains(out, "copy verified: every count matches") || copied != 8 || there != 5 ||
		!strings.Contains(out, "account "+accts[0]+": 7 mailboxes") {
		t.Fatalf("resumed copy (%d copied, %d there; want 8 and 5):\n%s", copied, there, out)
	}
	if !regexp.MustCompile(`(?m)^queued recipients +2`).MatchString(out) || !regexp.MustCompile(`(?m)^dkim +1`).MatchString(out) {
		t.Fatalf("copy report lacks the queue or the DKIM key:\n%s", out)
	}
	// A third run finds nothing to do.
	out = mustCLI(t, d, "store", "copy", "--to", dsn)
	if copied, there := copyCounts(out); copied != 0 || there != 13 || regexp.MustCompile(`[1-9]\d* objects written`).MatchString(out) ||
		strings.Contains(out, "records ") || !strings.Contains(out, "queue: 0 queued messages copied, 1 already there") {
		t.Fatalf("third run:\n%s", out)
	}

	// Independently of the copy's own check: mailbox state, messages
	// and bodies read the same from both stores.
	src, err = sqlite.Open(ctx, d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err = postgres.Open(ctx, dsn, postgres.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	for _, acct := range accts {
		sb, _ := src.ListMailboxes(ctx, acct)
		db, _ := dst.ListMailboxes(ctx, acct)
		strip := func(bs []store.Mailbox) []store.Mailbox {
			for i := range bs {
				bs[i].ID = 0
			}
			return bs
		}
		if !slices.Equal(strip(sb), strip(db)) {
			t.Fatalf("account %s mailboxes:\nsource %+v\ntarget %+v", acct, sb, db)
		}
		ss, _ := src.Subscriptions(ctx, acct)
		ds, _ := dst.Subscriptions(ctx, acct)
		if !slices.Equal(ss, ds) {
			t.Fatalf("subscriptions: source %v, target %v", ss, ds)
		}
		scopes := []string{""}
		for _, mb := range sb {
			scopes = append(scopes, mb.Name)
		}
		for _, scope := range scopes {
			sm, err1 := src.Metadata(ctx, acct, scope)
			dm, err2 := dst.Metadata(ctx, acct, scope)
			if err1 != nil || err2 != nil || fmt.Sprintf("%q", sm) != fmt.Sprintf("%q", dm) {
				t.Fatalf("metadata of %q: source %q (%v), target %q (%v)", scope, sm, err1, dm, err2)
			}
		}
		for _, mb := range sb {
			sm, _ := src.ListMessages(ctx, acct, mb.Name, nil)
			dm, _ := dst.ListMessages(ctx, acct, mb.Name, nil)
			if len(sm) != len(dm) {
				t.Fatalf("%s: %d messages, target %d", mb.Name, len(sm), len(dm))
			}
			for i := range sm {
				s, g := sm[i], dm[i]
				if s.UID != g.UID || s.ModSeq != g.ModSeq || !slices.Equal(s.Flags, g.Flags) || s.InternalDate.String() != g.InternalDate.String() || s.Size != g.Size || !s.SaveDate.Equal(g.SaveDate) {
					t.Fatalf("%s message %d: source %+v, target %+v", mb.Name, i, s, g)
				}
				if a, b := readAll(t, src, acct, mb.Name, s.UID), readAll(t, dst, acct, mb.Name, s.UID); a != b {
					t.Fatalf("%s UID %d: bodies differ", mb.Name, s.UID)
				}
			}
		}
	}
	// Every collection has the source's sync token, and its objects
	// their ETags: a CalDAV/CardDAV client that synced with the source
	// asks for the changes since its token and gets none.
	for _, acct := range accts {
		for _, kind := range collectionKinds {
			scols, err := src.ListCollections(ctx, acct, kind)
			if err != nil {
				t.Fatal(err)
			}
			for _, sc := range scols {
				dc, err := dst.Collection(ctx, acct, kind, sc.Name)
				if err != nil || dc.SyncToken != sc.SyncToken {
					t.Fatalf("%s %s/%s: target sync token %d (%v), source %d", kind, acct, sc.Name, dc.SyncToken, err, sc.SyncToken)
				}
				ch, tok, err := dst.ChangesSince(ctx, dc.ID, sc.SyncToken)
				if err != nil || len(ch) != 0 || tok != sc.SyncToken {
					t.Fatalf("%s %s/%s: changes since the source's token %d: %v at %d (%v), want none", kind, acct, sc.Name, sc.SyncToken, ch, tok, err)
				}
				so, _ := src.ListObjects(ctx, sc.ID)
				do, _ := dst.ListObjects(ctx, dc.ID)
				etags := func(os []store.Object) []string {
					var out []string
					for _, o := range os {
						out = append(out, o.Name+" "+o.ETag)
					}
					return out
				}
				if !slices.Equal(etags(so), etags(do)) {
					t.Fatalf("%s %s/%s: ETags: source %v, target %v", kind, acct, sc.Name, etags(so), etags(do))
				}
			}
		}
	}
	if cal, _ := src.Collection(ctx, accts[0], store.KindCalendar, "calendar"); cal.SyncToken <= 4 {
		t.Fatalf("the source calendar's token %d does not exceed its object count: the test shows nothing", cal.SyncToken)
	}
	// The queued message's body went into the database, where every
	// node reads it.
	if qb, err := dst.OpenQueueBody(ctx, "0001aaa"); err != nil {
		t.Fatalf("queued body in the target: %v", err)
	} else if b, _ := io.ReadAll(qb); string(b) != queuedBody {
		t.Fatalf("queued body in the target: %q", b)
	}
	if _, err := dst.Mailbox(ctx, accts[0], "Junk"); !errors.Is(err, store.ErrNoMailbox) {
		t.Fatalf("Junk, deleted in the source, in the target: %v", err)
	}

	// The admin commands on the database see the users, the key, the
	// share and the queue.
	n := newPGNode(t, dsn)
	for args, want := range map[string]string{
		"user list":                         "bob@example.test",
		"dkim list":                         "s1",
		"share list alice@example.test":     "bob@example.test",
		"queue list":                        "y@remote.test",
		"mail list alice@example.test Sent": "message 2",
		"check":                             "store ok",
	} {
		if out := n.mustCLI(t, strings.Fields(args)...); !strings.Contains(out, want) {
			t.Errorf("%s on the database: %q lacks %q", args, out, want)
		}
	}

	// A difference is found: a message changed in the target only.
	if _, err := dst.StoreFlags(ctx, accts[0], "Sent", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{"changed"}}); err != nil {
		t.Fatal(err)
	}
	code, out, errs := cli(t, d, "", "store", "copy", "--to", dsn)
	if code == 0 || !strings.Contains(errs, `mailbox "Sent": the messages differ`) {
		t.Fatalf("copy over a changed target: exit %d\n%s%s", code, out, errs)
	}
}

// copyCounts adds up the messages copied and found already there in
// store copy's output.
func copyCounts(out string) (copied, there int) {
	for _, m := range regexp.MustCompile(`(\d+) messages copied \((\d+) already there\)`).FindAllStringSubmatch(out, -1) {
		var c, th int
		fmt.Sscan(m[1], &c)
		fmt.Sscan(m[2], &th)
		copied, there = copied+c, there+th
	}
	return copied, there
}

func readAll(t *testing.T, s store.Messages, acct, mbox string, uid uint32) string {
	t.Helper()
	rc, err := s.OpenBody(context.Background(), acct, mbox, uid)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A message quarantined on SQLite (record and body file) is moved by
// store copy: on PostgreSQL a node with a data directory of its own
// lists it and releases it, its body read from the database.
func TestStoreCopyQuarantine(t *testing.T) {
	dsn := pgtest.FreshDB(t)
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	alice := regexp.MustCompile(`\(id (\S+)\)`).FindStringSubmatch(mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret"))[1]
	ctx := context.Background()
	st, err := sqlite.Open(ctx, d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	const id, body = "0held", "Subject: held on sqlite\r\n\r\nbody\r\n"
	if err := st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return store.PutJSON(tx, smtp.QuarantineNamespace, id, map[string]any{
			"from": "x@remote.test", "rcpts": []string{"alice@example.test"},
			"targets": []store.Recipient{{Account: alice}}, "milter": "av", "reason": "test", "size": len(body),
		}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	if err := os.MkdirAll(filepath.Join(d, "quarantine"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d, "quarantine", id), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	out := mustCLI(t, d, "store", "copy", "--to", dsn)
	if !strings.Contains(out, "quarantine: 1 held messages copied") || !strings.Contains(out, "copy verified") {
		t.Fatalf("store copy:\n%s", out)
	}
	n := newPGNode(t, dsn)
	if out := n.mustCLI(t, "quarantine", "list"); !strings.Contains(out, id) {
		t.Fatalf("quarantine list on PostgreSQL:\n%s", out)
	}
	n.mustCLI(t, "quarantine", "release", id)
	if got := n.mustCLI(t, "mail", "cat", "alice@example.test", "INBOX", "1"); got != body {
		t.Fatalf("released message: %q", got)
	}
}

package imap

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/store"
)

func TestUpdatesBetweenSessions(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 5; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	a, b := loggedIn(e), loggedIn(e)
	a.expectOK("SELECT INBOX")
	b.expectOK("SELECT INBOX")

	// Flag changes by another session come as FETCH FLAGS; a keyword new
	// to the mailbox first as FLAGS and PERMANENTFLAGS (RFC 9051 §7.3.5:
	// the client learns the keyword before a FETCH uses it).
	a.expectOK("STORE 2 +FLAGS.SILENT (\\Flagged $Urgent)")
	expectUntagged(t, "NOOP after another session's STORE", b.expectOK("NOOP"),
		`* FLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent)`,
		`* OK [PERMANENTFLAGS (\Answered \Flagged \Deleted \Seen \Draft $Urgent \*)] Permanent flags`,
		`* 2 FETCH (UID 2 FLAGS ($Urgent \Flagged))`)

	// Expunges are held back during FETCH/STORE/SEARCH (RFC 9051 §7.5.1)
	// and sent highest sequence number first.
	a.expectOK("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
	expectUntagged(t, "EXPUNGE", a.expectOK("EXPUNGE"), "* 4 EXPUNGE", "* 2 EXPUNGE")
	// Sequence number 4 stays valid (no BAD) until the EXPUNGE is sent;
	// the expunged message's UID comes from the view (RFC 2180 §4.1,
	// conformance_test.go). The tagged OK ends the responses: the EXPUNGE
	// is not among them.
	expectUntagged(t, "FETCH after another session's EXPUNGE", b.expectOK("FETCH 4 UID"), "* 4 FETCH (UID 4)")
	expectUntagged(t, "SEARCH after another session's EXPUNGE", b.expectOK("SEARCH ALL"), "* SEARCH 1 3 5")
	expectUntagged(t, "deferred EXPUNGE", b.expectOK("NOOP"), "* 4 EXPUNGE", "* 2 EXPUNGE")
	expectUntagged(t, "FETCH after expunge", b.expectOK("FETCH 1:* UID"),
		"* 1 FETCH (UID 1)", "* 2 FETCH (UID 3)", "* 3 FETCH (UID 5)")

	// New mail: EXISTS, then RECENT (RFC 3501 §7.3.2): the session that
	// polls first claims the new message as \Recent (§2.3.2); the other
	// still holds the three it claimed at SELECT.
	e.deliver(e.aliceID, "", simpleMsg)
	expectUntagged(t, "NOOP after delivery", b.expectOK("NOOP"), "* 4 EXISTS", "* 1 RECENT")
	expectUntagged(t, "NOOP after delivery", a.expectOK("NOOP"), "* 4 EXISTS", "* 3 RECENT")

	// UID EXPUNGE only touches the given UIDs (RFC 4315 §2.1).
	a.expectOK("STORE 1:* +FLAGS.SILENT (\\Deleted)")
	expectUntagged(t, "UID EXPUNGE", a.expectOK("UID EXPUNGE 5"), "* 3 EXPUNGE")
}

func filter(lines []string, part string) []string {
	var out []string
	for _, l := range lines {
		if strings.Contains(l, part) {
			out = append(out, l)
		}
	}
	return out
}

func TestCopyMove(t *testing.T) {
	e := newEnv(t)
	for i := 0; i < 3; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	_, st := r.cmd("COPY 1:2 Archive")
	if !strings.HasPrefix(st, "OK [COPYUID ") || !strings.Contains(st, " 1:2 1:2]") {
		t.Fatalf("COPY: %q", st)
	}
	r.expectStatus("COPY 1 Nowhere", "NO [TRYCREATE]")
	// MOVE: COPYUID in an untagged OK before the EXPUNGE (RFC 9051 §6.4.8).
	trash, inbox := uidValidity(t, e, "Trash"), uidValidity(t, e, store.Inbox)
	expectUntagged(t, "MOVE", r.expectOK("MOVE 2 Trash"),
		fmt.Sprintf("* OK [COPYUID %d 2 1] COPY completed", trash), "* 2 EXPUNGE")
	expectUntagged(t, "UID MOVE", r.expectOK("UID MOVE 3 Trash"),
		fmt.Sprintf("* OK [COPYUID %d 3 2] COPY completed", trash), "* 2 EXPUNGE")
	// Into the selected mailbox: new UID (RFC 6851 §3; conformance_test.go),
	// the EXPUNGE before the EXISTS that counts the copy.
	expectUntagged(t, "MOVE into the selected mailbox", r.expectOK("MOVE 1 INBOX"),
		fmt.Sprintf("* OK [COPYUID %d 1 4] COPY completed", inbox), "* 1 EXPUNGE", "* 1 EXISTS", "* 1 RECENT")
	expectUntagged(t, "STATUS", r.expectOK("STATUS Trash (MESSAGES)"), `* STATUS "Trash" (MESSAGES 2)`)
	expectUntagged(t, "STATUS", r.expectOK("STATUS Archive (MESSAGES)"), `* STATUS "Archive" (MESSAGES 2)`)
}

// uidValidity returns the UIDVALIDITY of alice's mailbox name.
func uidValidity(t testing.TB, e *env, name string) uint32 {
	t.Helper()
	mb, err := e.st.Mailbox(context.Background(), e.aliceID, name)
	if err != nil {
		t.Fatal(err)
	}
	return mb.UIDValidity
}

func TestMailboxManagementAndList(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("CREATE Projects/2024/")
	r.expectOK("CREATE Projects/2025")
	r.expectStatus("CREATE Projects", "NO [ALREADYEXISTS]")
	r.expectStatus("CREATE inbox", "NO [ALREADYEXISTS]")
	r.expectStatus(`CREATE "a*b"`, "NO")
	r.expectStatus("CREATE \"a//b\"", "NO")
	r.expectOK("CREATE Receipts (USE (\\Archive))")

	specialUse := []string{
		`* LIST (\HasNoChildren \Archive) "/" "Archive"`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
		`* LIST (\HasNoChildren \Junk) "/" "Junk"`,
		`* LIST (\HasNoChildren \Archive) "/" "Receipts"`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
	}
	expectUntaggedSet(t, `LIST "" "%"`, r.expectOK(`LIST "" "%"`), append([]string{
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* LIST (\HasChildren) "/" "Projects"`,
	}, specialUse...)...)
	expectUntagged(t, `LIST "" ""`, r.expectOK(`LIST "" ""`), `* LIST (\Noselect) "/" ""`)
	expectUntaggedSet(t, "LIST with reference", r.expectOK(`LIST "Projects/" "*"`),
		`* LIST (\HasNoChildren) "/" "Projects/2024"`, `* LIST (\HasNoChildren) "/" "Projects/2025"`)
	expectUntagged(t, `LIST "" "inbox"`, r.expectOK(`LIST "" "inbox"`), `* LIST (\HasNoChildren) "/" INBOX`)
	expectUntaggedSet(t, "LIST (SPECIAL-USE)", r.expectOK(`LIST (SPECIAL-USE) "" "*"`), specialUse...)
	// LIST-STATUS: the STATUS after its mailbox's LIST (RFC 5819 §2).
	expectUntagged(t, "LIST RETURN (STATUS)", r.expectOK(`LIST "" "Projects" RETURN (STATUS (MESSAGES UIDNEXT))`),
		`* LIST (\HasChildren) "/" "Projects"`, `* STATUS "Projects" (MESSAGES 0 UIDNEXT 1)`)

	// DELETE keeps children; the parent lists as \Noselect.
	r.expectOK("DELETE Projects")
	expectUntagged(t, "LIST of a deleted parent", r.expectOK(`LIST "" "Projects"`),
		`* LIST (\Noselect \NonExistent \HasChildren) "/" "Projects"`)
	r.expectStatus("DELETE Projects", "NO")
	r.expectStatus("SELECT Projects", "NO")
	r.expectStatus("DELETE INBOX", "NO")

	// LSUB: unsubscribed parents of subscribed names show as \Noselect
	// when "%" stops at their level (RFC 3501 §6.3.9).
	r.expectOK("SUBSCRIBE Projects/2025")
	subscribed := []string{ // the default mailboxes are subscribed
		`* LSUB () "/" "Archive"`, `* LSUB () "/" "Drafts"`, `* LSUB () "/" INBOX`,
		`* LSUB () "/" "Junk"`, `* LSUB () "/" "Sent"`, `* LSUB () "/" "Trash"`,
	}
	expectUntaggedSet(t, `LSUB "" "%"`, r.expectOK(`LSUB "" "%"`), append([]string{`* LSUB (\Noselect) "/" "Projects"`}, subscribed...)...)
	expectUntagged(t, `LSUB "" "Projects/*"`, r.expectOK(`LSUB "" "Projects/*"`), `* LSUB () "/" "Projects/2025"`)
	r.expectOK("UNSUBSCRIBE Projects/2025")
	expectUntaggedSet(t, `LSUB "" "*"`, r.expectOK(`LSUB "" "*"`), subscribed...)
	expectUntaggedSet(t, `LIST (SUBSCRIBED) "" "*"`, r.expectOK(`LIST (SUBSCRIBED) "" "*"`),
		`* LIST (\HasNoChildren \Subscribed \Archive) "/" "Archive"`,
		`* LIST (\HasNoChildren \Subscribed \Drafts) "/" "Drafts"`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
		`* LIST (\HasNoChildren \Subscribed \Junk) "/" "Junk"`,
		`* LIST (\HasNoChildren \Subscribed \Sent) "/" "Sent"`,
		`* LIST (\HasNoChildren \Subscribed \Trash) "/" "Trash"`)

	// RENAME keeps children; RENAME INBOX moves its messages.
	r.expectOK("RENAME Projects/2025 Done/2025")
	expectUntagged(t, `LIST "" "Done/*"`, r.expectOK(`LIST "" "Done/*"`), `* LIST (\HasNoChildren) "/" "Done/2025"`)
	e.deliver(e.aliceID, "", simpleMsg)
	r.expectOK("RENAME INBOX Old")
	expectUntagged(t, "STATUS", r.expectOK("STATUS Old (MESSAGES)"), `* STATUS "Old" (MESSAGES 1)`)
	expectUntagged(t, "STATUS", r.expectOK("STATUS INBOX (MESSAGES)"), `* STATUS INBOX (MESSAGES 0)`)
	r.expectStatus("RENAME Old Sent", "NO [ALREADYEXISTS]")
	expectUntagged(t, "NAMESPACE", r.expectOK("NAMESPACE"), `* NAMESPACE (("" "/")) NIL NIL`)
}

func TestInternationalMailboxNames(t *testing.T) {
	e := newEnv(t)
	c := e.login(alice, alicePW, nil)
	name := "Отчёты/2024 & Планы"
	if err := c.Create(name, nil).Wait(); err != nil {
		t.Fatal(err)
	}
	// The store keeps UTF-8; the wire carries modified UTF-7 (RFC 3501
	// §5.1.3) for a client that did not enable UTF8=ACCEPT.
	if _, err := e.st.Mailbox(context.Background(), e.aliceID, name); err != nil {
		t.Fatalf("store lacks %q: %v", name, err)
	}
	r := loggedIn(e)
	u := filter(r.expectOK(`LIST "" "*"`), "&")
	expectUntaggedSet(t, `LIST "" "*"`, u,
		`* LIST (\HasChildren) "/" "&BB4EQgRHBFEEQgRL-"`,
		`* LIST (\HasNoChildren) "/" "&BB4EQgRHBFEEQgRL-/2024 &- &BB8EOwQwBD0ESw-"`)
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, l := range list {
		found = found || l.Mailbox == name
	}
	if !found {
		t.Fatalf("LIST via imapclient lacks %q: %v", name, list)
	}
	if _, err := c.Select(name, nil).Wait(); err != nil {
		t.Fatal(err)
	}
}

// TestIdleSeesDeliveryWithinOneSecond: a message delivered (as the SMTP
// server delivers, through store.Deliver) reaches an idling client within
// a second, and so does a flag change made by another session.
func TestIdleSeesDeliveryWithinOneSecond(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	var mu sync.Mutex
	exists := make(chan uint32, 10)
	flags := make(chan []imap.Flag, 10)
	c := e.login(alice, alicePW, &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
		Fetch: func(msg *imapclient.FetchMessageData) {
			mu.Lock()
			defer mu.Unlock()
			for item := msg.Next(); item != nil; item = msg.Next() {
				if f, ok := item.(imapclient.FetchItemDataFlags); ok {
					flags <- f.Flags
				}
			}
		},
	})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	// Idle returns at the continuation request, which the server sends
	// just before it starts waiting: wait for that, so that the delivery
	// takes the path of a wake-up during IDLE.
	waitSessions(t, e, e.aliceID, "waiting in IDLE", func(s *session) bool { return s.idleW != nil })
	start := time.Now()
	e.deliver(e.aliceID, "", simpleMsg)
	select {
	case n := <-exists:
		if n != 2 {
			t.Fatalf("EXISTS %d, want 2", n)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("EXISTS after %v", d)
		}
	case <-time.After(time.Second):
		t.Fatal("no EXISTS within 1s of delivery")
	}

	other := loggedIn(e)
	other.expectOK("SELECT INBOX")
	start = time.Now()
	other.expectOK("STORE 1 +FLAGS (\\Answered)")
	select {
	case f := <-flags:
		if !strings.Contains(flagString(f), `\Answered`) {
			t.Fatalf("FLAGS %v", f)
		}
		if d := time.Since(start); d > time.Second {
			t.Fatalf("FETCH FLAGS after %v", d)
		}
	case <-time.After(time.Second):
		t.Fatal("flag change not reported within 1s")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

func flagString(fs []imap.Flag) string {
	var sb strings.Builder
	for _, f := range fs {
		sb.WriteString(string(f) + " ")
	}
	return sb.String()
}

func TestSelectedMailboxDeletedElsewhere(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("CREATE Tmp")
	if _, err := e.st.Append(context.Background(), e.aliceID, "Tmp", strings.NewReader(simpleMsg), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	r.expectOK("SELECT Tmp")
	other := loggedIn(e)
	other.expectOK("DELETE Tmp")
	expectUntagged(t, "NOOP after the mailbox was deleted", r.expectOK("NOOP"), "* 1 EXPUNGE")
	expectUntagged(t, "FETCH after deletion", r.expectOK("FETCH 1:* UID"))
}

// TestOKMeansCommitted: when STORE, EXPUNGE, COPY and MOVE answer OK, the
// store (read directly, as another process would) already has the change.
func TestOKMeansCommitted(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	r.expectOK("STORE 1 +FLAGS ($Done \\Deleted)")
	msgs, err := e.st.ListMessages(ctx, e.aliceID, store.Inbox, store.UIDSet{{Start: 1, Stop: 1}})
	if err != nil || len(msgs) != 1 || !hasFlag(msgs[0].Flags, "$Done") || !hasFlag(msgs[0].Flags, `\Deleted`) {
		t.Fatalf("after STORE OK: %v, %v", msgs, err)
	}
	r.expectOK("EXPUNGE")
	if msgs, _ := e.st.ListMessages(ctx, e.aliceID, store.Inbox, nil); len(msgs) != 2 {
		t.Fatalf("after EXPUNGE OK the store has %d messages", len(msgs))
	}
	r.expectOK("COPY 1 Archive")
	r.expectOK("MOVE 1 Junk")
	for box, want := range map[string]int{"Archive": 1, "Junk": 1, store.Inbox: 1} {
		if msgs, _ := e.st.ListMessages(ctx, e.aliceID, box, nil); len(msgs) != want {
			t.Fatalf("%s holds %d messages, want %d", box, len(msgs), want)
		}
	}
}

// A change committed between the last command and IDLE is reported as
// soon as IDLE starts (Idle does not poll on entry; the pending wake-up
// from the change feed does it).
func TestIdleReportsChangeFromBeforeIdle(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	exists := make(chan uint32, 10)
	c := e.login(alice, alicePW, &imapclient.UnilateralDataHandler{
		Mailbox: func(d *imapclient.UnilateralDataMailbox) {
			if d.NumMessages != nil {
				exists <- *d.NumMessages
			}
		},
	})
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Noop().Wait(); err != nil { // the server has polled
		t.Fatal(err)
	}
	e.deliver(e.aliceID, "", simpleMsg)
	// The store has published the change; wait until the fan-out has
	// left its wake-up with the session, before IDLE starts.
	waitSessions(t, e, e.aliceID, "woken", func(s *session) bool { return s.woken })
	idle, err := c.Idle()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case n := <-exists:
		if n != 2 {
			t.Fatalf("EXISTS %d, want 2", n)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("a delivery from before IDLE was not reported in IDLE")
	}
	if err := idle.Close(); err != nil {
		t.Fatal(err)
	}
	if err := idle.Wait(); err != nil {
		t.Fatal(err)
	}
}

// waitSessions waits until cond, called with the session's idleMu held,
// holds for every session of account (those watching its change feed).
func waitSessions(t testing.TB, e *env, account, what string, cond func(*session) bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		e.srv.feedMu.Lock()
		var sessions []*session
		if f := e.srv.feeds[account]; f != nil {
			for s := range f.sessions {
				sessions = append(sessions, s)
			}
		}
		e.srv.feedMu.Unlock()
		ok := len(sessions) > 0
		for _, s := range sessions {
			s.idleMu.Lock()
			ok = ok && cond(s)
			s.idleMu.Unlock()
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("sessions of %s not %s after 10s", account, what)
		}
		time.Sleep(time.Millisecond)
	}
}

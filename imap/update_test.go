package imap

import (
	"context"
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
	// to the mailbox first as FLAGS.
	a.expectOK("STORE 2 +FLAGS.SILENT (\\Flagged $Urgent)")
	u := b.expectOK("NOOP")
	mustHave(t, u, "* FLAGS (", "$Urgent")
	mustHave(t, u, "* 2 FETCH (", `\Flagged`)

	// Expunges are held back during FETCH/STORE/SEARCH (RFC 9051 §7.5.1)
	// and sent highest sequence number first.
	a.expectOK("STORE 2,4 +FLAGS.SILENT (\\Deleted)")
	u = a.expectOK("EXPUNGE")
	if got := strings.Join(u, "|"); got != "* 4 EXPUNGE|* 2 EXPUNGE" {
		t.Fatalf("EXPUNGE responses %q", got)
	}
	u = b.expectOK("FETCH 4 UID")
	mustNotHave(t, u, "EXPUNGE")
	// Sequence number 4 stays valid (no BAD) until the EXPUNGE is sent;
	// the expunged message's UID comes from the view (RFC 2180 §4.1,
	// conformance_test.go).
	mustHave(t, u, "* 4 FETCH (UID 4)")
	u = b.expectOK("SEARCH ALL")
	mustNotHave(t, u, "EXPUNGE")
	u = b.expectOK("NOOP")
	if got := strings.Join(filter(u, "EXPUNGE"), "|"); got != "* 4 EXPUNGE|* 2 EXPUNGE" {
		t.Fatalf("deferred EXPUNGE responses %q", got)
	}
	u = b.expectOK("FETCH 1:* UID")
	if len(u) != 3 || !has(u, "* 3 FETCH (UID 5)") {
		t.Fatalf("after expunge: %q", u)
	}

	// New mail: EXISTS (and RECENT for the session that claims it).
	e.deliver(e.aliceID, "", simpleMsg)
	u = b.expectOK("NOOP")
	mustHave(t, u, "* 4 EXISTS")
	u = a.expectOK("NOOP")
	mustHave(t, u, "* 4 EXISTS")

	// UID EXPUNGE only touches the given UIDs (RFC 4315 §2.1).
	a.expectOK("STORE 1:* +FLAGS.SILENT (\\Deleted)")
	u = a.expectOK("UID EXPUNGE 5")
	if got := strings.Join(filter(u, "EXPUNGE"), "|"); got != "* 3 EXPUNGE" {
		t.Fatalf("UID EXPUNGE: %q", got)
	}
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
	u := r.expectOK("MOVE 2 Trash")
	mustHave(t, u, "* OK [COPYUID ", " 2 1]")
	mustHave(t, u, "* 2 EXPUNGE")
	u = r.expectOK("UID MOVE 3 Trash")
	mustHave(t, u, "* 2 EXPUNGE")
	// Into the selected mailbox: new UID (RFC 6851 §3; conformance_test.go).
	u = r.expectOK("MOVE 1 INBOX")
	mustHave(t, u, "* OK [COPYUID ", " 1 4]")
	u = r.expectOK("STATUS Trash (MESSAGES)")
	mustHave(t, u, "MESSAGES 2")
	u = r.expectOK("STATUS Archive (MESSAGES)")
	mustHave(t, u, "MESSAGES 2")
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

	u := r.expectOK(`LIST "" "%"`)
	mustHave(t, u, `* LIST (\HasChildren) "/" "Projects"`)
	mustHave(t, u, `* LIST (\HasNoChildren \Sent) "/" "Sent"`)
	mustHave(t, u, `* LIST (\HasNoChildren) "/" INBOX`)
	mustNotHave(t, u, "2024")
	u = r.expectOK(`LIST "" ""`)
	mustHave(t, u, `* LIST (\Noselect) "/" ""`)
	u = r.expectOK(`LIST "Projects/" "*"`)
	if len(u) != 2 {
		t.Fatalf("LIST with reference: %q", u)
	}
	u = r.expectOK(`LIST "" "inbox"`)
	mustHave(t, u, `"/" INBOX`)
	u = r.expectOK(`LIST (SPECIAL-USE) "" "*"`)
	if len(u) != 6 || !has(u, `\Archive`, "Receipts") {
		t.Fatalf("LIST (SPECIAL-USE): %q", u)
	}
	u = r.expectOK(`LIST "" "Projects" RETURN (STATUS (MESSAGES UIDNEXT))`)
	mustHave(t, u, `* STATUS "Projects" (MESSAGES 0 UIDNEXT 1)`)

	// DELETE keeps children; the parent lists as \Noselect.
	r.expectOK("DELETE Projects")
	u = r.expectOK(`LIST "" "Projects"`)
	mustHave(t, u, `\Noselect`, "Projects")
	r.expectStatus("DELETE Projects", "NO")
	r.expectStatus("SELECT Projects", "NO")
	r.expectStatus("DELETE INBOX", "NO")

	// LSUB: unsubscribed parents of subscribed names show as \Noselect
	// when "%" stops at their level (RFC 3501 §6.3.9).
	r.expectOK("SUBSCRIBE Projects/2025")
	u = r.expectOK(`LSUB "" "%"`)
	mustHave(t, u, `* LSUB (\Noselect) "/" "Projects"`)
	u = r.expectOK(`LSUB "" "Projects/*"`)
	mustHave(t, u, `"/" "Projects/2025"`)
	r.expectOK("UNSUBSCRIBE Projects/2025")
	u = r.expectOK(`LSUB "" "*"`)
	mustNotHave(t, u, "Projects")
	u = r.expectOK(`LIST (SUBSCRIBED) "" "*"`)
	mustHave(t, u, `\Subscribed`, "INBOX")

	// RENAME keeps children; RENAME INBOX moves its messages.
	r.expectOK("RENAME Projects/2025 Done/2025")
	u = r.expectOK(`LIST "" "Done/*"`)
	mustHave(t, u, "Done/2025")
	e.deliver(e.aliceID, "", simpleMsg)
	r.expectOK("RENAME INBOX Old")
	u = r.expectOK("STATUS Old (MESSAGES)")
	mustHave(t, u, "MESSAGES 1")
	u = r.expectOK("STATUS INBOX (MESSAGES)")
	mustHave(t, u, "MESSAGES 0")
	r.expectStatus("RENAME Old Sent", "NO [ALREADYEXISTS]")
	u = r.expectOK("NAMESPACE")
	mustHave(t, u, `* NAMESPACE (("" "/")) NIL NIL`)
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
	u := r.expectOK(`LIST "" "*"`)
	mustHave(t, u, "&BB4EQgRHBFEEQgRL-/2024 &- &BB8EOwQwBD0ESw-")
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
	time.Sleep(50 * time.Millisecond) // the server is now waiting in IDLE
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
	u := r.expectOK("NOOP")
	mustHave(t, u, "* 1 EXPUNGE")
	u = r.expectOK("FETCH 1:* UID")
	if len(u) != 0 {
		t.Fatalf("FETCH after deletion: %q", u)
	}
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
	// The store has published the change; give the fan-out a moment to
	// leave its wake-up before IDLE starts.
	time.Sleep(50 * time.Millisecond)
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

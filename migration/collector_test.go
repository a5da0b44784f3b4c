package migration

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
)

// corpusMap is where each corpus folder must end up (written out here,
// not computed by the code under test); excluded folders are absent.
var corpusMap = map[string]string{
	"INBOX": "INBOX", "INBOX/Receipts": "INBOX/Receipts",
	"Sent": "Sent", "Sent Items": "Sent", "Отправленные": "Sent",
	"Trash": "Trash", "Deleted Items": "Trash",
	"Junk E-mail": "Junk", "Спам": "Junk",
	"Archive": "Archive", "Архив": "Archive",
	"Проекты": "Проекты", "Проекты/2024": "Проекты/2024", "Проекты/2024/Отчёты": "Проекты/2024/Отчёты",
	"Projects & Co": "Projects & Co", "Work/Clients/Ørsted": "Work/Clients/Ørsted",
	"Lonely/Child": "Lonely/Child",
}

var corpusExcluded = []string{"Drafts", "Drafts/Old", "Черновики", "Tasks", "Contacts", "Задачи"}

// wantTarget groups the source's messages by expected target mailbox,
// without messages over maxSize.
func wantTarget(t *testing.T, src map[string][]item, maxSize int) map[string][]item {
	t.Helper()
	want := map[string][]item{}
	for folder, items := range src {
		if slices.Contains(corpusExcluded, folder) {
			continue
		}
		tgt, ok := corpusMap[folder]
		if !ok {
			t.Fatalf("source folder %q not in the expected map", folder)
		}
		for _, it := range items {
			if it.size <= maxSize {
				want[tgt] = append(want[tgt], it)
			}
		}
		if want[tgt] == nil {
			want[tgt] = []item{}
		}
	}
	return want
}

// checkTarget compares every expected target mailbox with the store.
func (e *syncEnv) checkTarget(t *testing.T, want map[string][]item) {
	t.Helper()
	for mbox, items := range want {
		if d := diffItems(items, e.targetItems(mbox)); d != "" {
			t.Errorf("target %q: %s", mbox, d)
		}
	}
}

func TestSyncFullPass(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(mailcorpus.Generate(mailcorpus.Options{Seed: 1}))
	ctx := context.Background()
	var mu sync.Mutex
	var maxDone, maxTotal, doneBytes int64
	st, err := e.m.Sync(ctx, e.job(), func(p Progress) {
		mu.Lock()
		defer mu.Unlock()
		maxDone, maxTotal, doneBytes = max(maxDone, p.DoneMessages), max(maxTotal, p.TotalMessages), max(doneBytes, p.DoneBytes)
	})
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, e.logs.String())
	}
	if st.State != StateOK || st.Passes != 1 || st.LastSuccess.IsZero() || st.Target != syncTarget {
		t.Errorf("status %+v", st)
	}
	src := sourceItems(t, e.source())
	want := wantTarget(t, src, int(e.opts.MaxMessageSize))
	e.checkTarget(t, want)

	total := 0
	for _, items := range want {
		total += len(items)
	}
	if maxDone != int64(total) || maxTotal != int64(total) || doneBytes < 3<<20 {
		t.Errorf("progress: done %d of %d (%d bytes); want %d messages", maxDone, maxTotal, doneBytes, total)
	}
	if !strings.Contains(st.LastMessage, "copied") {
		t.Errorf("LastMessage %q", st.LastMessage)
	}

	// Excluded folders are absent; the account's own Drafts stays empty.
	mbs, err := e.st.ListMailboxes(ctx, e.account)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, mb := range mbs {
		names = append(names, mb.Name)
	}
	for _, x := range []string{"Drafts/Old", "Черновики", "Tasks", "Contacts", "Задачи", "Sent Items", "Отправленные", "Deleted Items", "Спам", "Архив", "Junk E-mail"} {
		if slices.Contains(names, x) {
			t.Errorf("target has mailbox %q; mailboxes %q", x, names)
		}
	}
	if n := len(e.targetItems("Drafts")); n != 0 {
		t.Errorf("target Drafts has %d messages; the source's Drafts is excluded", n)
	}
	// \Noselect parents exist in the target (empty).
	for _, x := range []string{"Lonely", "Work", "Work/Clients"} {
		if !slices.Contains(names, x) {
			t.Errorf("target lacks parent mailbox %q; mailboxes %q", x, names)
		}
	}

	// Folder statuses.
	fs := map[string]FolderStatus{}
	for _, f := range st.Folders {
		fs[f.Source] = f
	}
	if f := fs["INBOX"]; f.SkippedTooLarge != 1 || f.Target != "INBOX" || f.SourceMessages != int64(len(src["INBOX"])) || f.Copied != int64(len(src["INBOX"])-1) {
		t.Errorf("INBOX status %+v (source has %d)", f, len(src["INBOX"]))
	}
	for _, x := range corpusExcluded {
		if f := fs[x]; !f.Excluded || f.Target != "" || f.SourceMessages != int64(len(src[x])) {
			t.Errorf("excluded folder %q status %+v", x, f)
		}
	}
	if f := fs["Отправленные"]; f.Target != "Sent" || f.Copied != int64(len(src["Отправленные"])) {
		t.Errorf("Отправленные status %+v", f)
	}

	// The password is masked in the status and absent from the logs.
	if st.Job.Credentials.Password.Reveal() != Mask {
		t.Errorf("status shows password %q", st.Job.Credentials.Password.Reveal())
	}
	got, err := e.m.Status(ctx, syncTarget)
	if err != nil || got.Job.Credentials.Password.Reveal() != Mask || got.Passes != 1 || len(got.Folders) != len(st.Folders) {
		t.Errorf("Status: %v %+v", err, got)
	}
	if logs := e.logs.String(); strings.Contains(logs, srcPW) || !strings.Contains(logs, "migration pass done") {
		t.Errorf("logs leak the password or miss the pass:\n%s", logs)
	}
	job, err := e.m.storedJob(ctx, "ALICE@example.com")
	if err != nil || job.Credentials.Password.Reveal() != srcPW {
		t.Errorf("storedJob: %v, password kept: %v", err, job.Credentials.Password.Reveal() == srcPW)
	}

	// Read the target over our IMAP server and compare folder for folder.
	c, err := imapclient.DialInsecure(e.serveIMAP(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Login(syncTarget, syncTargetPW).Wait(); err != nil {
		t.Fatal(err)
	}
	overIMAP := sourceItems(t, c)
	for mbox, items := range want {
		if d := diffItems(items, overIMAP[mbox]); d != "" {
			t.Errorf("over IMAP, %q: %s", mbox, d)
		}
	}
	for mbox, items := range overIMAP {
		if _, ok := want[mbox]; !ok && len(items) > 0 {
			t.Errorf("over IMAP, unexpected non-empty mailbox %q (%d messages)", mbox, len(items))
		}
	}
}

// TestSyncIncremental: a second pass copies nothing; then new mail, flag
// changes and a UIDVALIDITY reset on the source are applied exactly.
func TestSyncIncremental(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	corpus := mailcorpus.Generate(mailcorpus.Options{Seed: 2, PerFolder: 4, LargeSizes: []int{}})
	e.load(corpus)
	ctx := context.Background()
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatalf("first pass: %v", err)
	}
	st, err := e.m.Sync(ctx, e.job(), nil)
	if err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if !strings.HasPrefix(st.LastMessage, "copied 0 messages") || st.Passes != 2 {
		t.Errorf("second pass: %q, passes %d", st.LastMessage, st.Passes)
	}

	// The user changes a copy's flags in Mailyard: a flag the source
	// never changes must keep the user's value.
	inbox, err := e.st.ListMessages(ctx, e.account, "INBOX", nil)
	if err != nil || len(inbox) == 0 {
		t.Fatal(err)
	}
	if _, err := e.st.StoreFlags(ctx, e.account, "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: inbox[0].UID, Stop: inbox[0].UID}}, Op: store.FlagsAdd, Flags: []string{"UserOwn"}}); err != nil {
		t.Fatal(err)
	}

	c := e.source()
	// New mail in two folders.
	extra := []mailcorpus.Message{
		{Folder: "INBOX", Flags: []imap.Flag{"$Label1"}, Date: time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC), Body: []byte("Message-ID: <new1@x>\r\nSubject: new\r\n\r\nnew mail\r\n")},
		{Folder: "Проекты/2024/Отчёты", Date: time.Date(2024, 1, 3, 3, 4, 5, 0, time.UTC), Body: []byte("Subject: new report\r\n\r\nreport\r\n")},
	}
	for _, m := range extra {
		if err := mailcorpus.Append(c, m); err != nil {
			t.Fatal(err)
		}
	}
	// Flag changes: add \Flagged and a keyword to INBOX 1:2, remove \Seen from 3.
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1, 2), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagFlagged, "Important"}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(3), &imap.StoreFlags{Op: imap.StoreFlagsDel, Flags: []imap.Flag{imap.FlagSeen, imap.FlagAnswered}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	// UIDVALIDITY reset of a folder with the same messages.
	before, _ := c.Status("Sent Items", &imap.StatusOptions{UIDValidity: true}).Wait()
	e.dove.Doveadm(t, "mailbox", "update", "-u", srcUser, "--uid-validity", "777", "Sent Items")
	after, err := c.Status("Sent Items", &imap.StatusOptions{UIDValidity: true}).Wait()
	if err != nil || after.UIDValidity == before.UIDValidity {
		t.Fatalf("UIDVALIDITY not reset: %v %d -> %d", err, before.UIDValidity, after.UIDValidity)
	}

	st, err = e.m.Sync(ctx, e.job(), nil)
	if err != nil {
		t.Fatalf("third pass: %v\n%s", err, e.logs.String())
	}
	if !strings.HasPrefix(st.LastMessage, "copied 2 messages") || !strings.Contains(st.LastMessage, "updated flags of 3") {
		t.Errorf("third pass: %q", st.LastMessage)
	}
	if !strings.Contains(e.logs.String(), "re-paired") {
		t.Errorf("no re-pairing logged:\n%s", e.logs.String())
	}
	src := sourceItems(t, c)
	want := wantTarget(t, src, int(e.opts.MaxMessageSize))
	// The user's own keyword is on the first INBOX copy.
	got := e.targetItems("INBOX")
	found := false
	for i, it := range got {
		if strings.Contains(it.flags, "userown") {
			found = true
			got[i].flags = strings.TrimSpace(strings.ReplaceAll(" "+it.flags+" ", " userown ", " "))
		}
	}
	if !found {
		t.Error("the user's own keyword on a copy was lost")
	}
	if d := diffItems(want["INBOX"], got); d != "" {
		t.Errorf("INBOX: %s", d)
	}
	delete(want, "INBOX")
	e.checkTarget(t, want)

	// And one more pass changes nothing.
	st, err = e.m.Sync(ctx, e.job(), nil)
	if err != nil || st.LastMessage != "copied 0 messages (0 B) in "+strconv.Itoa(len(st.Folders))+" folders" {
		t.Errorf("fourth pass: %v %q", err, st.LastMessage)
	}
}

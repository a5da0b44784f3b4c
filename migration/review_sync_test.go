package migration

import (
	"bufio"
	"context"
	"io"
	"net"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
)

// omitProxy sits between the collector and Dovecot and, while drop is
// set, takes one UID out of every UID FETCH of bodies, as a source does
// that leaves a message it cannot render out of its answer (the command
// still ends in OK).
type omitProxy struct {
	addr string
	drop atomic.Uint32 // UID to leave out (0: none)
}

func startOmitProxy(t *testing.T, backend string) *omitProxy {
	t.Helper()
	p := &omitProxy{}
	p.addr = listenLoopback(t, func(c net.Conn) { go p.serve(c, backend) }).String()
	return p
}

func (p *omitProxy) serve(c net.Conn, backend string) {
	forward(c, backend, func(b io.Writer, c io.Reader) {
		r := bufio.NewReader(c)
		for {
			line, err := r.ReadString('\n')
			if err != nil {
				return
			}
			if u := p.drop.Load(); u != 0 && strings.Contains(line, "UID FETCH") && strings.Contains(line, "BODY.PEEK[]") {
				line = dropUID(line, u)
			}
			if _, err := io.WriteString(b, line); err != nil {
				return
			}
		}
	})
}

// forward connects c to backend: the backend's answers are copied to c,
// and up copies what the client sends to the backend, as it likes.
func forward(c net.Conn, backend string, up func(b io.Writer, c io.Reader)) {
	defer c.Close()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		return
	}
	defer b.Close()
	go io.Copy(c, b)
	up(b, c)
}

// dropUID rewrites "tag UID FETCH set items" without uid (explicit sets
// only, as the collector sends them).
func dropUID(line string, uid uint32) string {
	f := strings.SplitN(line, " ", 5)
	if len(f) < 5 {
		return line
	}
	var keep imap.UIDSet
	for part := range strings.SplitSeq(f[3], ",") {
		lo, hi, ok := strings.Cut(part, ":")
		a, _ := strconv.ParseUint(lo, 10, 32)
		b := a
		if ok {
			b, _ = strconv.ParseUint(hi, 10, 32)
		}
		for n := a; n <= b; n++ {
			if uint32(n) != uid {
				keep.AddNum(imap.UID(n))
			}
		}
	}
	f[3] = keep.String()
	return strings.Join(f, " ")
}

// TestSyncSourceOmitsMessage: a message the source leaves out of its
// answer to the body FETCH (while it still lists it) is not copied, so it
// must count as failed and be copied by a later pass, not be taken for
// done and never copied.
func TestSyncSourceOmitsMessage(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	var msgs []mailcorpus.Message
	for i := range 5 {
		msgs = append(msgs, mailcorpus.Message{Folder: "INBOX", Date: time.Date(2024, 2, 1+i, 3, 4, 5, 0, time.UTC),
			Body: []byte("Message-ID: <omit" + strconv.Itoa(i) + "@x>\r\nSubject: m" + strconv.Itoa(i) + "\r\n\r\nbody\r\n")})
	}
	e.load(msgs)
	p := startOmitProxy(t, e.dove.Addr)
	p.drop.Store(3)
	job := e.job()
	_, port, _ := net.SplitHostPort(p.addr)
	job.Source.Port, _ = strconv.Atoi(port)
	ctx := context.Background()
	st, err := e.m.Sync(ctx, job, nil)
	if err != nil {
		t.Fatalf("first pass: %v", err)
	}
	if n := len(e.targetItems("INBOX")); n != 4 {
		t.Fatalf("first pass copied %d messages, want 4", n)
	}
	var inbox FolderStatus
	for _, f := range st.Folders {
		if f.Source == "INBOX" {
			inbox = f
		}
	}
	if inbox.Failed != 1 || inbox.Copied != 4 {
		t.Errorf("INBOX status after the omission: %+v", inbox)
	}
	if !strings.Contains(st.LastMessage, "1 failed") {
		t.Errorf("LastMessage %q does not say a message failed", st.LastMessage)
	}
	p.drop.Store(0)
	if _, err := e.m.Sync(ctx, job, nil); err != nil {
		t.Fatalf("second pass: %v", err)
	}
	if d := diffItems(sourceItems(t, e.source())["INBOX"], e.targetItems("INBOX")); d != "" {
		t.Errorf("after the second pass: %s", d)
	}
}

// TestSyncLoginEchoRedacted: a source that repeats the LOGIN command in
// its refusal (some do, in NO and BAD texts) must not get the password
// into the error, the status or the logs.
func TestSyncLoginEchoRedacted(t *testing.T) {
	addr := listenLoopback(t, func(c net.Conn) {
		go func() {
			defer c.Close()
			io.WriteString(c, "* OK [CAPABILITY IMAP4rev1 AUTH=PLAIN] echo server\r\n")
			r := bufio.NewReader(c)
			for {
				line, err := r.ReadString('\n')
				if err != nil {
					return
				}
				tag, rest, _ := strings.Cut(strings.TrimRight(line, "\r\n"), " ")
				io.WriteString(c, tag+" NO [AUTHENTICATIONFAILED] refused: "+rest+"\r\n")
			}
		}()
	})
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	for _, mode := range []AuthMode{AuthUser, AuthServiceExchange} {
		job := e.job()
		job.Source.Port = addr.Port
		job.Credentials.Mode = mode
		if mode != AuthUser {
			job.Credentials.Service = `corp\svc`
		}
		st, err := e.m.Sync(context.Background(), job, nil)
		if ClassOf(err) != ErrClassAuth {
			t.Errorf("%s: err %v (class %q), want auth", mode, err, ClassOf(err))
		}
		stored, serr := e.m.Status(context.Background(), syncTarget)
		for what, s := range map[string]string{"error": err.Error(), "status": st.LastError, "stored status": stored.LastError, "logs": e.logs.String()} {
			if strings.Contains(s, srcPW) {
				t.Errorf("%s: the password is in the %s: %s", mode, what, s)
			}
		}
		if serr != nil || stored.ErrorClass != ErrClassAuth || !strings.Contains(stored.LastError, "refused") {
			t.Errorf("%s: stored status %v %+v", mode, serr, stored)
		}
	}
}

// TestSyncUserMailNotPaired: mail delivered to the target mailbox by
// other means between passes (the user's own new mail) with the size and
// INTERNALDATE of a new source message, and like it without a Message-ID,
// is not the lost copy of that message: the source message is copied.
func TestSyncUserMailNotPaired(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(smallCorpus(11))
	ctx := context.Background()
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	date := time.Date(2025, 6, 7, 8, 9, 10, 0, time.UTC)
	src := mailcorpus.Message{Folder: "INBOX", Date: date, Body: []byte("From: monitor@example.net\r\nSubject: report\r\n\r\nall systems nominal\r\n")}
	own := []byte("From: monitor@example.net\r\nSubject: report\r\n\r\nDISK FULL on srv1!!\r\n")
	if len(own) != len(src.Body) {
		t.Fatal("test bodies differ in length")
	}
	c := e.source()
	if err := mailcorpus.Append(c, src); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Append(ctx, e.account, "INBOX", strings.NewReader(string(own)), store.AppendOptions{InternalDate: date}); err != nil {
		t.Fatal(err)
	}
	st, err := e.m.Sync(ctx, e.job(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.LastMessage, "copied 1 messages") {
		t.Errorf("pass: %q", st.LastMessage)
	}
	want := append(sourceItems(t, c)["INBOX"], itemOf(own, nil, date))
	if d := diffItems(want, e.targetItems("INBOX")); d != "" {
		t.Error(d)
	}
}

// TestSyncCancelMidPass: a pass cancelled while it copies stops with
// ErrClassCanceled, records that in the stored status, holds no host slot
// and leaves no goroutine behind; the next pass completes the copy
// without duplicates.
func TestSyncCancelMidPass(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.BandwidthLimit = 2 << 20 })
	e.load(mailcorpus.Generate(mailcorpus.Options{Seed: 12, PerFolder: 10, LargeSizes: []int{1 << 20, 1 << 20, 1 << 20},
		Folders: []string{"INBOX", "Archive", "Sent Items"}}))
	base := runtime.NumGoroutine()
	ctx, cancel := context.WithCancel(context.Background())
	var once sync.Once
	st, err := e.m.Sync(ctx, e.job(), func(p Progress) {
		if p.DoneMessages >= 3 {
			once.Do(cancel)
		}
	})
	cancel()
	if ClassOf(err) != ErrClassCanceled {
		t.Fatalf("err %v (class %q), want canceled", err, ClassOf(err))
	}
	stored, serr := e.m.Status(context.Background(), syncTarget)
	if serr != nil || stored.State != StateError || stored.ErrorClass != ErrClassCanceled || st.ErrorClass != ErrClassCanceled {
		t.Errorf("status after cancel: %v %+v", serr, stored)
	}
	if n := e.m.hosts.inUse("127.0.0.1"); n != 0 {
		t.Errorf("%d host slots held after cancel", n)
	}
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > base && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > base {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after cancel, %d before:\n%s", n, base, buf[:runtime.Stack(buf, true)])
	}
	if _, err := e.m.Sync(context.Background(), e.job(), nil); err != nil {
		t.Fatal(err)
	}
	src := sourceItems(t, e.source())
	want := map[string][]item{"INBOX": src["INBOX"], "Archive": src["Archive"], "Sent": src["Sent Items"]}
	e.checkTarget(t, want)
}

// TestSyncSparseUIDs: a folder whose UIDs have gaps (years of deleted
// mail) is fetched with a command line the source accepts: the body
// FETCH names runs of messages, not every UID, so the line does not
// grow with the folder. Dovecot's line limit is lowered to 1 KiB so that
// a few hundred messages show it (the default of 64 KiB is reached by a
// folder of some ten thousand messages).
func TestSyncSparseUIDs(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{ExtraConf: "imap_max_line_length = 1k\n"}, nil)
	var msgs []mailcorpus.Message
	for i := range 800 {
		msgs = append(msgs, mailcorpus.Message{Folder: "INBOX", Date: time.Date(2024, 3, 1, 0, 0, i, 0, time.UTC),
			Body: []byte("Message-ID: <sparse" + strconv.Itoa(i) + "@x>\r\nSubject: s\r\n\r\nbody\r\n")})
	}
	e.load(msgs)
	c := e.source()
	if _, err := c.Select("INBOX", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	for from := 1; from <= 800; from += 100 {
		var odd imap.UIDSet
		for u := from; u < from+100; u += 2 {
			odd.AddNum(imap.UID(u))
		}
		if err := c.Store(odd, &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	st, err := e.m.Sync(context.Background(), e.job(), nil)
	if err != nil {
		t.Fatalf("sync: %v\n%s", err, e.logs.String())
	}
	if !strings.HasPrefix(st.LastMessage, "copied 400 messages") {
		t.Errorf("pass: %q", st.LastMessage)
	}
	if d := diffItems(sourceItems(t, c)["INBOX"], e.targetItems("INBOX")); d != "" {
		t.Error(d)
	}
}

// TestBodyFetchSets: ranges span UIDs no message has but never a message
// that is not to be copied, and sets are split at the length bound.
func TestBodyFetchSets(t *testing.T) {
	all := []uint32{2, 4, 6, 8, 10, 12, 20, 30}
	msgs := func(uids ...uint32) []srcMsg {
		var out []srcMsg
		for _, u := range uids {
			out = append(out, srcMsg{uid: u})
		}
		return out
	}
	str := func(sets []imap.UIDSet) string {
		var parts []string
		for _, s := range sets {
			parts = append(parts, s.String())
		}
		return strings.Join(parts, " | ")
	}
	for _, tc := range []struct {
		copy []uint32
		max  int
		want string
	}{
		{[]uint32{2, 4, 6, 8, 10, 12, 20, 30}, 1000, "2:30"},
		{[]uint32{2, 4, 8, 10, 30}, 1000, "2:4,8:10,30"},
		{[]uint32{4, 8, 12, 30}, 1000, "4,8,12,30"},
		{[]uint32{4, 8, 12, 30}, 4, "4,8 | 12 | 30"},
		{nil, 1000, ""},
	} {
		if got := str(bodyFetchSets(all, msgs(tc.copy...), tc.max)); got != tc.want {
			t.Errorf("bodyFetchSets(%v, max %d) = %q, want %q", tc.copy, tc.max, got, tc.want)
		}
	}
}

// TestSyncRepairWithoutMessageID: after a UIDVALIDITY reset, a record
// of a message without a Message-ID is re-paired only with a source
// message of the same bytes, not with any message of the same size and
// date: a new message must not inherit the record of a deleted one and
// so never be copied.
func TestSyncRepairWithoutMessageID(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	date := time.Date(2025, 7, 8, 9, 10, 11, 0, time.UTC)
	x := mailcorpus.Message{Folder: "Archive", Date: date, Body: []byte("From: cron@example.net\r\nSubject: job\r\n\r\njob 1 finished ok\r\n")}
	y := mailcorpus.Message{Folder: "Archive", Date: date, Body: []byte("From: cron@example.net\r\nSubject: job\r\n\r\njob 2 FAILED!!!!!\r\n")}
	if len(x.Body) != len(y.Body) {
		t.Fatal("test bodies differ in length")
	}
	e.load([]mailcorpus.Message{x})
	ctx := context.Background()
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	c := e.source()
	if _, err := c.Select("Archive", nil).Wait(); err != nil {
		t.Fatal(err)
	}
	if err := c.Store(imap.SeqSetNum(1), &imap.StoreFlags{Op: imap.StoreFlagsAdd, Flags: []imap.Flag{imap.FlagDeleted}, Silent: true}, nil).Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Expunge().Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Unselect().Wait(); err != nil {
		t.Fatal(err)
	}
	if err := mailcorpus.Append(c, y); err != nil {
		t.Fatal(err)
	}
	e.dove.Doveadm(t, "mailbox", "update", "-u", srcUser, "--uid-validity", "4242", "Archive")
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	want := []item{itemOf(x.Body, nil, date), itemOf(y.Body, nil, date)}
	if d := diffItems(want, e.targetItems("Archive")); d != "" {
		t.Error(d)
	}
}

// TestSyncRepairKeepsDeletedCopyDeleted: a copy the user deleted in
// Mailyard does not come back when the source's UIDVALIDITY changes,
// also for a message without a Message-ID (whose copy cannot be compared).
func TestSyncRepairKeepsDeletedCopyDeleted(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	date := time.Date(2025, 7, 8, 9, 10, 11, 0, time.UTC)
	x := mailcorpus.Message{Folder: "Archive", Date: date, Body: []byte("From: cron@example.net\r\nSubject: job\r\n\r\njob 1 finished ok\r\n")}
	e.load([]mailcorpus.Message{x})
	ctx := context.Background()
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	copies, err := e.st.ListMessages(ctx, e.account, "Archive", nil)
	if err != nil || len(copies) != 1 {
		t.Fatalf("copies %v %v", copies, err)
	}
	set := store.UIDSet{{Start: copies[0].UID, Stop: copies[0].UID}}
	if _, err := e.st.StoreFlags(ctx, e.account, "Archive", store.StoreFlagsRequest{UIDs: set, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Expunge(ctx, e.account, "Archive", set); err != nil {
		t.Fatal(err)
	}
	e.dove.Doveadm(t, "mailbox", "update", "-u", srcUser, "--uid-validity", "4343", "Archive")
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	if n := len(e.targetItems("Archive")); n != 0 {
		t.Errorf("the deleted copy came back: %d messages in Archive", n)
	}
}

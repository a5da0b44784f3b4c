package migration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	imapsrv "github.com/mailyard/mailyard/imap"
	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// testSecretKey seals the passwords of the tests' collectors.
var testSecretKey = []byte("0123456789abcdef0123456789abcdef-test-key")

const (
	syncTarget   = "alice@example.com"
	syncTargetPW = "target-secret-pw"
	srcUser      = "alice"
	srcPW        = "source-Secret-p@ss"
)

// syncEnv is a Dovecot source with user alice and a Mailyard target
// (SQLite in a temp dir, built-in directory with alice@example.com).
type syncEnv struct {
	t       testing.TB
	dir     string
	st      *sqlite.Store
	d       *builtin.Directory
	dove    *dovecottest.Server
	m       *Migrator
	account string
	logs    *syncBuffer
	opts    Options
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newSyncEnv(t testing.TB, dopts dovecottest.Options, tweak func(*Options)) *syncEnv {
	t.Helper()
	if dopts.Users == nil {
		dopts.Users = map[string]string{}
	}
	dopts.Users[srcUser] = srcPW
	e := &syncEnv{t: t, dove: dovecottest.Start(t, dopts), dir: t.TempDir(), logs: &syncBuffer{}}
	e.openStore()
	ctx := context.Background()
	if _, err := e.d.CreateDomain(ctx, directory.Domain{Name: "example.com"}); err != nil {
		t.Fatal(err)
	}
	u, err := e.d.CreateUser(ctx, directory.User{Address: syncTarget}, syncTargetPW)
	if err != nil {
		t.Fatal(err)
	}
	e.account = u.ID
	e.opts = Options{
		Allowlist:      []string{"127.0.0.1/32"},
		FolderParallel: 2,
		DialTimeout:    30 * time.Second,
		CommandTimeout: 2 * time.Minute,
		MaxMessageSize: 4 << 20,
		SecretKey:      testSecretKey,
	}
	if tweak != nil {
		tweak(&e.opts)
	}
	e.newMigrator()
	return e
}

func (e *syncEnv) openStore() {
	st, err := sqlite.Open(context.Background(), e.dir, sqlite.Options{})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	e.st = st
	e.d = builtin.New(st, builtin.Options{Accounts: st})
}

func (e *syncEnv) newMigrator() {
	o := e.opts
	o.Store, o.Directory = e.st, e.d
	o.Logger = slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	m, err := New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	e.m = m
}

func (e *syncEnv) job() Job {
	return Job{
		Target:      "Alice@Example.com",
		Source:      Source{Host: "127.0.0.1", Port: e.dove.Port, TLS: TLSPlain},
		Credentials: Credentials{Mode: AuthUser, Login: srcUser, Password: srcPW},
	}
}

// source logs in to Dovecot as alice.
func (e *syncEnv) source() *imapclient.Client {
	e.t.Helper()
	c, err := imapclient.DialInsecure(e.dove.Addr, nil)
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { c.Close() })
	if err := c.Login(srcUser, srcPW).Wait(); err != nil {
		e.t.Fatal(err)
	}
	return c
}

func (e *syncEnv) load(msgs []mailcorpus.Message, extra ...string) {
	e.t.Helper()
	c := e.source()
	if err := mailcorpus.Load(context.Background(), c, msgs, extra...); err != nil {
		e.t.Fatalf("load corpus: %v\n%s", err, e.dove.Log())
	}
	c.Logout().Wait()
}

// item is one message as compared: body hash, flags and INTERNALDATE.
type item struct {
	hash  string
	flags string
	date  int64
	size  int
}

func (i item) String() string { return fmt.Sprintf("%s %s %d", i.hash[:12], i.flags, i.date) }

func itemOf(body []byte, flags []string, date time.Time) item {
	sum := sha256.Sum256(body)
	f := slices.Clone(flags)
	for k := range f {
		f[k] = strings.ToLower(f[k])
	}
	sort.Strings(f)
	return item{hex.EncodeToString(sum[:]), strings.Join(f, " "), date.Unix(), len(body)}
}

// sourceItems reads every message of every listed source folder,
// grouped by folder name ("/"-separated), skipping \Recent.
func sourceItems(t testing.TB, c *imapclient.Client) map[string][]item {
	t.Helper()
	list, err := c.List("", "*", nil).Collect()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]item{}
	for _, l := range list {
		if slices.Contains(l.Attrs, imap.MailboxAttrNoSelect) {
			continue
		}
		sel, err := c.Select(l.Mailbox, &imap.SelectOptions{ReadOnly: true}).Wait()
		if err != nil {
			t.Fatal(err)
		}
		out[l.Mailbox] = []item{}
		if sel.NumMessages == 0 {
			continue
		}
		sec := &imap.FetchItemBodySection{Peek: true}
		var all imap.SeqSet
		all.AddRange(1, 0)
		msgs, err := c.Fetch(all, &imap.FetchOptions{Flags: true, InternalDate: true, BodySection: []*imap.FetchItemBodySection{sec}}).Collect()
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range msgs {
			var fl []string
			for _, f := range m.Flags {
				if !strings.EqualFold(string(f), `\Recent`) {
					fl = append(fl, string(f))
				}
			}
			out[l.Mailbox] = append(out[l.Mailbox], itemOf(m.FindBodySection(sec), fl, m.InternalDate))
		}
	}
	return out
}

// targetItems reads a target mailbox from the store.
func (e *syncEnv) targetItems(mailbox string) []item {
	e.t.Helper()
	ctx := context.Background()
	msgs, err := e.st.ListMessages(ctx, e.account, mailbox, nil)
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	if err != nil {
		e.t.Fatal(err)
	}
	out := make([]item, 0, len(msgs))
	for _, m := range msgs {
		rc, err := e.st.OpenBody(ctx, e.account, mailbox, m.UID)
		if err != nil {
			e.t.Fatal(err)
		}
		b, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			e.t.Fatal(err)
		}
		out = append(out, itemOf(b, m.Flags, m.InternalDate))
	}
	return out
}

func sortItems(s []item) []item {
	s = slices.Clone(s)
	slices.SortFunc(s, func(a, b item) int { return strings.Compare(a.String(), b.String()) })
	return s
}

// diffItems describes how two multisets differ ("" if equal).
func diffItems(want, got []item) string {
	want, got = sortItems(want), sortItems(got)
	if slices.Equal(want, got) {
		return ""
	}
	count := map[item]int{}
	for _, w := range want {
		count[w]++
	}
	for _, g := range got {
		count[g]--
	}
	var b strings.Builder
	fmt.Fprintf(&b, "want %d messages, got %d;", len(want), len(got))
	for it, n := range count {
		if n > 0 {
			fmt.Fprintf(&b, " missing %dx %v;", n, it)
		} else if n < 0 {
			fmt.Fprintf(&b, " extra %dx %v;", -n, it)
		}
	}
	return b.String()
}

// listenLoopback listens on a loopback port until the test ends and hands
// every connection to accept, in the accepting goroutine (a fake source or
// a proxy in front of one). It returns the listener's address.
func listenLoopback(t *testing.T, accept func(net.Conn)) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accept(c)
		}
	}()
	return ln.Addr().(*net.TCPAddr)
}

// serveIMAP starts our IMAP server on the target store.
func (e *syncEnv) serveIMAP() string {
	e.t.Helper()
	srv, err := imapsrv.New(imapsrv.Options{Backend: e.st, Auth: e.d, AllowInsecureAuth: true})
	if err != nil {
		e.t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		e.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		srv.Serve(ln)
	}()
	e.t.Cleanup(func() {
		srv.Close()
		<-done
	})
	return ln.Addr().String()
}

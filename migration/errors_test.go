package migration

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
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

func smallCorpus(seed int64) []mailcorpus.Message {
	return mailcorpus.Generate(mailcorpus.Options{Seed: seed, PerFolder: 2, LargeSizes: []int{},
		Folders: []string{"INBOX", "Sent Items", "Проекты/2024"}})
}

func TestSyncWrongPassword(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	job := e.job()
	job.Credentials.Password = "Wrong-Pa55word"
	st, err := e.m.Sync(context.Background(), job, nil)
	if ClassOf(err) != ErrClassAuth {
		t.Fatalf("err %v (class %q), want auth", err, ClassOf(err))
	}
	if st.State != StateError || st.ErrorClass != ErrClassAuth || st.LastError == "" || st.Passes != 0 {
		t.Errorf("status %+v", st)
	}
	got, err := e.m.Status(context.Background(), syncTarget)
	if err != nil || got.State != StateError || got.ErrorClass != ErrClassAuth {
		t.Errorf("stored status %v %+v", err, got)
	}
	if logs := e.logs.String(); strings.Contains(logs, "Wrong-Pa55word") || strings.Contains(got.LastError, "Wrong-Pa55word") {
		t.Errorf("password in logs or status:\n%s\n%s", logs, got.LastError)
	}
}

func TestSyncAllowlistRefusesBeforeDialling(t *testing.T) {
	var accepted atomic.Int64
	addr := listenLoopback(t, func(c net.Conn) {
		accepted.Add(1)
		c.Close()
	})
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.Allowlist = []string{"10.0.0.0/8", "mail.example.net"} })
	for _, host := range []string{"127.0.0.1", "localhost"} {
		job := e.job()
		job.Source.Host = host
		job.Source.Port = addr.Port
		st, err := e.m.Sync(context.Background(), job, nil)
		if ClassOf(err) != ErrClassConfig || !strings.Contains(err.Error(), "allowlist") {
			t.Errorf("%s: err %v, want config error naming the allowlist", host, err)
		}
		if st.ErrorClass != ErrClassConfig {
			t.Errorf("%s: status %+v", host, st)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections reached the refused host", n)
	}
}

func TestSyncUnknownTarget(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	job := e.job()
	job.Target = "nobody@example.com"
	if _, err := e.m.Sync(context.Background(), job, nil); ClassOf(err) != ErrClassConfig {
		t.Errorf("unknown target: %v", err)
	}
	job.Target = ""
	if _, err := e.m.Sync(context.Background(), job, nil); ClassOf(err) != ErrClassConfig {
		t.Errorf("empty target: %v", err)
	}
}

func TestSyncQuota(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(smallCorpus(4))
	ctx := context.Background()
	if err := e.st.SetQuota(ctx, e.account, store.Quota{MaxMessages: 3}); err != nil {
		t.Fatal(err)
	}
	st, err := e.m.Sync(ctx, e.job(), nil)
	if ClassOf(err) != ErrClassQuota {
		t.Fatalf("err %v (class %q), want quota", err, ClassOf(err))
	}
	var qe *store.QuotaError
	if !errors.As(err, &qe) || st.ErrorClass != ErrClassQuota || st.State != StateError {
		t.Errorf("err %v, status %+v", err, st)
	}
	// With room again, the next pass completes without duplicates.
	if err := e.st.SetQuota(ctx, e.account, store.Quota{}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	want := map[string][]item{}
	for f, items := range sourceItems(t, e.source()) {
		tgt := map[string]string{"INBOX": "INBOX", "Sent Items": "Sent", "Проекты/2024": "Проекты/2024", "Проекты": "Проекты"}[f]
		want[tgt] = append(want[tgt], items...)
	}
	e.checkTarget(t, want)
}

// TestSyncServicePlain opens alice's mailbox as a Dovecot master user with
// AUTHENTICATE PLAIN and alice as the authorization identity (RFC 4616).
func TestSyncServicePlain(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{MasterUsers: map[string]string{"migrator": "svc-Secret-1"}}, nil)
	e.load(smallCorpus(5))
	job := e.job()
	job.Credentials = Credentials{Mode: AuthServicePlain, Login: srcUser, Service: "migrator", Password: "svc-Secret-1"}
	if _, err := e.m.Sync(context.Background(), job, nil); err != nil {
		t.Fatalf("sync: %v\n%s", err, e.dove.Log())
	}
	if d := diffItems(sourceItems(t, e.source())["INBOX"], e.targetItems("INBOX")); d != "" {
		t.Error(d)
	}
	job.Credentials.Password = "bad"
	if _, err := e.m.Sync(context.Background(), job, nil); ClassOf(err) != ErrClassAuth {
		t.Errorf("bad service password: %v", err)
	}
	if strings.Contains(e.logs.String(), "svc-Secret-1") {
		t.Error("service password in the logs")
	}
}

// TestSyncServiceExchange logs in with Exchange's "domain\service\mailbox"
// form. Dovecot has no such form; the honest emulation is a passdb entry
// whose name is that exact string, with the service password, mapped to
// alice's mailbox by the passdb extra field user=alice. The test shows
// the collector sends exactly that login and reads the mailbox it opens.
func TestSyncServiceExchange(t *testing.T) {
	// Dovecot escapes '\' as "\\" when it expands the name for the
	// passwd-file lookup, so the file holds the escaped form.
	entry := `CORP\\svc-migrate\\alice`
	e := newSyncEnv(t, dovecottest.Options{
		Users:      map[string]string{entry: "svc-Secret-2"},
		UserFields: map[string]string{entry: "user=alice"},
		// Keep the login's case and allow backslashes in it.
		ExtraConf: "auth_username_chars =\nauth_username_format = %u\n",
	}, nil)
	e.load(smallCorpus(6))
	job := e.job()
	job.Credentials = Credentials{Mode: AuthServiceExchange, Login: "alice", Service: `CORP\svc-migrate`, Password: "svc-Secret-2"}
	if _, err := e.m.Sync(context.Background(), job, nil); err != nil {
		t.Fatalf("sync: %v\n%s", err, e.dove.Log())
	}
	if d := diffItems(sourceItems(t, e.source())["INBOX"], e.targetItems("INBOX")); d != "" {
		t.Error(d)
	}
}

func TestSyncTLS(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{TLS: true}, nil)
	e.load(smallCorpus(7))
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, e.dove.CertPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	implicit := e.job()
	implicit.Source = Source{Host: "127.0.0.1", Port: e.dove.TLSPort, TLS: TLSImplicit, CAFile: ca}
	if _, err := e.m.Sync(ctx, implicit, nil); err != nil {
		t.Fatalf("implicit TLS: %v\n%s", err, e.dove.Log())
	}
	starttls := e.job()
	starttls.Source = Source{Host: "127.0.0.1", Port: e.dove.Port, TLS: TLSStartTLS, CAFile: ca}
	st, err := e.m.Sync(ctx, starttls, nil)
	if err != nil || !strings.HasPrefix(st.LastMessage, "copied 0 messages") {
		t.Fatalf("STARTTLS: %v %q", err, st.LastMessage)
	}
	// Without the CA the certificate is refused: a connection error.
	bad := implicit
	bad.Source.CAFile = ""
	if _, err := e.m.Sync(ctx, bad, nil); ClassOf(err) != ErrClassConnection {
		t.Errorf("untrusted certificate: %v (class %q)", err, ClassOf(err))
	}
	bad.Source.InsecureSkipVerify = true
	if _, err := e.m.Sync(ctx, bad, nil); err != nil {
		t.Errorf("InsecureSkipVerify: %v", err)
	}
}

// TestSyncCommandTimeout: a source that greets and then never answers
// fails with a connection error after CommandTimeout, not never.
func TestSyncCommandTimeout(t *testing.T) {
	addr := listenLoopback(t, func(c net.Conn) {
		c.Write([]byte("* OK silent server\r\n"))
		go func() {
			defer c.Close()
			io.Copy(io.Discard, c) // reads, never answers
		}()
	})
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.CommandTimeout = 300 * time.Millisecond; o.DialTimeout = 300 * time.Millisecond })
	job := e.job()
	job.Source.Port = addr.Port
	start := time.Now()
	_, err := e.m.Sync(context.Background(), job, nil)
	if ClassOf(err) != ErrClassConnection {
		t.Errorf("err %v (class %q), want connection", err, ClassOf(err))
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("took %v", d)
	}
}

// TestSyncReconcilesLostCheckpoint: a copy appended by a pass that died
// before its checkpoint is recognised, not copied again.
func TestSyncReconcilesLostCheckpoint(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(smallCorpus(8))
	ctx := context.Background()
	if _, err := e.m.Sync(ctx, e.job(), nil); err != nil {
		t.Fatal(err)
	}
	// New source mail; the "dead pass" appended its copy to the target
	// exactly as a pass does, but recorded nothing.
	c := e.source()
	msg := mailcorpus.Message{Folder: "INBOX", Flags: []imap.Flag{imap.FlagSeen}, Date: time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC),
		Body: []byte("Message-ID: <lost@x>\r\nSubject: lost checkpoint\r\n\r\nbody\r\n")}
	if err := mailcorpus.Append(c, msg); err != nil {
		t.Fatal(err)
	}
	// And a look-alike with another Message-ID, which must be copied.
	twin := msg
	twin.Body = []byte("Message-ID: <t0st@x>\r\nSubject: lost checkpoint\r\n\r\nbody\r\n")
	if err := mailcorpus.Append(c, twin); err != nil {
		t.Fatal(err)
	}
	if _, err := e.st.Append(ctx, e.account, "INBOX", strings.NewReader(string(msg.Body)), store.AppendOptions{Flags: []string{store.FlagSeen}, InternalDate: msg.Date}); err != nil {
		t.Fatal(err)
	}
	st, err := e.m.Sync(ctx, e.job(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(st.LastMessage, "copied 1 messages") {
		t.Errorf("pass: %q", st.LastMessage)
	}
	if d := diffItems(sourceItems(t, c)["INBOX"], e.targetItems("INBOX")); d != "" {
		t.Error(d)
	}
	if !strings.Contains(e.logs.String(), "reconciled") {
		t.Error("no reconciliation logged")
	}
}

func TestCollectAndDisable(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	e.load(smallCorpus(9))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.m.Collect(ctx, e.job(), 20*time.Millisecond, nil) }()
	// Wait for two successful passes.
	for {
		st, err := e.m.Status(ctx, syncTarget)
		if err == nil && st.Passes >= 2 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Collect returned early: %v", err)
		case <-ctx.Done():
			t.Fatal("no second pass")
		case <-time.After(20 * time.Millisecond):
		}
	}
	if err := e.m.Disable(ctx, "ALICE@example.com"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Collect: %v", err)
		}
	case <-ctx.Done():
		t.Fatal("Collect did not stop after Disable")
	}
	st, err := e.m.Status(ctx, syncTarget)
	if err != nil || st.State != StateDisabled {
		t.Errorf("status %v %+v", err, st)
	}
	if _, err := e.m.Sync(ctx, e.job(), nil); !errors.Is(err, ErrDisabled) || ClassOf(err) != ErrClassConfig {
		t.Errorf("sync after disable: %v", err)
	}
	if err := e.m.Disable(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("disable unknown: %v", err)
	}
	if _, err := e.m.Status(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("status unknown: %v", err)
	}
	if _, err := e.m.storedJob(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("storedJob unknown: %v", err)
	}
}

// TestCollectBacksOff: failing passes are retried with back-off, and
// cancelling the context stops Collect with nil.
func TestCollectBacksOff(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) { o.RetryMin = 10 * time.Millisecond; o.RetryMax = 40 * time.Millisecond })
	job := e.job()
	job.Credentials.Password = "wrong"
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- e.m.Collect(ctx, job, time.Hour, nil) }()
	deadline := time.After(2 * time.Minute)
	for strings.Count(e.logs.String(), "migration pass failed") < 3 {
		select {
		case err := <-done:
			t.Fatalf("Collect returned: %v", err)
		case <-deadline:
			t.Fatal("fewer than 3 retries")
		case <-time.After(10 * time.Millisecond):
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Errorf("Collect after cancel: %v", err)
	}
	if err := e.m.Collect(context.Background(), job, 0, nil); ClassOf(err) != ErrClassConfig {
		t.Errorf("zero interval: %v", err)
	}
}

func TestListStatus(t *testing.T) {
	e := newSyncEnv(t, dovecottest.Options{}, nil)
	ctx := context.Background()
	for _, tgt := range []string{"c@example.com", "a@example.com", "b@example.com"} {
		job := e.job()
		job.Target = tgt
		e.m.Sync(ctx, job, nil) // unknown targets: recorded with a config error
	}
	page, err := e.m.ListStatus(ctx, "", 2)
	if err != nil || len(page) != 2 || page[0].Target != "a@example.com" || page[1].Target != "b@example.com" {
		t.Fatalf("page 1: %v %+v", err, page)
	}
	page, err = e.m.ListStatus(ctx, page[1].Target, 2)
	if err != nil || len(page) != 1 || page[0].Target != "c@example.com" || page[0].ErrorClass != ErrClassConfig {
		t.Fatalf("page 2: %v %+v", err, page)
	}
	if page[0].Job.Credentials.Password.Reveal() != Mask {
		t.Error("password not masked in ListStatus")
	}
}

// TestSyncConnLimitAndBandwidth: one connection per host for three folder
// workers, and a bandwidth cap that makes the pass measurably slower.
func TestSyncConnLimitAndBandwidth(t *testing.T) {
	const rate = 256 << 10
	e := newSyncEnv(t, dovecottest.Options{}, func(o *Options) {
		o.MaxConnsPerHost = 1
		o.FolderParallel = 3
		o.BandwidthLimit = rate
	})
	e.load(mailcorpus.Generate(mailcorpus.Options{Seed: 10, PerFolder: 2, LargeSizes: []int{400 << 10, 400 << 10},
		Folders: []string{"INBOX", "Archive", "Проекты/2024", "Sent Items"}}))
	// A counting proxy in front of Dovecot sees every connection. One
	// counts as open from its accept until the proxy forwards the
	// client's LOGOUT (or the client closes it). The client releases its
	// host slot only after LOGOUT's response, which comes through the
	// proxy: a connection accepted while another still counts as open
	// overlaps it for real, however late the proxy would see its EOF.
	var cur, peak, conns atomic.Int64
	addr := listenLoopback(t, func(c net.Conn) {
		conns.Add(1)
		n := cur.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
		var once sync.Once
		closed := func() { once.Do(func() { cur.Add(-1) }) }
		go func() {
			defer c.Close()
			d, err := net.Dial("tcp", e.dove.Addr)
			if err != nil {
				closed()
				return
			}
			defer d.Close()
			go func() {
				io.Copy(d, &logoutWatch{r: c, seen: closed}) // ends when the client closes
				closed()
				d.(*net.TCPConn).CloseWrite()
			}()
			io.Copy(c, d)
		}()
	})
	job := e.job()
	job.Source.Port = addr.Port
	start := time.Now()
	st, err := e.m.Sync(context.Background(), job, nil)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if peak.Load() != 1 || conns.Load() < 1 {
		t.Errorf("%d connections, at most %d at once; want one at a time", conns.Load(), peak.Load())
	}
	var total int64
	for _, f := range st.Folders {
		total += f.SourceBytes
	}
	// At least everything beyond the first second's burst is paid for at
	// the rate (the protocol adds more on top).
	if min := time.Duration(float64(total-rate) / rate * float64(time.Second)); elapsed < min*9/10 {
		t.Errorf("%d bytes in %v; the cap allows no less than %v", total, elapsed, min)
	}
	if n := e.m.hosts.inUse("127.0.0.1"); n != 0 {
		t.Errorf("%d host slots still held", n)
	}
	want := map[string][]item{}
	for f, items := range sourceItems(t, e.source()) {
		tgt := map[string]string{"INBOX": "INBOX", "Archive": "Archive", "Sent Items": "Sent", "Проекты/2024": "Проекты/2024", "Проекты": "Проекты"}[f]
		want[tgt] = append(want[tgt], items...)
	}
	e.checkTarget(t, want)
}

// logoutWatch reads a client's commands and calls seen once a LOGOUT
// command (RFC 9051 §6.1.3) has been read, before returning its bytes: a
// proxy that forwards them has called seen before the server can answer.
type logoutWatch struct {
	r    io.Reader
	seen func()
	tail []byte // the end of the previous read, for a command split across reads
}

func (w *logoutWatch) Read(p []byte) (int, error) {
	n, err := w.r.Read(p)
	const cmd = " LOGOUT\r\n"
	buf := append(w.tail, bytes.ToUpper(p[:n])...)
	if bytes.Contains(buf, []byte(cmd)) {
		w.seen()
	}
	w.tail = append(w.tail[:0], buf[max(0, len(buf)-len(cmd)):]...)
	return n, err
}

package main

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/csv"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/emersion/go-message/mail"
	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/certs"
	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// fixture is a mail server data directory with users, and a Dovecot
// holding their old mailboxes.
type fixture struct {
	t     *testing.T
	data  string
	dov   *dovecottest.Server
	users map[string]string // address -> source password
}

func newFixture(t *testing.T, users map[string]string) *fixture {
	t.Helper()
	dov := dovecottest.Start(t, dovecottest.Options{Users: users})
	var addrs []string
	for addr := range users {
		addrs = append(addrs, addr)
	}
	return &fixture{t: t, data: newDataDir(t, addrs...), dov: dov, users: users}
}

// newDataDir is a mail server data directory with the domain
// example.com and these users.
func newDataDir(t *testing.T, addrs ...string) string {
	t.Helper()
	data := t.TempDir()
	ctx := t.Context()
	st, err := sqlite.Open(ctx, data, sqlite.Options{})
	require.NoError(t, err)
	dir := builtin.New(st, builtin.Options{Accounts: st, Hasher: builtin.NewPasswordHasher(1)})
	_, err = dir.CreateDomain(ctx, directory.Domain{Name: "example.com"})
	require.NoError(t, err)
	for _, addr := range addrs {
		_, err := dir.CreateUser(ctx, directory.User{Address: addr}, "local-password")
		require.NoError(t, err)
	}
	require.NoError(t, st.Close())
	return data
}

// fill appends n messages to a source folder.
func (f *fixture) fill(user, folder string, n, size int) {
	t := f.t
	t.Helper()
	c, err := imapclient.DialInsecure(f.dov.Addr, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, f.users[user]).Wait())
	if folder != "INBOX" {
		require.NoError(t, c.Create(folder, nil).Wait())
	}
	for i := range n {
		body := fmt.Sprintf("From: old@old.example\r\nTo: %s\r\nSubject: %d\r\nMessage-ID: <%d.%s.%s@old.example>\r\n\r\n%s\r\n",
			user, i, i, folder, user, strings.Repeat("y", size))
		require.NoError(t, mailcorpus.Append(c, mailcorpus.Message{Folder: folder, Flags: []imap.Flag{imap.FlagFlagged}, Body: []byte(body)}))
	}
}

// count returns the number of messages in a target mailbox.
func (f *fixture) count(addr, mailbox string) int64 {
	t := f.t
	t.Helper()
	st, err := sqlite.Open(t.Context(), f.data, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	dir := builtin.New(st, builtin.Options{})
	e, err := dir.LookupAddress(t.Context(), addr)
	require.NoError(t, err)
	ms, err := st.Status(t.Context(), e.User.ID, mailbox)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	require.NoError(t, err)
	return ms.Messages
}

// writeFile writes a file in a temporary directory and returns its path.
func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o600))
	return p
}

// result is one in-process run of the command.
type result struct {
	code           int
	stdout, stderr string
}

// lockedBuffer is a buffer the progress display and the test may share.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
	// onWrite, if set, sees every write.
	onWrite func(string)
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	n, err := l.b.Write(p)
	hook := l.onWrite
	l.mu.Unlock()
	if hook != nil {
		hook(string(p))
	}
	return n, err
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func (f *fixture) migrate(ctx context.Context, environ map[string]string, args ...string) result {
	return f.migrateOut(ctx, environ, &lockedBuffer{}, args...)
}

func (f *fixture) migrateOut(ctx context.Context, environ map[string]string, stdout *lockedBuffer, args ...string) result {
	var stderr lockedBuffer
	full := append([]string{"-data", f.data, "-allow", "127.0.0.1"}, args...)
	code := run(ctx, full, env{
		stdin: strings.NewReader(""), stdout: stdout, stderr: &stderr,
		getenv: func(k string) string { return environ[k] },
	})
	return result{code: code, stdout: stdout.String(), stderr: stderr.String()}
}

func (f *fixture) sourceFlags() []string {
	return []string{"--host", f.dov.Host, "--port", fmt.Sprint(f.dov.Port), "--tls", "plain"}
}

func TestRunStatusHistoryReport(t *testing.T) {
	f := newFixture(t, map[string]string{"alice@example.com": "alice-secret", "bob@example.com": "bob-secret"})
	f.fill("alice@example.com", "INBOX", 4, 200)
	f.fill("alice@example.com", "Проекты/2026", 2, 200)
	f.fill("alice@example.com", "Drafts", 1, 200)
	f.fill("bob@example.com", "INBOX", 3, 200)
	list := writeFile(t, "list.csv", "target,password\nalice@example.com,alice-secret\nbob@example.com,bob-secret\n")
	ctx := t.Context()

	res := f.migrate(ctx, nil, append([]string{"run", "--csv", list}, f.sourceFlags()...)...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run 1 completed: 2 mailboxes, 2 ok, 0 with errors")
	assert.Contains(t, res.stdout, "] alice@example.com: ok")
	assert.Contains(t, res.stdout, "progress: 2/2 mailboxes")
	assert.Equal(t, int64(4), f.count("alice@example.com", "INBOX"))
	assert.Equal(t, int64(2), f.count("alice@example.com", "Проекты/2026"))
	assert.Equal(t, int64(0), f.count("alice@example.com", "Drafts"), "Drafts excluded by default")
	assert.Equal(t, int64(3), f.count("bob@example.com", "INBOX"))

	status := f.migrate(ctx, nil, "status")
	require.Equal(t, exitOK, status.code, status.stderr)
	assert.Regexp(t, `alice@example.com\s+ok\s+1\s`, status.stdout)
	assert.Regexp(t, `bob@example.com\s+ok\s+1\s`, status.stdout)

	one := f.migrate(ctx, nil, "status", "alice@example.com")
	require.Equal(t, exitOK, one.code, one.stderr)
	assert.Contains(t, one.stdout, "password:      ********")
	assert.Regexp(t, `Проекты/2026\s+Проекты/2026\s+2\s`, one.stdout)
	assert.Regexp(t, `Drafts\s+\(excluded\)`, one.stdout)

	hist := f.migrate(ctx, nil, "history")
	require.Equal(t, exitOK, hist.code, hist.stderr)
	assert.Regexp(t, `(?m)^1\s+completed\s`, hist.stdout)
	h1 := f.migrate(ctx, nil, "history", "1", "--limit", "1")
	require.Equal(t, exitOK, h1.code, h1.stderr)
	assert.Contains(t, h1.stdout, "two-way:       no")
	assert.Contains(t, h1.stdout, "mailboxes:     2 total, 2 ok, 0 with errors")
	assert.Regexp(t, `alice@example.com\s+\S+ \S+\s+ok\s+IMAP\s+127.0.0.1\s`, h1.stdout)
	assert.NotContains(t, h1.stdout, "bob@example.com\t", "page of one")
	assert.Contains(t, h1.stdout, "more: migrate history 1 -after alice@example.com")
	h2 := f.migrate(ctx, nil, "history", "1", "-after", "alice@example.com")
	require.Equal(t, exitOK, h2.code, h2.stderr)
	assert.Regexp(t, `bob@example.com\s+\S+ \S+\s+ok`, h2.stdout)

	dir := t.TempDir()
	csvOut, htmlOut := filepath.Join(dir, "r.csv"), filepath.Join(dir, "r.html")
	rep := f.migrate(ctx, nil, "report", "--domain", "example.com", "--csv", csvOut, "--html", htmlOut)
	require.Equal(t, exitOK, rep.code, rep.stderr)
	fh, err := os.Open(csvOut)
	require.NoError(t, err)
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	require.NoError(t, err)
	found := false
	for _, r := range rows[1:] {
		if r[0] == "alice@example.com" && r[2] == "Проекты/2026" {
			found = true
			assert.Equal(t, []string{"2", "2"}, []string{r[5], r[7]}, "source and target messages")
		}
	}
	assert.True(t, found, "report row for the Cyrillic folder: %v", rows)
	page, err := os.ReadFile(htmlOut)
	require.NoError(t, err)
	assert.Contains(t, string(page), "<h2>bob@example.com</h2>")

	summary := f.migrate(ctx, nil, "report", "--mailboxes", "alice@example.com,bob@example.com")
	require.Equal(t, exitOK, summary.code, summary.stderr)
	assert.Contains(t, summary.stdout, "Mailboxes: 2 (ok 2")

	dis := f.migrate(ctx, nil, "disable", "bob@example.com")
	require.Equal(t, exitOK, dis.code, dis.stderr)
	rerun := f.migrate(ctx, nil, append([]string{"run", "--csv", list}, f.sourceFlags()...)...)
	require.Equal(t, exitOK, rerun.code, rerun.stderr)
	assert.Contains(t, rerun.stdout, "run 2 completed: 2 mailboxes, 1 ok, 0 with errors, 1 cut over")
	assert.Equal(t, int64(4), f.count("alice@example.com", "INBOX"), "a rerun copies nothing twice")

	for _, r := range []result{res, status, one, hist, h1, h2, rep, summary, dis, rerun} {
		for _, pw := range []string{"alice-secret", "bob-secret"} {
			assert.NotContains(t, r.stdout+r.stderr, pw, "a password was printed")
		}
	}
}

func TestRunInterruptedThenResumed(t *testing.T) {
	users := map[string]string{"u1@example.com": "p1", "u2@example.com": "p2", "u3@example.com": "p3"}
	f := newFixture(t, users)
	const perUser = 40
	for u := range users {
		f.fill(u, "INBOX", perUser, 300)
	}
	list := writeFile(t, "list.csv", "target,password\nu1@example.com,p1\nu2@example.com,p2\nu3@example.com,p3\n")
	args := append([]string{"run", "--csv", list, "--parallel", "1"}, f.sourceFlags()...)

	// Ctrl-C in the middle of the first mailbox: as soon as a progress
	// line shows a few messages copied.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	progressLine := regexp.MustCompile(`progress: \d+/3 mailboxes, (\d+)/`)
	out := &lockedBuffer{onWrite: func(s string) {
		if m := progressLine.FindStringSubmatch(s); m != nil {
			if n, _ := strconv.Atoi(m[1]); n >= 3 {
				cancel()
			}
		}
	}}
	res := f.migrateOut(ctx, nil, out, append(args, "--progress-every", "2ms")...)
	require.Equal(t, exitInterrupted, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run 1 interrupted: 3 mailboxes")
	assert.Contains(t, res.stderr, "run the same command again to resume")
	var before int64
	for u := range users {
		before += f.count(u, "INBOX")
	}
	assert.GreaterOrEqual(t, before, int64(3))
	assert.Less(t, before, int64(3*perUser))

	hist := f.migrate(t.Context(), nil, "history", "1")
	require.Equal(t, exitOK, hist.code)
	assert.Contains(t, hist.stdout, "run:           1 (interrupted)")
	assert.Regexp(t, `interrupted\s.*not reached`, hist.stdout)

	res = f.migrate(t.Context(), nil, args...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run 2 completed: 3 mailboxes, 3 ok")
	for u := range users {
		assert.Equal(t, int64(perUser), f.count(u, "INBOX"), "%s: every message exactly once", u)
	}
}

func TestRunRefusals(t *testing.T) {
	f := newFixture(t, map[string]string{"alice@example.com": "pw"})
	list := writeFile(t, "list.csv", "target\nalice@example.com\n")
	pwFile := writeFile(t, "pw", "pw\n")
	ctx := t.Context()

	res := f.migrate(ctx, nil, append([]string{"run", "--csv", list, "--password-file", pwFile, "--two-way"}, f.sourceFlags()...)...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, "two-way mail sync is not supported")

	res = f.migrate(ctx, nil, append([]string{"run", "--csv", list}, f.sourceFlags()...)...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, "no password")

	bad := writeFile(t, "bad.csv", "target,port\nalice@example.com,x\n")
	res = f.migrate(ctx, map[string]string{"MIGRATE_PASSWORD": "pw"}, append([]string{"run", "--csv", bad}, f.sourceFlags()...)...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, `bad.csv: csv line 2, column "port"`)

	res = f.migrate(ctx, nil, "run")
	assert.Equal(t, exitUsage, res.code)
	res = f.migrate(ctx, nil, "frobnicate")
	assert.Equal(t, exitUsage, res.code)
	res = f.migrate(ctx, nil, "history", "x")
	assert.Equal(t, exitUsage, res.code)
	res = f.migrate(ctx, nil, "status", "nobody@example.com")
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, "has no collector")

	hist := f.migrate(ctx, nil, "history")
	require.Equal(t, exitOK, hist.code)
	assert.NotRegexp(t, `(?m)^\d`, hist.stdout, "refused runs are not recorded")

	// The password from the environment works; wrong ones are mailbox
	// errors (exit 1).
	res = f.migrate(ctx, map[string]string{"MIGRATE_PASSWORD": "wrong"}, append([]string{"run", "--csv", list}, f.sourceFlags()...)...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stdout, "1 with errors")
	assert.Contains(t, res.stdout, "alice@example.com: error")
	res = f.migrate(ctx, map[string]string{"MIGRATE_PASSWORD": "pw"}, append([]string{"run", "--csv", list, "--force-update"}, f.sourceFlags()...)...)
	assert.Equal(t, exitOK, res.code, res.stderr)

	// Without an allowlist nothing runs.
	var stdout, stderr lockedBuffer
	code := run(ctx, []string{"-data", f.data, "run", "--csv", list, "--password-file", pwFile, "--host", "127.0.0.1"},
		env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }})
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, stderr.String(), "no source allowlist")
}

// smtpRecorder is a go-smtp backend that requires AUTH PLAIN and keeps
// the messages it receives.
type smtpRecorder struct {
	user, password string
	mu             sync.Mutex
	msgs           []recordedMail
}

type recordedMail struct {
	from string
	to   []string
	data []byte
	tls  bool
}

func (b *smtpRecorder) NewSession(c *smtp.Conn) (smtp.Session, error) {
	return &smtpRecorderSession{b: b, conn: c}, nil
}

// messages returns what the server has received.
func (b *smtpRecorder) messages() []recordedMail {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]recordedMail(nil), b.msgs...)
}

type smtpRecorderSession struct {
	b      *smtpRecorder
	conn   *smtp.Conn
	authed bool
	cur    recordedMail
}

func (s *smtpRecorderSession) AuthMechanisms() []string { return []string{sasl.Plain} }

func (s *smtpRecorderSession) Auth(mech string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(identity, user, pass string) error {
		if user != s.b.user || pass != s.b.password {
			return errors.New("invalid credentials")
		}
		s.authed = true
		return nil
	}), nil
}

func (s *smtpRecorderSession) Mail(from string, _ *smtp.MailOptions) error {
	if !s.authed {
		return smtp.ErrAuthRequired
	}
	_, isTLS := s.conn.TLSConnectionState()
	s.cur = recordedMail{from: from, tls: isTLS}
	return nil
}

func (s *smtpRecorderSession) Rcpt(to string, _ *smtp.RcptOptions) error {
	s.cur.to = append(s.cur.to, to)
	return nil
}

func (s *smtpRecorderSession) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	s.cur.data = b
	s.b.mu.Lock()
	s.b.msgs = append(s.b.msgs, s.cur)
	s.b.mu.Unlock()
	return nil
}

func (s *smtpRecorderSession) Reset()        {}
func (s *smtpRecorderSession) Logout() error { return nil }

// startSMTP serves a recorder on loopback with STARTTLS (if withTLS) and
// returns its address and the PEM file of its certificate.
func startSMTP(t *testing.T, be *smtpRecorder, withTLS bool) (addr, caFile string) {
	t.Helper()
	srv := smtp.NewServer(be)
	srv.Domain = "localhost"
	if withTLS {
		cert, err := certs.SelfSigned([]string{"127.0.0.1", "localhost"})
		require.NoError(t, err)
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}}
		caFile = writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]})))
		_, err = x509.ParseCertificate(cert.Certificate[0])
		require.NoError(t, err)
	} else {
		srv.AllowInsecureAuth = true
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return l.Addr().String(), caFile
}

func TestReportMailed(t *testing.T) {
	f := newFixture(t, map[string]string{"alice@example.com": "pw"})
	f.fill("alice@example.com", "INBOX", 2, 100)
	list := writeFile(t, "list.csv", "target,password\nalice@example.com,pw\n")
	ctx := t.Context()
	res := f.migrate(ctx, nil, append([]string{"run", "--csv", list}, f.sourceFlags()...)...)
	require.Equal(t, exitOK, res.code, res.stderr)

	be := &smtpRecorder{user: "admin@example.com", password: "smtp-secret"}
	addr, ca := startSMTP(t, be, true)
	pwFile := writeFile(t, "smtp-pw", "smtp-secret\n")
	mailArgs := []string{"report", "--domain", "example.com", "--mail-to", "admin@example.com",
		"--smtp", addr, "--smtp-user", "admin@example.com", "--smtp-password-file", pwFile, "--smtp-ca", ca}
	res = f.migrate(ctx, nil, mailArgs...)
	require.Equal(t, exitOK, res.code, res.stderr)
	assert.Contains(t, res.stderr, "report mailed to admin@example.com")
	assert.NotContains(t, res.stdout+res.stderr, "smtp-secret")

	msgs := be.messages()
	require.Len(t, msgs, 1)
	got := msgs[0]
	assert.True(t, got.tls, "sent after STARTTLS")
	assert.Equal(t, "admin@example.com", got.from, "sender defaults to the SMTP login")
	assert.Equal(t, []string{"admin@example.com"}, got.to)
	mr, err := mail.CreateReader(bytes.NewReader(got.data))
	require.NoError(t, err)
	subj, _ := mr.Header.Subject()
	assert.Equal(t, "Migration report: example.com", subj)
	var kinds []string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch h := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := h.ContentType()
			kinds = append(kinds, ct)
		case *mail.AttachmentHeader:
			ct, _, _ := h.ContentType()
			kinds = append(kinds, ct)
			assert.Contains(t, string(body), "alice@example.com,ok,INBOX,INBOX,false,2,")
		}
	}
	assert.Equal(t, []string{"text/plain", "text/html", "text/csv"}, kinds)

	// Wrong SMTP password: an error, nothing recorded.
	bad := writeFile(t, "bad-pw", "nope\n")
	mailArgs[len(mailArgs)-3] = bad
	res = f.migrate(ctx, nil, mailArgs...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, "AUTH as admin@example.com")
	assert.Len(t, be.messages(), 1)

	// A server without STARTTLS never sees the password.
	plainBe := &smtpRecorder{user: "admin@example.com", password: "smtp-secret"}
	plainAddr, _ := startSMTP(t, plainBe, false)
	res = f.migrate(ctx, nil, "report", "--domain", "example.com", "--mail-to", "admin@example.com",
		"--smtp", plainAddr, "--smtp-user", "admin@example.com", "--smtp-password-file", pwFile)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, "STARTTLS")
	assert.Empty(t, plainBe.messages())
}

func TestRunOnTerminal(t *testing.T) {
	f := newFixture(t, map[string]string{"alice@example.com": "pw"})
	f.fill("alice@example.com", "INBOX", 3, 100)
	list := writeFile(t, "list.csv", "target,password\nalice@example.com,pw\n")
	var stdout, stderr lockedBuffer
	args := append([]string{"-data", f.data, "-allow", "127.0.0.1", "-log-level", "info", "run", "--csv", list}, f.sourceFlags()...)
	code := run(t.Context(), args, env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }, terminal: true})
	require.Equal(t, exitOK, code, "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	out := stdout.String()
	assert.Contains(t, out, "all mailboxes", "the overall bar")
	assert.Contains(t, out, "\x1b[", "redrawn in place")
	assert.Contains(t, out, "alice@example.com: ok")
	assert.Contains(t, out, "migration pass done", "log lines are printed above the bars")
	assert.Contains(t, out, "run 1 completed: 1 mailboxes, 1 ok")
	assert.NotContains(t, stderr.String(), "migration pass done")
}

func TestRunInterruptedBeforeRecorded(t *testing.T) {
	// Ctrl-C before the run is recorded (here: while the store opens)
	// is an interruption like any other: exit 130, nothing recorded.
	f := newFixture(t, map[string]string{"alice@example.com": "pw"})
	list := writeFile(t, "list.csv", "target,password\nalice@example.com,pw\n")
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	res := f.migrate(ctx, nil, append([]string{"run", "--csv", list}, f.sourceFlags()...)...)
	assert.Equal(t, exitInterrupted, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stderr, "interrupted")

	hist := f.migrate(t.Context(), nil, "history")
	require.Equal(t, exitOK, hist.code, hist.stderr)
	assert.NotRegexp(t, `(?m)^\d`, hist.stdout, "no run recorded")
}

func TestRunTwoWayChangesNothing(t *testing.T) {
	// The refusal comes before the data directory is opened: an empty
	// one stays empty (no database is created in it).
	data := t.TempDir()
	list := writeFile(t, "list.csv", "target,password\nalice@example.com,pw\n")
	var stdout, stderr lockedBuffer
	code := run(t.Context(), []string{"-data", data, "-allow", "127.0.0.1", "run", "--csv", list, "--host", "127.0.0.1", "--two-way"},
		env{stdout: &stdout, stderr: &stderr, getenv: func(string) string { return "" }})
	assert.Equal(t, exitFailed, code)
	assert.Contains(t, stderr.String(), "two-way mail sync is not supported")
	entries, err := os.ReadDir(data)
	require.NoError(t, err)
	assert.Empty(t, entries, "the data directory was not touched")
}

package main

import (
	"context"
	"crypto/tls"
	"encoding/csv"
	"encoding/pem"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// TestEWSSync migrates an Exchange mailbox from the EWS test server
// with `migrate ews sync` (NTLM, impersonation), reruns it (nothing is
// copied twice) and sees both runs in the history; a mailbox the service
// account may not impersonate fails the run.
func TestEWSSync(t *testing.T) {
	srv := ewstest.New(ewstest.Options{NoBasic: true})
	require.NoError(t, srv.AddUser(ewstest.User{Login: "svc", Password: "Svc-Pa55", SMTP: "svc@corp.test", Impersonate: true}))
	require.NoError(t, srv.AddUser(ewstest.User{Login: "alice", Password: "x", SMTP: "alice@corp.test"}))
	require.NoError(t, srv.Generate("alice@corp.test", ewstest.Generate{Messages: 12, CalendarItems: 4, Recurring: 2, Contacts: 3}))
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})))
	pw := writeFile(t, "svc.pw", "Svc-Pa55\n")

	ctx := t.Context()
	f := &fixture{t: t, data: newDataDir(t, "alice@example.com")}

	args := []string{"ews", "sync", "--endpoint", hs.URL + "/EWS/Exchange.asmx", "--user", `CORP\svc`, "--password-file", pw,
		"--impersonate", "--exchange", "Exchange2016", "--ca-file", ca, "alice@example.com=alice@corp.test"}
	res := f.migrate(ctx, nil, args...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run 1 completed: 1 mailboxes, 1 ok, 0 with errors")
	assert.Equal(t, int64(12), f.count("alice@example.com", "INBOX"))
	assert.Equal(t, 4, f.objects("alice@example.com", store.KindCalendar))
	assert.Equal(t, 3, f.objects("alice@example.com", store.KindAddressBook))

	res = f.migrate(ctx, nil, args...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Equal(t, int64(12), f.count("alice@example.com", "INBOX"))
	h := f.migrate(ctx, nil, "history", "2")
	require.Equal(t, exitOK, h.code, h.stderr)
	assert.Contains(t, h.stdout, "protocol EWS")
	assert.Regexp(t, `alice@example.com\s+\S+ \S+\s+ok\s+EWS\s+127.0.0.1\s+alice@corp.test\s+copied 0 messages`, h.stdout)

	require.NoError(t, srv.SetImpersonation("svc", false))
	res = f.migrate(ctx, nil, args...)
	assert.Equal(t, exitFailed, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "1 with errors")
	h = f.migrate(ctx, nil, "history", "3")
	assert.Regexp(t, `alice@example.com\s+\S+ \S+\s+error\s+.*auth: .*ErrorImpersonat`, h.stdout)
}

// objects counts the objects in an account's collections of a kind.
func (f *fixture) objects(addr string, kind store.CollectionKind) int {
	t := f.t
	t.Helper()
	st, err := sqlite.Open(t.Context(), f.data, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	e, err := builtin.New(st, builtin.Options{}).LookupAddress(t.Context(), addr)
	require.NoError(t, err)
	colls, err := st.ListCollections(t.Context(), e.User.ID, kind)
	require.NoError(t, err)
	n := 0
	for _, c := range colls {
		objs, err := st.ListObjects(t.Context(), c.ID)
		require.NoError(t, err)
		n += len(objs)
	}
	return n
}

// TestEWSSubscribe keeps the calendars of a domain's users in sync with
// `migrate ews subscribe --domain`: Exchange's new events arrive for
// both users, alice's own event (written by another store handle, as
// the mail server's CalDAV would) goes to Exchange because the access
// list selects her for two-way sync; Ctrl-C stops it and the same
// command resumes with what happened while it was stopped.
func TestEWSSubscribe(t *testing.T) {
	srv := ewstest.New(ewstest.Options{})
	require.NoError(t, srv.AddUser(ewstest.User{Login: "svc", Password: "Svc-Pa55", SMTP: "svc@example.com", Impersonate: true}))
	require.NoError(t, srv.AddUser(ewstest.User{Login: "alice", Password: "x", SMTP: "alice@example.com"}))
	require.NoError(t, srv.AddUser(ewstest.User{Login: "bob", Password: "x", SMTP: "bob@example.com"}))
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	endpoint := hs.URL + "/EWS/Exchange.asmx"
	allow, err := migration.NewAllowlist([]string{"127.0.0.1"})
	require.NoError(t, err)
	client, err := ews.NewClient(ews.Options{URL: endpoint, Auth: ews.AuthBasic, Username: "svc", Password: "Svc-Pa55",
		Access: ews.AccessImpersonation, Allowlist: allow})
	require.NoError(t, err)
	t.Cleanup(client.Close)
	pw := writeFile(t, "svc.pw", "Svc-Pa55\n")
	f := &fixture{t: t, data: newDataDir(t, "alice@example.com", "bob@example.com")}
	args := []string{"ews", "subscribe", "--endpoint", endpoint, "--user", "svc", "--auth", "basic", "--password-file", pw,
		"--impersonate", "--domain", "example.com", "--two-way", "alice@example.com", "--poll", "100ms", "--interval", "2s"}

	start := time.Date(2027, 5, 3, 9, 0, 0, 0, time.UTC)
	exchangeEvent := func(mailbox, subject string, day int) {
		s, e := start.AddDate(0, 0, day), start.AddDate(0, 0, day).Add(time.Hour)
		_, err := client.Mailbox(mailbox).CreateCalendarItem(t.Context(), ews.FolderRef{}, ews.CalendarItem{Subject: subject, Start: &s, End: &e,
			StartTimeZone: &ews.TimeZoneDefinition{ID: "UTC"}})
		require.NoError(t, err)
	}
	subscribe := func() (*lockedBuffer, func() result) {
		ctx, cancel := context.WithCancel(t.Context())
		out := &lockedBuffer{}
		done := make(chan result, 1)
		go func() { done <- f.migrateOut(ctx, nil, out, args...) }()
		return out, func() result { cancel(); return <-done }
	}
	within := func(what string, cond func() bool) {
		t.Helper()
		require.Eventually(t, cond, 10*time.Second, 50*time.Millisecond, what)
	}

	out, stop := subscribe()
	within("the subscription starts", func() bool {
		return strings.Contains(out.String(), "syncing the calendars of 2 mailboxes (1 two-way, 1 one-way)")
	})
	exchangeEvent("alice@example.com", "alice in Exchange", 0)
	exchangeEvent("bob@example.com", "bob in Exchange", 1)
	within("Exchange's events in Mailyard", func() bool {
		return f.objects("alice@example.com", store.KindCalendar) == 1 && f.objects("bob@example.com", store.KindCalendar) == 1
	})
	f.putEvent("alice@example.com", "alice-local@example.com", "alice in Mailyard", start.AddDate(0, 0, 2))
	within("alice's event in Exchange", func() bool { return f.exchangeHas(client, "alice@example.com", "alice in Mailyard") })
	// Stopped once the pass that pushed it is over (its report comes
	// after its state is kept): stopped between the push and that, the
	// next run finds both sides changed, a conflict (CI, under load).
	pushed := regexp.MustCompile(`alice@example.com two-way \S+: 0 from Exchange, 1 to Exchange`)
	within("the push reported", func() bool { return pushed.MatchString(out.String()) })
	res := stop()
	require.Equal(t, exitInterrupted, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run the same command again to resume")
	assert.Regexp(t, `alice@example.com two-way \S+: 1 from Exchange`, res.stdout)
	assert.Regexp(t, `alice@example.com two-way \S+: 0 from Exchange, 1 to Exchange`, res.stdout)

	// While stopped: a new Exchange event for bob; the next run
	// imports it and nothing else again.
	exchangeEvent("bob@example.com", "bob while stopped", 3)
	out, stop = subscribe()
	within("bob's event after the restart", func() bool { return f.objects("bob@example.com", store.KindCalendar) == 2 })
	res = stop()
	require.Equal(t, exitInterrupted, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Regexp(t, `bob@example.com one-way start: 1 from Exchange, 0 to Exchange`, res.stdout)
	assert.NotContains(t, res.stdout, "alice@example.com two-way start", "alice had nothing new")
	assert.Equal(t, 2, f.objects("alice@example.com", store.KindCalendar))

	c := f.migrate(t.Context(), nil, "ews", "conflicts", "alice@example.com")
	require.Equal(t, exitOK, c.code, c.stderr)
	assert.Contains(t, c.stdout, "no conflicts for alice@example.com")

	bad := f.migrate(t.Context(), nil, append(slices.Clone(args), "--two-way-mode", "sometimes")...)
	assert.Equal(t, exitUsage, bad.code, "stdout:\n%s\nstderr:\n%s", bad.stdout, bad.stderr)
	assert.Contains(t, bad.stderr, `access list mode "sometimes"`)
	both := f.migrate(t.Context(), nil, append(slices.Clone(args), "alice@example.com")...)
	assert.Equal(t, exitUsage, both.code)
	assert.Contains(t, both.stderr, "TARGETs or --domain DOMAIN, not both")
}

// putEvent writes an event into an account's first calendar through a
// store handle of its own, as another process would.
func (f *fixture) putEvent(addr, uid, summary string, start time.Time) {
	t := f.t
	t.Helper()
	st, err := sqlite.Open(t.Context(), f.data, sqlite.Options{})
	require.NoError(t, err)
	defer st.Close()
	e, err := builtin.New(st, builtin.Options{}).LookupAddress(t.Context(), addr)
	require.NoError(t, err)
	colls, err := st.ListCollections(t.Context(), e.User.ID, store.KindCalendar)
	require.NoError(t, err)
	require.NotEmpty(t, colls)
	data := fmt.Sprintf("BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//test//EN\r\nBEGIN:VEVENT\r\nUID:%s\r\nDTSTAMP:20260101T000000Z\r\n"+
		"DTSTART:%s\r\nDTEND:%s\r\nSUMMARY:%s\r\nEND:VEVENT\r\nEND:VCALENDAR\r\n",
		uid, start.Format("20060102T150405Z"), start.Add(time.Hour).Format("20060102T150405Z"), summary)
	_, err = st.PutObject(t.Context(), colls[0].ID, store.Object{Name: uid + ".ics", UID: uid, ContentType: "text/calendar",
		Data: []byte(data), Component: "VEVENT", Start: start, End: start.Add(time.Hour)}, store.PutOptions{})
	require.NoError(t, err)
}

// exchangeHas reports whether a mailbox's Exchange calendar has an item
// with this subject.
func (f *fixture) exchangeHas(client *ews.Client, mailbox, subject string) bool {
	t := f.t
	mb := client.Mailbox(mailbox)
	changes, _, _, err := mb.SyncFolderItems(t.Context(), ews.FolderRef{Distinguished: "calendar"}, "", 100)
	require.NoError(t, err)
	var ids []ews.ItemID
	for _, c := range changes {
		ids = append(ids, c.ItemID)
	}
	found := false
	require.NoError(t, mb.GetItem(t.Context(), ids, ews.ShapeCalendar, func(it ews.Item) error {
		found = found || (it.CalendarItem != nil && it.CalendarItem.Subject == subject)
		return nil
	}))
	return found
}

// TestEWSConnectionTest runs `migrate ews test` against the EWS test
// server: every step passes with the server's version printed, and a
// wrong password, a refused impersonation, an untrusted certificate, a
// TLS range the server does not speak and an unresolvable host each
// name their step and exit 1.
func TestEWSConnectionTest(t *testing.T) {
	srv := ewstest.New(ewstest.Options{NoBasic: true})
	require.NoError(t, srv.AddUser(ewstest.User{Login: "svc", Password: "Svc-Pa55", SMTP: "svc@corp.test", Impersonate: true}))
	require.NoError(t, srv.AddUser(ewstest.User{Login: "alice", Password: "x", SMTP: "alice@corp.test"}))
	hs := httptest.NewUnstartedServer(srv)
	hs.TLS = &tls.Config{MaxVersion: tls.VersionTLS12}
	hs.StartTLS()
	t.Cleanup(hs.Close)
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})))
	pw := writeFile(t, "svc.pw", "Svc-Pa55\n")
	bad := writeFile(t, "bad.pw", "wrong\n")
	ctx := t.Context()
	f := &fixture{t: t, data: t.TempDir()}
	endpoint := hs.URL + "/EWS/Exchange.asmx"
	// args are the flags of the test; later flags override earlier ones.
	noCA := func(more ...string) []string {
		a := []string{"ews", "test", "--endpoint", endpoint, "--user", `CORP\svc`, "--password-file", pw,
			"--impersonate", "--exchange", "Exchange2016"}
		return append(a, more...)
	}
	args := func(more ...string) []string { return noCA(append([]string{"--ca-file", ca}, more...)...) }

	res := f.migrate(ctx, nil, args("alice@corp.test")...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Regexp(t, `(?m)^dns\s+ok not needed: 127.0.0.1 is an address$`, res.stdout)
	assert.Regexp(t, `(?m)^tls\s+ok TLS 1.2$`, res.stdout)
	assert.Regexp(t, `(?m)^auth\s+ok ntlm as CORP\\svc$`, res.stdout)
	assert.Regexp(t, `(?m)^impersonation\s+ok impersonation access to alice@corp.test$`, res.stdout)
	assert.Contains(t, res.stdout, "OK: Exchange 15.1.2507.6 (Exchange2016)")

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"auth", args("--password-file", bad, "alice@corp.test"), `(?m)^auth\s+FAILED: .*401`},
		{"impersonation", args("--user", "alice", "--password-file", writeFile(t, "alice.pw", "x\n"), "svc@corp.test"),
			`(?m)^impersonation\s+FAILED: .*ErrorImpersonat`},
		{"server version", args("--exchange", "Exchange2019"), `(?m)^tls\s+ok TLS 1.2\nrequest\s+FAILED: .*ErrorInvalidServerVersion`},
		{"untrusted", noCA(), `(?m)^tls\s+FAILED: .*certificate is not trusted`},
		{"tls version", args("--min-tls", "1.3"), `(?m)^tls\s+FAILED: .*no TLS version in common`},
		{"dns", args("--endpoint", "https://ews.mailyard.invalid/EWS/Exchange.asmx"), `(?m)^dns\s+FAILED: .*resolving ews.mailyard.invalid`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := f.migrate(ctx, nil, tc.args...)
			assert.Equal(t, exitFailed, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
			assert.Regexp(t, tc.want, res.stdout)
		})
	}
}

// TestEWSSyncSourceDeletions: with --source-deletions a later `ews sync`
// removes the copy of a message deleted in Exchange (its copy in Trash,
// from Deleted Items, arrives instead); without it a deletion leaves the
// copy.
func TestEWSSyncSourceDeletions(t *testing.T) {
	srv := ewstest.New(ewstest.Options{NoBasic: true})
	require.NoError(t, srv.AddUser(ewstest.User{Login: "svc", Password: "Svc-Pa55", SMTP: "svc@corp.test", Impersonate: true}))
	require.NoError(t, srv.AddUser(ewstest.User{Login: "alice", Password: "x", SMTP: "alice@corp.test"}))
	ids := map[string]ews.ItemID{}
	for i, name := range []string{"gone", "stays", "later"} {
		raw := fmt.Sprintf("From: anna@corp.test\r\nTo: alice@corp.test\r\nSubject: %s\r\nMessage-ID: <%s@corp.test>\r\n\r\nbody %d\r\n", name, name, i)
		id, err := srv.AddMessage("alice@corp.test", "inbox", []byte(raw), false, false, time.Date(2026, 1, 5, 8, i, 0, 0, time.UTC))
		require.NoError(t, err)
		ids[name] = ews.ItemID{ID: id}
	}
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})))
	pw := writeFile(t, "svc.pw", "Svc-Pa55\n")
	ctx := t.Context()
	f := &fixture{t: t, data: newDataDir(t, "alice@example.com")}
	sync := func(more ...string) {
		t.Helper()
		args := append([]string{"ews", "sync", "--endpoint", hs.URL + "/EWS/Exchange.asmx", "--user", `CORP\svc`, "--password-file", pw,
			"--impersonate", "--ca-file", ca}, more...)
		res := f.migrate(ctx, nil, append(args, "alice@example.com=alice@corp.test")...)
		require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	}
	sync("--source-deletions")
	require.Equal(t, int64(3), f.count("alice@example.com", "INBOX"))

	allow, err := migration.NewAllowlist([]string{"127.0.0.1"})
	require.NoError(t, err)
	client, err := ews.NewClient(ews.Options{URL: hs.URL + "/EWS/Exchange.asmx", Auth: ews.AuthNTLM, Username: `CORP\svc`, Password: "Svc-Pa55",
		Access: ews.AccessImpersonation, CAFile: ca, Allowlist: allow})
	require.NoError(t, err)
	defer client.Close()
	mb := client.Mailbox("alice@corp.test")
	require.NoError(t, mb.DeleteItem(ctx, ids["gone"]))
	sync("--source-deletions")
	assert.Equal(t, int64(2), f.count("alice@example.com", "INBOX"), "the deleted message's copy is removed")
	assert.Equal(t, int64(1), f.count("alice@example.com", "Trash"), "its copy from Deleted Items arrives")

	require.NoError(t, mb.DeleteItem(ctx, ids["later"]))
	sync()
	assert.Equal(t, int64(2), f.count("alice@example.com", "INBOX"), "without --source-deletions the copy stays")
}

// TestEWSSyncDomain: `ews sync --domain` makes one pass for every user
// of the domain, each from the Exchange mailbox of the same address,
// in one run of the history; TARGETs and --domain together are refused.
func TestEWSSyncDomain(t *testing.T) {
	srv := ewstest.New(ewstest.Options{})
	require.NoError(t, srv.AddUser(ewstest.User{Login: "svc", Password: "Svc-Pa55", SMTP: "svc@example.com", Impersonate: true}))
	for i, u := range []string{"alice", "bob"} {
		require.NoError(t, srv.AddUser(ewstest.User{Login: u, Password: "x", SMTP: u + "@example.com"}))
		require.NoError(t, srv.Generate(u+"@example.com", ewstest.Generate{Messages: 3 + i, CalendarItems: 2, Contacts: 1 + i}))
	}
	hs := httptest.NewServer(srv)
	t.Cleanup(hs.Close)
	pw := writeFile(t, "svc.pw", "Svc-Pa55\n")
	ctx := t.Context()
	f := &fixture{t: t, data: newDataDir(t, "alice@example.com", "bob@example.com")}
	base := []string{"ews", "sync", "--endpoint", hs.URL + "/EWS/Exchange.asmx", "--user", "svc", "--auth", "basic",
		"--password-file", pw, "--impersonate"}

	res := f.migrate(ctx, nil, append(slices.Clone(base), "--domain", "example.com", "alice@example.com")...)
	assert.Equal(t, exitUsage, res.code, "TARGETs with --domain: stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)

	res = f.migrate(ctx, nil, append(slices.Clone(base), "--domain", "example.com")...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run 1 completed: 2 mailboxes, 2 ok, 0 with errors")
	assert.Equal(t, int64(3), f.count("alice@example.com", "INBOX"))
	assert.Equal(t, int64(4), f.count("bob@example.com", "INBOX"))
	assert.Equal(t, 1, f.objects("alice@example.com", store.KindAddressBook))
	assert.Equal(t, 2, f.objects("bob@example.com", store.KindAddressBook))
	h := f.migrate(ctx, nil, "history", "1")
	require.Equal(t, exitOK, h.code, h.stderr)
	assert.Contains(t, h.stdout, "protocol EWS")
	assert.Regexp(t, `bob@example.com\s+\S+ \S+\s+ok\s+EWS\s+127.0.0.1\s+bob@example.com\s+copied 4 messages`, h.stdout)
}

// TestRunCSVMixedIMAPAndEWS: `migrate run --csv` with an imap row (from
// Dovecot) and an ews row (from the EWS test server) migrates both in
// one run, whose history names each mailbox's protocol; bad ews rows and
// ews rows without the EWS service account are refused before anything
// is recorded.
func TestRunCSVMixedIMAPAndEWS(t *testing.T) {
	srv := ewstest.New(ewstest.Options{NoBasic: true})
	require.NoError(t, srv.AddUser(ewstest.User{Login: "svc", Password: "Svc-Pa55", SMTP: "svc@corp.test", Impersonate: true}))
	require.NoError(t, srv.AddUser(ewstest.User{Login: "bob", Password: "x", SMTP: "bob@corp.test"}))
	require.NoError(t, srv.Generate("bob@corp.test", ewstest.Generate{Messages: 5, CalendarItems: 2, Contacts: 1}))
	hs := httptest.NewTLSServer(srv)
	t.Cleanup(hs.Close)
	ca := writeFile(t, "ca.pem", string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: hs.Certificate().Raw})))
	svcPW := writeFile(t, "svc.pw", "Svc-Pa55\n")
	endpoint := hs.URL + "/EWS/Exchange.asmx"

	f := newFixture(t, map[string]string{"alice@example.com": "alice-secret", "bob@example.com": "unused"})
	f.fill("alice@example.com", "INBOX", 3, 200)
	ctx := t.Context()
	ewsFlags := []string{"--ews-user", `CORP\svc`, "--ews-password-file", svcPW, "--ews-impersonate", "--ews-ca-file", ca}

	// Refusals first: nothing may be recorded.
	noEndpoint := writeFile(t, "noendpoint.csv", "target,protocol,endpoint,password\nalice@example.com,imap,,alice-secret\nbob@example.com,ews,,\n")
	res := f.migrate(ctx, nil, slices.Concat([]string{"run", "--csv", noEndpoint}, f.sourceFlags(), ewsFlags)...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, `noendpoint.csv: csv line 3, column "endpoint": an ews row needs its endpoint`)
	imapEndpoint := writeFile(t, "imapendpoint.csv", "target,protocol,endpoint,password\nalice@example.com,,"+endpoint+",alice-secret\n")
	res = f.migrate(ctx, nil, slices.Concat([]string{"run", "--csv", imapEndpoint}, f.sourceFlags(), ewsFlags)...)
	assert.Equal(t, exitFailed, res.code)
	assert.Contains(t, res.stderr, `csv line 2, column "endpoint": an imap row has no endpoint`)

	list := writeFile(t, "list.csv", "target,protocol,endpoint,login,password\n"+
		"alice@example.com,imap,,,alice-secret\n"+
		"bob@example.com,ews,"+endpoint+",bob@corp.test,\n")
	res = f.migrate(ctx, nil, slices.Concat([]string{"run", "--csv", list}, f.sourceFlags())...)
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "--ews-user")
	res = f.migrate(ctx, nil, slices.Concat([]string{"run", "--csv", list, "--continuous", "1m"}, f.sourceFlags(), ewsFlags)...)
	assert.Equal(t, exitUsage, res.code)
	assert.Contains(t, res.stderr, "--continuous collects over IMAP only")
	hist := f.migrate(ctx, nil, "history")
	require.Equal(t, exitOK, hist.code, hist.stderr)
	assert.NotRegexp(t, `(?m)^\d`, hist.stdout, "refused runs are not recorded")
	assert.Equal(t, int64(0), f.count("alice@example.com", "INBOX"))

	res = f.migrate(ctx, nil, slices.Concat([]string{"run", "--csv", list}, f.sourceFlags(), ewsFlags)...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Contains(t, res.stdout, "run 1 completed: 2 mailboxes, 2 ok, 0 with errors")
	assert.Equal(t, int64(3), f.count("alice@example.com", "INBOX"), "imap row from Dovecot")
	assert.Equal(t, int64(5), f.count("bob@example.com", "INBOX"), "ews row from Exchange")
	assert.Equal(t, 2, f.objects("bob@example.com", store.KindCalendar))
	assert.Equal(t, 1, f.objects("bob@example.com", store.KindAddressBook))

	h := f.migrate(ctx, nil, "history", "1")
	require.Equal(t, exitOK, h.code, h.stderr)
	assert.Contains(t, h.stdout, "protocol IMAP+EWS")
	assert.Regexp(t, `alice@example.com\s+\S+ \S+\s+ok\s+IMAP\s+\S+\s+alice@example.com\s+copied 3 messages`, h.stdout)
	assert.Regexp(t, `bob@example.com\s+\S+ \S+\s+ok\s+EWS\s+127.0.0.1\s+bob@corp.test\s+copied 5 messages`, h.stdout)

	// A rerun copies nothing twice on either side.
	res = f.migrate(ctx, nil, slices.Concat([]string{"run", "--csv", list}, f.sourceFlags(), ewsFlags)...)
	require.Equal(t, exitOK, res.code, "stdout:\n%s\nstderr:\n%s", res.stdout, res.stderr)
	assert.Equal(t, int64(3), f.count("alice@example.com", "INBOX"))
	assert.Equal(t, int64(5), f.count("bob@example.com", "INBOX"))

	// The report has both mailboxes with their protocol, source, passes
	// and last message (the EWS one from its pass status: no collector).
	out := filepath.Join(t.TempDir(), "r.csv")
	rep := f.migrate(ctx, nil, "report", "--domain", "example.com", "--csv", out)
	require.Equal(t, exitOK, rep.code, rep.stderr)
	fh, err := os.Open(out)
	require.NoError(t, err)
	defer fh.Close()
	rows, err := csv.NewReader(fh).ReadAll()
	require.NoError(t, err)
	byMailbox := map[string]map[string]string{}
	for _, r := range rows[1:] {
		m := map[string]string{}
		for i, name := range rows[0] {
			m[name] = r[i]
		}
		byMailbox[r[0]] = m
	}
	bob := byMailbox["bob@example.com"]
	require.NotNil(t, bob, "EWS mailbox in the domain report: %v", rows)
	assert.Equal(t, map[string]string{"state": "ok", "protocol": "EWS", "source": endpoint, "passes": "2"},
		map[string]string{"state": bob["state"], "protocol": bob["protocol"], "source": bob["source"], "passes": bob["passes"]})
	assert.True(t, strings.HasPrefix(bob["message"], "copied 0 messages"), bob["message"])
	assert.NotEmpty(t, bob["last_sync"])
	alice := byMailbox["alice@example.com"]
	require.NotNil(t, alice, "%v", rows)
	assert.Equal(t, []string{"IMAP", f.dov.Host + ":" + fmt.Sprint(f.dov.Port), "2"}, []string{alice["protocol"], alice["source"], alice["passes"]})
	one := f.migrate(ctx, nil, "status", "bob@example.com")
	require.Equal(t, exitOK, one.code, one.stderr)
	assert.Contains(t, one.stdout, "source:        EWS "+endpoint)
	assert.Contains(t, one.stdout, "passes:        2 successful")
	assert.Regexp(t, `last message:  copied 0 messages`, one.stdout)
	for _, r := range []result{res, h, rep, one} {
		assert.NotContains(t, r.stdout+r.stderr, "alice-secret")
		assert.NotContains(t, r.stdout+r.stderr, "Svc-Pa55")
	}
}

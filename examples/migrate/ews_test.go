package main

import (
	"encoding/pem"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/ewstest"
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
	assert.Regexp(t, `alice@example.com\s+\S+ \S+\s+ok\s+127.0.0.1\s+alice@corp.test\s+copied 0 messages`, h.stdout)

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

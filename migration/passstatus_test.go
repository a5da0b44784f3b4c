package migration

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestRunMixedProtocols: a by-list run with an IMAP job and an EWS job
// sends the IMAP job to its collector and only the EWS job to the run's
// Pass; the history names each one's protocol, the run's settings both;
// the EWS mailbox's pass status counts successes, keeps the last success
// through a failed pass, and the report shows it.
func TestRunMixedProtocols(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "alice-pw", "bob@example.com": "bob-pw"}, nil)
	e.fill("alice@example.com", "INBOX", 2, 100)
	const endpoint = "https://127.0.0.1/EWS/Exchange.asmx"
	var mu sync.Mutex
	var passed []Job
	fail := false
	pass := func(ctx context.Context, j Job, _ ProgressFunc) (string, error) {
		mu.Lock()
		defer mu.Unlock()
		passed = append(passed, j)
		if fail {
			return "", &Error{Class: ErrClassAuth, Target: j.Target, Err: errors.New("impersonation refused")}
		}
		return "copied 9 messages", nil
	}
	spec := RunSpec{Kind: RunList, Pass: pass,
		Defaults: Job{Source: e.source(), Credentials: Credentials{Password: "alice-pw"}},
		Jobs: []Job{
			{Target: "alice@example.com", Protocol: ProtocolIMAP},
			{Target: "bob@example.com", Protocol: ProtocolEWS, Endpoint: endpoint,
				Source: Source{Host: "127.0.0.1", Port: 443, TLS: TLSImplicit}, Credentials: Credentials{Login: "bob@corp.test"}},
		}}
	run, err := e.m.Run(e.ctx, spec, nil)
	require.NoError(t, err)
	assert.Equal(t, 2, run.Succeeded, "%+v", run)
	assert.Equal(t, "IMAP+EWS", run.Settings.Protocol)
	require.Len(t, passed, 1, "only the EWS job goes to Pass")
	assert.Equal(t, "bob@example.com", passed[0].Target)
	assert.Equal(t, endpoint, passed[0].Endpoint)
	assert.Empty(t, passed[0].Credentials.Password, "the IMAP defaults are not given to an EWS job")
	assert.Equal(t, int64(2), e.targetCount("alice@example.com", "INBOX"), "the IMAP job went to its collector")
	mbs, err := e.m.RunMailboxes(e.ctx, run.ID, "", 10)
	require.NoError(t, err)
	require.Len(t, mbs, 2)
	assert.Equal(t, ProtocolIMAP, mbs[0].Protocol)
	assert.Equal(t, ProtocolEWS, mbs[1].Protocol)
	assert.Equal(t, endpoint, mbs[1].Endpoint)

	ps, err := e.m.PassStatus(e.ctx, "BOB@example.com")
	require.NoError(t, err)
	assert.Equal(t, 1, ps.Passes)
	assert.Equal(t, "copied 9 messages", ps.LastMessage)
	first := ps.LastSuccess
	require.False(t, first.IsZero())
	_, err = e.m.PassStatus(e.ctx, "alice@example.com")
	assert.Error(t, err, "a collector keeps its own status")

	run, err = e.m.Run(e.ctx, spec, nil)
	require.NoError(t, err)
	fail = true
	run, err = e.m.Run(e.ctx, spec, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, run.WithErrors)
	ps, err = e.m.PassStatus(e.ctx, "bob@example.com")
	require.NoError(t, err)
	assert.Equal(t, 2, ps.Passes, "successful passes only")
	assert.Equal(t, run.ID, ps.LastRun)
	assert.True(t, ps.LastSuccess.After(first) || ps.LastSuccess.Equal(first))
	assert.Equal(t, ErrClassAuth, ps.ErrorClass)
	assert.Contains(t, ps.LastError, "impersonation refused")

	rep, err := e.m.Report(e.ctx, ReportSpec{Domain: "example.com"})
	require.NoError(t, err)
	require.Len(t, rep.Mailboxes, 2, "the EWS mailbox is in the domain report")
	bob := rep.Mailboxes[1]
	assert.Equal(t, "bob@example.com", bob.Target)
	assert.Equal(t, StateError, bob.State)
	assert.Equal(t, 2, bob.Passes)
	assert.Equal(t, ps.LastSuccess, bob.LastSync)
	assert.Equal(t, ProtocolEWS, bob.Protocol)
	assert.Equal(t, endpoint, bob.Source)
	alice := rep.Mailboxes[0]
	assert.Equal(t, ProtocolIMAP, alice.Protocol)
	assert.Equal(t, 3, alice.Passes)

	// An EWS job without a Pass is refused before anything is recorded.
	spec.Pass = nil
	_, err = e.m.Run(e.ctx, spec, nil)
	assert.ErrorContains(t, err, "protocol EWS needs a run with its own Pass")
}

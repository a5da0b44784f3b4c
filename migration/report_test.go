package migration

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/store"
)

func TestReportAfterRun(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "a", "bob@example.com": "b", "carol@example.com": "c"},
		func(o *Options) { o.MaxMessageSize = 4000 })
	e.fill("alice@example.com", "INBOX", 4, 100)
	e.fill("alice@example.com", "INBOX", 1, 8000) // over MaxMessageSize
	e.fill("alice@example.com", "Drafts", 2, 100) // excluded by default
	e.fill("alice@example.com", "Lists/Go", 3, 100)
	e.fill("bob@example.com", "INBOX", 2, 100)
	r, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Defaults: Job{Source: e.source()},
		Jobs: e.csvJobs("alice@example.com,a", "bob@example.com,wrong")}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, r.Succeeded)

	// Mail delivered to the target directly counts on the target side.
	ent, err := e.dir.LookupAddress(e.ctx, "alice@example.com")
	require.NoError(t, err)
	_, err = e.st.Append(e.ctx, ent.User.ID, "INBOX", strings.NewReader("Subject: new\r\n\r\nhi\r\n"), store.AppendOptions{})
	require.NoError(t, err)

	rep, err := e.m.Report(e.ctx, ReportSpec{Domain: "EXAMPLE.com"})
	require.NoError(t, err)
	assert.Equal(t, "example.com", rep.Domain)
	require.Len(t, rep.Mailboxes, 2, "the domain's collectors; carol has none")
	alice, bob := rep.Mailboxes[0], rep.Mailboxes[1]
	assert.Equal(t, "alice@example.com", alice.Target)
	assert.Equal(t, StateOK, alice.State)
	assert.False(t, alice.LastSync.IsZero())
	assert.Equal(t, 1, alice.Passes)

	folders := map[string]FolderReport{}
	for _, f := range alice.Folders {
		folders[f.Source] = f
	}
	inbox := folders["INBOX"]
	assert.Equal(t, int64(5), inbox.SourceMessages)
	assert.Equal(t, int64(1), inbox.SkippedTooLarge)
	assert.Equal(t, int64(5), inbox.TargetMessages, "4 copied + 1 delivered here")
	assert.Greater(t, inbox.SourceBytes, int64(8000))
	assert.Greater(t, inbox.TargetBytes, int64(0))
	drafts := folders["Drafts"]
	assert.True(t, drafts.Excluded)
	assert.Equal(t, int64(2), drafts.SourceMessages)
	assert.Equal(t, int64(2), drafts.SkippedExcluded)
	assert.Zero(t, drafts.TargetMessages)
	lists := folders["Lists/Go"]
	assert.Equal(t, int64(3), lists.SourceMessages)
	assert.Equal(t, int64(3), lists.TargetMessages)
	assert.Equal(t, "Lists/Go", lists.Target)

	assert.Equal(t, StateError, bob.State)
	assert.Equal(t, ErrClassAuth, bob.ErrorClass)
	assert.NotEmpty(t, bob.LastError)

	var sum Counts
	for _, f := range alice.Folders {
		sum.add(f.Counts)
	}
	assert.Equal(t, sum, alice.Counts, "mailbox counts add up its folders")
	sum.add(bob.Counts)
	assert.Equal(t, sum, rep.Totals, "totals add up the mailboxes")

	// By list: a mailbox without a collector is reported as such.
	rep2, err := e.m.Report(e.ctx, ReportSpec{Mailboxes: []string{"carol@example.com", " Alice@Example.com", "alice@example.com"}})
	require.NoError(t, err)
	require.Len(t, rep2.Mailboxes, 2, "duplicates are reported once")
	assert.Equal(t, "carol@example.com", rep2.Mailboxes[0].Target)
	assert.Equal(t, State(""), rep2.Mailboxes[0].State)
	assert.Equal(t, "no collector", rep2.Mailboxes[0].Message)
	assert.Equal(t, alice.Counts, rep2.Mailboxes[1].Counts)

	// The rendering of this data is migration/report's, tested there
	// with a report of the same shape.
	assert.Empty(t, bob.Folders, "a mailbox whose pass failed at login has no folders")

	for _, bad := range []ReportSpec{{}, {Domain: "example.com", Mailboxes: []string{"a@example.com"}}, {Mailboxes: []string{"not an address"}}, {Domain: "bad..domain"}} {
		_, err := e.m.Report(e.ctx, bad)
		assert.Error(t, err, "%+v", bad)
	}
}

package migration

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"
	"github.com/emersion/go-imap/v2/imapclient"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// runTestEnv is a Dovecot source, a SQLite store with a built-in
// directory and a Migrator over them.
type runTestEnv struct {
	t   *testing.T
	ctx context.Context
	dov *dovecottest.Server
	st  *sqlite.Store
	dir *builtin.Directory
	m   *Migrator
	// dbDir is the store's directory.
	dbDir string
	// users: address -> source password (the same address logs in on
	// the source).
	users map[string]string
}

const runTestMaster = "migrator"

// newRunTestEnv starts Dovecot with users (address -> password) and a
// master user, and creates the same users here in example.com.
func newRunTestEnv(t *testing.T, users map[string]string, tweak func(*Options)) *runTestEnv {
	t.Helper()
	dov := dovecottest.Start(t, dovecottest.Options{Users: users, MasterUsers: map[string]string{runTestMaster: "master-pw"}})
	ctx := t.Context()
	dbDir := t.TempDir()
	st, err := sqlite.Open(ctx, dbDir, sqlite.Options{})
	require.NoError(t, err)
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st, Hasher: builtin.NewPasswordHasher(1)})
	_, err = dir.CreateDomain(ctx, directory.Domain{Name: "example.com"})
	require.NoError(t, err)
	for addr := range users {
		_, err := dir.CreateUser(ctx, directory.User{Address: addr}, "local-password")
		require.NoError(t, err)
	}
	opts := Options{Store: st, Directory: dir, Users: dir, Allowlist: []string{"127.0.0.1"}, SecretKey: testSecretKey,
		RetryMin: 10 * time.Millisecond, RetryMax: 50 * time.Millisecond}
	if tweak != nil {
		tweak(&opts)
	}
	m, err := New(opts)
	require.NoError(t, err)
	return &runTestEnv{t: t, ctx: ctx, dov: dov, st: st, dir: dir, m: m, users: users, dbDir: dbDir}
}

// source returns the default source of the test Dovecot.
func (e *runTestEnv) source() Source {
	return Source{Host: e.dov.Host, Port: e.dov.Port, TLS: TLSPlain}
}

// fill appends n messages of about size bytes to folder of user's
// source mailbox, creating the folder.
func (e *runTestEnv) fill(user, folder string, n, size int) {
	t := e.t
	t.Helper()
	c, err := imapclient.DialInsecure(e.dov.Addr, nil)
	require.NoError(t, err)
	defer c.Close()
	require.NoError(t, c.Login(user, e.users[user]).Wait())
	if folder != "INBOX" {
		if err := c.Create(folder, nil).Wait(); err != nil && !strings.Contains(err.Error(), "exists") {
			require.NoError(t, err)
		}
	}
	for i := range n {
		body := fmt.Sprintf("From: sender@old.example\r\nTo: %s\r\nSubject: message %d in %s\r\n"+
			"Message-ID: <%d.%s.%s@old.example>\r\nDate: Mon, 2 Mar 2026 10:00:00 +0000\r\n\r\n%s\r\n",
			user, i, folder, i, strings.ReplaceAll(folder, "/", "."), strings.ReplaceAll(user, "@", "."), strings.Repeat("x", size))
		require.NoError(t, mailcorpus.Append(c, mailcorpus.Message{Folder: folder, Flags: []imap.Flag{imap.FlagSeen}, Body: []byte(body)}))
	}
	require.NoError(t, c.Logout().Wait())
}

// targetCount is the number of messages in a target mailbox (0 if it does
// not exist).
func (e *runTestEnv) targetCount(addr, mailbox string) int64 {
	e.t.Helper()
	ent, err := e.dir.LookupAddress(e.ctx, addr)
	require.NoError(e.t, err)
	st, err := e.st.Status(e.ctx, ent.User.ID, mailbox)
	if errors.Is(err, store.ErrNotFound) {
		return 0
	}
	require.NoError(e.t, err)
	return st.Messages
}

// csvJobs parses a run list with the environment's source as default.
func (e *runTestEnv) csvJobs(rows ...string) []Job {
	e.t.Helper()
	jobs, err := ParseCSV(strings.NewReader("target,password\n"+strings.Join(rows, "\n")+"\n"), Job{Source: e.source()})
	require.NoError(e.t, err)
	return jobs
}

// checkTotals asserts the run's counters agree with its mailbox records.
func checkTotals(t *testing.T, m *Migrator, r Run) []RunMailbox {
	t.Helper()
	stored, err := m.RunByID(t.Context(), r.ID)
	require.NoError(t, err)
	assert.Equal(t, r, stored, "returned run equals the stored one")
	mbs, err := m.RunMailboxes(t.Context(), r.ID, "", MaxHistoryLimit)
	require.NoError(t, err)
	require.Len(t, mbs, r.Mailboxes)
	count := map[RunMailboxStatus]int{}
	for _, rm := range mbs {
		count[rm.Status]++
		assert.Equal(t, r.ID, rm.RunID)
		assert.False(t, rm.Created.IsZero())
	}
	assert.Equal(t, count[RunMailboxOK], r.Succeeded, "succeeded")
	assert.Equal(t, count[RunMailboxError], r.WithErrors, "with errors")
	assert.Equal(t, count[RunMailboxDisabled], r.Disabled, "disabled")
	assert.Equal(t, count[RunMailboxInterrupted], r.Interrupted, "interrupted")
	assert.Equal(t, count[RunMailboxQueued]+count[RunMailboxRunning], r.InProgress(), "in progress")
	return mbs
}

func TestRunList(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "alice-pw", "bob@example.com": "bob-pw", "carol@example.com": "carol-pw"}, nil)
	e.fill("alice@example.com", "INBOX", 5, 100)
	e.fill("alice@example.com", "Projects/2026", 3, 100)
	e.fill("alice@example.com", "Drafts", 2, 100)
	e.fill("bob@example.com", "INBOX", 4, 100)

	var started atomic.Int64
	var mu sync.Mutex
	events := map[string][]RunMailboxStatus{}
	spec := RunSpec{
		Kind:     RunList,
		Jobs:     e.csvJobs("alice@example.com,alice-pw", "bob@example.com,wrong-pw", "carol@example.com,carol-pw"),
		Defaults: Job{Source: e.source()},
		OnStart: func(r Run) {
			started.Store(r.ID)
		},
		OnMailbox: func(rm RunMailbox) {
			mu.Lock()
			events[rm.Target] = append(events[rm.Target], rm.Status)
			mu.Unlock()
		},
	}
	r, err := e.m.Run(e.ctx, spec, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(1), r.ID)
	assert.Equal(t, r.ID, started.Load())
	assert.Equal(t, RunCompleted, r.State)
	assert.False(t, r.Ended.IsZero())
	assert.Equal(t, 3, r.Mailboxes)
	assert.Equal(t, 2, r.Succeeded)
	assert.Equal(t, 1, r.WithErrors)
	assert.Equal(t, RunKind(RunList), r.Settings.Kind)
	assert.Equal(t, e.dov.Host, r.Settings.Source.Host)

	mbs := checkTotals(t, e.m, r)
	assert.Equal(t, []string{"alice@example.com", "bob@example.com", "carol@example.com"},
		[]string{mbs[0].Target, mbs[1].Target, mbs[2].Target}, "by address")
	assert.Equal(t, RunMailboxOK, mbs[0].Status)
	assert.Equal(t, RunMailboxError, mbs[1].Status)
	assert.Equal(t, ErrClassAuth, mbs[1].Class)
	assert.NotEmpty(t, mbs[1].Error)
	assert.Equal(t, RunMailboxOK, mbs[2].Status, "an empty mailbox is a success")
	for _, rm := range mbs {
		assert.Equal(t, e.dov.Host, rm.Host)
		assert.Equal(t, rm.Target, rm.Login)
		assert.False(t, rm.Started.IsZero())
		assert.False(t, rm.Ended.Before(rm.Started))
		assert.Equal(t, []RunMailboxStatus{RunMailboxRunning, rm.Status}, events[rm.Target], "OnMailbox at start and end")
	}

	assert.Equal(t, int64(5), e.targetCount("alice@example.com", "INBOX"))
	assert.Equal(t, int64(3), e.targetCount("alice@example.com", "Projects/2026"))
	assert.Equal(t, int64(0), e.targetCount("bob@example.com", "INBOX"))

	st, err := e.m.Status(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.Equal(t, r.ID, st.RunID, "the collector names the run")

	// No password is kept in the history.
	for _, ns := range []string{nsRun, nsRunMailbox} {
		recs, err := e.st.ListRecords(e.ctx, ns, "", 1000)
		require.NoError(t, err)
		require.NotEmpty(t, recs)
		for _, rec := range recs {
			for _, pw := range []string{"alice-pw", "wrong-pw", "carol-pw"} {
				assert.False(t, bytes.Contains(rec.Value, []byte(pw)), "%s record %q holds a password", ns, rec.Key)
			}
		}
	}
}

func TestRunRefusesBadSpecs(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "pw"}, nil)
	good := e.csvJobs("alice@example.com,pw")
	cases := []struct {
		name string
		spec RunSpec
		want string
	}{
		{"two-way", RunSpec{Kind: RunList, Jobs: good, TwoWay: true}, "two-way"},
		{"no kind", RunSpec{Jobs: good}, "unknown kind"},
		{"empty list", RunSpec{Kind: RunList}, "at least one job"},
		{"full without domain", RunSpec{Kind: RunFull}, "needs a domain"},
		{"full with jobs", RunSpec{Kind: RunFull, Domain: "example.com", Jobs: good}, "not from jobs"},
		{"outside domain", RunSpec{Kind: RunList, Domain: "other.example", Jobs: good}, "not in domain"},
		{"duplicate", RunSpec{Kind: RunList, Jobs: append(good, Job{Target: "ALICE@example.com"})}, "listed twice"},
		{"no host", RunSpec{Kind: RunList, Jobs: []Job{{Target: "alice@example.com", Credentials: Credentials{Password: "pw"}}}}, "no source host"},
		{"bad defaults", RunSpec{Kind: RunList, Jobs: good, Defaults: Job{Source: Source{TLS: "ssl3"}}}, "tls mode"},
		{"negative interval", RunSpec{Kind: RunList, Jobs: good, Continuous: true, Interval: -time.Second}, "negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r, err := e.m.Run(e.ctx, c.spec, nil)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.Zero(t, r.ID)
		})
	}
	_, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: good, TwoWay: true}, nil)
	assert.ErrorIs(t, err, ErrTwoWay)
	runs, err := e.m.Runs(e.ctx, 0, 0)
	require.NoError(t, err)
	assert.Empty(t, runs, "refused runs are not recorded")
	_, err = e.m.Status(e.ctx, "alice@example.com")
	assert.ErrorIs(t, err, store.ErrNotFound, "and create no collector")
}

func TestRunForceUpdateAndDisabled(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "alice-pw", "bob@example.com": "bob-pw"}, nil)
	e.fill("alice@example.com", "INBOX", 3, 50)
	e.fill("bob@example.com", "INBOX", 2, 50)

	r1, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com,alice-pw", "bob@example.com,bob-pw")}, nil)
	require.NoError(t, err)
	require.Equal(t, 2, r1.Succeeded)

	// New mail, then a run with wrong passwords and no force-update: the
	// collectors keep their stored settings and collect the new mail.
	e.fill("alice@example.com", "INBOX", 2, 50)
	r2, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com,changed", "bob@example.com,changed")}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(r1.ID+1), r2.ID)
	assert.Equal(t, 2, r2.Succeeded)
	mbs := checkTotals(t, e.m, r2)
	for _, rm := range mbs {
		assert.True(t, rm.KeptSettings, rm.Target)
		assert.Equal(t, []string{"password"}, rm.IgnoredSettings, "the run says which given settings it did not use: %s", rm.Target)
	}
	assert.Equal(t, int64(5), e.targetCount("alice@example.com", "INBOX"), "nothing copied twice")

	// Cut bob over; force-update alice with a wrong password.
	require.NoError(t, e.m.Disable(e.ctx, "bob@example.com"))
	r3, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, ForceUpdate: true, Jobs: e.csvJobs("alice@example.com,changed", "bob@example.com,bob-pw")}, nil)
	require.NoError(t, err)
	assert.Equal(t, 1, r3.WithErrors)
	assert.Equal(t, 1, r3.Disabled)
	assert.True(t, r3.Settings.ForceUpdate)
	mbs = checkTotals(t, e.m, r3)
	assert.Equal(t, RunMailboxError, mbs[0].Status)
	assert.Equal(t, ErrClassAuth, mbs[0].Class)
	assert.False(t, mbs[0].KeptSettings)
	assert.Equal(t, RunMailboxDisabled, mbs[1].Status)
	job, err := e.m.storedJob(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.Equal(t, "changed", job.Credentials.Password.Reveal(), "force-update replaced the password")
	st, err := e.m.Status(e.ctx, "bob@example.com")
	require.NoError(t, err)
	assert.Equal(t, StateDisabled, st.State, "a run never re-enables a cut-over collector")
}

func TestRunFullDomainServiceAccount(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "a", "bob@example.com": "b", "carol@example.com": "c"}, nil)
	e.fill("alice@example.com", "INBOX", 2, 50)
	e.fill("carol@example.com", "Archive/2020", 3, 50)
	spec := RunSpec{
		Kind:   RunFull,
		Domain: "Example.COM",
		Defaults: Job{Source: e.source(), Credentials: Credentials{
			Mode: AuthServicePlain, Service: runTestMaster, Password: "master-pw"}},
	}
	r, err := e.m.Run(e.ctx, spec, nil)
	require.NoError(t, err)
	assert.Equal(t, 3, r.Mailboxes)
	assert.Equal(t, 3, r.Succeeded)
	assert.Equal(t, "example.com", r.Settings.Domain)
	assert.Equal(t, AuthServicePlain, r.Settings.AuthMode)
	assert.Equal(t, runTestMaster, r.Settings.Service)
	assert.Equal(t, Mask, r.Settings.Password, "the snapshot masks the password")
	checkTotals(t, e.m, r)
	assert.Equal(t, int64(2), e.targetCount("alice@example.com", "INBOX"))
	assert.Equal(t, int64(3), e.targetCount("carol@example.com", "Archive/2020"))

	_, err = e.m.Run(e.ctx, RunSpec{Kind: RunFull, Domain: "empty.example", Defaults: spec.Defaults}, nil)
	require.Error(t, err, "a domain without users")
}

func TestRunInterruptedThenResumed(t *testing.T) {
	users := map[string]string{"a1@example.com": "p", "a2@example.com": "p", "a3@example.com": "p"}
	e := newRunTestEnv(t, users, func(o *Options) { o.Parallel = 1; o.FolderParallel = 1 })
	for u := range users {
		e.fill(u, "INBOX", 20, 200)
	}
	spec := RunSpec{Kind: RunList, Jobs: e.csvJobs("a1@example.com,p", "a2@example.com,p", "a3@example.com,p")}

	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var once sync.Once
	r, err := e.m.Run(ctx, spec, func(p Progress) {
		if p.DoneMessages >= 5 {
			once.Do(cancel)
		}
	})
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, RunInterrupted, r.State)
	assert.False(t, r.Ended.IsZero())
	assert.Equal(t, 3, r.Interrupted, "the mailbox in progress and the two not reached")
	mbs := checkTotals(t, e.m, r)
	reached := 0
	for _, rm := range mbs {
		assert.Equal(t, RunMailboxInterrupted, rm.Status)
		assert.Equal(t, ErrClassCanceled, rm.Class)
		if !rm.Started.IsZero() {
			reached++
		} else {
			assert.Contains(t, rm.Message, "not reached")
		}
	}
	assert.Equal(t, 1, reached, "Parallel 1: one mailbox was being copied")
	var copied int64
	for u := range users {
		copied += e.targetCount(u, "INBOX")
	}
	assert.GreaterOrEqual(t, copied, int64(5))
	assert.Less(t, copied, int64(60))

	// The rerun resumes: every message exactly once.
	r2, err := e.m.Run(e.ctx, spec, nil)
	require.NoError(t, err)
	assert.Equal(t, RunCompleted, r2.State)
	assert.Equal(t, 3, r2.Succeeded)
	for u := range users {
		assert.Equal(t, int64(20), e.targetCount(u, "INBOX"), u)
	}

	runs, err := e.m.Runs(e.ctx, 0, 0)
	require.NoError(t, err)
	require.Len(t, runs, 2)
	assert.Equal(t, []int64{r2.ID, r.ID}, []int64{runs[0].ID, runs[1].ID}, "newest first")
	assert.Equal(t, RunInterrupted, runs[1].State)
}

func TestRunContinuous(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "pw"}, nil)
	e.fill("alice@example.com", "INBOX", 2, 50)
	ctx, cancel := context.WithCancel(e.ctx)
	defer cancel()
	var (
		done   = make(chan struct{})
		r      Run
		runErr error
	)
	go func() {
		defer close(done)
		r, runErr = e.m.Run(ctx, RunSpec{Kind: RunList, Continuous: true, Interval: 50 * time.Millisecond,
			Jobs: e.csvJobs("alice@example.com,pw")}, nil)
	}()
	// Once the first pass has ended the run is collecting; new source
	// mail then arrives without another run.
	waitFor(t, func() bool {
		runs, err := e.m.Runs(e.ctx, 0, 1)
		return err == nil && len(runs) == 1 && runs[0].State == RunCollecting
	})
	assert.Equal(t, int64(2), e.targetCount("alice@example.com", "INBOX"))
	e.fill("alice@example.com", "INBOX", 3, 50)
	waitFor(t, func() bool { return e.targetCount("alice@example.com", "INBOX") == 5 })
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("a stopped continuous run did not return")
	}
	require.NoError(t, runErr)
	assert.Equal(t, RunStopped, r.State)
	assert.Equal(t, 1, r.Succeeded)
	assert.True(t, r.Settings.Continuous)
	assert.Equal(t, 50*time.Millisecond, r.Settings.Interval)
	checkTotals(t, e.m, r)
}

// waitFor polls cond until it holds (generous deadline for a loaded
// machine).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 60s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRunHistoryPaging(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"u1@example.com": "p", "u2@example.com": "p", "u3@example.com": "p"}, nil)
	jobs := e.csvJobs("u1@example.com,p", "u2@example.com,p", "u3@example.com,p")
	var ids []int64
	for range 3 {
		r, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: jobs}, nil)
		require.NoError(t, err)
		ids = append(ids, r.ID)
	}
	assert.Equal(t, []int64{1, 2, 3}, ids)

	page1, err := e.m.Runs(e.ctx, 0, 2)
	require.NoError(t, err)
	require.Len(t, page1, 2)
	assert.Equal(t, []int64{3, 2}, []int64{page1[0].ID, page1[1].ID})
	page2, err := e.m.Runs(e.ctx, page1[1].ID, 2)
	require.NoError(t, err)
	require.Len(t, page2, 1)
	assert.Equal(t, int64(1), page2[0].ID)

	mb1, err := e.m.RunMailboxes(e.ctx, 2, "", 2)
	require.NoError(t, err)
	require.Len(t, mb1, 2)
	assert.Equal(t, "u1@example.com", mb1[0].Target)
	mb2, err := e.m.RunMailboxes(e.ctx, 2, mb1[1].Target, 2)
	require.NoError(t, err)
	require.Len(t, mb2, 1, "a page stops at the run's last mailbox")
	assert.Equal(t, "u3@example.com", mb2[0].Target)
	assert.Equal(t, int64(2), mb2[0].RunID)

	_, err = e.m.RunByID(e.ctx, 99)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.m.RunMailboxes(e.ctx, 99, "", 10)
	assert.ErrorIs(t, err, store.ErrNotFound)
	_, err = e.m.RunByID(e.ctx, 0)
	assert.ErrorIs(t, err, store.ErrNotFound)
}

func TestRunKeys(t *testing.T) {
	for _, id := range []int64{1, 2, 9, 10, 12345, 1<<62 + 7} {
		k := runKey(id)
		assert.Len(t, k, 19)
		got, err := runIDFromKey(k)
		require.NoError(t, err)
		assert.Equal(t, id, got)
		assert.Less(t, runKey(id+1), k, "newer runs sort first")
	}
	for _, bad := range []string{"", "12", "abcdefghijklmnopqrs", "-000000000000000001"} {
		_, err := runIDFromKey(bad)
		assert.Error(t, err, bad)
	}
	assert.Equal(t, 1, historyLimit(1))
	assert.Equal(t, DefaultHistoryLimit, historyLimit(0))
	assert.Equal(t, MaxHistoryLimit, historyLimit(1<<30))
}

func TestRunRecoversAbandonedRuns(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "pw"}, nil)
	now := time.Now().UTC().Round(0)
	// Run 1 was killed an hour ago with one mailbox being copied and one
	// queued; run 2 is running in another process right now.
	stale := Run{ID: 1, State: RunRunning, Started: now.Add(-time.Hour), Heartbeat: now.Add(-time.Hour), Mailboxes: 2}
	live := Run{ID: 2, State: RunCollecting, Started: now.Add(-time.Hour), Heartbeat: now.Add(-time.Minute), Mailboxes: 1, Succeeded: 1}
	require.NoError(t, e.st.UpdateRecords(e.ctx, func(tx store.RecordTx) error {
		for _, r := range []Run{stale, live} {
			if err := txPutJSON(tx, nsRun, runKey(r.ID), r); err != nil {
				return err
			}
		}
		for _, rm := range []RunMailbox{
			{RunID: 1, Target: "a@example.com", Created: stale.Started, Started: stale.Started, Status: RunMailboxRunning},
			{RunID: 1, Target: "b@example.com", Created: stale.Started, Status: RunMailboxQueued},
			{RunID: 2, Target: "c@example.com", Created: live.Started, Started: live.Started, Ended: live.Started, Status: RunMailboxOK},
		} {
			if err := txPutJSON(tx, nsRunMailbox, runMailboxKey(rm.RunID, rm.Target), rm); err != nil {
				return err
			}
		}
		return nil
	}))

	r, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: e.csvJobs("alice@example.com,pw")}, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(3), r.ID)

	got, err := e.m.RunByID(e.ctx, 1)
	require.NoError(t, err)
	assert.Equal(t, RunInterrupted, got.State)
	assert.Equal(t, 2, got.Interrupted)
	assert.Contains(t, got.Error, "abandoned")
	assert.False(t, got.Ended.IsZero())
	mbs := checkTotals(t, e.m, got)
	assert.Equal(t, RunMailboxInterrupted, mbs[0].Status)
	assert.Empty(t, mbs[0].Message, "a mailbox that was being copied")
	assert.Contains(t, mbs[1].Message, "killed")

	got2, err := e.m.RunByID(e.ctx, 2)
	require.NoError(t, err)
	assert.Equal(t, live, got2, "a run with a recent heartbeat is left alone")
}

func TestRunForceUpdateKeepsExclusions(t *testing.T) {
	e := newRunTestEnv(t, map[string]string{"alice@example.com": "alice-pw"}, nil)
	e.fill("alice@example.com", "Drafts", 2, 50)
	// The collector was set up to copy every folder, Drafts included.
	first, err := ParseCSV(strings.NewReader("target,password,exclude\nalice@example.com,alice-pw,-\n"), Job{Source: e.source()})
	require.NoError(t, err)
	r1, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, Jobs: first}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, r1.Succeeded)
	require.Equal(t, int64(2), e.targetCount("alice@example.com", "Drafts"))

	// A force-update that only changes the source login and password
	// (its list has no exclude column) leaves the exclusions alone.
	r2, err := e.m.Run(e.ctx, RunSpec{Kind: RunList, ForceUpdate: true, Jobs: e.csvJobs("alice@example.com,alice-pw")}, nil)
	require.NoError(t, err)
	require.Equal(t, 1, r2.Succeeded)
	job, err := e.m.storedJob(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.NotNil(t, job.Exclude, "still excludes nothing, not the default list")
	assert.Empty(t, job.Exclude)
	e.fill("alice@example.com", "Drafts", 1, 50)
	_, err = e.m.Sync(e.ctx, job, nil)
	require.NoError(t, err)
	assert.Equal(t, int64(3), e.targetCount("alice@example.com", "Drafts"), "Drafts still collected")

	// A force-update that names exclusions replaces them.
	withEx, err := ParseCSV(strings.NewReader("target,password,exclude\nalice@example.com,alice-pw,Spam\n"), Job{Source: e.source()})
	require.NoError(t, err)
	_, err = e.m.Run(e.ctx, RunSpec{Kind: RunList, ForceUpdate: true, Jobs: withEx}, nil)
	require.NoError(t, err)
	job, err = e.m.storedJob(e.ctx, "alice@example.com")
	require.NoError(t, err)
	assert.Equal(t, []string{"Spam"}, job.Exclude)
}

func TestRunIDsOfConcurrentProcesses(t *testing.T) {
	// Two processes (two stores open on one data directory, each with
	// its own Migrator, so no mutex of ours is shared) start runs at
	// once: every run gets its own ID.
	data := t.TempDir()
	ctx := t.Context()
	var ms []*Migrator
	for i := range 2 {
		st, err := sqlite.Open(ctx, data, sqlite.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		dir := builtin.New(st, builtin.Options{Accounts: st, Hasher: builtin.NewPasswordHasher(1)})
		if i == 0 {
			_, err = dir.CreateDomain(ctx, directory.Domain{Name: "example.com"})
			require.NoError(t, err)
		}
		// The source is not on the allowlist: each pass fails at once,
		// without a network connection.
		m, err := New(Options{Store: st, Directory: dir, Users: dir, Allowlist: []string{"192.0.2.1"}, SecretKey: testSecretKey})
		require.NoError(t, err)
		ms = append(ms, m)
	}
	jobs := []Job{{Target: "a@example.com", Source: Source{Host: "127.0.0.1", Port: 1, TLS: TLSPlain}, Credentials: Credentials{Password: "pw"}}}
	const perProcess = 10
	var (
		mu  sync.Mutex
		ids = map[int64]bool{}
		wg  sync.WaitGroup
	)
	for _, m := range ms {
		wg.Go(func() {
			for range perProcess {
				r, err := m.Run(ctx, RunSpec{Kind: RunList, Jobs: jobs}, nil)
				if !assert.NoError(t, err) {
					return
				}
				mu.Lock()
				assert.False(t, ids[r.ID], "run ID %d given twice", r.ID)
				ids[r.ID] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	assert.Len(t, ids, 2*perProcess)
	runs, err := ms[0].Runs(ctx, 0, 0)
	require.NoError(t, err)
	assert.Len(t, runs, 2*perProcess)
	for _, r := range runs {
		checkTotals(t, ms[0], r)
	}
}

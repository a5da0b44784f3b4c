package ldap_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/directory/ldap"
	"github.com/mailyard/mailyard/internal/ldaptest"
	"github.com/mailyard/mailyard/internal/pgtest"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
	"github.com/mailyard/mailyard/store/postgres"
)

// TestSyncOneNodeAtATime: two nodes (two stores on one PostgreSQL
// database, each with its connector) never sync one connection at once:
// while node A's sync hangs on a server that never answers, node B's is
// ErrSyncRunning naming A's process. A scheduled sync (Every) is not due
// on B while A's run is recent; an unscheduled one runs. A lease left
// by a process of this host that died is taken over at once; one of
// another host only once it expired.
func TestSyncOneNodeAtATime(t *testing.T) {
	ctx := context.Background()
	srv := ldaptest.Start(t, adFixtures())
	dsn := pgtest.FreshDB(t)
	node := func(url string, timeout time.Duration) (*postgres.Store, *ldap.Connector) {
		st, err := postgres.Open(ctx, dsn, postgres.Options{})
		require.NoError(t, err)
		t.Cleanup(func() { st.Close() })
		dir := builtin.New(st, builtin.Options{Accounts: st})
		cfg := adConfig(url)
		cfg.Timeout, cfg.DialTimeout = timeout, timeout
		c, err := ldap.New(cfg, ldap.Options{Dir: dir, Records: st})
		require.NoError(t, err)
		return st, c
	}
	stA, a := node(blackhole(t), 3*time.Second)
	_, b := node(srv.URL, 5*time.Second)
	dir := builtin.New(stA, builtin.Options{Accounts: stA})
	_, err := dir.CreateTenant(ctx, directory.Tenant{ID: "acme"})
	require.NoError(t, err)
	_, err = dir.CreateDomain(ctx, directory.Domain{Name: "example.com", Tenant: "acme"})
	require.NoError(t, err)

	aDone := make(chan error, 1)
	go func() {
		_, err := a.Sync(ctx, ldap.SyncOptions{})
		aDone <- err
	}()
	// A holds the lease once its record exists.
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, err := stA.GetRecord(ctx, "ldapsync.lease", "corp"); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "node A never took the sync lease")
		time.Sleep(10 * time.Millisecond)
	}
	_, err = b.Sync(ctx, ldap.SyncOptions{})
	require.ErrorIs(t, err, ldap.ErrSyncRunning, "node B while node A syncs")
	require.ErrorIs(t, err, lease.ErrHeld)
	assert.Contains(t, err.Error(), "process ")
	require.ErrorIs(t, <-aDone, ldap.ErrUnavailable, "node A against a hung server")

	_, err = b.Sync(ctx, ldap.SyncOptions{Every: time.Hour})
	require.ErrorIs(t, err, ldap.ErrNotDue, "node A's run started just now")
	st, err := b.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err)
	assert.Equal(t, ldap.StateSuccess, st.State)
	assert.Equal(t, 6, st.Added, st.Log)
	_, err = b.Sync(ctx, ldap.SyncOptions{Every: time.Hour})
	require.ErrorIs(t, err, ldap.ErrNotDue)
	st, err = b.Sync(ctx, ldap.SyncOptions{Every: time.Nanosecond, FullEvery: time.Nanosecond})
	require.NoError(t, err)
	assert.Equal(t, "full", st.Kind, "FullEvery passed")

	host, _ := os.Hostname()
	putLease := func(h lease.Holder) {
		t.Helper()
		require.NoError(t, stA.UpdateRecords(ctx, func(tx store.RecordTx) error {
			return store.PutJSON(tx, "ldapsync.lease", "corp", h, -1)
		}))
	}
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	putLease(lease.Holder{Token: "x", Host: host, PID: dead.Process.Pid, Since: time.Now(), Expires: time.Now().Add(time.Hour)})
	_, err = b.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err, "the lease of a dead process of this host is taken over")

	putLease(lease.Holder{Token: "y", Host: host + ".other", PID: 1, Since: time.Now(), Expires: time.Now().Add(time.Hour)})
	_, err = b.Sync(ctx, ldap.SyncOptions{})
	require.ErrorIs(t, err, ldap.ErrSyncRunning, "a live node elsewhere holds it")
	putLease(lease.Holder{Token: "y", Host: host + ".other", PID: 1, Since: time.Now().Add(-time.Hour), Expires: time.Now().Add(-time.Second)})
	_, err = b.Sync(ctx, ldap.SyncOptions{})
	require.NoError(t, err, "a node elsewhere that stopped renewing loses the lease at its expiry")
	if _, err := stA.GetRecord(ctx, "ldapsync.lease", "corp"); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lease left after the sync: %v", err)
	}
}

package ews_test

import (
	"context"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/directory"
	"github.com/mailyard/mailyard/migration"
)

// TestRunWithEWSPass: EWS migrations go through the collectors' run and
// history machinery; a mailbox the service account may not impersonate
// is recorded as an auth error, the other as migrated.
func TestRunWithEWSPass(t *testing.T) {
	e := newMigrateEnv(t)
	ctx := context.Background()
	if _, err := e.dir.CreateUser(ctx, directory.User{Address: "bob@example.com"}, "Bob-Pa55"); err != nil {
		t.Fatal(err)
	}
	mm, err := migration.New(migration.Options{Store: e.st, Directory: e.dir})
	if err != nil {
		t.Fatal(err)
	}
	em := e.migrator(t, nil)
	spec := migration.RunSpec{Kind: migration.RunList,
		Jobs: []migration.Job{
			{Target: targetAddr, Credentials: migration.Credentials{Login: owner}},
			{Target: "bob@example.com", Credentials: migration.Credentials{Login: "nobody@example.test"}},
		},
		Defaults: migration.Job{Source: migration.Source{Host: "127.0.0.1", Port: 443},
			Credentials: migration.Credentials{Mode: migration.AuthServicePlain, Service: svcLogin, Password: svcPass}},
		Pass: em.Pass,
	}
	run, err := mm.Run(ctx, spec, nil)
	if err != nil {
		t.Fatal(err)
	}
	if run.State != migration.RunCompleted || run.Succeeded != 1 || run.WithErrors != 1 {
		t.Fatalf("run %+v", run)
	}
	mbs, err := mm.RunMailboxes(ctx, run.ID, "", 10)
	if err != nil || len(mbs) != 2 {
		t.Fatalf("run mailboxes %+v %v", mbs, err)
	}
	for _, rm := range mbs {
		switch rm.Target {
		case targetAddr:
			if rm.Status != migration.RunMailboxOK || !strings.HasPrefix(rm.Message, "copied 207 messages") || !strings.Contains(rm.Message, "50 events, 30 contacts") || rm.Login != owner {
				t.Errorf("migrated mailbox: %+v", rm)
			}
		default:
			if rm.Status != migration.RunMailboxError || rm.Class != migration.ErrClassConfig {
				t.Errorf("unknown source mailbox: %+v", rm)
			}
		}
	}
	// Continuous collection is the IMAP collectors'; a run with a Pass
	// is refused before anything is recorded.
	spec.Continuous = true
	if _, err := mm.Run(ctx, spec, nil); err == nil {
		t.Error("a continuous run with a Pass was accepted")
	}
	runs, err := mm.Runs(ctx, 0, 10)
	if err != nil || len(runs) != 1 {
		t.Errorf("history: %d runs, %v", len(runs), err)
	}
}

package migration

import (
	"errors"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/mailyard/mailyard/directory/builtin"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/lease"
	"github.com/mailyard/mailyard/store/sqlite"
)

func TestLeaseKeepsOtherProcessesOut(t *testing.T) {
	ctx := t.Context()
	st, err := sqlite.Open(ctx, t.TempDir(), sqlite.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	dir := builtin.New(st, builtin.Options{Accounts: st})
	newM := func() *Migrator {
		m, err := New(Options{Store: st, Directory: dir})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	// Two Migrators on one store stand for two processes.
	m1, m2 := newM(), newM()
	const target = "alice@example.com"

	_, release, err := m1.acquireLease(ctx, target)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := m2.acquireLease(ctx, target); !errors.Is(err, ErrBusy) || ClassOf(err) != ErrClassConfig {
		t.Fatalf("second holder: %v, want ErrBusy", err)
	}
	release()
	_, release2, err := m2.acquireLease(ctx, target)
	if err != nil {
		t.Fatalf("after release: %v", err)
	}
	release2()
	if _, err := st.GetRecord(ctx, nsLease, target); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("lease left behind after release: %v", err)
	}

	host, _ := os.Hostname()
	put := func(l lease.Holder) {
		t.Helper()
		if err := st.UpdateRecords(ctx, func(tx store.RecordTx) error { return store.PutJSON(tx, nsLease, target, l, -1) }); err != nil {
			t.Fatal(err)
		}
	}
	// A holder on this host whose process has exited (a SIGKILLed run):
	// taken over at once although its lease has not expired.
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	put(lease.Holder{Token: "x", Host: host, PID: dead.Process.Pid, Since: time.Now(), Expires: time.Now().Add(time.Hour)})
	_, r, err := m1.acquireLease(ctx, target)
	if err != nil {
		t.Fatalf("lease of a dead process not taken over: %v", err)
	}
	r()
	// A holder on another host is trusted until its lease expires.
	put(lease.Holder{Token: "y", Host: host + ".other", PID: 1, Since: time.Now(), Expires: time.Now().Add(time.Hour)})
	if _, _, err := m1.acquireLease(ctx, target); !errors.Is(err, ErrBusy) {
		t.Fatalf("live lease of another host: %v, want ErrBusy", err)
	}
	put(lease.Holder{Token: "y", Host: host + ".other", PID: 1, Since: time.Now().Add(-time.Hour), Expires: time.Now().Add(-time.Second)})
	_, r, err = m1.acquireLease(ctx, target)
	if err != nil {
		t.Fatalf("expired lease not taken over: %v", err)
	}
	r()
}

package sqlite

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

func mustAccount(t *testing.T, s *Store, id string, q store.Quota) {
	t.Helper()
	if _, err := s.CreateAccount(context.Background(), id, q); err != nil {
		t.Fatal(err)
	}
}

func problems(t *testing.T, s *Store) []store.Problem {
	t.Helper()
	p, err := s.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func hasProblem(ps []store.Problem, kind, substr string) bool {
	for _, p := range ps {
		if p.Kind == kind && strings.Contains(p.Detail, substr) {
			return true
		}
	}
	return false
}

// Group commit: concurrent deliveries share transactions, and a request
// failing in a batch (over quota) does not fail the others.
func TestGroupCommit(t *testing.T) {
	ctx := context.Background()
	// Without the background indexer: its request marking the
	// deliveries' text indexed goes through the writer too, and on a
	// busy machine (the deliveries taking over textSoonLag) it did so
	// before the counts below were read.
	s := openTest(t, t.TempDir(), Options{GroupCommitWindow: 20 * time.Millisecond, noTextIndexer: true})
	mustAccount(t, s, "ok", store.Quota{})
	mustAccount(t, s, "full", store.Quota{MaxMessages: 1})
	c0, b0 := s.commits.Load(), s.batched.Load()
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			acct := "ok"
			if i%4 == 0 {
				acct = "full"
			}
			_, errs[i] = s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: acct}}}, strings.NewReader(fmt.Sprint("m", i)))
		}()
	}
	wg.Wait()
	okCount, quota := 0, 0
	for i, err := range errs {
		switch {
		case err == nil:
			okCount++
		case errors.Is(err, store.ErrQuotaExceeded) && i%4 == 0:
			quota++
		default:
			t.Fatalf("delivery %d: %v", i, err)
		}
	}
	if okCount != n-n/4+1 || quota != n/4-1 {
		t.Fatalf("%d delivered, %d refused for quota; want %d and %d", okCount, quota, n-n/4+1, n/4-1)
	}
	commits, batched := s.commits.Load()-c0, s.batched.Load()-b0
	if batched != n {
		t.Fatalf("%d requests went through the writer, want %d", batched, n)
	}
	if commits >= n/2 {
		t.Fatalf("%d commits for %d concurrent deliveries: no group commit", commits, n)
	}
	t.Logf("%d deliveries in %d commits", n, commits)
	msgs, err := s.ListMessages(ctx, "ok", "INBOX", nil)
	if err != nil || len(msgs) != n-n/4 {
		t.Fatalf("ok has %d messages (%v), want %d", len(msgs), err, n-n/4)
	}
	if p := problems(t, s); len(p) != 0 {
		t.Fatalf("Check: %+v", p)
	}
}

// A request whose context is cancelled before the writer runs it changes
// nothing and leaves no blob behind.
func TestCancelledContext(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := s.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Append with cancelled context: %v", err)
	}
	if p := problems(t, s); len(p) != 0 {
		t.Fatalf("Check: %+v", p)
	}
	assertEmptyTmp(t, s.dir)
}

func assertEmptyTmp(t *testing.T, dir string) {
	t.Helper()
	ents, err := os.ReadDir(filepath.Join(dir, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 0 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
}

func TestReaderErrorLeavesNoFiles(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	boom := errors.New("boom")
	_, err := s.Append(context.Background(), "u", "INBOX", ioErrReader{boom}, store.AppendOptions{})
	if !errors.Is(err, boom) {
		t.Fatalf("Append: %v", err)
	}
	assertEmptyTmp(t, s.dir)
	files, err := s.blobs.list(context.Background())
	if err != nil || len(files) != 0 {
		t.Fatalf("blobs after failed append: %v %v", files, err)
	}
	// Over quota: the written blob is removed again.
	if err := s.SetQuota(context.Background(), "u", store.Quota{MaxBytes: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(context.Background(), "u", "INBOX", strings.NewReader("too big"), store.AppendOptions{}); !errors.Is(err, store.ErrQuotaExceeded) {
		t.Fatalf("Append over quota: %v", err)
	}
	files, _ = s.blobs.list(context.Background())
	if len(files) != 0 {
		t.Fatalf("blob of refused append kept: %v", files)
	}
}

type ioErrReader struct{ err error }

func (r ioErrReader) Read(p []byte) (int, error) { return 0, r.err }

func TestCheckFindsProblems(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openTest(t, dir, Options{})
	mustAccount(t, s, "u", store.Quota{})
	m1, err := s.Append(ctx, "u", "INBOX", strings.NewReader("first body"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	m2, err := s.Append(ctx, "u", "INBOX", strings.NewReader("second body"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if p := problems(t, s); len(p) != 0 {
		t.Fatalf("healthy store: %+v", p)
	}
	orphan := strings.Repeat("ab", 16)
	if err := os.WriteFile(s.blobs.path(orphan), []byte("orphan"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(s.blobs.path(m1.BlobID)); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.blobs.path(m2.BlobID), []byte("short"), 0o600); err != nil {
		t.Fatal(err)
	}
	// Corrupt the counters behind the store's back, as a bug would.
	rawExec(t, s, "UPDATE accounts SET used_bytes = used_bytes + 7")
	rawExec(t, s, "UPDATE mailboxes SET uidnext = 2 WHERE name = 'INBOX'")
	ps := problems(t, s)
	for _, want := range []struct{ kind, substr string }{
		{"orphan-blob", orphan},
		{"missing-blob", m1.BlobID},
		{"size-mismatch", m2.BlobID},
		{"counter", "usage says"},
		{"counter", "UIDNEXT 2"},
	} {
		if !hasProblem(ps, want.kind, want.substr) {
			t.Errorf("Check did not report %s %s; got %+v", want.kind, want.substr, ps)
		}
	}
	if len(ps) != 5 {
		t.Errorf("Check reported %d problems, want 5: %+v", len(ps), ps)
	}
	// Check changes nothing.
	if _, err := os.Stat(s.blobs.path(orphan)); err != nil {
		t.Fatalf("Check removed the orphan: %v", err)
	}
}

// Orphans are swept at open only when no other process (here: another
// Store) has the directory open.
func TestOrphanSweep(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s1, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	mustAccount(t, s1, "u", store.Quota{})
	m, err := s1.Append(ctx, "u", "INBOX", strings.NewReader("kept"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	orphan := strings.Repeat("cd", 16)
	if err := os.WriteFile(s1.blobs.path(orphan), []byte("crash leftover"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "partial"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	// s2 opens while s1 holds its shared lock: no sweep, since the
	// "orphan" could be s1's delivery in flight.
	s2, err := Open(ctx, dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(s1.blobs.path(orphan)); err != nil {
		t.Fatalf("orphan swept while another store had the directory open: %v", err)
	}
	if !hasProblem(problems(t, s2), "orphan-blob", orphan) {
		t.Fatal("second store's Check does not report the orphan")
	}
	// Both stores write to the same database (busy timeout serialises).
	var wg sync.WaitGroup
	for _, s := range []*Store{s1, s2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 20 {
				if _, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, strings.NewReader(fmt.Sprint(i))); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	for _, s := range []*Store{s1, s2} {
		msgs, err := s.ListMessages(ctx, "u", "INBOX", nil)
		if err != nil || len(msgs) != 41 {
			t.Fatalf("%d messages (%v), want 41", len(msgs), err)
		}
	}
	if err := s1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s2.Close(); err != nil {
		t.Fatal(err)
	}
	s3 := openTest(t, dir, Options{})
	if _, err := os.Stat(s3.blobs.path(orphan)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("orphan not swept at exclusive open: %v", err)
	}
	assertEmptyTmp(t, dir)
	rc, err := s3.OpenBody(ctx, "u", "INBOX", m.UID)
	if err != nil {
		t.Fatalf("referenced blob swept: %v", err)
	}
	rc.Close()
	if p := problems(t, s3); len(p) != 0 {
		t.Fatalf("Check after sweep: %+v", p)
	}
}

func TestFeedOverflow(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{FeedBuffer: 4})
	mustAccount(t, s, "u", store.Quota{})
	sub, err := s.Subscribe(ctx, "u")
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	var last store.Message
	for i := range 20 {
		if last, err = s.Append(ctx, "u", "INBOX", strings.NewReader(fmt.Sprint(i)), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	var got []store.Change
	for {
		select {
		case c := <-sub.C():
			got = append(got, c)
			if c.Kind == store.ChangeMessagesAdded && c.UIDs[0] == last.UID {
				goto done
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("feed stalled after %+v", got)
		}
	}
done:
	overflows := 0
	for _, c := range got {
		if c.Kind == store.ChangeOverflow {
			overflows++
		}
	}
	if overflows == 0 || len(got) > 4+1+4 {
		t.Fatalf("a subscriber with buffer 4 got %d changes with %d overflows: %+v", len(got), overflows, got)
	}
	if got[len(got)-1].UIDs[0] != last.UID {
		t.Fatal("changes did not resume after the overflow")
	}
	// After catching up, changes flow normally again.
	m, err := s.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case c := <-sub.C():
		if c.Kind != store.ChangeMessagesAdded || c.UIDs[0] != m.UID {
			t.Fatalf("after overflow got %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no change after overflow")
	}
}

func TestSyncTokenPruned(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{ChangeLogLimit: 3})
	mustAccount(t, s, "u", store.Quota{})
	cal, err := s.Collection(ctx, "u", store.KindCalendar, "calendar")
	if err != nil {
		t.Fatal(err)
	}
	_, tok0, err := s.ChangesSince(ctx, cal.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		if _, err := s.PutObject(ctx, cal.ID, store.Object{Name: fmt.Sprint(i), UID: fmt.Sprint(i), Data: []byte("x")}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.ChangesSince(ctx, cal.ID, tok0); !errors.Is(err, store.ErrSyncTokenInvalid) {
		t.Fatalf("token older than the pruned log: %v, want ErrSyncTokenInvalid", err)
	}
	_, cur, err := s.ChangesSince(ctx, cal.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	ch, _, err := s.ChangesSince(ctx, cal.ID, cur-3)
	if err != nil || len(ch) != 3 {
		t.Fatalf("token within the log: %v %v, want 3 changes", ch, err)
	}
}

func TestOpenRejectsNewerSchema(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(context.Background(), dir, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rawExec(t, s, "PRAGMA user_version = 99")
	s.Close()
	if s, err := Open(context.Background(), dir, Options{}); err == nil {
		s.Close()
		t.Fatal("Open accepted a database from a newer version")
	}
}

func TestDeliverSharesOneBlobFile(t *testing.T) {
	ctx := context.Background()
	s := openTest(t, t.TempDir(), Options{})
	for _, a := range []string{"a", "b", "c"} {
		mustAccount(t, s, a, store.Quota{})
	}
	body := bytes.Repeat([]byte("x"), 4096)
	ds, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "a"}, {Account: "b"}, {Account: "c"}}}, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	files, _ := s.blobs.list(ctx)
	if len(files) != 1 {
		t.Fatalf("%d blob files for one delivery to 3 recipients", len(files))
	}
	// The file goes only when the last reference does.
	for i, d := range ds {
		if _, err := s.StoreFlags(ctx, d.Account, "INBOX", store.StoreFlagsRequest{Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Expunge(ctx, d.Account, "INBOX", nil); err != nil {
			t.Fatal(err)
		}
		files, _ := s.blobs.list(ctx)
		if want := map[bool]int{true: 0, false: 1}[i == len(ds)-1]; len(files) != want {
			t.Fatalf("after expunging %d of %d copies: %d blob files, want %d", i+1, len(ds), len(files), want)
		}
	}
}

// rawExec runs SQL through the writer, as a bug in the store would.
func rawExec(t *testing.T, s *Store, q string) {
	t.Helper()
	if err := s.write(context.Background(), func(tx *wtx) error {
		_, err := tx.exec(q)
		return err
	}); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

func TestPragmas(t *testing.T) {
	s := openTest(t, t.TempDir(), Options{})
	want := map[string]string{"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1"}
	err := s.write(context.Background(), func(tx *wtx) error {
		for p, w := range want {
			var got string
			if err := tx.queryRow("PRAGMA " + p).Scan(&got); err != nil {
				return err
			}
			if got != w {
				return fmt.Errorf("PRAGMA %s = %s, want %s", p, got, w)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	var bt int
	if err := s.rdb.QueryRow("PRAGMA busy_timeout").Scan(&bt); err != nil || bt != 10000 {
		t.Fatalf("read pool busy_timeout = %d, %v; want 10000", bt, err)
	}
}

// A subscription closed by its owner must not stay reachable from the
// context it was made with: a server subscribes with long-lived contexts
// (one per connection, or the process's), and every IDLE would otherwise
// leave its subscription behind until that context ends.
func TestClosedSubscriptionIsReleased(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	s := openTest(t, t.TempDir(), Options{})
	mustAccount(t, s, "u", store.Quota{})
	released := make(chan struct{})
	func() {
		sub, err := s.Subscribe(ctx, "u")
		if err != nil {
			t.Fatal(err)
		}
		runtime.AddCleanup(sub.(*subscription), func(ch chan struct{}) { close(ch) }, released)
		if err := sub.Close(); err != nil {
			t.Fatal(err)
		}
	}()
	deadline := time.After(5 * time.Second)
	for {
		runtime.GC()
		select {
		case <-released:
			return
		case <-deadline:
			t.Fatal("closed subscription is still referenced (by its context's AfterFunc)")
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// Blobs written at once share their directory's fsyncs, and none returns
// before an fsync that started after its entry was created has finished.
func TestBlobDirSyncsCoalesce(t *testing.T) {
	b, err := newBlobStore(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			id, _, err := b.write(t.Context(), strings.NewReader(fmt.Sprintf("message %d\r\n", i)))
			if err != nil {
				t.Error(err)
				return
			}
			b.settle(id)
			ids[i] = id
		})
	}
	wg.Wait()
	for i, id := range ids {
		data, err := os.ReadFile(b.path(id))
		if err != nil || string(data) != fmt.Sprintf("message %d\r\n", i) {
			t.Fatalf("blob %d: %q, %v", i, data, err)
		}
	}
	b.dirsMu.Lock()
	defer b.dirsMu.Unlock()
	if len(b.dirs) > 2 {
		// 64 consecutive blobs of one process fall in one fan-out
		// directory, or two where the sequence crosses a boundary.
		t.Fatalf("blobs spread over %d directories, want at most 2", len(b.dirs))
	}
	total := uint64(0)
	for dir, d := range b.dirs {
		if d.running || d.synced != d.created {
			t.Fatalf("%s: created %d synced %d running %v", dir, d.created, d.synced, d.running)
		}
		total += d.created
	}
	if total != n {
		t.Fatalf("%d entries recorded, want %d", total, n)
	}
}

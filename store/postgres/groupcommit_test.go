package postgres

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
)

// Writes to one account queued behind its row lock hold one pool
// connection between them, not one each: the reads and writes of
// another account still get a connection at once, and the queued
// writes all go through once the lock is free.
func TestAccountWritesQueueWithoutConnections(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	s := openTest(t, dsn, Options{PoolSize: 4})
	for _, id := range []string{"u", "v"} {
		if _, err := s.CreateAccount(ctx, id, store.Quota{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.Append(ctx, "u", "INBOX", strings.NewReader("x"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	// Another node's transaction holds u's row.
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close(context.Background())
	tx, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `SELECT 1 FROM accounts WHERE id = 'u' FOR UPDATE`); err != nil {
		t.Fatal(err)
	}
	const writers = 6
	var wg sync.WaitGroup
	errs := make(chan error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			if i%2 == 0 {
				_, err = s.Append(ctx, "u", "INBOX", strings.NewReader("y"), store.AppendOptions{})
			} else {
				_, err = s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 1}}, Op: store.FlagsAdd, Flags: []string{store.FlagSeen}})
			}
			errs <- err
		}()
	}
	// Let them all reach the lock (or the gate).
	time.Sleep(300 * time.Millisecond)
	if n := s.pool.Stat().AcquiredConns(); n > 1 {
		t.Errorf("%d pool connections held by writes waiting for one account's lock, want at most 1", n)
	}
	// v's read and write go through while u's writes wait.
	vctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if _, err := s.Append(vctx, "v", "INBOX", strings.NewReader("z"), store.AppendOptions{}); err != nil {
		t.Fatalf("Append to another account while u's writes wait: %v", err)
	}
	if _, err := s.Status(vctx, "v", "INBOX"); err != nil {
		t.Fatalf("Status of another account while u's writes wait: %v", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatalf("a queued write: %v", err)
		}
	}
	st, err := s.Status(ctx, "u", "INBOX")
	if err != nil || st.Messages != 1+writers/2 {
		t.Fatalf("u's INBOX: %+v, %v; want %d messages", st, err, 1+writers/2)
	}
}

// A caller whose context ends while it is queued leaves with the
// context's error and is not run; the others are, and the key is
// retired once none is left.
func TestCommitGroupsContext(t *testing.T) {
	var g commitGroups[string]
	g.max = 8
	start, hold := make(chan struct{}), make(chan struct{})
	var mu sync.Mutex
	var ran [][]string
	commit := func(_ context.Context, items []string) ([]error, error) {
		mu.Lock()
		ran = append(ran, slices.Clone(items))
		mu.Unlock()
		if items[0] == "first" {
			close(start)
			<-hold
		}
		return nil, nil
	}
	done := make(chan error, 3)
	go func() { done <- g.run(context.Background(), "u", "first", commit) }()
	<-start
	ctx, cancel := context.WithCancel(context.Background())
	go func() { done <- g.run(ctx, "u", "cancelled", commit) }()
	go func() { done <- g.run(context.Background(), "u", "queued", commit) }()
	for g.queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != context.Canceled {
		t.Fatalf("the cancelled caller: %v, want context.Canceled", err)
	}
	if err := g.run(context.Background(), "v", "other key", commit); err != nil {
		t.Fatal(err)
	}
	close(hold)
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	want := [][]string{{"first"}, {"other key"}, {"queued"}}
	if !slices.EqualFunc(ran, want, slices.Equal) {
		t.Fatalf("transactions %q, want %q", ran, want)
	}
	if len(g.queues) != 0 {
		t.Fatalf("%d keys left with no caller", len(g.queues))
	}
}

// A group whose transaction fails as a whole is tried one by one, so
// only the item that caused it fails; an uncertain failure is every
// item's and is not tried again.
func TestCommitGroupsFailure(t *testing.T) {
	for _, uncertain := range []bool{false, true} {
		var g commitGroups[string]
		g.max = 8
		start, hold := make(chan struct{}), make(chan struct{})
		var calls [][]string
		bad := errors.New("bad item")
		commit := func(_ context.Context, items []string) ([]error, error) {
			calls = append(calls, slices.Clone(items))
			if items[0] == "first" {
				close(start)
				<-hold
				return nil, nil
			}
			if slices.Contains(items, "bad") {
				if uncertain {
					return nil, &uncertainError{bad}
				}
				return nil, bad
			}
			return nil, nil
		}
		done := make(chan error, 1)
		go func() { done <- g.run(context.Background(), "u", "first", commit) }()
		<-start
		results := make(map[string]chan error)
		for _, it := range []string{"a", "bad", "b"} {
			ch := make(chan error, 1)
			results[it] = ch
			go func() { ch <- g.run(context.Background(), "u", it, commit) }()
			for g.queued() < len(results) {
				time.Sleep(time.Millisecond)
			}
		}
		close(hold)
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		for it, ch := range results {
			err := <-ch
			switch {
			case it == "bad" || uncertain:
				if !errors.Is(err, bad) {
					t.Errorf("uncertain=%v: %s: %v, want the bad item's error", uncertain, it, err)
				}
			case err != nil:
				t.Errorf("uncertain=%v: %s: %v, want success", uncertain, it, err)
			}
		}
		want := [][]string{{"first"}, {"a", "bad", "b"}, {"a"}, {"bad"}, {"b"}}
		if uncertain {
			want = want[:2]
		}
		if !slices.EqualFunc(calls, want, slices.Equal) {
			t.Errorf("uncertain=%v: transactions %q, want %q", uncertain, calls, want)
		}
	}
}

// Writes to one account that queue while one of them waits for the
// account's row lock share the next transaction: all of them cost two
// commits, each sees what the writes before it left (UIDs, MODSEQs,
// usage), and one refused (no such mailbox, over quota) is refused
// alone while the others of its group are stored. Each row is locked
// by one statement per transaction.
func TestAccountWriteGroupCommit(t *testing.T) {
	ctx := ctxFor(t)
	dsn := freshDB(t)
	tr := &commitTracer{}
	s := openTest(t, dsn, Options{Tracer: tr})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{MaxMessages: 4}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateMailbox(ctx, "u", "Other", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, "u", "INBOX", strings.NewReader("Subject: seed\r\n\r\nseed\r\n"), store.AppendOptions{}); err != nil {
		t.Fatal(err)
	}
	uid := func(n uint32) store.UIDSet { return store.UIDSet{{Start: n, Stop: n}} }
	flag := func(n uint32, f string) func() (any, error) {
		return func() (any, error) {
			r, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uid(n), Op: store.FlagsAdd, Flags: []string{f}})
			return r.ModSeq, err
		}
	}
	appendTo := func(box string) func() (any, error) {
		return func() (any, error) {
			m, err := s.Append(ctx, "u", box, strings.NewReader("Subject: x\r\n\r\nx\r\n"), store.AppendOptions{})
			return m.UID, err
		}
	}
	writes := []func() (any, error){
		appendTo("INBOX"),          // 0: alone, waits for the lock: UID 2
		appendTo("INBOX"),          // 1: UID 3
		flag(1, store.FlagSeen),    // 2
		appendTo("Nope"),           // 3: no such mailbox
		flag(2, store.FlagDeleted), // 4
		func() (any, error) { return s.Expunge(ctx, "u", "INBOX", store.UIDSet{{Start: 1, Stop: 0}}) }, // 5: UID 2
		appendTo("INBOX"), // 6: UID 4
		func() (any, error) { return s.Copy(ctx, "u", "INBOX", "Other", uid(1)) }, // 7: the fourth message
		appendTo("INBOX"),          // 8: over quota
		flag(4, store.FlagFlagged), // 9
	}
	b := newBlocker(t, ctx, dsn)
	b.lock(ctx, `SELECT 1 FROM accounts WHERE id = 'u' FOR UPDATE`)
	before, locksBefore, boxesBefore := tr.commits.Load(), tr.accountLocks.Load(), tr.boxLocks.Load()
	type result struct {
		v   any
		err error
	}
	results := make([]chan result, len(writes))
	for i, w := range writes {
		ch := make(chan result, 1)
		results[i] = ch
		go func() {
			v, err := w()
			ch <- result{v, err}
		}()
		if i == 0 {
			b.waitFor(ctx, 1)
			continue
		}
		deadline := time.Now().Add(30 * time.Second)
		for s.accountWrites.queued() < i {
			if time.Now().After(deadline) {
				t.Fatalf("%d writes queued, want %d", s.accountWrites.queued(), i)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.release()
	got := make([]result, len(writes))
	for i, ch := range results {
		got[i] = <-ch
	}
	if c := tr.commits.Load() - before; c != 2 {
		t.Errorf("%d commits for %d writes queued behind one, want 2", c, len(writes))
	}
	// The account's row is locked by a statement of its own once per
	// transaction: the other writes of the group lock only their
	// mailbox, with the account's columns (lockedHeldSQL).
	if c := tr.accountLocks.Load() - locksBefore; c != 2 {
		t.Errorf("%d statements locking the account for 2 transactions, want 2", c)
	}
	// A mailbox's row is locked by a statement once per transaction
	// too: INBOX in each, Nope (missing) and Other in the second; the
	// later writes to a mailbox take it as the earlier ones left it
	// (txState.boxes).
	if c := tr.boxLocks.Load() - boxesBefore; c != 4 {
		t.Errorf("%d statements locking a mailbox for 2 transactions, want 4", c)
	}
	for i, r := range got {
		var qe *store.QuotaError
		switch i {
		case 3:
			if !errors.Is(r.err, store.ErrNoMailbox) {
				t.Errorf("write %d to a missing mailbox: %v, want ErrNoMailbox", i, r.err)
			}
		case 8:
			if !errors.As(r.err, &qe) {
				t.Errorf("write %d over quota: %v, want a QuotaError", i, r.err)
			}
		default:
			if r.err != nil {
				t.Errorf("write %d: %v", i, r.err)
			}
		}
	}
	if got[0].v != uint32(2) || got[1].v != uint32(3) || got[6].v != uint32(4) {
		t.Errorf("appended UIDs %v %v %v, want 2 3 4", got[0].v, got[1].v, got[6].v)
	}
	if v, _ := got[5].v.([]uint32); !slices.Equal(v, []uint32{2}) {
		t.Errorf("expunged %v, want [2]", got[5].v)
	}
	if v, _ := got[7].v.([]store.UIDPair); len(v) != 1 || v[0] != (store.UIDPair{Src: 1, Dst: 1}) {
		t.Errorf("copied %v, want 1 to 1", got[7].v)
	}
	// Each flag change has a MODSEQ above the one before it.
	if a, b, c := got[2].v.(uint64), got[4].v.(uint64), got[9].v.(uint64); !(a < b && b < c) {
		t.Errorf("flag MODSEQs %d %d %d, want increasing", a, b, c)
	}
	msgs, err := s.ListMessages(ctx, "u", "INBOX", store.UIDSet{{Start: 1, Stop: 0}})
	if err != nil {
		t.Fatal(err)
	}
	var uids []uint32
	for _, m := range msgs {
		uids = append(uids, m.UID)
	}
	if !slices.Equal(uids, []uint32{1, 3, 4}) || !slices.Contains(msgs[0].Flags, store.FlagSeen) || !slices.Contains(msgs[2].Flags, store.FlagFlagged) {
		t.Fatalf("INBOX after the group: %+v", msgs)
	}
	// This Store's remembered row (mailboxmemo.go) is the one another
	// Store reads from the database.
	mine, err := s.Mailbox(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	other := openTest(t, dsn, Options{})
	theirs, err := other.Mailbox(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if mine.UIDNext != 5 || mine.UIDNext != theirs.UIDNext || mine.HighestModSeq != theirs.HighestModSeq || mine.HighestModSeq != got[9].v.(uint64) {
		t.Fatalf("INBOX here %+v, from the database %+v; want UIDNEXT 5 and the last flag change's MODSEQ %v", mine, theirs, got[9].v)
	}
	if u, _, err := s.Usage(ctx, "u"); err != nil || u.Messages != 4 {
		t.Fatalf("usage %+v (%v), want 4 messages", u, err)
	}
	if problems, err := s.Check(ctx); err != nil || len(problems) != 0 {
		t.Fatalf("check: %v %v", problems, err)
	}
}

// A panic in a transaction fails its members with an error; the key's
// queue goes on.
func TestCommitGroupsPanic(t *testing.T) {
	var g commitGroups[string]
	g.max = 8
	commit := func(_ context.Context, items []string) ([]error, error) {
		if slices.Contains(items, "bad") {
			panic("boom")
		}
		return nil, nil
	}
	err := g.run(context.Background(), "u", "bad", commit)
	if err == nil || !strings.Contains(err.Error(), "panic in a write: boom") {
		t.Fatalf("the panicking write: %v, want an error naming the panic", err)
	}
	done := make(chan error, 1)
	go func() { done <- g.run(context.Background(), "u", "good", commit) }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the next write to the key never ran")
	}
}

// A transaction of one runs under its caller's context, so that its
// caller can give up; one of several under a context that ends only
// when every member's has.
func TestCommitGroupsTransactionContext(t *testing.T) {
	var g commitGroups[string]
	g.max = 8
	type key struct{}
	start, hold := make(chan struct{}), make(chan struct{})
	seen := make(chan context.Context, 2)
	commit := func(ctx context.Context, items []string) ([]error, error) {
		if items[0] == "first" {
			close(start)
			<-hold
		}
		seen <- ctx
		return nil, nil
	}
	alone, cancelAlone := context.WithCancel(context.WithValue(context.Background(), key{}, "first"))
	done := make(chan error, 3)
	go func() { done <- g.run(alone, "u", "first", commit) }()
	<-start
	ctxA, cancelA := context.WithCancel(context.Background())
	ctxB, cancelB := context.WithCancel(context.Background())
	defer cancelB()
	go func() { done <- g.run(ctxA, "u", "a", commit) }()
	for g.queued() < 1 {
		time.Sleep(time.Millisecond)
	}
	go func() { done <- g.run(ctxB, "u", "b", commit) }()
	for g.queued() < 2 {
		time.Sleep(time.Millisecond)
	}
	cancelAlone()
	close(hold)
	if ctx := <-seen; ctx.Value(key{}) != "first" || ctx.Err() == nil {
		t.Fatalf("the lone write ran under %v (err %v), want its caller's context, cancelled", ctx, ctx.Err())
	}
	<-seen // the group's
	for range 3 {
		<-done
	}
	// The group's context: cancelling one member's alone does not end
	// it.
	ctx, stop := groupContext([]*groupMember[string]{{ctx: ctxA}, {ctx: ctxB}})
	defer stop()
	cancelA()
	time.Sleep(10 * time.Millisecond)
	if ctx.Err() != nil {
		t.Fatal("a group's context ended when one member's did")
	}
	cancelB()
	select {
	case <-ctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("a group's context did not end when every member's had")
	}
}

package postgres

import (
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// The NOTIFY payload names namespace and key without escaping, whatever
// they hold; one too long for NOTIFY is "" (forget everything).
func TestRecordPayload(t *testing.T) {
	for _, k := range []recordKey{{"addr", "a@example.com"}, {"ns with space", "key with space"}, {"1 2", " 3"}, {"x", strings.Repeat("k", 7000)}} {
		got, ok := parseRecordPayload(recordPayload(k.namespace, k.key))
		if !ok || got != k {
			t.Errorf("payload of %q round-trips to %q (%v)", k, got, ok)
		}
	}
	if p := recordPayload("x", strings.Repeat("k", 8000)); p != "" {
		t.Errorf("payload of an 8000-byte key is %d bytes, want \"\"", len(p))
	}
	for _, p := range []string{"", "x", "0 a", "5 abc", "-1 ab"} {
		if k, ok := parseRecordPayload(p); ok {
			t.Errorf("payload %q parsed as %q, want malformed", p, k)
		}
	}
}

// A read that an invalidation overtook does not fill the cache (it may
// hold the value from before the write), and the cache answers nothing
// while it is off (the listener is away).
func TestRecordCacheGenerations(t *testing.T) {
	c := newRecordCache()
	old := store.Record{Namespace: "n", Key: "k", Value: []byte("old"), Version: 1}
	_, _, _, gen := c.get("n", "k")
	c.done(gen, true, "n", "k", old, true)
	if _, _, hit, _ := c.get("n", "k"); hit || len(c.entries) != 0 {
		t.Fatal("the cache filled while off")
	}
	c.setOn(true)
	_, _, _, gen = c.get("n", "k")
	_, _, _, gen2 := c.get("n", "other")
	c.notified(recordPayload("n", "k")) // a write committed during the read
	c.done(gen, true, "n", "k", old, true)
	c.done(gen2, true, "n", "other", store.Record{}, false)
	if _, found, hit, _ := c.get("n", "other"); !hit || found {
		t.Fatal("a write of another key kept a read's not-found answer out of the cache")
	}
	if _, _, hit, _ := c.get("n", "k"); hit {
		t.Fatal("a read overtaken by an invalidation filled the cache")
	}
	_, _, _, gen = c.get("n", "k")
	c.done(gen, true, "n", "k", old, true)
	rec, found, hit, _ := c.get("n", "k")
	if !hit || !found || string(rec.Value) != "old" || rec.Version != 1 {
		t.Fatalf("after a clean fill: %+v found %v hit %v", rec, found, hit)
	}
	rec.Value[0] = 'X' // the caller's copy
	if rec, _, _, _ = c.get("n", "k"); string(rec.Value) != "old" {
		t.Fatalf("a caller's change to Value reached the cache: %q", rec.Value)
	}
	c.notified("") // too long a key somewhere: forget everything
	if _, _, hit, _ = c.get("n", "k"); hit {
		t.Fatal("an empty payload did not empty the cache")
	}
	_, _, _, gen = c.get("n", "k")
	c.done(gen, true, "n", "k", old, true)
	c.setOn(false)
	if _, _, hit, _ = c.get("n", "k"); hit {
		t.Fatal("the cache answered after the listener was lost")
	}
	c.setOn(true)
	if _, _, hit, _ = c.get("n", "k"); hit {
		t.Fatal("the cache kept an entry across the listener's loss")
	}
}

// waitRecord polls s until namespace/key reads as want ("" for not
// found), and fails after 10 s: a change on another node is seen once
// its notification arrived.
func waitRecord(t *testing.T, s *Store, key, want string) time.Duration {
	t.Helper()
	ctx := ctxFor(t)
	start := time.Now()
	for {
		r, err := s.GetRecord(ctx, "test", key)
		got := string(r.Value)
		if errors.Is(err, store.ErrNotFound) {
			got, err = "", nil
		}
		if err != nil {
			t.Fatal(err)
		}
		if got == want {
			return time.Since(start)
		}
		if time.Since(start) > 10*time.Second {
			t.Fatalf("node reads %s as %q 10 s after the change, want %q", key, got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// GetRecord answers from the cache without a round trip, and a create,
// update and delete on node A reach node B's cache (found and not found
// answers alike), also after B's listening connection was killed; B's
// own write is seen by B's next read at once.
func TestRecordCacheAcrossNodes(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	tr := &countTracer{}
	a := openTest(t, dsn, Options{})
	b := openTest(t, dsn, Options{Tracer: tr})
	select {
	case <-b.feed.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("node B never started listening")
	}
	put := func(s *Store, key, value string) {
		t.Helper()
		err := s.UpdateRecords(ctx, func(tx store.RecordTx) error {
			if value == "" {
				return tx.Delete("test", key)
			}
			return tx.Put("test", key, []byte(value), -1)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// notes waits until B handled n notifications: then no late one
	// can empty B's cache during the counting below.
	notes := func(n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for b.records.notes.Load() < n {
			if time.Now().After(deadline) {
				t.Fatalf("B handled %d record notifications, want %d", b.records.notes.Load(), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	put(a, "k", "v1")
	notes(1)
	waitRecord(t, b, "k", "v1")
	waitRecord(t, b, "missing", "")
	n := tr.n.Load()
	for range 5 {
		waitRecord(t, b, "k", "v1")
		waitRecord(t, b, "missing", "")
	}
	if got := tr.n.Load() - n; got != 0 {
		t.Errorf("10 cached reads sent %d statements, want 0", got)
	}

	put(a, "missing", "now")
	t.Logf("a create on A seen on B after %v", waitRecord(t, b, "missing", "now"))
	put(a, "k", "v2")
	t.Logf("an update on A seen on B after %v", waitRecord(t, b, "k", "v2"))
	put(a, "k", "")
	t.Logf("a delete on A seen on B after %v", waitRecord(t, b, "k", ""))

	// B's own writes: the very next read sees them.
	for _, v := range []string{"b1", "", "b2"} {
		put(b, "k", v)
		r, err := b.GetRecord(ctx, "test", "k")
		if v == "" {
			if !errors.Is(err, store.ErrNotFound) {
				t.Fatalf("B read its deleted record: %q, %v", r.Value, err)
			}
			continue
		}
		if err != nil || string(r.Value) != v {
			t.Fatalf("B read %q (%v) right after writing %q", r.Value, err, v)
		}
	}

	// B's listener is killed and A writes meanwhile: B may have missed
	// the notification, so its cache must not answer with the old value.
	waitRecord(t, b, "missing", "now")
	pid := b.feed.listenPID.Load()
	var killed bool
	if err := a.pool.QueryRow(ctx, `SELECT pg_terminate_backend($1)`, int32(pid)).Scan(&killed); err != nil || !killed {
		t.Fatalf("pg_terminate_backend(%d): %v %v", pid, killed, err)
	}
	put(a, "missing", "after kill")
	waitRecord(t, b, "missing", "after kill")
	deadline := time.Now().Add(10 * time.Second)
	for b.feed.listenPID.Load() == pid {
		if time.Now().After(deadline) {
			t.Fatal("B's listener did not reconnect")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// Listening again, B sees A's next change and caches again. Once B
	// handled its notification, no earlier one can still arrive (a
	// connection gets them in commit order).
	n0 := b.records.notes.Load()
	put(a, "missing", "again")
	notes(n0 + 1)
	waitRecord(t, b, "missing", "again")
	n = tr.n.Load()
	waitRecord(t, b, "missing", "again")
	if got := tr.n.Load() - n; got != 0 {
		t.Errorf("a cached read after the reconnect sent %d statements, want 0", got)
	}
}

// While reads are always in flight (a busy node), the keys invalidated
// meanwhile (every node's writes, such as authlimit's entry per failed
// login) are remembered for them: that memory is bounded too, and a
// read overtaken by those invalidations still does not fill.
func TestRecordCacheTouchedBounded(t *testing.T) {
	c := newRecordCache()
	c.setOn(true)
	_, _, _, slow := c.get("n", "k1")
	for i := range 3 * recordCacheEntries {
		// Another read ends and the next begins, so one is always in
		// flight besides the slow one.
		_, _, _, gen := c.get("n", "other")
		c.notified(recordPayload("n", "k"+strconv.Itoa(i)))
		c.done(gen, false, "n", "other", store.Record{}, false)
	}
	if len(c.touched) > recordCacheEntries {
		t.Fatalf("%d invalidated keys remembered for reads in flight, want at most %d", len(c.touched), recordCacheEntries)
	}
	c.done(slow, true, "n", "k1", store.Record{Namespace: "n", Key: "k1", Value: []byte("old"), Version: 1}, true)
	if _, _, hit, _ := c.get("n", "k1"); hit {
		t.Fatal("a read overtaken by an invalidation filled the cache")
	}
}

// The cache is bounded in bytes as well as entries: not-found answers
// for long keys an attacker chooses (directory lookups of addresses
// that do not exist) and large values alike.
func TestRecordCacheBytesBounded(t *testing.T) {
	c := newRecordCache()
	c.setOn(true)
	fill := func(key string, rec store.Record, found bool) {
		_, _, _, gen := c.get("n", key)
		c.done(gen, true, "n", key, rec, found)
	}
	long := strings.Repeat("x", 8<<10)
	for i := range recordCacheEntries {
		fill(long+strconv.Itoa(i), store.Record{}, false)
	}
	val := make([]byte, recordCacheMaxEntry-16)
	for i := range recordCacheEntries {
		k := "v" + strconv.Itoa(i)
		fill(k, store.Record{Namespace: "n", Key: k, Value: val, Version: 1}, true)
	}
	var size int
	for k, e := range c.entries {
		size += len(k.namespace) + len(k.key) + len(e.value)
	}
	if size > recordCacheBytes || size != c.bytes {
		t.Fatalf("the cache holds %d bytes (counted %d), want at most %d", size, c.bytes, recordCacheBytes)
	}
	if len(c.entries) == 0 {
		t.Fatal("nothing cached")
	}
	huge := strings.Repeat("y", recordCacheMaxEntry)
	fill(huge, store.Record{}, false)
	if _, _, hit, _ := c.get("n", huge); hit {
		t.Fatal("a not-found answer for a key longer than recordCacheMaxEntry was cached")
	}
}

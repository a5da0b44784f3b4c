package postgres

import (
	"bytes"
	"errors"
	"net"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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

// hangProxy forwards TCP connections to a PostgreSQL server; hang makes
// the connections that sent LISTEN stop forwarding either way while
// they stay open, which is how a connection looks to the client when
// the server's host died, a firewall forgot it or a proxy got stuck: no
// error and no notifications. Connections made after hang work.
type hangProxy struct {
	ln     net.Listener
	target string

	mu    sync.Mutex
	conns []*proxied
}

type proxied struct {
	client, server net.Conn
	listener       atomic.Bool // it sent LISTEN
	frozen         atomic.Bool
}

func newHangProxy(t *testing.T, target string) *hangProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &hangProxy{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, c := range p.conns {
			c.client.Close()
			c.server.Close()
		}
	})
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			pc := &proxied{client: c, server: s}
			p.mu.Lock()
			p.conns = append(p.conns, pc)
			p.mu.Unlock()
			go pc.copy(s, c, true)
			go pc.copy(c, s, false)
		}
	}()
	return p
}

// copy forwards src to dst until either closes, dropping what a frozen
// connection carries.
func (pc *proxied) copy(dst, src net.Conn, fromClient bool) {
	defer dst.Close()
	buf := make([]byte, 32<<10)
	var tail []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if fromClient {
				seen := append(tail, buf[:n]...)
				if bytes.Contains(seen, []byte("LISTEN ")) {
					pc.listener.Store(true)
				}
				tail = append([]byte{}, seen[max(0, len(seen)-8):]...)
			}
			if !pc.frozen.Load() {
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
		}
		if err != nil {
			return
		}
	}
}

// hang freezes the connections that sent LISTEN.
func (p *hangProxy) hang() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := 0
	for _, c := range p.conns {
		if c.listener.Load() && !c.frozen.Load() {
			c.frozen.Store(true)
			n++
		}
	}
	return n
}

// Node B's listening connection hangs without an error (its packets go
// nowhere): B must stop trusting its record cache within a bounded time
// instead of answering an entry that A changed meanwhile for as long as
// the connection looks open.
func TestRecordCacheListenerHangs(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newHangProxy(t, u.Host)
	u.Host = p.ln.Addr().String()
	a := openTest(t, dsn, Options{})
	b := openTest(t, u.String(), Options{})
	select {
	case <-b.feed.listening:
	case <-time.After(10 * time.Second):
		t.Fatal("node B never started listening")
	}
	put := func(v string) {
		t.Helper()
		if err := a.UpdateRecords(ctx, func(tx store.RecordTx) error { return tx.Put("test", "k", []byte(v), -1) }); err != nil {
			t.Fatal(err)
		}
	}
	cached := func() bool {
		_, _, hit, gen := b.records.get("test", "k")
		if !hit {
			b.records.done(gen, false, "test", "k", store.Record{}, false)
		}
		return hit
	}
	put("v1")
	for deadline := time.Now().Add(10 * time.Second); b.records.notes.Load() < 1; time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("B never got A's record notification")
		}
	}
	waitRecord(t, b, "k", "v1")
	if !cached() {
		t.Fatal("B did not cache the record it read")
	}
	if p.hang() == 0 {
		t.Fatal("no listening connection went through the proxy")
	}
	put("v2")
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	for {
		r, err := b.GetRecord(ctx, "test", "k")
		if err == nil && string(r.Value) == "v2" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("B still reads %q (%v) %v after A's change, its listener hung", r.Value, err, time.Since(start))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("A's change seen on B %v after it, B's listener hung", time.Since(start))
}

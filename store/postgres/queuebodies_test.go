package postgres

import (
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

// noDSNRouter refuses every DSN recipient; the test below sends none.
type noDSNRouter struct{}

func (noDSNRouter) Resolve(context.Context, routing.Envelope, string) (routing.Result, error) {
	return routing.Result{}, errors.New("no DSNs in this test")
}

// A message queued through node A is delivered by node B, which never
// saw it: the body is in the database (queue.Bodies), not in A's
// directory. Before, B found no body file, took the message for one an
// administrator deleted, and dropped its recipient without a word.
func TestQueueBodyDeliveredByOtherNode(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	a, b := openTest(t, dsn, Options{}), openTest(t, dsn, Options{})
	hop := testhop.Start(t, testhop.Options{})
	nh, err := routing.ParseNextHop("[127.0.0.1]:" + hop.Port)
	if err != nil {
		t.Fatal(err)
	}
	newQueue := func(s *Store, owner string) *queue.Queue {
		q, err := queue.New(queue.Options{Store: s, Bodies: s, Deliverer: s, Router: noDSNRouter{},
			Hostname: "mx.example.test", Owner: owner, PollInterval: 100 * time.Millisecond, Logger: slog.New(slog.NewTextHandler(testWriter{t}, nil))})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		return q
	}
	qa, qb := newQueue(a, "node-a"), newQueue(b, "node-b")
	// Three chunks and a bit: the body crosses chunk boundaries.
	body := "Subject: through A\r\n\r\n" + strings.Repeat("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcd\r\n", 3*chunkSize/64+7)
	d := routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: "bob@remote.test",
		Hop: routing.Hop{NextHop: nh, TLS: routing.TLSNone}}
	id, err := qa.Enqueue(ctx, "alice@example.test", []routing.Decision{d}, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if err := qb.Start(ctx); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for len(hop.Received()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("node B never delivered the message node A queued")
		}
		time.Sleep(20 * time.Millisecond)
	}
	got := hop.Received()
	if len(got) != 1 || !strings.HasSuffix(strings.ReplaceAll(got[0].Data, "\r\n", "\n"), strings.ReplaceAll(body[len("Subject: through A\r\n\r\n"):], "\r\n", "\n")) {
		t.Fatalf("next hop got %d messages; first %d bytes", len(got), len(got[0].Data))
	}
	for {
		rs, err := b.MessageRecipients(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := b.OpenQueueBody(ctx, id); len(rs) == 0 && errors.Is(err, fs.ErrNotExist) {
			break // settled, and the body removed with its last recipient
		}
		if time.Now().After(deadline) {
			t.Fatalf("after delivery: %d recipients left, body open: %v", len(rs), err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Queue bodies: round trips at and around chunk boundaries, missing and
// removed bodies, and the sweep of bodies without recipients.
func TestQueueBodies(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	now := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	clock := now
	s := openTest(t, dsn, Options{Now: func() time.Time { return clock }})
	for i, n := range []int{0, 1, chunkSize - 1, chunkSize, chunkSize + 1, 2 * chunkSize} {
		id := "body" + string(rune('a'+i))
		data := bytes.Repeat([]byte{byte('A' + i)}, n)
		size, err := s.PutQueueBody(ctx, id, bytes.NewReader(data))
		if err != nil || size != int64(n) {
			t.Fatalf("put %d bytes: size %d, %v", n, size, err)
		}
		r, err := s.OpenQueueBody(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		back, err := io.ReadAll(r)
		if err != nil || !bytes.Equal(back, data) {
			t.Fatalf("%d bytes put, %d read back (%v)", n, len(back), err)
		}
	}
	if _, err := s.PutQueueBody(ctx, "bodya", strings.NewReader("again")); err == nil {
		t.Fatal("a second body under one id was accepted")
	}
	if _, err := s.OpenQueueBody(ctx, "nosuch"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a missing body: %v, want fs.ErrNotExist", err)
	}
	// Removed while read: an error, not a short body taken for whole.
	r, err := s.OpenQueueBody(ctx, "bodyf")
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RemoveQueueBody(ctx, "bodyf"); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("reading a body removed meanwhile: %v, want fs.ErrNotExist", err)
	}
	if err := s.RemoveQueueBody(ctx, "bodyf"); err != nil {
		t.Fatalf("removing a missing body: %v", err)
	}
	// bodyb has a recipient; the others do not. The sweep before
	// their time keeps all; after it, only bodyb.
	if err := s.EnqueueRecipients(ctx, []queue.Recipient{{Msg: "bodyb", Address: "x@remote.test", Size: 1, Created: now, Next: now}}); err != nil {
		t.Fatal(err)
	}
	if err := s.SweepQueueBodies(ctx, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenQueueBody(ctx, "bodya"); err != nil {
		t.Fatalf("sweep removed a body written at the cut: %v", err)
	}
	if err := s.SweepQueueBodies(ctx, now.Add(time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"bodya", "bodyc", "bodyd", "bodye"} {
		if _, err := s.OpenQueueBody(ctx, id); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s without recipients survived the sweep: %v", id, err)
		}
	}
	if _, err := s.OpenQueueBody(ctx, "bodyb"); err != nil {
		t.Fatalf("the sweep removed a body with a recipient: %v", err)
	}
}

// testWriter sends log lines to the test's log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

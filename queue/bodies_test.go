package queue_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

// memBodies is a queue.Bodies in memory whose bodies can be made
// unreadable, as a body another node wrote is to a node that keeps
// bodies in its own directory.
type memBodies struct {
	mu     sync.Mutex
	bodies map[string][]byte
	lost   bool
}

func (b *memBodies) PutQueueBody(_ context.Context, id string, r io.Reader) (int64, error) {
	data, err := io.ReadAll(r)
	if err != nil {
		return 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.bodies[id] = data
	return int64(len(data)), nil
}

func (b *memBodies) OpenQueueBody(_ context.Context, id string) (io.ReadCloser, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	data, ok := b.bodies[id]
	if !ok || b.lost {
		return nil, fmt.Errorf("body %s: %w", id, fs.ErrNotExist)
	}
	return io.NopCloser(bytes.NewReader(data)), nil
}

func (b *memBodies) RemoveQueueBody(_ context.Context, id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.bodies, id)
	return nil
}

func (b *memBodies) SweepQueueBodies(context.Context, time.Time) error { return nil }

func (b *memBodies) count() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.bodies)
}

// TestQueueBodyUnreadableKeepsRecipients: a recipient whose body this
// queue cannot read stays queued as a temporary failure, and goes out
// once the body is readable. Before, the queue took a missing body for
// one an administrator deleted and removed the recipient without a DSN:
// on two nodes sharing a PostgreSQL store, every message one node
// queued and the other claimed was lost that way.
func TestQueueBodyUnreadableKeepsRecipients(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	bodies := &memBodies{bodies: map[string][]byte{}, lost: true}
	f := newQueueFixture(t, routing.Config{}, func(o *queue.Options) {
		fastRetries(o)
		o.Bodies = bodies
		o.Expiry, o.DelayWarning = 24*time.Hour, -1
	})
	nh, err := routing.ParseNextHop("[127.0.0.1]:" + hop.Port)
	if err != nil {
		t.Fatal(err)
	}
	d := routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: "bob@remote.test",
		Hop: routing.Hop{NextHop: nh, TLS: routing.TLSNone}}
	if _, err := f.q.Enqueue(context.Background(), "alice@example.test", []routing.Decision{d}, strings.NewReader(queueBody)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a failed attempt recorded", func() bool {
		l := f.list(t)
		return len(l) == 1 && l[0].Attempts >= 1 && strings.Contains(l[0].LastError, "queue body unreadable")
	})
	if n := len(hop.Received()); n != 0 {
		t.Fatalf("next hop got %d messages without a body", n)
	}
	bodies.mu.Lock()
	bodies.lost = false
	bodies.mu.Unlock()
	eventually(t, "delivery once the body is readable", func() bool {
		return len(hop.Received()) == 1 && len(f.list(t)) == 0 && bodies.count() == 0
	})
	if files := f.files(t); len(files) != 0 {
		t.Fatalf("queue directory holds %v although Bodies keeps the bodies", files)
	}
}

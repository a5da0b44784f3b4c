package queue_test

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// A recipient keeps its transport's name, not its hop: when the route's
// password is fixed (and its smarthost moved) in the configuration, mail
// already queued goes with the new ones, and nothing queued holds the
// password.
func TestQueueRouteDecidedAtDelivery(t *testing.T) {
	serverTLS, _ := testTLS(t)
	old := testhop.Start(t, testhop.Options{TLS: serverTLS, Auth: true})
	moved := testhop.Start(t, testhop.Options{TLS: serverTLS, Auth: true})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{
		old.Route("remote.test", routing.TLSRequired, &routing.Credentials{Username: "relay", Password: "wrong-password"}),
	}}, func(o *queue.Options) { fastRetries(o); o.Expiry = time.Hour; o.DelayWarning = -1 })
	id := f.enqueue(t, "alice@example.test", queueBody, "bob@remote.test")
	eventually(t, "a refused login", func() bool {
		l := f.list(t)
		return len(l) == 1 && strings.Contains(l[0].LastError, "535")
	})
	rs, err := f.st.MessageRecipients(context.Background(), id)
	if err != nil || len(rs) != 1 {
		t.Fatalf("stored: %+v, %v", rs, err)
	}
	if b, _ := json.Marshal(rs[0]); strings.Contains(string(b), "wrong-password") || rs[0].Transport != "remote.test" {
		t.Fatalf("stored recipient %s: want transport remote.test and no password", b)
	}
	f.cfg = routing.Config{Routes: []routing.Route{
		moved.Route("remote.test", routing.TLSRequired, &routing.Credentials{Username: "relay", Password: "secret"}),
	}}
	f.restart(t)
	eventually(t, "delivery with the new configuration", func() bool { return len(moved.Received()) == 1 })
	if m := moved.Received()[0]; m.Auth != "relay" || m.To[0] != "bob@remote.test" {
		t.Fatalf("moved hop got %+v", m)
	}
	if len(old.Received()) != 0 {
		t.Fatal("the old hop got the message")
	}
}

// A recipient whose route is gone from the configuration is deferred with
// a reason, not sent elsewhere.
func TestQueueRouteRemovedDefers(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	f := newQueueFixture(t, routing.Config{}, func(o *queue.Options) {
		fastRetries(o)
		o.Expiry, o.DelayWarning = time.Hour, -1
	})
	nh, err := routing.ParseNextHop("[127.0.0.1]:" + hop.Port)
	if err != nil {
		t.Fatal(err)
	}
	d := routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: "bob@remote.test",
		Hop: routing.Hop{NextHop: nh, TLS: routing.TLSNone, Route: "remote.test"}}
	if _, err := f.q.Enqueue(context.Background(), "alice@example.test", []routing.Decision{d}, strings.NewReader(queueBody)); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a deferral naming the transport", func() bool {
		l := f.list(t)
		return len(l) == 1 && l[0].Attempts >= 1 && strings.Contains(l[0].LastError, `transport "remote.test" is no longer`)
	})
	if len(hop.Received()) != 0 {
		t.Fatal("delivered without a route")
	}
}

// oldRecord is a recipient as smtp.Queue stored it before package queue
// (namespace "queue", key MSGID/NNNN), with the frozen hop and its
// password.
func oldRecord(msg string, i int, rcpt, nextHop string, created time.Time) (string, []byte) {
	v := fmt.Sprintf(`{"msg":%q,"from":"alice@example.test","rcpt":%q,"hop":{"next_hop":%q,"tls":"none","user":"relay","pass":"secret","route":"remote.test"},"size":%d,"created":%q,"next":%q,"attempts":2,"last_error":"451 4.2.0 later"}`,
		msg, rcpt, nextHop, len(queueBody), created.Format(time.RFC3339Nano), created.Format(time.RFC3339Nano))
	return fmt.Sprintf("%s/%04d", msg, i), []byte(v)
}

// A data directory with a queue in the old format (JSON records in
// store.Records) loses nothing: Start moves every recipient into the
// queue's table once, with its attempt state, removes the records, and
// delivers through the route as configured now.
func TestQueueMigratesOldRecords(t *testing.T) {
	hop := testhop.Start(t, testhop.Options{})
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{hop.Route("remote.test", routing.TLSNone, nil)}},
		func(o *queue.Options) { o.RetryMin = time.Hour })
	f.q.Close()
	ctx := context.Background()
	created := time.Now().Add(-time.Hour).UTC()
	const msg = "mabc123old"
	if err := os.WriteFile(filepath.Join(f.qdir, msg), []byte(queueBody), 0o600); err != nil {
		t.Fatal(err)
	}
	err := f.st.UpdateRecords(ctx, func(tx store.RecordTx) error {
		for i, rcpt := range []string{"bob@remote.test", "carol@remote.test"} {
			// The frozen next hop is a dead port: the route decides.
			k, v := oldRecord(msg, i, rcpt, "[127.0.0.1]:1", created)
			if err := tx.Put(queue.Namespace, k, v, 0); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// As if a first run had moved bob and crashed before it deleted the
	// records: he is not queued twice.
	if err := f.st.EnqueueRecipients(ctx, []queue.Recipient{{Msg: msg, Index: 0, From: "alice@example.test", Address: "bob@remote.test",
		Transport: "remote.test", Size: int64(len(queueBody)), Created: created, Next: created, Attempts: 2, LastError: "451 4.2.0 later"}}); err != nil {
		t.Fatal(err)
	}
	o := f.opts
	o.Dir, o.Store, o.Records, o.Deliverer, o.Router = f.qdir, f.st, f.st, f.st, f.table
	o.TLSConfig = &tls.Config{}
	o.Now = func() time.Time { return created.Add(-time.Minute) } // nothing is due yet
	q, err := queue.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.Start(ctx); err != nil {
		t.Fatal(err)
	}
	l, err := q.List(ctx)
	q.Close()
	if err != nil || len(l) != 2 || l[0].ID != msg || l[0].Recipient != "bob@remote.test" || l[1].Recipient != "carol@remote.test" ||
		l[0].Attempts != 2 || l[0].LastError != "451 4.2.0 later" || l[0].Route != "remote.test" || !l[0].Created.Equal(created) {
		t.Fatalf("after the move: %+v, %v", l, err)
	}
	if recs, err := f.st.ListRecords(ctx, queue.Namespace, "", 0); err != nil || len(recs) != 0 {
		t.Fatalf("old records left: %d, %v", len(recs), err)
	}
	f.startQueue(t) // now due: delivered through the route's hop
	eventually(t, "delivery of the old queue", func() bool { return len(hop.Received()) == 1 })
	if m := hop.Received()[0]; strings.Join(m.To, ",") != "bob@remote.test,carol@remote.test" || m.Data != queueBody {
		t.Fatalf("next hop got %+v", m)
	}
	eventually(t, "queue empty", func() bool { return len(f.list(t)) == 0 && len(f.files(t)) == 0 })
}

// The queue claims no more than MaxInFlight recipients at a time: the
// rest of a backlog stays in the Store, unleased, until a worker is done.
func TestQueueInFlightBounded(t *testing.T) {
	port, release := startBlockingHop(t)
	route := routing.Route{Match: "remote.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + port, TLS: routing.TLSNone}}
	f := newQueueFixture(t, routing.Config{Routes: []routing.Route{route}}, func(o *queue.Options) { o.MaxInFlight = 2 })
	for i := range 5 {
		f.enqueue(t, "alice@example.test", queueBody, fmt.Sprintf("r%d@remote.test", i))
	}
	leased := func() int { return f.leased(t) }
	// Both claimed recipients are stuck in DATA: the other three are
	// due, and every Enqueue woke the scheduler, yet none is claimed.
	eventually(t, "two claimed", func() bool { return leased() == 2 })
	release()
	// While the backlog drains, the bound holds at every look.
	most := 0
	eventually(t, "all delivered", func() bool {
		most = max(most, leased())
		return len(f.list(t)) == 0
	})
	if most > 2 {
		t.Fatalf("%d recipients claimed at once with MaxInFlight 2", most)
	}
}

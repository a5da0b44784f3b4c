package queue_test

import (
	"bufio"
	"context"
	"fmt"
	"maps"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
)

// hopScript is how a test next hop (testHop) answers: endOfData gets
// the recipients of each message whose data has ended and returns the
// reply ("": none, ever, as a tarpit); closed, if set, runs when a
// client connection ends.
type hopScript struct {
	endOfData func(rcpts []string) string
	closed    func()
}

// testHop is an SMTP next hop on 127.0.0.1 that accepts every command
// and answers the end of each message's data as h says.
func testHop(t *testing.T, h hopScript) (port string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer func() {
					c.Close()
					if h.closed != nil {
						h.closed()
					}
				}()
				r := bufio.NewReader(c)
				c.Write([]byte("220 test hop ESMTP\r\n"))
				inData := false
				var rcpts []string
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					cmd := strings.TrimSpace(line)
					upper := strings.ToUpper(cmd)
					switch {
					case inData && cmd == ".":
						inData = false
						if reply := h.endOfData(rcpts); reply != "" {
							c.Write([]byte(reply + "\r\n"))
						}
						rcpts = nil
					case inData:
					case strings.HasPrefix(upper, "EHLO"):
						c.Write([]byte("250 test hop\r\n"))
					case strings.HasPrefix(upper, "RCPT TO:"):
						rcpts = append(rcpts, strings.ToLower(strings.Trim(cmd[len("RCPT TO:"):], "<> ")))
						c.Write([]byte("250 ok\r\n"))
					case upper == "DATA":
						inData = true
						c.Write([]byte("354 go on\r\n"))
					default:
						c.Write([]byte("250 ok\r\n"))
					}
				}
			}()
		}
	}()
	_, port, _ = net.SplitHostPort(ln.Addr().String())
	return port
}

// stallingHop answers an SMTP client up to DATA's 354 and then never
// replies to the end of the data, as a tarpit does. closed gets a value
// when the client closes the connection.
func stallingHop(t *testing.T) (port string, closed <-chan struct{}) {
	ch := make(chan struct{}, 16)
	port = testHop(t, hopScript{
		endOfData: func([]string) string { return "" },
		closed:    func() { ch <- struct{}{} },
	})
	return port, ch
}

// TestQueueAttemptEndsWithItsLease: an attempt stalled by the next hop
// does not outlive the lease on its recipients (they could be claimed
// again and sent twice): the connection is cut when the lease ends, and
// the attempt counts as a failure to be retried. Without the cut the
// attempt waits for go-smtp's end-of-data timeout, minutes later.
func TestQueueAttemptEndsWithItsLease(t *testing.T) {
	port, closed := stallingHop(t)
	f := newQueueFixture(t, routing.Config{}, func(o *queue.Options) {
		fastRetries(o)
		o.RetryMin = time.Hour
		o.Lease = 2 * time.Second
		o.Expiry, o.DelayWarning = 24*time.Hour, -1
	})
	nh, err := routing.ParseNextHop("[127.0.0.1]:" + port)
	if err != nil {
		t.Fatal(err)
	}
	d := routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: "bob@tarpit.test",
		Hop: routing.Hop{NextHop: nh, TLS: routing.TLSNone}}
	if _, err := f.q.Enqueue(context.Background(), "alice@example.test", []routing.Decision{d}, strings.NewReader(queueBody)); err != nil {
		t.Fatal(err)
	}
	select {
	case <-closed:
	case <-time.After(8 * time.Second):
		t.Fatal("the stalled attempt still held its connection 4 leases later")
	}
	eventually(t, "the cut attempt recorded as a failure", func() bool {
		l := f.list(t)
		return len(l) == 1 && l[0].Attempts >= 1 && l[0].LastError != ""
	})
}

// countingHop accepts every message, answering the end of its data
// once before has returned; it counts the transactions that reached the
// end of the data by recipient (the message counts as delivered there,
// whatever the client does next).
func countingHop(t *testing.T, before func()) (port string, got func() map[string]int) {
	var mu sync.Mutex
	counts := map[string]int{}
	port = testHop(t, hopScript{endOfData: func(rcpts []string) string {
		mu.Lock()
		for _, a := range rcpts {
			counts[a]++
		}
		mu.Unlock()
		before()
		return "250 queued"
	}})
	return port, func() map[string]int {
		mu.Lock()
		defer mu.Unlock()
		return maps.Clone(counts)
	}
}

// enqueueEach queues n messages of one recipient each, bob<i>@domain,
// routed to the next hop on 127.0.0.1:port, and returns the recipients.
func enqueueEach(t *testing.T, f *queueFixture, port string, n int, domain string) []string {
	t.Helper()
	nh, err := routing.ParseNextHop("[127.0.0.1]:" + port)
	if err != nil {
		t.Fatal(err)
	}
	var rcpts []string
	for i := range n {
		a := fmt.Sprintf("bob%d@%s", i, domain)
		d := routing.Decision{Kind: routing.Relay, Rule: routing.RuleRoute, Address: a,
			Hop: routing.Hop{NextHop: nh, TLS: routing.TLSNone}}
		if _, err := f.q.Enqueue(context.Background(), "alice@example.test", []routing.Decision{d}, strings.NewReader(queueBody)); err != nil {
			t.Fatal(err)
		}
		rcpts = append(rcpts, a)
	}
	return rcpts
}

// deliveredOnce checks that each of rcpts reached the next hop once.
func deliveredOnce(t *testing.T, rcpts []string, counts map[string]int) {
	t.Helper()
	for _, a := range rcpts {
		if counts[a] != 1 {
			t.Errorf("%s got the message %d times, want once (all: %v)", a, counts[a], counts)
		}
	}
}

// TestQueueWaitingJobsDeliveredOnce: jobs claimed together under one
// lease wait for the destination's one worker; an attempt that would
// start late in its claim renews it first (with the claims of the jobs
// still waiting), so none runs into the end of the claim while the next
// hop holds its data. Before the renewal the sixth job started with an
// eighth of the lease left, was cut after the next hop had the message,
// and was sent again: the next hop got it twice.
func TestQueueWaitingJobsDeliveredOnce(t *testing.T) {
	port, got := countingHop(t, func() { time.Sleep(350 * time.Millisecond) })
	f := newQueueFixture(t, routing.Config{}, func(o *queue.Options) {
		fastRetries(o)
		o.Lease = 2 * time.Second
		o.Concurrency, o.PerDestination = 1, 1
		o.Expiry, o.DelayWarning = 24*time.Hour, -1
	})
	rcpts := enqueueEach(t, f, port, 6, "slow.test")
	eventually(t, "every message delivered", func() bool { return len(f.list(t)) == 0 })
	time.Sleep(300 * time.Millisecond) // an attempt still running would show now
	deliveredOnce(t, rcpts, got())
}

// TestQueueRenewsWaitingClaimsTogether: jobs claimed together wait for
// the destination's one worker, each attempt taking a sixth of the lease
// on the queue's clock. A claim is renewed only for an attempt that
// starts more than a quarter lease after it, and then with the claims of
// every job still waiting, in one store write: every second attempt
// renews, n attempts cost (n-1)/2 renewals, and each message is still
// delivered once. Before, every attempt renewed its own claim first: n
// renewals, one store write per message.
func TestQueueRenewsWaitingClaimsTogether(t *testing.T) {
	const lease, n = time.Hour, 12
	c := queueClock()
	release := make(chan struct{})
	open := sync.OnceFunc(func() { close(release) })
	t.Cleanup(open)
	port, got := countingHop(t, func() {
		<-release
		c.Add(lease / 6)
	})
	f := newQueueFixture(t, routing.Config{}, func(o *queue.Options) {
		o.Now = c.Now
		o.Lease = lease
		o.Concurrency, o.PerDestination = 1, 1
		o.RetryMin, o.Expiry, o.DelayWarning = time.Hour, 24*time.Hour, -1
	})
	rcpts := enqueueEach(t, f, port, n, "slow.test")
	// The first attempt holds the worker in the next hop until every
	// message is claimed: the claims all end at the same time.
	eventually(t, "every message claimed", func() bool { return f.leased(t) == n })
	open()
	eventually(t, "every message delivered", func() bool { return len(f.list(t)) == 0 })
	deliveredOnce(t, rcpts, got())
	if got, want := f.writes.renewals.Load(), int64((n-1)/2); got != want {
		t.Errorf("%d renewals, want %d: %s", got, want, f.writes.perMessage(n))
	}
	t.Log(f.writes.perMessage(n))
}

// TestQueueRelayRenewsNothing: messages relayed as they come, each
// attempt starting well within a quarter lease of its claim, cost no
// renewal: enqueue, claim (shared by the messages it finds) and settle
// are all the store writes. Before, each attempt renewed its claim: one
// write per message more.
func TestQueueRelayRenewsNothing(t *testing.T) {
	const n = 60
	port, got := countingHop(t, func() {})
	f := newQueueFixture(t, routing.Config{}, func(o *queue.Options) {
		fastRetries(o)
		o.Lease = time.Minute
		o.Expiry, o.DelayWarning = 24*time.Hour, -1
	})
	rcpts := enqueueEach(t, f, port, n, "fast.test")
	eventually(t, "every message delivered", func() bool { return len(f.list(t)) == 0 })
	deliveredOnce(t, rcpts, got())
	if got := f.writes.renewals.Load(); got != 0 {
		t.Errorf("%d renewals, want none: %s", got, f.writes.perMessage(n))
	}
	t.Log(f.writes.perMessage(n))
}

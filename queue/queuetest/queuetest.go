// Package queuetest holds the conformance tests of queue.Store: every
// implementation (store/sqlite, store/memstore, later store/postgres)
// runs Run from its own tests, which shows that the queue's behaviour
// does not depend on the backend.
package queuetest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store"
)

// Run runs every conformance test; open returns a new, empty Store for
// one subtest (closed by the caller's cleanup).
func Run(t *testing.T, open func(t *testing.T) queue.Store) {
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, s queue.Store)
	}{
		{"EnqueueRoundTrip", testEnqueueRoundTrip},
		{"EnqueueAllOrNothing", testEnqueueAllOrNothing},
		{"ClaimDueOnly", testClaimDueOnly},
		{"ClaimLeaseExclusive", testClaimLeaseExclusive},
		{"Settle", testSettle},
		{"SettleKeepsHold", testSettleKeepsHold},
		{"RenewLeases", testRenewLeases},
		{"RenewLeasesPerClaim", testRenewLeasesPerClaim},
		{"ReleaseLeases", testReleaseLeases},
		{"NextDue", testNextDue},
		{"UpdateMessage", testUpdateMessage},
		{"ListPages", testListPages},
		{"Count", testCount},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

// t0 is the tests' "now"; times are whole microseconds so that every
// backend keeps them exactly.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

func rcpt(msg string, i int, next time.Time) queue.Recipient {
	return queue.Recipient{
		Msg: msg, Index: i, From: "alice@example.test", Address: fmt.Sprintf("r%d@remote.test", i),
		Transport: "remote.test", NextHop: "[192.0.2.1]:25", TLS: routing.TLSRequired, Size: 1234,
		Created: t0.Add(-time.Hour), Next: next,
	}
}

func enqueue(t *testing.T, s queue.Store, rs ...queue.Recipient) {
	t.Helper()
	if err := s.EnqueueRecipients(context.Background(), rs); err != nil {
		t.Fatal(err)
	}
}

func claim(t *testing.T, s queue.Store, owner string, now time.Time, limit int) []queue.Recipient {
	t.Helper()
	rs, err := s.ClaimRecipients(context.Background(), owner, now, now.Add(time.Minute), limit)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func keys(rs []queue.Recipient) string {
	out := ""
	for _, r := range rs {
		out += fmt.Sprintf("%s/%d ", r.Msg, r.Index)
	}
	return out
}

func message(t *testing.T, s queue.Store, msg string) []queue.Recipient {
	t.Helper()
	rs, err := s.MessageRecipients(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func same(a, b queue.Recipient) bool {
	return a.Msg == b.Msg && a.Index == b.Index && a.From == b.From && a.Address == b.Address && a.Transport == b.Transport &&
		a.NextHop == b.NextHop && a.TLS == b.TLS && a.UTF8 == b.UTF8 && a.Size == b.Size && a.Created.Equal(b.Created) &&
		a.Next.Equal(b.Next) && a.Attempts == b.Attempts && a.Held == b.Held && a.Warned == b.Warned &&
		a.LastError == b.LastError && a.RemoteMTA == b.RemoteMTA && a.LeaseOwner == b.LeaseOwner && a.LeaseUntil.Equal(b.LeaseUntil)
}

// Every field comes back as it went in.
func testEnqueueRoundTrip(t *testing.T, s queue.Store) {
	a, b := rcpt("m1", 0, t0), rcpt("m1", 1, t0)
	b.From, b.UTF8, b.Transport, b.NextHop, b.TLS = "", true, "", "", routing.TLSOpportunistic
	b.Attempts, b.Held, b.Warned, b.LastError, b.RemoteMTA = 3, true, true, "451 4.2.0 later", "mx.remote.test"
	enqueue(t, s, a, b)
	got := message(t, s, "m1")
	if len(got) != 2 || !same(got[0], a) || !same(got[1], b) {
		t.Fatalf("MessageRecipients = %+v\nwant %+v\n and %+v", got, a, b)
	}
	if got := message(t, s, "nosuch"); len(got) != 0 {
		t.Fatalf("unknown message: %+v", got)
	}
}

// A batch with a recipient already queued adds nothing; bad input is
// store.ErrInvalid and adds nothing.
func testEnqueueAllOrNothing(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("m1", 0, t0))
	err := s.EnqueueRecipients(ctx, []queue.Recipient{rcpt("m2", 0, t0), rcpt("m1", 0, t0)})
	if !errors.Is(err, queue.ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	if got := message(t, s, "m2"); len(got) != 0 {
		t.Fatalf("a failed batch left %s", keys(got))
	}
	bad := rcpt("m3", 0, t0)
	bad.Address = ""
	for _, batch := range [][]queue.Recipient{nil, {bad}, {rcpt("m3", 0, t0), rcpt("m3", 0, t0)}} {
		if err := s.EnqueueRecipients(ctx, batch); err == nil {
			t.Errorf("batch %+v accepted", batch)
		}
	}
	if err := s.EnqueueRecipients(ctx, []queue.Recipient{bad}); !errors.Is(err, store.ErrInvalid) {
		t.Errorf("no address: %v, want store.ErrInvalid", err)
	}
	if got := message(t, s, "m3"); len(got) != 0 {
		t.Fatalf("bad batches left %s", keys(got))
	}
}

// Claims take due recipients, earliest first, up to the limit, and set
// the lease; held and future ones stay.
func testClaimDueOnly(t *testing.T, s queue.Store) {
	held := rcpt("m1", 2, t0.Add(-3*time.Minute))
	held.Held = true
	enqueue(t, s, rcpt("m1", 0, t0.Add(-time.Minute)), rcpt("m1", 1, t0.Add(time.Minute)), held,
		rcpt("m1", 3, t0.Add(-2*time.Minute)), rcpt("m1", 4, t0))
	got := claim(t, s, "node1", t0, 2)
	if keys(got) != "m1/3 m1/0 " {
		t.Fatalf("claimed %s, want m1/3 m1/0 (earliest first, limit 2)", keys(got))
	}
	for _, r := range got {
		if r.LeaseOwner != "node1" || !r.LeaseUntil.Equal(t0.Add(time.Minute)) {
			t.Errorf("lease of %s/%d: %q until %v", r.Msg, r.Index, r.LeaseOwner, r.LeaseUntil)
		}
	}
	if got := claim(t, s, "node1", t0, 0); keys(got) != "m1/4 " {
		t.Fatalf("second claim: %s, want m1/4", keys(got))
	}
	if got := claim(t, s, "node1", t0, 0); len(got) != 0 {
		t.Fatalf("third claim: %s, want none", keys(got))
	}
}

// A leased recipient is not claimed again, by any owner, until its lease
// ends.
func testClaimLeaseExclusive(t *testing.T, s queue.Store) {
	enqueue(t, s, rcpt("m1", 0, t0))
	if got := claim(t, s, "node1", t0, 0); len(got) != 1 {
		t.Fatalf("claimed %s", keys(got))
	}
	if got := claim(t, s, "node2", t0.Add(30*time.Second), 0); len(got) != 0 {
		t.Fatalf("node2 claimed a leased recipient: %s", keys(got))
	}
	got := claim(t, s, "node2", t0.Add(time.Minute), 0)
	if len(got) != 1 || got[0].LeaseOwner != "node2" {
		t.Fatalf("after the lease ended: %+v", got)
	}
}

// Settling removes delivered recipients, reschedules deferred ones,
// reports emptied messages and ignores what the owner does not lease.
func testSettle(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("m1", 0, t0), rcpt("m1", 1, t0), rcpt("m2", 0, t0), rcpt("m3", 0, t0))
	claim(t, s, "node1", t0, 3) // m1/0, m1/1, m2/0 (ties by key)
	later := t0.Add(10 * time.Minute)
	emptied, err := s.SettleRecipients(ctx, "node1", []queue.Outcome{
		{RecipientKey: queue.RecipientKey{Msg: "m1", Index: 0}, Done: true},
		{RecipientKey: queue.RecipientKey{Msg: "m1", Index: 1}, Next: later, Attempts: 1, Warned: true, LastError: "451 busy", RemoteMTA: "mx"},
		{RecipientKey: queue.RecipientKey{Msg: "m2", Index: 0}, Done: true},
		{RecipientKey: queue.RecipientKey{Msg: "m3", Index: 0}, Done: true}, // not leased by node1
		{RecipientKey: queue.RecipientKey{Msg: "gone", Index: 0}, Done: true},
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(emptied) != "[m2]" {
		t.Errorf("emptied %v, want [m2]", emptied)
	}
	m1 := message(t, s, "m1")
	if len(m1) != 1 || m1[0].Index != 1 || !m1[0].Next.Equal(later) || m1[0].Attempts != 1 || !m1[0].Warned ||
		m1[0].LastError != "451 busy" || m1[0].RemoteMTA != "mx" || m1[0].LeaseOwner != "" || !m1[0].LeaseUntil.IsZero() {
		t.Fatalf("m1 after settle: %+v", m1)
	}
	if len(message(t, s, "m3")) != 1 {
		t.Fatal("a recipient another owner could lease was settled")
	}
}

// A hold set during an attempt survives the attempt's settlement.
func testSettleKeepsHold(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("m1", 0, t0))
	claim(t, s, "node1", t0, 0)
	if n, err := s.UpdateMessage(ctx, "m1", queue.OpHold, t0); err != nil || n != 1 {
		t.Fatalf("hold: %d, %v", n, err)
	}
	if _, err := s.SettleRecipients(ctx, "node1", []queue.Outcome{{RecipientKey: queue.RecipientKey{Msg: "m1"}, Next: t0, Attempts: 1}}); err != nil {
		t.Fatal(err)
	}
	if got := message(t, s, "m1"); len(got) != 1 || !got[0].Held || got[0].Attempts != 1 {
		t.Fatalf("after settle: %+v", got)
	}
	if got := claim(t, s, "node1", t0.Add(time.Hour), 0); len(got) != 0 {
		t.Fatalf("held recipient claimed: %s", keys(got))
	}
}

// ReleaseLeases ends one owner's leases only.
func testReleaseLeases(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("m1", 0, t0), rcpt("m1", 1, t0))
	claim(t, s, "node1", t0, 1)
	claim(t, s, "node2", t0, 1)
	if err := s.ReleaseLeases(ctx, "node1"); err != nil {
		t.Fatal(err)
	}
	got := claim(t, s, "node3", t0, 0)
	if keys(got) != "m1/0 " {
		t.Fatalf("after node1's release, node3 claimed %s, want m1/0", keys(got))
	}
}

// NextDue is the earliest Next of what is neither held nor leased.
func testNextDue(t *testing.T, s queue.Store) {
	ctx := context.Background()
	if _, ok, err := s.NextDue(ctx, t0); err != nil || ok {
		t.Fatalf("empty queue: ok %v, %v", ok, err)
	}
	held := rcpt("m1", 0, t0.Add(time.Minute))
	held.Held = true
	enqueue(t, s, held, rcpt("m1", 1, t0.Add(5*time.Minute)), rcpt("m1", 2, t0.Add(3*time.Minute)), rcpt("m1", 3, t0.Add(-time.Minute)))
	claim(t, s, "node1", t0, 0) // m1/3, due, is leased now
	next, ok, err := s.NextDue(ctx, t0)
	if err != nil || !ok || !next.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("NextDue = %v %v %v, want %v", next, ok, err, t0.Add(3*time.Minute))
	}
}

// The admin operations act on every recipient of one message.
func testUpdateMessage(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("m1", 0, t0.Add(time.Hour)), rcpt("m1", 1, t0.Add(time.Hour)), rcpt("m2", 0, t0.Add(time.Hour)))
	for _, step := range []struct {
		op   queue.MessageOp
		msg  string
		want int
	}{{queue.OpHold, "m1", 2}, {queue.OpRetryNow, "m1", 2}, {queue.OpHold, "nosuch", 0}} {
		if n, err := s.UpdateMessage(ctx, step.msg, step.op, t0); err != nil || n != step.want {
			t.Fatalf("op %d on %s: %d, %v; want %d", step.op, step.msg, n, err, step.want)
		}
	}
	if got := claim(t, s, "node1", t0, 0); len(got) != 0 {
		t.Fatalf("held and due: claimed %s", keys(got))
	}
	if n, err := s.UpdateMessage(ctx, "m1", queue.OpRelease, t0); err != nil || n != 2 {
		t.Fatalf("release: %d, %v", n, err)
	}
	if got := claim(t, s, "node1", t0, 0); keys(got) != "m1/0 m1/1 " {
		t.Fatalf("released and due now: claimed %s", keys(got))
	}
	if n, err := s.UpdateMessage(ctx, "m2", queue.OpDelete, t0); err != nil || n != 1 {
		t.Fatalf("delete: %d, %v", n, err)
	}
	if len(message(t, s, "m2")) != 0 {
		t.Fatal("deleted message still queued")
	}
	if _, err := s.UpdateMessage(ctx, "m1", queue.MessageOp(99), t0); err == nil {
		t.Fatal("unknown operation accepted")
	}
}

// ListRecipients pages in (Msg, Index) order.
func testListPages(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("b", 0, t0), rcpt("b", 1, t0))
	enqueue(t, s, rcpt("a", 0, t0), rcpt("a", 1, t0), rcpt("a", 10, t0))
	var all []queue.Recipient
	var after queue.RecipientKey
	for {
		page, err := s.ListRecipients(ctx, after, 2)
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, page...)
		if len(page) < 2 {
			break
		}
		after = page[len(page)-1].Key()
	}
	if keys(all) != "a/0 a/1 a/10 b/0 b/1 " {
		t.Fatalf("pages: %s", keys(all))
	}
}

// CountRecipients splits by state and finds the oldest.
func testCount(t *testing.T, s queue.Store) {
	ctx := context.Background()
	if c, err := s.CountRecipients(ctx, t0); err != nil || c != (queue.Counts{}) {
		t.Fatalf("empty: %+v, %v", c, err)
	}
	old := rcpt("m1", 2, t0.Add(time.Hour))
	old.Created = t0.Add(-48 * time.Hour)
	held := rcpt("m1", 3, t0)
	held.Held = true
	enqueue(t, s, rcpt("m1", 0, t0), rcpt("m1", 1, t0.Add(time.Hour)), old, held)
	c, err := s.CountRecipients(ctx, t0)
	if err != nil || c.Ready != 1 || c.Deferred != 2 || c.Held != 1 || !c.Oldest.Equal(old.Created) {
		t.Fatalf("counts %+v, %v", c, err)
	}
}

// A renewal extends only the leases of the claim it names: not another
// owner's, not an older claim's of the same owner, not unleased ones.
func testRenewLeases(t *testing.T, s queue.Store) {
	ctx := context.Background()
	enqueue(t, s, rcpt("m1", 0, t0.Add(-3*time.Minute)), rcpt("m1", 1, t0.Add(-2*time.Minute)), rcpt("m2", 0, t0.Add(-time.Minute)))
	held := t0.Add(time.Minute)
	if got := claim(t, s, "a", t0, 2); keys(got) != "m1/0 m1/1 " {
		t.Fatalf("claimed %s", keys(got))
	}
	all := []queue.RecipientKey{{Msg: "m1", Index: 0}, {Msg: "m1", Index: 1}, {Msg: "m2", Index: 0}, {Msg: "nosuch", Index: 0}}
	renew := func(owner string, held, until time.Time) string {
		t.Helper()
		claims := make([]queue.Claim, len(all))
		for i, k := range all {
			claims[i] = queue.Claim{RecipientKey: k, Until: held}
		}
		return renewClaims(t, s, owner, claims, until)
	}
	if got := renew("b", held, t0.Add(5*time.Minute)); got != "" {
		t.Fatalf("another owner renewed %s", got)
	}
	renewed := t0.Add(5 * time.Minute)
	if got := renew("a", held, renewed); got != "m1/0 m1/1 " {
		t.Fatalf("renewed %q, want m1/0 m1/1", got)
	}
	for _, r := range message(t, s, "m1") {
		if r.LeaseOwner != "a" || !r.LeaseUntil.Equal(renewed) {
			t.Fatalf("after renewal %s/%d is leased to %q until %v", r.Msg, r.Index, r.LeaseOwner, r.LeaseUntil)
		}
	}
	if got := renew("a", held, t0.Add(9*time.Minute)); got != "" {
		t.Fatalf("a renewal naming the old lease renewed %s", got)
	}
	// Still leased at the old end: nothing to claim.
	if got := claim(t, s, "b", held.Add(time.Second), 0); keys(got) != "m2/0 " {
		t.Fatalf("claimed %s while the renewed lease runs", keys(got))
	}
	// Once the renewed lease ends, another claim takes them, and the
	// first owner's renewal of its claim no longer applies.
	if got := claim(t, s, "a", renewed.Add(time.Second), 0); keys(got) != "m1/0 m1/1 m2/0 " {
		t.Fatalf("claimed %s after the renewed lease", keys(got))
	}
	if got := renew("a", renewed, renewed.Add(time.Hour)); got != "" {
		t.Fatalf("a renewal of the lease before the new claim renewed %s", got)
	}
	if got, err := s.RenewLeases(ctx, "a", nil, renewed); err != nil || len(got) != 0 {
		t.Fatalf("no claims: %v, %v", got, err)
	}
}

// renewClaims renews claims for owner until until and returns the keys
// renewed, as "msg/index " each.
func renewClaims(t *testing.T, s queue.Store, owner string, claims []queue.Claim, until time.Time) string {
	t.Helper()
	got, err := s.RenewLeases(context.Background(), owner, claims, until)
	if err != nil {
		t.Fatal(err)
	}
	out := ""
	for _, k := range got {
		out += fmt.Sprintf("%s/%d ", k.Msg, k.Index)
	}
	return out
}

// One renewal covers claims that end at different times, each checked
// against its own end: the queue renews the jobs of several claims
// waiting for one destination together.
func testRenewLeasesPerClaim(t *testing.T, s queue.Store) {
	enqueue(t, s, rcpt("m1", 0, t0.Add(-2*time.Minute)), rcpt("m1", 1, t0.Add(-time.Minute)))
	first, second := t0.Add(time.Minute), t0.Add(time.Minute+10*time.Second)
	if got := claim(t, s, "a", t0, 1); keys(got) != "m1/0 " {
		t.Fatalf("first claim %s", keys(got))
	}
	if got := claim(t, s, "a", t0.Add(10*time.Second), 1); keys(got) != "m1/1 " {
		t.Fatalf("second claim %s", keys(got))
	}
	k0, k1 := queue.RecipientKey{Msg: "m1", Index: 0}, queue.RecipientKey{Msg: "m1", Index: 1}
	renewed := t0.Add(5 * time.Minute)
	// m1/1 named with the first claim's end: not its claim.
	if got := renewClaims(t, s, "a", []queue.Claim{{RecipientKey: k0, Until: first}, {RecipientKey: k1, Until: first}}, renewed); got != "m1/0 " {
		t.Fatalf("renewed %q, want m1/0 only", got)
	}
	again := t0.Add(9 * time.Minute)
	if got := renewClaims(t, s, "a", []queue.Claim{{RecipientKey: k0, Until: renewed}, {RecipientKey: k1, Until: second}}, again); got != "m1/0 m1/1 " {
		t.Fatalf("renewed %q, want m1/0 m1/1", got)
	}
	for _, r := range message(t, s, "m1") {
		if r.LeaseOwner != "a" || !r.LeaseUntil.Equal(again) {
			t.Fatalf("after renewal %s/%d is leased to %q until %v", r.Msg, r.Index, r.LeaseOwner, r.LeaseUntil)
		}
	}
}

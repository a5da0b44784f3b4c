package smtp

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/emersion/go-milter"
	"github.com/foxcpp/go-mockdns"

	"github.com/mailyard/mailyard/dkim"
	"github.com/mailyard/mailyard/dkim/dkimstore"
	"github.com/mailyard/mailyard/internal/testhop"
	"github.com/mailyard/mailyard/queue"
	"github.com/mailyard/mailyard/routing"
	"github.com/mailyard/mailyard/store/sqlite"
)

// milterServer starts an MX whose only milter is tm.
func milterServer(t testing.TB, ms ...Milter) *testServer {
	t.Helper()
	return startServer(t, Options{Milters: ms})
}

// The milter sees the connection, HELO, MAIL, each RCPT, every header
// field and the body, streamed in chunks of at most 64 KiB; a message it
// accepts is delivered unchanged.
func TestMilterSeesTheWholeTransaction(t *testing.T) {
	tm := startTestMilter(t)
	ts := milterServer(t, Milter{Name: "av", Address: tm.addr})
	c := ts.client(t)
	big := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz0123456789abcdefghijklmnopq\r\n", 5000) // 335 KB: spooled to a file
	body := "From: <x@remote.test>\r\nSubject: scan\r\n me\r\n\r\n" + big
	if err := send(c, "x@remote.test", []string{"alice@example.test", "bob@example.test"}, body); err != nil {
		t.Fatal(err)
	}
	seen := tm.seen()
	if len(seen) != 1 {
		t.Fatalf("milter saw %d messages", len(seen))
	}
	m := seen[0]
	if m.addr != "127.0.0.1" || m.family != "tcp4" || m.host != "[127.0.0.1]" || m.helo != "client.test" {
		t.Errorf("connection info: %+v", m)
	}
	if m.from != "x@remote.test" || !slices.Equal(m.rcpts, []string{"alice@example.test", "bob@example.test"}) {
		t.Errorf("envelope: from %q rcpts %q", m.from, m.rcpts)
	}
	if len(m.headers) != 2 || m.headers[0] != [2]string{"From", "<x@remote.test>"} || m.headers[1] != [2]string{"Subject", "scan\n me"} {
		t.Errorf("headers: %q", m.headers)
	}
	if string(m.body) != big {
		t.Errorf("body: got %d bytes, want %d", len(m.body), len(big))
	}
	if m.maxChunk > milter.MaxBodyChunk || m.chunks < len(big)/milter.MaxBodyChunk {
		t.Errorf("body in %d chunks of at most %d bytes", m.chunks, m.maxChunk)
	}
	if m.macros["i"] == "" {
		t.Errorf("no queue id macro: %v", m.macros)
	}
	if got := ts.store.stored(); len(got) != 1 || len(got[0].Delivery.Recipients) != 2 {
		t.Fatalf("stored %+v", got)
	}
	if got := ts.store.body(t, 0); !strings.HasSuffix(got, body) {
		t.Fatalf("delivered message changed")
	}
	if n := metricValue(t, ts.rec, "mailyard_smtp_milter_actions_total", "milter", "av", "action", "accept"); n != 1 {
		t.Errorf("accept counter %v", n)
	}
}

// Reject and tempfail at end of message refuse DATA, with the milter's own
// reply when it sets one (SMFIR_REPLYCODE); nothing is delivered.
func TestMilterRejectAndTempfailAtEndOfMessage(t *testing.T) {
	for _, tc := range []struct {
		name string
		resp milter.Response
		code int
		enh  string
		text string
	}{
		{"reject", milter.RespReject, 550, "5.7.1", "message content rejected"},
		{"tempfail", milter.RespTempFail, 451, "4.7.1", "try again later"},
		{"replycode", milter.NewResponseStr('y', "554 5.7.0 Virus found: Eicar-Test-Signature"), 554, "5.7.0", "Virus found: Eicar-Test-Signature"},
		{"replycode-4xx-no-enhanced", milter.NewResponseStr('y', "421 scanner busy"), 421, "4.7.1", "scanner busy"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tm := startTestMilter(t)
			tm.set(func(tm *testMilter) {
				tm.onEOM = func(*milter.Modifier) (milter.Response, error) { return tc.resp, nil }
			})
			ts := milterServer(t, Milter{Name: "av", Address: tm.addr})
			c := ts.client(t)
			err := send(c, "x@remote.test", []string{"alice@example.test"}, "Subject: eicar\r\n\r\nX5O!P%@AP\r\n")
			wantCode(t, err, tc.code, tc.enh)
			if !strings.Contains(err.Error(), tc.text) {
				t.Errorf("reply %q lacks %q", err, tc.text)
			}
			if n := len(ts.store.stored()); n != 0 {
				t.Fatalf("%d messages delivered", n)
			}
			if tc.code == 421 {
				return // go-smtp closes the connection after a 421
			}
			// The session goes on: the next message is asked about again.
			tm.set(func(tm *testMilter) { tm.onEOM = nil })
			if err := send(c, "x@remote.test", []string{"alice@example.test"}, "Subject: clean\r\n\r\nhi\r\n"); err != nil {
				t.Fatal(err)
			}
			if n := len(ts.store.stored()); n != 1 {
				t.Fatalf("%d messages delivered after a clean one", n)
			}
		})
	}
}

// A milter that rejects one recipient at RCPT refuses that recipient
// only; the message goes to the others. One that rejects MAIL refuses the
// transaction.
func TestMilterRcptAndMailStage(t *testing.T) {
	tm := startTestMilter(t)
	tm.set(func(tm *testMilter) {
		tm.onRcpt = func(r string) milter.Response {
			switch r {
			case "bob@example.test":
				return milter.RespReject
			case "carol@example.test":
				return milter.NewResponseStr('y', "450 4.2.1 carol is busy")
			}
			return milter.RespContinue
		}
		tm.onMail = func(from string) milter.Response {
			if from == "spammer@remote.test" {
				return milter.RespReject
			}
			return milter.RespContinue
		}
	})
	ts := milterServer(t, Milter{Name: "dlp", Address: tm.addr})
	c := ts.client(t)
	if err := c.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("bob@example.test", nil), 550, "5.7.1")
	wantCode(t, c.Rcpt("carol@example.test", nil), 450, "4.2.1")
	if err := c.Rcpt("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: hi\r\n\r\nhello\r\n"))
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	got := ts.store.stored()
	if len(got) != 1 || len(got[0].Delivery.Recipients) != 1 || got[0].Delivery.Recipients[0].Account != "alice" {
		t.Fatalf("stored %+v", got)
	}
	// (go-milter's server starts a fresh backend after each refusal, so
	// its record holds the recipients after the last one.)
	if s := tm.seen(); len(s) != 1 || !slices.Equal(s[0].rcpts, []string{"alice@example.test"}) {
		t.Fatalf("milter saw %+v", s)
	}
	wantCode(t, c.Mail("spammer@remote.test", nil), 550, "5.7.1")
}

// Discard answers 250 and delivers nothing, at RCPT as at end of message.
func TestMilterDiscard(t *testing.T) {
	for _, stage := range []string{"rcpt", "eom"} {
		t.Run(stage, func(t *testing.T) {
			tm := startTestMilter(t)
			tm.set(func(tm *testMilter) {
				if stage == "rcpt" {
					tm.onRcpt = func(string) milter.Response { return milter.RespDiscard }
				} else {
					tm.onEOM = func(*milter.Modifier) (milter.Response, error) { return milter.RespDiscard, nil }
				}
			})
			ts := milterServer(t, Milter{Name: "av", Address: tm.addr})
			c := ts.client(t)
			if err := send(c, "x@remote.test", []string{"alice@example.test"}, "Subject: junk\r\n\r\nx\r\n"); err != nil {
				t.Fatal(err)
			}
			if n := len(ts.store.stored()); n != 0 {
				t.Fatalf("%d messages delivered", n)
			}
			if n := metricValue(t, ts.rec, "mailyard_smtp_messages_rejected_total", "reason", reasonDiscarded); n != 1 {
				t.Fatalf("discard counter %v", n)
			}
		})
	}
}

// Accept from one milter ends its own part in the transaction, not the
// chain's: a later milter (the antivirus after an allowlisting one) is
// still asked and may still refuse the message (Sendmail: "despite your
// acceptance, this envelope may still be rejected by a later filter").
func TestMilterAcceptDoesNotExemptFromLaterMilters(t *testing.T) {
	first, second := startTestMilter(t), startTestMilter(t)
	first.set(func(tm *testMilter) {
		tm.onMail = func(string) milter.Response { return milter.RespAccept }
	})
	second.set(func(tm *testMilter) {
		tm.onEOM = func(*milter.Modifier) (milter.Response, error) { return milter.RespReject, nil }
	})
	ts := milterServer(t, Milter{Name: "first", Address: first.addr}, Milter{Name: "second", Address: second.addr})
	err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: eicar\r\n\r\nx\r\n")
	wantCode(t, err, 550, "5.7.1")
	if n := len(ts.store.stored()); n != 0 {
		t.Fatalf("%d delivered past the second milter", n)
	}
	if n := len(first.seen()); n != 0 {
		t.Fatalf("the first milter was asked about the message after it accepted (%d)", n)
	}
	if n := len(second.seen()); n != 1 {
		t.Fatalf("the second milter saw %d messages", n)
	}
	// Accept at end of message from the first: the second still decides.
	first.set(func(tm *testMilter) { tm.onMail = nil })
	err = send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: bad\r\n\r\nx\r\n")
	wantCode(t, err, 550, "5.7.1")
	// Both accept: delivered.
	second.set(func(tm *testMilter) { tm.onEOM = nil })
	if err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: ok\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.store.stored()); n != 1 {
		t.Fatalf("%d delivered", n)
	}
}

// milterStuckAtRcpt starts a test milter that never answers RCPT for
// rcpt (until the test ends), so that the server's read times out.
func milterStuckAtRcpt(t *testing.T, rcpt string) *testMilter {
	t.Helper()
	tm := startTestMilter(t)
	stuck := make(chan struct{})
	t.Cleanup(func() { close(stuck) })
	tm.set(func(tm *testMilter) {
		tm.onRcpt = func(r string) milter.Response {
			if r == rcpt {
				<-stuck
			}
			return milter.RespContinue
		}
	})
	return tm
}

// A milter that fails at one RCPT (here: times out) with on-failure
// tempfail or reject refuses that recipient and every later command of
// the transaction: the next recipient is not accepted unscanned, and no
// message gets past it.
func TestMilterFailureAtRcptRefusesTheRest(t *testing.T) {
	for _, tc := range []struct {
		action MilterFailAction
		code   int
		enh    string
	}{
		{MilterFailTempfail, 451, "4.7.1"},
		{MilterFailReject, 550, "5.7.1"},
	} {
		t.Run(tc.action.String(), func(t *testing.T) {
			tm := milterStuckAtRcpt(t, "bob@example.test")
			ts := milterServer(t, Milter{Name: "av", Address: tm.addr, ReadTimeout: 500 * time.Millisecond, OnFailure: tc.action})
			c := ts.client(t)
			if err := c.Mail("x@remote.test", nil); err != nil {
				t.Fatal(err)
			}
			wantCode(t, c.Rcpt("bob@example.test", nil), tc.code, tc.enh)
			wantCode(t, c.Rcpt("alice@example.test", nil), tc.code, tc.enh)
			if n := len(ts.store.stored()); n != 0 {
				t.Fatalf("%d delivered", n)
			}
			// The next transaction asks the milter again.
			if err := c.Reset(); err != nil {
				t.Fatal(err)
			}
			if err := send(c, "x@remote.test", []string{"alice@example.test"}, "Subject: x\r\n\r\nx\r\n"); err != nil {
				t.Fatal(err)
			}
			if n := len(tm.seen()); n != 1 {
				t.Fatalf("milter saw %d messages", n)
			}
		})
	}
}

// The same, with recipients accepted before the milter failed: DATA is
// refused, the message is not delivered unscanned.
func TestMilterFailureAtRcptRefusesData(t *testing.T) {
	tm := milterStuckAtRcpt(t, "bob@example.test")
	ts := milterServer(t, Milter{Name: "av", Address: tm.addr, ReadTimeout: 500 * time.Millisecond})
	c := ts.client(t)
	if err := c.Mail("x@remote.test", nil); err != nil {
		t.Fatal(err)
	}
	if err := c.Rcpt("alice@example.test", nil); err != nil {
		t.Fatal(err)
	}
	wantCode(t, c.Rcpt("bob@example.test", nil), 451, "4.7.1")
	w, err := c.Data()
	if err != nil {
		t.Fatal(err)
	}
	w.Write([]byte("Subject: eicar\r\n\r\nX5O!P%@AP\r\n"))
	wantCode(t, w.Close(), 451, "4.7.1")
	if n := len(ts.store.stored()); n != 0 {
		t.Fatalf("%d delivered unscanned", n)
	}
}

// Header changes (add, insert, change, delete) are applied to what is
// delivered, and only those; the body is untouched.
func TestMilterHeaderChanges(t *testing.T) {
	tm := startTestMilter(t)
	tm.set(func(tm *testMilter) {
		tm.onEOM = func(m *milter.Modifier) (milter.Response, error) {
			for _, err := range []error{
				m.AddHeader("X-Virus-Scanned", "clean\n\tby test"),
				m.InsertHeader(0, "X-First", "top"),
				m.ChangeHeader(1, "Subject", "[scanned] hello"),
				m.ChangeHeader(2, "X-Tag", ""), // delete the second X-Tag
			} {
				if err != nil {
					return nil, err
				}
			}
			return milter.RespAccept, nil
		}
	})
	ts := milterServer(t, Milter{Name: "av", Address: tm.addr})
	body := "Subject: hello\r\nX-Tag: one\r\nX-Tag: two\r\nX-Tag: three\r\n\r\nbody line\r\n"
	if err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, body); err != nil {
		t.Fatal(err)
	}
	got := ts.store.body(t, 0)
	_, msg, ok := strings.Cut(got, "\r\nX-First: top\r\n")
	if !ok {
		t.Fatalf("no inserted field on top of the message's own:\n%s", got)
	}
	want := "Subject: [scanned] hello\r\nX-Tag: one\r\nX-Tag: three\r\nX-Virus-Scanned: clean\r\n\tby test\r\n\r\nbody line\r\n"
	if msg != want {
		t.Fatalf("delivered\n%q\nwant\n%q", msg, want)
	}
}

// A milter may not make modifications it was not offered: asking for a
// new recipient (SMFIR_ADDRCPT) fails it, and its failure action applies.
func TestMilterUnnegotiatedModificationFails(t *testing.T) {
	tm := startTestMilter(t)
	tm.set(func(tm *testMilter) {
		tm.onEOM = func(m *milter.Modifier) (milter.Response, error) {
			if err := m.AddRecipient("spy@remote.test"); err != nil {
				return nil, err
			}
			return milter.RespAccept, nil
		}
	})
	ts := milterServer(t, Milter{Name: "rogue", Address: tm.addr})
	err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: x\r\n\r\nx\r\n")
	wantCode(t, err, 451, "4.7.1")
	if n := metricValue(t, ts.rec, "mailyard_smtp_milter_failures_total", "milter", "rogue", "action", "tempfail"); n != 1 {
		t.Fatalf("failure counter %v", n)
	}
}

// A milter that is down gets its failure action: tempfail (the default)
// refuses MAIL with 451, accept delivers as if it were not there, reject
// refuses with 550. Each is counted per milter.
func TestMilterDown(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	down := "tcp:" + ln.Addr().String()
	ln.Close() // nothing listens there now
	for _, tc := range []struct {
		action MilterFailAction
		code   int
		enh    string
	}{
		{MilterFailTempfail, 451, "4.7.1"},
		{MilterFailAccept, 0, ""},
		{MilterFailReject, 550, "5.7.1"},
	} {
		t.Run(tc.action.String(), func(t *testing.T) {
			ts := milterServer(t, Milter{Name: "down", Address: down, OnFailure: tc.action})
			err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: x\r\n\r\nx\r\n")
			if tc.code == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if n := len(ts.store.stored()); n != 1 {
					t.Fatalf("%d delivered", n)
				}
			} else {
				wantCode(t, err, tc.code, tc.enh)
				if n := len(ts.store.stored()); n != 0 {
					t.Fatalf("%d delivered", n)
				}
			}
			if n := metricValue(t, ts.rec, "mailyard_smtp_milter_failures_total", "milter", "down", "action", tc.action.String()); n != 1 {
				t.Fatalf("failure counter %v", n)
			}
		})
	}
}

// A milter that hangs at end of message times out (ReadTimeout) and its
// failure action applies; the SMTP session is not held beyond it.
func TestMilterHangsTimesOut(t *testing.T) {
	for _, action := range []MilterFailAction{MilterFailTempfail, MilterFailAccept} {
		t.Run(action.String(), func(t *testing.T) {
			tm := startTestMilter(t)
			tm.set(func(tm *testMilter) { tm.hang = make(chan struct{}) })
			ts := milterServer(t, Milter{Name: "slow", Address: tm.addr, ReadTimeout: 300 * time.Millisecond, OnFailure: action})
			start := time.Now()
			err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: x\r\n\r\nx\r\n")
			if action == MilterFailTempfail {
				wantCode(t, err, 451, "4.7.1")
			} else if err != nil {
				t.Fatal(err)
			}
			if d := time.Since(start); d > 20*time.Second {
				t.Fatalf("took %v", d)
			}
			want := 0
			if action == MilterFailAccept {
				want = 1
			}
			if n := len(ts.store.stored()); n != want {
				t.Fatalf("%d delivered, want %d", n, want)
			}
		})
	}
}

// A quarantined message is answered 250 and not delivered; released, it
// reaches every recipient as it would have (the local one's mailbox, the
// remote one through the queue); deleted, nobody gets it.
func TestMilterQuarantineReleaseAndDelete(t *testing.T) {
	tm := startTestMilter(t)
	tm.set(func(tm *testMilter) {
		tm.onEOM = func(m *milter.Modifier) (milter.Response, error) {
			if err := m.AddHeader("X-DLP", "card number"); err != nil {
				return nil, err
			}
			if err := m.Quarantine("credit card number"); err != nil {
				return nil, err
			}
			return milter.RespAccept, nil
		}
	})
	hop := testhop.Start(t, testhop.Options{})
	var q *queue.Queue
	var qr *Quarantine
	cfg := routing.Config{RelayDomains: []routing.RelayDomain{{Domain: "partner.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + hop.Port, TLS: routing.TLSNone}}}}
	r := startRealStackWith(t, func(o *Options, st *sqlite.Store) {
		withQueue(t, cfg, &q)(o, st)
		var err error
		qr, err = NewQuarantine(QuarantineOptions{Dir: t.TempDir(), Records: st, Deliverer: st, Queue: q, Logger: testLogger(t)})
		if err != nil {
			t.Fatal(err)
		}
		o.Milters = []Milter{{Name: "dlp", Address: tm.addr}}
		o.Quarantine = qr
	}, nil)
	alice := r.user(t, "alice@example.test", 0)
	ctx := context.Background()
	body := "Subject: numbers\r\n\r\n4111 1111 1111 1111\r\n"
	c := r.ts.client(t)
	for range 2 {
		if err := send(c, "x@remote.test", []string{"alice@example.test", "bob@partner.test"}, body); err != nil {
			t.Fatal(err)
		}
	}
	held, err := qr.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(held) != 2 || held[0].Milter != "dlp" || held[0].Reason != "credit card number" ||
		!slices.Equal(held[0].Accounts, []string{alice.ID}) || !slices.Equal(held[0].Remote, []string{"bob@partner.test"}) ||
		!slices.Equal(held[0].Recipients, []string{"alice@example.test", "bob@partner.test"}) {
		t.Fatalf("held %+v", held)
	}
	if n := len(r.inbox(t, alice)); n != 0 {
		t.Fatalf("alice got %d before release", n)
	}
	if l, _ := q.List(ctx); len(l) != 0 || len(hop.Received()) != 0 {
		t.Fatalf("queued %d, relayed %d before release", len(l), len(hop.Received()))
	}
	if err := qr.Release(ctx, held[0].ID); err != nil {
		t.Fatal(err)
	}
	inbox := r.inbox(t, alice)
	if len(inbox) != 1 || !strings.HasPrefix(inbox[0], "Return-Path: <x@remote.test>\r\nReceived: ") ||
		!strings.HasSuffix(inbox[0], "Subject: numbers\r\nX-DLP: card number\r\n\r\n4111 1111 1111 1111\r\n") {
		t.Fatalf("alice got %q", inbox)
	}
	eventually(t, "relay of the released message", func() bool { return len(hop.Received()) == 1 })
	if m := hop.Received()[0]; m.Data != inbox[0] || !slices.Equal(m.To, []string{"bob@partner.test"}) {
		t.Fatalf("next hop got %+v", m)
	}
	if err := qr.Delete(ctx, held[1].ID); err != nil {
		t.Fatal(err)
	}
	if err := qr.Release(ctx, held[1].ID); !errors.Is(err, ErrNotQuarantined) {
		t.Fatalf("release of a deleted message: %v", err)
	}
	if l, _ := qr.List(ctx); len(l) != 0 {
		t.Fatalf("still held: %+v", l)
	}
	if n := len(r.inbox(t, alice)); n != 1 {
		t.Fatalf("alice has %d", n)
	}
}

// Without a quarantine, a message a milter quarantines is refused
// temporarily, never accepted and lost.
func TestMilterQuarantineWithoutQuarantineTempfails(t *testing.T) {
	tm := startTestMilter(t)
	tm.set(func(tm *testMilter) {
		tm.onEOM = func(m *milter.Modifier) (milter.Response, error) {
			return milter.RespAccept, m.Quarantine("suspicious")
		}
	})
	ts := milterServer(t, Milter{Name: "av", Address: tm.addr})
	wantCode(t, send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: x\r\n\r\nx\r\n"), 451, "4.7.1")
	if n := len(ts.store.stored()); n != 0 {
		t.Fatalf("%d delivered", n)
	}
}

func TestParseMilterAddress(t *testing.T) {
	for in, want := range map[string]string{
		"tcp:127.0.0.1:8891":  "tcp 127.0.0.1:8891",
		"tcp:[::1]:8891":      "tcp [::1]:8891",
		"inet:8891@localhost": "tcp localhost:8891",
		"unix:/run/av.sock":   "unix /run/av.sock",
		"local:/run/av.sock":  "unix /run/av.sock",
	} {
		n, a, err := ParseMilterAddress(in)
		if err != nil || n+" "+a != want {
			t.Errorf("%s: %s %s %v, want %s", in, n, a, err, want)
		}
	}
	for _, bad := range []string{"", "127.0.0.1:8891", "tcp:", "tcp:host", "tcp:host:0", "tcp:host:99999", "unix:relative", "udp:1.2.3.4:5"} {
		if _, _, err := ParseMilterAddress(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
	if _, err := New(Options{Router: newTestRouter(), Deliverer: newFileDeliverer(t), Milters: []Milter{{Address: "tcp:nohost"}}}); err == nil {
		t.Error("New accepted a bad milter address")
	}
}

// On the MX, DKIM is verified over the message as the client sent it, not
// as a milter changed it: a spam filter that tags the Subject of a signed
// message from a DMARC p=reject domain (DKIM its only aligned pass) must
// not make our own DMARC check refuse it. The delivered message has the
// milter's change and our Authentication-Results for the original.
func TestMilterHeaderChangeDoesNotBreakDKIMVerification(t *testing.T) {
	tm := startTestMilter(t)
	tm.set(func(tm *testMilter) {
		tm.onEOM = func(m *milter.Modifier) (milter.Response, error) {
			return milter.RespAccept, m.ChangeHeader(1, "Subject", "[SPAM] signed")
		}
	})
	dns := &mockdns.Resolver{Zones: map[string]mockdns.Zone{}}
	var keys *dkim.Keys
	r := startRealStackWith(t,
		func(o *Options, _ *sqlite.Store) {
			o.VerifyResolver = dns
			o.Milters = []Milter{{Name: "spam", Address: tm.addr}}
		},
		func(o *Options, st *sqlite.Store) {
			keys = dkim.NewKeys(dkimstore.New(st), dkim.KeysOptions{})
			o.DKIMKeys = keys
		})
	ctx := context.Background()
	if _, err := keys.Generate(ctx, "example.test", "s1", dkim.RSA); err != nil {
		t.Fatal(err)
	}
	k, err := keys.Activate(ctx, "example.test", "s1")
	if err != nil {
		t.Fatal(err)
	}
	dns.Zones[k.RecordName()+"."] = mockdns.Zone{TXT: []string{k.TXT()}}
	dns.Zones["_dmarc.example.test."] = mockdns.Zone{TXT: []string{"v=DMARC1; p=reject"}}
	alice := r.user(t, "alice@example.test", 0)
	bob := r.user(t, "bob@example.test", 0)

	body := "From: Alice <alice@example.test>\r\nTo: <bob@example.test>\r\nSubject: signed\r\nMessage-ID: <1@example.test>\r\n\r\nhello\r\n"
	if err := send(r.sub.authClient(t, r.tls, "alice@example.test", "pw"), "alice@example.test", []string{"bob@example.test"}, body); err != nil {
		t.Fatal(err)
	}
	got := r.inbox(t, bob)
	if len(got) != 1 {
		t.Fatalf("bob has %d messages", len(got))
	}
	signed := stripTrace(t, got[0])
	if !strings.Contains(signed, "h=") || !strings.Contains(strings.ToLower(signed[:strings.Index(signed, "\r\nFrom:")]), "subject") {
		t.Fatalf("signature does not cover Subject:\n%s", signed)
	}
	// Relayed to the MX with an envelope sender SPF says nothing about:
	// DMARC passes through DKIM only.
	if err := send(r.ts.client(t), "bounces@elsewhere.test", []string{"alice@example.test"}, signed); err != nil {
		t.Fatalf("MX refused a signed message after a milter tagged its Subject: %v", err)
	}
	in := r.inbox(t, alice)
	if len(in) != 1 {
		t.Fatalf("alice has %d messages", len(in))
	}
	stored := stripTrace(t, in[0])
	if !strings.Contains(stored, "Subject: [SPAM] signed\r\n") || strings.Contains(stored, "Subject: signed") {
		t.Errorf("milter change not delivered:\n%s", stored)
	}
	if ar := stored[:strings.Index(stored, "DKIM-Signature:")]; !strings.Contains(ar, "dkim=pass") || !strings.Contains(ar, "dmarc=pass") {
		t.Errorf("verification not over the received message:\n%s", stored)
	}
}

// quitFailConn is a milter connection that negotiates and then fails
// every write, as one whose milter went away does.
type quitFailConn struct {
	net.Conn // nil: only the methods below are used
	mu       sync.Mutex
	in       bytes.Buffer
	writes   int
	closed   bool
}

func (c *quitFailConn) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.in.Read(p)
}

func (c *quitFailConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.writes++; c.writes > 1 {
		return 0, syscall.EPIPE
	}
	return len(p), nil
}

func (c *quitFailConn) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.closed = true
	return nil
}

func (c *quitFailConn) SetDeadline(time.Time) error      { return nil }
func (c *quitFailConn) SetReadDeadline(time.Time) error  { return nil }
func (c *quitFailConn) SetWriteDeadline(time.Time) error { return nil }

type connDialer struct{ c net.Conn }

func (d connDialer) Dial(string, string) (net.Conn, error) { return d.c, nil }

// Ending a milter session closes its connection even when the milter is
// gone and SMFIC_QUIT cannot be written (go-milter then returns without
// closing it): no descriptor is left to the garbage collector.
func TestMilterCloseClosesConnWhenQuitFails(t *testing.T) {
	fc := &quitFailConn{}
	// SMFIC_OPTNEG reply: version 6, no actions, no protocol steps.
	reply := []byte{0, 0, 0, 13, 'O', 0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0}
	fc.in.Write(reply)
	cs, err := milter.NewClientWithOptions("tcp", "milter.test:1", milter.ClientOptions{Dialer: connDialer{fc}}).Session()
	if err != nil {
		t.Fatal(err)
	}
	mc := &milterConn{cs: cs, conn: fc}
	mc.closeConn()
	fc.mu.Lock()
	defer fc.mu.Unlock()
	if !fc.closed {
		t.Fatal("milter connection left open after a failed QUIT")
	}
}

// rawMilter is a milter speaking the wire protocol by hand, which records
// every command it gets (a macro as "D" plus the command code it is for,
// then its names) and continues, accepting at end of message.
type rawMilter struct {
	addr string
	mu   sync.Mutex
	cmds []string
}

func startRawMilter(t *testing.T) *rawMilter {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	rm := &rawMilter{addr: "tcp:" + ln.Addr().String()}
	var wg sync.WaitGroup
	t.Cleanup(func() { ln.Close(); wg.Wait() })
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				rm.serve(c)
			}()
		}
	}()
	return rm
}

func (rm *rawMilter) serve(c net.Conn) {
	send := func(code byte, data []byte) error {
		b := binary.BigEndian.AppendUint32(nil, uint32(len(data)+1))
		_, err := c.Write(append(append(b, code), data...))
		return err
	}
	for {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return
		}
		pkt := make([]byte, binary.BigEndian.Uint32(hdr[:]))
		if _, err := io.ReadFull(c, pkt); err != nil || len(pkt) == 0 {
			return
		}
		code, data := pkt[0], pkt[1:]
		rec := string(code)
		if code == 'D' && len(data) > 0 {
			rec += string(data[0])
			kv := strings.Split(strings.TrimSuffix(string(data[1:]), "\x00"), "\x00")
			for i := 0; i < len(kv); i += 2 {
				rec += " " + kv[i]
			}
		}
		rm.mu.Lock()
		rm.cmds = append(rm.cmds, rec)
		rm.mu.Unlock()
		var err error
		switch code {
		case 'O':
			err = send('O', []byte{0, 0, 0, 6, 0, 0, 0, 0, 0, 0, 0, 0})
		case 'C', 'H', 'M', 'R', 'L', 'N', 'B':
			err = send('c', nil)
		case 'E':
			err = send('a', nil)
		case 'Q':
			return
		}
		if err != nil {
			return
		}
	}
}

func (rm *rawMilter) commands() []string {
	rm.mu.Lock()
	defer rm.mu.Unlock()
	return slices.Clone(rm.cmds)
}

// The commands reach the milter in the protocol's order, each stage's
// macros just before it, and every macro under a command code libmilter
// files (st_macros: C, H, M, R, T, N, E; it silently drops others, such
// as L): otherwise the queue id "i" never reaches a libmilter milter.
func TestMilterWireOrderAndMacroStages(t *testing.T) {
	rm := startRawMilter(t)
	ts := milterServer(t, Milter{Name: "raw", Address: rm.addr})
	if err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: x\r\nTo: y\r\n\r\nbody\r\n"); err != nil {
		t.Fatal(err)
	}
	var got []string
	eventually(t, "milter session end", func() bool {
		got = rm.commands()
		return len(got) > 0 && got[len(got)-1] == "Q"
	})
	want := []string{
		"O", "DC j {daemon_name} {client_addr} {client_name}", "C", "H",
		"DM {mail_addr}", "M", "DR {rcpt_addr}", "R",
		"DT i", "L", "L", "N", "B", "E",
	}
	if len(got) < len(want) || !slices.Equal(got[:len(want)], want) {
		t.Fatalf("milter got\n%q\nwant it to start with\n%q", got, want)
	}
	for _, c := range got {
		if strings.HasPrefix(c, "D") && !strings.ContainsAny(c[1:2], "CHMRTNE") {
			t.Errorf("macros for %q, which libmilter ignores", c[1:2])
		}
	}
}

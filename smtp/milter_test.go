package smtp

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-milter"

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
	if n := metricValue(t, ts.metrics.milterActions.WithLabelValues("av", "accept")); n != 1 {
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
			if n := metricValue(t, ts.metrics.rejected.WithLabelValues(reasonDiscarded)); n != 1 {
				t.Fatalf("discard counter %v", n)
			}
		})
	}
}

// Accept from the first milter ends the chain: the second is not asked.
func TestMilterAcceptStopsTheChain(t *testing.T) {
	first, second := startTestMilter(t), startTestMilter(t)
	first.set(func(tm *testMilter) {
		tm.onMail = func(string) milter.Response { return milter.RespAccept }
	})
	second.set(func(tm *testMilter) {
		tm.onEOM = func(*milter.Modifier) (milter.Response, error) { return milter.RespReject, nil }
	})
	ts := milterServer(t, Milter{Name: "first", Address: first.addr}, Milter{Name: "second", Address: second.addr})
	if err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: ok\r\n\r\nx\r\n"); err != nil {
		t.Fatal(err)
	}
	if n := len(ts.store.stored()); n != 1 {
		t.Fatalf("%d delivered", n)
	}
	if n := second.connections(); n != 0 {
		t.Fatalf("second milter was asked %d times", n)
	}
	// Continue from the first: the second decides.
	first.set(func(tm *testMilter) {
		tm.onMail = nil
		tm.onEOM = func(*milter.Modifier) (milter.Response, error) { return milter.RespContinue, nil }
	})
	err := send(ts.client(t), "x@remote.test", []string{"alice@example.test"}, "Subject: bad\r\n\r\nx\r\n")
	wantCode(t, err, 550, "5.7.1")
	if n := len(ts.store.stored()); n != 1 {
		t.Fatalf("%d delivered", n)
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
	if n := metricValue(t, ts.metrics.milterFailures.WithLabelValues("rogue", "tempfail")); n != 1 {
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
			if n := metricValue(t, ts.metrics.milterFailures.WithLabelValues("down", tc.action.String())); n != 1 {
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
	hop := startHop(t, hopOptions{})
	var q *Queue
	var qr *Quarantine
	cfg := routing.Config{RelayDomains: []routing.RelayDomain{{Domain: "partner.test", Gateway: routing.Gateway{NextHop: "[127.0.0.1]:" + hop.port, TLS: routing.TLSNone}}}}
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
	if l, _ := q.List(ctx); len(l) != 0 || len(hop.received()) != 0 {
		t.Fatalf("queued %d, relayed %d before release", len(l), len(hop.received()))
	}
	if err := qr.Release(ctx, held[0].ID); err != nil {
		t.Fatal(err)
	}
	inbox := r.inbox(t, alice)
	if len(inbox) != 1 || !strings.HasPrefix(inbox[0], "Return-Path: <x@remote.test>\r\nReceived: ") ||
		!strings.HasSuffix(inbox[0], "Subject: numbers\r\nX-DLP: card number\r\n\r\n4111 1111 1111 1111\r\n") {
		t.Fatalf("alice got %q", inbox)
	}
	eventually(t, "relay of the released message", func() bool { return len(hop.received()) == 1 })
	if m := hop.received()[0]; m.data != inbox[0] || !slices.Equal(m.to, []string{"bob@partner.test"}) {
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

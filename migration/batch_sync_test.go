package migration

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-imap/v2"

	"github.com/mailyard/mailyard/internal/dovecottest"
	"github.com/mailyard/mailyard/internal/mailcorpus"
	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// batchStore is the test's SQLite store, which takes batches
// (store.BatchAppender), recording each batch (its length and octets)
// and each single Append (its octets). The failAt-th batch (counting
// from 1; 0: none) commits and then fails, as a process killed between a
// batch's commit and its checkpoint leaves it.
type batchStore struct {
	*sqlite.Store
	failAt int

	mu      sync.Mutex
	batches []appendCall
	singles []int64
}

// appendCall is one AppendBatch as batchStore saw it.
type appendCall struct{ n, bytes int64 }

var errGoneAfterCommit = errors.New("test: the process is gone after the batch's commit")

func (s *batchStore) AppendBatch(ctx context.Context, account, mailbox string, msgs []store.AppendMessage) ([]store.Message, error) {
	out, err := s.Store.AppendBatch(ctx, account, mailbox, msgs)
	if err != nil {
		return nil, err
	}
	c := appendCall{n: int64(len(out))}
	for _, m := range out {
		c.bytes += m.Size
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.batches = append(s.batches, c)
	if len(s.batches) == s.failAt {
		return nil, errGoneAfterCommit
	}
	return out, nil
}

func (s *batchStore) Append(ctx context.Context, account, mailbox string, r io.Reader, opts store.AppendOptions) (store.Message, error) {
	m, err := s.Store.Append(ctx, account, mailbox, r, opts)
	if err == nil {
		s.mu.Lock()
		s.singles = append(s.singles, m.Size)
		s.mu.Unlock()
	}
	return m, err
}

// oneByOne hides a store's AppendBatch: the collector appends one message
// at a time, as to a store without batches.
type oneByOne struct{ Target }

// Sizes of batchCorpus's large messages: six read into memory (together
// over appendBatchBytes) and one streamed.
const (
	batchHeldLarge = 900 << 10
	batchStreamed  = maxHeldLiteral + 100<<10
)

// batchCorpus is 300 small messages over four folders (75 each, more
// than appendBatchLen) with assorted flags, then in INBOX six of
// batchHeldLarge and one of batchStreamed octets.
func batchCorpus() []mailcorpus.Message {
	msgs := benchCorpus(300, 2<<10)
	for i := range msgs {
		switch i % 3 {
		case 0:
			msgs[i].Flags = []imap.Flag{imap.FlagSeen, imap.FlagFlagged}
		case 1:
			msgs[i].Flags = []imap.Flag{"$Label1"}
		default:
			msgs[i].Flags = nil
		}
	}
	for k, size := range []int{batchHeldLarge, batchHeldLarge, batchHeldLarge, batchHeldLarge, batchHeldLarge, batchHeldLarge, batchStreamed} {
		body := fmt.Appendf(nil, "Message-ID: <large-%d@example.org>\r\nSubject: large %d\r\n\r\n", k, k)
		for len(body) < size {
			body = append(body, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"...)
		}
		msgs = append(msgs, mailcorpus.Message{Folder: "INBOX", Flags: []imap.Flag{imap.FlagAnswered},
			Date: time.Date(2021, 2, 3, 4, 5, k, 0, time.UTC), Body: body[:size]})
	}
	return msgs
}

// TestSyncAppendsInBatches: a store that takes batches gets the bodies
// of up to maxHeldLiteral in batches of at most appendBatchLen messages
// and appendBatchBytes octets, a larger body in an Append of its own;
// a store without batches gets every message by Append. Either way the
// target holds every message once with its flags and INTERNALDATE, and
// the checkpoints cover them all (a second pass copies nothing).
func TestSyncAppendsInBatches(t *testing.T) {
	for _, batches := range []bool{true, false} {
		t.Run(map[bool]string{true: "batches", false: "one-by-one"}[batches], func(t *testing.T) {
			e := newSyncEnv(t, dovecottest.Options{}, nil)
			e.load(batchCorpus())
			want := wantTarget(t, sourceItems(t, e.source()), int(e.opts.MaxMessageSize))
			total := 0
			for _, items := range want {
				total += len(items)
			}
			bs := &batchStore{Store: e.st}
			var target Target = bs
			if !batches {
				target = oneByOne{bs}
			}
			m := e.migratorOn(target)
			ctx := context.Background()
			if _, err := m.Sync(ctx, e.job(), nil); err != nil {
				t.Fatalf("sync: %v\n%s", err, e.logs.String())
			}
			e.checkTarget(t, want)

			bs.mu.Lock()
			var batched, full int64
			for _, b := range bs.batches {
				batched += b.n
				if b.n == appendBatchLen {
					full++
				}
				if b.n > appendBatchLen || (b.n > 1 && b.bytes > appendBatchBytes) {
					t.Errorf("a batch of %d messages, %d octets: over the bounds (%d, %d)", b.n, b.bytes, appendBatchLen, appendBatchBytes)
				}
			}
			if batches {
				if batched != int64(total-1) || len(bs.singles) != 1 || bs.singles[0] != batchStreamed || full == 0 {
					t.Errorf("%d messages in %d batches (%d full), %d single appends; want %d in batches, some full, and the one of %d octets alone",
						batched, len(bs.batches), full, len(bs.singles), total-1, batchStreamed)
				}
			} else if len(bs.batches) != 0 || len(bs.singles) != total {
				t.Errorf("%d batches and %d single appends to a store without batches; want %d single appends", len(bs.batches), len(bs.singles), total)
			}
			bs.mu.Unlock()

			st, err := m.Sync(ctx, e.job(), nil)
			if err != nil || !strings.HasPrefix(st.LastMessage, "copied 0 messages") {
				t.Errorf("second pass: %v %q", err, st.LastMessage)
			}
		})
	}
}

// TestSyncBatchCommittedNotCheckpointed: a pass that stops after a
// batch committed and before its checkpoint (the process killed between
// the two) is resumed by the next pass without a duplicate and without
// a loss: the batch's copies are found above the recorded UIDNEXT bound
// and recorded, the rest is copied.
func TestSyncBatchCommittedNotCheckpointed(t *testing.T) {
	for _, failAt := range []int{1, 3} {
		t.Run(fmt.Sprintf("batch-%d", failAt), func(t *testing.T) {
			e := newSyncEnv(t, dovecottest.Options{}, nil)
			e.load(batchCorpus())
			want := wantTarget(t, sourceItems(t, e.source()), int(e.opts.MaxMessageSize))
			ctx := context.Background()
			bs := &batchStore{Store: e.st, failAt: failAt}
			_, err := e.migratorOn(bs).Sync(ctx, e.job(), nil)
			if !errors.Is(err, errGoneAfterCommit) {
				t.Fatalf("first pass: %v, want the failure after the commit of batch %d", err, failAt)
			}
			st, err := e.m.Sync(ctx, e.job(), nil)
			if err != nil {
				t.Fatalf("second pass: %v\n%s", err, e.logs.String())
			}
			e.checkTarget(t, want)
			if !strings.Contains(e.logs.String(), "reconciled copies whose checkpoint was lost") {
				t.Errorf("the second pass reconciled nothing (%q); the failed batch's copies were not found", st.LastMessage)
			}
			st, err = e.m.Sync(ctx, e.job(), nil)
			if err != nil || !strings.HasPrefix(st.LastMessage, "copied 0 messages") {
				t.Errorf("third pass: %v %q", err, st.LastMessage)
			}
		})
	}
}

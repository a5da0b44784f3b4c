package postgres

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// OpenMessages hands out every message of the set with its whole body,
// in UID order, in one statement for up to a MiB of first chunks
// whatever the number of messages, and bodies that seek.
func TestOpenMessages(t *testing.T) {
	ctx := ctxFor(t)
	tr := &countTracer{}
	s := openTest(t, freshDB(t), Options{Tracer: tr})
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	bodies := map[uint32][]byte{}
	add := func(body []byte) {
		m, err := s.Append(ctx, "u", "INBOX", bytes.NewReader(body), store.AppendOptions{})
		if err != nil {
			t.Fatal(err)
		}
		bodies[m.UID] = body
	}
	for i := range 40 {
		add(fmt.Appendf(nil, "Subject: %d\r\n\r\n%s\r\n", i, bytes.Repeat([]byte{'a' + byte(i%26)}, 100*i)))
	}
	for i := range 5 { // UIDs 41-45: three chunks each
		add(bytes.Repeat([]byte{'A' + byte(i)}, 2*chunkSize+1000*(i+1)))
	}
	open := func(set store.UIDSet) (uids []uint32, stmts int64) {
		t.Helper()
		n := tr.n.Load()
		err := s.OpenMessages(ctx, "u", "INBOX", set, func(m store.Message, r io.ReadSeeker) error {
			for pass := range 2 { // a FETCH reads a section twice
				if pass > 0 {
					if _, err := r.Seek(0, io.SeekStart); err != nil {
						return err
					}
				}
				got, err := io.ReadAll(r)
				if err != nil {
					return err
				}
				if !bytes.Equal(got, bodies[m.UID]) || m.Size != int64(len(got)) {
					return fmt.Errorf("UID %d pass %d: %d bytes (size %d), want %d", m.UID, pass, len(got), m.Size, len(bodies[m.UID]))
				}
			}
			uids = append(uids, m.UID)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return uids, tr.n.Load() - n
	}
	uids, n := open(store.UIDSet{{Start: 1, Stop: 20}})
	if len(uids) != 20 || uids[0] != 1 || uids[19] != 20 || n != 1 {
		t.Fatalf("20 small bodies: UIDs %v in %d statements, want 1..20 in 1", uids, n)
	}
	uids, n = open(store.UIDSet{{Start: 3, Stop: 3}, {Start: 10, Stop: 12}, {Start: 39, Stop: 0}})
	want := []uint32{3, 10, 11, 12, 39, 40, 41, 42, 43, 44, 45}
	// Five bodies of three chunks: their first chunks (1.25 MiB) take
	// two pages; each further chunk is read once per pass (2 × 2 × 5),
	// and the rewind reads the first chunk again (5).
	if fmt.Sprint(uids) != fmt.Sprint(want) || n > 2+20+5 {
		t.Fatalf("mixed set: UIDs %v in %d statements, want %v in at most %d", uids, n, want, 2+20+5)
	}
	if uids, n = open(store.UIDSet{{Start: 100, Stop: 0}}); len(uids) != 0 || n != 1 {
		t.Fatalf("empty set: %v in %d statements", uids, n)
	}
	// A message expunged is left out.
	if _, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 2, Stop: 2}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Expunge(ctx, "u", "INBOX", store.UIDSet{{Start: 2, Stop: 2}}); err != nil {
		t.Fatal(err)
	}
	if uids, _ = open(store.UIDSet{{Start: 1, Stop: 3}}); fmt.Sprint(uids) != "[1 3]" {
		t.Fatalf("after expunging 2: %v", uids)
	}
	stop := errors.New("stop")
	calls := 0
	err := s.OpenMessages(ctx, "u", "INBOX", nil, func(store.Message, io.ReadSeeker) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("fn's error: %v after %d calls, want it after 1", err, calls)
	}
	nop := func(store.Message, io.ReadSeeker) error { return nil }
	if err := s.OpenMessages(ctx, "u", "Nope", nil, nop); !errors.Is(err, store.ErrNoMailbox) {
		t.Fatalf("missing mailbox: %v", err)
	}
	if err := s.OpenMessages(ctx, "nobody", "INBOX", nil, nop); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("missing account: %v", err)
	}
}

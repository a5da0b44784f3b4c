package postgres

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// An open body seeks, in one statement at most, and keeps reading whole
// after its message is expunged: a reader that reads it twice rewinds
// instead of opening it again.
func TestOpenBodySeeksAfterExpunge(t *testing.T) {
	tr := &countTracer{}
	s := openTest(t, freshDB(t), Options{Tracer: tr})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	small := "Subject: small\r\n\r\nhello\r\n"
	var big bytes.Buffer
	for i := 0; big.Len() < 2*chunkSize+chunkSize/2; i++ {
		big.WriteString(strings.Repeat(string(rune('a'+i%26)), 99) + "\n")
	}
	for _, body := range []string{small, big.String()} {
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(body), store.AppendOptions{Flags: []string{store.FlagDeleted}}); err != nil {
			t.Fatal(err)
		}
	}
	var open []io.ReadSeeker
	for uid := uint32(1); uid <= 2; uid++ {
		rc, err := s.OpenBody(ctx, "u", store.Inbox, uid)
		if err != nil {
			t.Fatal(err)
		}
		defer rc.Close()
		rs, ok := rc.(io.ReadSeeker)
		if !ok {
			t.Fatalf("OpenBody gave a %T, not an io.ReadSeeker", rc)
		}
		open = append(open, rs)
	}
	if _, err := s.Expunge(ctx, "u", store.Inbox, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.OpenBody(ctx, "u", store.Inbox, 1); !errors.Is(err, store.ErrNoMessage) {
		t.Fatalf("OpenBody after expunge: %v, want ErrNoMessage", err)
	}
	for i, want := range []string{small, big.String()} {
		rs := open[i]
		for pass := range 2 {
			if _, err := rs.Seek(0, io.SeekStart); err != nil {
				t.Fatalf("body %d pass %d: Seek(0): %v", i+1, pass, err)
			}
			got, err := io.ReadAll(rs)
			if err != nil || string(got) != want {
				t.Fatalf("body %d pass %d: read %d bytes (%v), want %d", i+1, pass, len(got), err, len(want))
			}
		}
		for _, off := range []int64{1, chunkSize - 1, chunkSize, chunkSize + 7, int64(len(want)) - 1} {
			if off >= int64(len(want)) {
				continue
			}
			pos, err := rs.Seek(off, io.SeekStart)
			if err != nil || pos != off {
				t.Fatalf("body %d: Seek(%d): %d, %v", i+1, off, pos, err)
			}
			head := make([]byte, 3)
			n, _ := io.ReadFull(rs, head)
			if string(head[:n]) != want[off:min(off+3, int64(len(want)))] {
				t.Fatalf("body %d: at %d read %q, want %q", i+1, off, head[:n], want[off:min(off+3, int64(len(want)))])
			}
			if cur, err := rs.Seek(0, io.SeekCurrent); err != nil || cur != off+int64(n) {
				t.Fatalf("body %d: position after reading %d at %d: %d, %v", i+1, n, off, cur, err)
			}
		}
	}
	// Rewinding a one-chunk body costs no statement.
	before := tr.n.Load()
	if _, err := open[0].Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(open[0]); err != nil {
		t.Fatal(err)
	}
	if n := tr.n.Load() - before; n != 0 {
		t.Errorf("rewinding and reading a one-chunk body took %d statements, want 0", n)
	}
}

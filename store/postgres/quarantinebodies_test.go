package postgres

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"testing"
	"time"

	"github.com/mailyard/mailyard/smtp"
	"github.com/mailyard/mailyard/store"
)

var _ smtp.QuarantineBodies = (*Store)(nil)

// A body one node holds is read whole by another; Reclaim on shared
// bodies removes only bodies without a record that are older than
// smtp.SharedQuarantineGrace, never one another node may still be
// committing the record of.
func TestQuarantineBodiesShared(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	a, b := openTest(t, dsn, Options{}), openTest(t, dsn, Options{})
	body := bytes.Repeat([]byte("0123456789abcdef"), 2*chunkSize/16+5)
	for _, id := range []string{"held", "orphan"} {
		if n, err := a.PutQuarantineBody(ctx, id, bytes.NewReader(body)); err != nil || n != int64(len(body)) {
			t.Fatalf("put %s: %d, %v", id, n, err)
		}
	}
	r, err := b.OpenQuarantineBody(ctx, "held")
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(r)
	r.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("node B read %d bytes of %d: %v", len(got), len(body), err)
	}
	if _, err := b.OpenQuarantineBody(ctx, "never"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("open of a missing body: %v", err)
	}
	if err := a.UpdateRecords(ctx, func(tx store.RecordTx) error {
		return store.PutJSON(tx, smtp.QuarantineNamespace, "held", map[string]any{"from": "x@remote.test"}, 0)
	}); err != nil {
		t.Fatal(err)
	}
	reclaim := func(now time.Time) {
		t.Helper()
		q, err := smtp.NewQuarantine(smtp.QuarantineOptions{Bodies: b, Records: b, Deliverer: b, Now: func() time.Time { return now }})
		if err != nil {
			t.Fatal(err)
		}
		if err := q.Reclaim(ctx); err != nil {
			t.Fatal(err)
		}
	}
	left := func() []string {
		t.Helper()
		ids, err := b.QuarantineBodiesBefore(ctx, time.Now().Add(24*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return ids
	}
	reclaim(time.Now()) // within the grace: another node may be holding it
	if ids := left(); len(ids) != 2 {
		t.Fatalf("a young orphan was reclaimed: %v left", ids)
	}
	reclaim(time.Now().Add(smtp.SharedQuarantineGrace + time.Minute))
	if ids := left(); len(ids) != 1 || ids[0] != "held" {
		t.Fatalf("after the grace: %v left, want [held]", ids)
	}
	if err := a.RemoveQuarantineBody(ctx, "held"); err != nil {
		t.Fatal(err)
	}
	if err := a.RemoveQuarantineBody(ctx, "held"); err != nil {
		t.Fatalf("second remove: %v", err)
	}
	if ids := left(); len(ids) != 0 {
		t.Fatalf("after remove: %v", ids)
	}
}

package postgres

import (
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// TestStoreFlagsResultModSeq: StoreFlags says which MODSEQ it gave the
// messages it changed (store.StoreFlagsResult.ModSeq), so an IMAP
// session that applied the result need not read its own change back in
// the poll after STORE; 0 when nothing changed. Before, postgres always
// left it 0.
func TestStoreFlagsResultModSeq(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Append(ctx, "u", "INBOX", strings.NewReader("Subject: x\r\n\r\nbody\r\n"), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	before, err := s.Mailbox(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	flag := func(uids store.UIDSet, op store.FlagOp, unchangedSince uint64) store.StoreFlagsResult {
		t.Helper()
		res, err := s.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: uids, Op: op, Flags: []string{store.FlagFlagged}, UnchangedSince: unchangedSince})
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	res := flag(store.UIDSet{{Start: 1, Stop: 2}}, store.FlagsAdd, 0)
	if res.ModSeq != before.HighestModSeq+1 {
		t.Fatalf("result ModSeq %d, want %d (HIGHESTMODSEQ before + 1)", res.ModSeq, before.HighestModSeq+1)
	}
	for _, m := range res.Updated {
		if m.ModSeq != res.ModSeq {
			t.Errorf("message %d MODSEQ %d, result says %d", m.UID, m.ModSeq, res.ModSeq)
		}
	}
	after, err := s.Mailbox(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	if after.HighestModSeq != res.ModSeq {
		t.Fatalf("HIGHESTMODSEQ %d after the STORE, result ModSeq %d", after.HighestModSeq, res.ModSeq)
	}
	// Nothing changed (the flag is there already): no MODSEQ given.
	if res := flag(store.UIDSet{{Start: 1, Stop: 2}}, store.FlagsAdd, 0); res.ModSeq != 0 {
		t.Errorf("no-op STORE: result ModSeq %d, want 0", res.ModSeq)
	}
	// Every message fails UNCHANGEDSINCE: nothing changed either.
	if res := flag(store.UIDSet{{Start: 1, Stop: 2}}, store.FlagsRemove, 1); res.ModSeq != 0 || len(res.Modified) != 2 {
		t.Errorf("STORE failing UNCHANGEDSINCE: result ModSeq %d, Modified %v; want 0 and [1 2]", res.ModSeq, res.Modified)
	}
	// Another change after it gets a higher one.
	if res2 := flag(store.UIDSet{{Start: 3, Stop: 3}}, store.FlagsAdd, 0); res2.ModSeq != res.ModSeq+1 {
		t.Errorf("second STORE: result ModSeq %d, want %d", res2.ModSeq, res.ModSeq+1)
	}
}

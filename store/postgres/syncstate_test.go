package postgres

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// TestSyncStateSameOnBothNodes (issue 15, "a DAV sync token or IMAP
// QRESYNC from either node sees the same state"): after node A's
// writes, node B (which read the mailbox before them, so it had the row
// in memory) reports the same HIGHESTMODSEQ once A's notification
// arrived, and from then on both nodes answer the same to every QRESYNC
// question (Changes since a MODSEQ, the expunge included) and to every
// sync-collection question (ChangesSince a token, a deletion included).
func TestSyncStateSameOnBothNodes(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	a, b := openTest(t, dsn, Options{}), openTest(t, dsn, Options{})
	if _, err := a.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := a.Append(ctx, "u", "INBOX", strings.NewReader("Subject: s\r\n\r\nbody\r\n"), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	mid, err := b.Mailbox(ctx, "u", "INBOX") // B keeps the row
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.StoreFlags(ctx, "u", "INBOX", store.StoreFlagsRequest{UIDs: store.UIDSet{{Start: 1, Stop: 2}}, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
		t.Fatal(err)
	}
	if gone, err := a.Expunge(ctx, "u", "INBOX", store.UIDSet{{Start: 2, Stop: 2}}); err != nil || len(gone) != 1 {
		t.Fatalf("Expunge: %v, %v", gone, err)
	}
	want, err := a.Mailbox(ctx, "u", "INBOX")
	if err != nil {
		t.Fatal(err)
	}
	// B hears of A's writes by NOTIFY: wait for it, bounded.
	deadline := time.Now().Add(10 * time.Second)
	for {
		got, err := b.Mailbox(ctx, "u", "INBOX")
		if err != nil {
			t.Fatal(err)
		}
		if got.HighestModSeq == want.HighestModSeq && got.UIDNext == want.UIDNext && got.UIDValidity == want.UIDValidity {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("node B's mailbox: HIGHESTMODSEQ %d, UIDNEXT %d after 10 s; node A's %d, %d", got.HighestModSeq, got.UIDNext, want.HighestModSeq, want.UIDNext)
		}
		time.Sleep(5 * time.Millisecond)
	}
	for _, since := range []uint64{0, mid.HighestModSeq, want.HighestModSeq} {
		ca, err := a.Changes(ctx, "u", "INBOX", since)
		if err != nil {
			t.Fatal(err)
		}
		cb, err := b.Changes(ctx, "u", "INBOX", since)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(ca, cb) {
			t.Errorf("Changes since %d: node A %+v, node B %+v", since, ca, cb)
		}
		if since == mid.HighestModSeq && !reflect.DeepEqual(ca.Vanished, []uint32{2}) {
			t.Errorf("Changes since %d: vanished %v, want [2]", since, ca.Vanished)
		}
	}

	col, err := a.CreateCollection(ctx, store.Collection{Account: "u", Kind: store.KindAddressBook, Name: "book"})
	if err != nil {
		t.Fatal(err)
	}
	put := func(name string) {
		t.Helper()
		card := "BEGIN:VCARD\r\nVERSION:3.0\r\nUID:" + name + "\r\nFN:" + name + "\r\nEND:VCARD\r\n"
		if _, err := a.PutObject(ctx, col.ID, store.Object{Name: name + ".vcf", UID: name, ContentType: "text/vcard", Component: "VCARD", Data: []byte(card)}, store.PutOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	put("x")
	_, tokenMid, err := b.ChangesSince(ctx, col.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	put("y")
	if err := a.DeleteObject(ctx, col.ID, "x.vcf", ""); err != nil {
		t.Fatal(err)
	}
	for _, token := range []uint64{0, tokenMid} {
		chA, tokA, err := a.ChangesSince(ctx, col.ID, token)
		if err != nil {
			t.Fatal(err)
		}
		chB, tokB, err := b.ChangesSince(ctx, col.ID, token)
		if err != nil {
			t.Fatal(err)
		}
		if tokA != tokB || !reflect.DeepEqual(chA, chB) {
			t.Errorf("ChangesSince %d: node A %v (token %d), node B %v (token %d)", token, chA, tokA, chB, tokB)
		}
		if token == tokenMid && !reflect.DeepEqual(chB, []store.ObjectChange{{Name: "x.vcf", Deleted: true}, {Name: "y.vcf"}}) && !reflect.DeepEqual(chB, []store.ObjectChange{{Name: "y.vcf"}, {Name: "x.vcf", Deleted: true}}) {
			t.Errorf("ChangesSince the token before y and the deletion of x: %v", chB)
		}
	}
	colB, err := b.Collection(ctx, "u", store.KindAddressBook, "book")
	if err != nil {
		t.Fatal(err)
	}
	if colA, err := a.Collection(ctx, "u", store.KindAddressBook, "book"); err != nil || colA.SyncToken != colB.SyncToken {
		t.Errorf("collection sync token: node A %d (%v), node B %d", colA.SyncToken, err, colB.SyncToken)
	}
}

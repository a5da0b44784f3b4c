// Package storetest is the conformance suite every [store.Store] backend
// must pass. A backend's test calls [Run] with a function that opens a
// fresh, empty store, and [RunReopen] with one that opens a store on
// persistent state named by a directory:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) store.Store {
//			s, err := mybackend.Open(context.Background(), t.TempDir(), mybackend.Options{})
//			if err != nil {
//				t.Fatal(err)
//			}
//			t.Cleanup(func() { s.Close() })
//			return s
//		})
//	}
//
// The suite checks every guarantee listed in the store package
// documentation, plus a model-based property test ([rapid]) of the mail
// operations. Backends must allow Close to be called more than once.
// RunReopen applies only to backends with persistent state: store/memstore
// passes Run and has nothing to reopen. Where the contract leaves the
// order of a result open, the suite does not assume one.
package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mailyard/mailyard/store"
)

// Opener returns a new, empty store and arranges for it to be closed when
// the test ends.
type Opener func(t *testing.T) store.Store

// Run runs the whole conformance suite, each part as a subtest with its
// own store.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	tests := []struct {
		name string
		fn   func(t *testing.T, open Opener)
	}{
		{"Accounts", testAccounts},
		{"DeleteAccount", testDeleteAccount},
		{"Mailboxes", testMailboxes},
		{"InboxRules", testInboxRules},
		{"RenameMailbox", testRenameMailbox},
		{"DeleteMailbox", testDeleteMailbox},
		{"Subscriptions", testSubscriptions},
		{"Metadata", testMetadata},
		{"AppendAndRead", testAppendAndRead},
		{"AppendBatch", testAppendBatch},
		{"Importer", testImporter},
		{"ImportSyncToken", testImportSyncToken},
		{"Exporter", testExporter},
		{"ImportSyncState", testImportSyncState},
		{"AppendLargeBodyStreams", testAppendLarge},
		{"AppendRejects", testAppendRejects},
		{"AppendReaderError", testAppendReaderError},
		{"MissingTargets", testMissingTargets},
		{"OpenBodyExpunged", testOpenBodyExpunged},
		{"StoreFlags", testStoreFlags},
		{"UnchangedSince", testUnchangedSince},
		{"Expunge", testExpunge},
		{"Changes", testChanges},
		{"Copy", testCopy},
		{"Move", testMove},
		{"MoveSameMailbox", testMoveSameMailbox},
		{"InternalDateZone", testInternalDateZone},
		{"SaveDate", testSaveDate},
		{"Search", testSearch},
		{"Status", testStatus},
		{"QuotaAppend", testQuotaAppend},
		{"QuotaCopyMove", testQuotaCopyMove},
		{"Deliver", testDeliver},
		{"DeliverFallbackAndDuplicates", testDeliverFallback},
		{"DeliverAtomic", testDeliverAtomic},
		{"DeliverConcurrent", testDeliverConcurrent},
		{"Collections", testCollections},
		{"Objects", testObjects},
		{"SyncTokens", testSyncTokens},
		{"ObjectQuery", testObjectQuery},
		{"ObjectQueryPaging", testObjectQueryPaging},
		{"ObjectQueryContains", testObjectQueryContains},
		{"AccountsQuery", testAccountsQuery},
		{"Records", testRecords},
		{"RecordTransactions", testRecordTransactions},
		{"FeedOrder", testFeedOrder},
		{"FeedIsolation", testFeedIsolation},
		{"FeedSlowSubscriber", testFeedSlowSubscriber},
		{"FeedClose", testFeedClose},
		{"CheckHealthy", testCheckHealthy},
		{"Closed", testClosed},
		{"Model", testModel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open) })
	}
}

// --- helpers shared by the suite ---

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func ok(t testing.TB, err error, what string, args ...any) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: unexpected error: %v", fmt.Sprintf(what, args...), err)
	}
}

func isErr(t testing.TB, err, target error, what string, args ...any) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: got error %v, want %v", fmt.Sprintf(what, args...), err, target)
	}
}

func eq[T comparable](t testing.TB, got, want T, what string, args ...any) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: got %v, want %v", fmt.Sprintf(what, args...), got, want)
	}
}

func eqSlice[T comparable](t testing.TB, got, want []T, what string, args ...any) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: got %v, want %v", fmt.Sprintf(what, args...), got, want)
	}
}

func newAccount(t testing.TB, s store.Store, id string, q store.Quota) {
	t.Helper()
	_, err := s.CreateAccount(context.Background(), id, q)
	ok(t, err, "CreateAccount(%q)", id)
}

func appendMsg(t testing.TB, s store.Store, acct, mbox, body string, flags ...string) store.Message {
	t.Helper()
	m, err := s.Append(context.Background(), acct, mbox, bytes.NewReader([]byte(body)), store.AppendOptions{Flags: flags})
	ok(t, err, "Append to %s/%s", acct, mbox)
	return m
}

func readBody(t testing.TB, s store.Store, acct, mbox string, uid uint32) string {
	t.Helper()
	rc, err := s.OpenBody(context.Background(), acct, mbox, uid)
	ok(t, err, "OpenBody(%s, %s, %d)", acct, mbox, uid)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	ok(t, err, "reading body of %d", uid)
	return string(b)
}

func mailbox(t testing.TB, s store.Store, acct, name string) store.Mailbox {
	t.Helper()
	m, err := s.Mailbox(context.Background(), acct, name)
	ok(t, err, "Mailbox(%s, %s)", acct, name)
	return m
}

func listUIDs(t testing.TB, s store.Store, acct, mbox string) []uint32 {
	t.Helper()
	msgs, err := s.ListMessages(context.Background(), acct, mbox, nil)
	ok(t, err, "ListMessages(%s, %s)", acct, mbox)
	out := []uint32{}
	for _, m := range msgs {
		out = append(out, m.UID)
	}
	return out
}

func mailboxNames(t testing.TB, s store.Store, acct string) []string {
	t.Helper()
	boxes, err := s.ListMailboxes(context.Background(), acct)
	ok(t, err, "ListMailboxes(%s)", acct)
	out := []string{}
	for _, b := range boxes {
		out = append(out, b.Name)
	}
	return out
}

func noProblems(t testing.TB, s store.Store) {
	t.Helper()
	p, err := s.Check(context.Background())
	ok(t, err, "Check")
	if len(p) != 0 {
		t.Fatalf("Check found problems on a store that should be healthy: %+v", p)
	}
}

func uids(u ...uint32) store.UIDSet {
	set := store.UIDSet{}
	for _, x := range u {
		set = append(set, store.UIDRange{Start: x, Stop: x})
	}
	return set
}

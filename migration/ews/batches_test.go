package ews_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
)

// TestGetItemReadsAhead reads four GetItem batches from a server that
// answers only when told: three batches are asked for before the first
// is answered (the one being handled and two ahead), a fourth only once
// the first was handed over, so at most three answers are held, and the
// items still come in the order of the ids.
func TestGetItemReadsAhead(t *testing.T) {
	var mu sync.Mutex
	inFlight, peak := 0, 0
	arrived := make(chan int, 8) // the batch index of each call that arrived
	release := map[int]chan struct{}{}
	for b := range 4 {
		release[b] = make(chan struct{})
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ids := requestedIDs(body)
		batch, _ := strconv.Atoi(strings.TrimPrefix(ids[0], "m"))
		batch /= ews.MaxBatch
		mu.Lock()
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		arrived <- batch
		<-release[batch]
		mu.Lock()
		inFlight--
		mu.Unlock()
		writeMIMEItems(w, ids)
	}))
	t.Cleanup(srv.Close)
	released := map[int]bool{}
	free := func(b int) {
		if !released[b] {
			released[b] = true
			close(release[b])
		}
	}
	// Before the server closes: a failed test leaves no call waiting.
	t.Cleanup(func() {
		for b := range release {
			free(b)
		}
	})
	mb := clientFor(t, srv, ews.Options{Username: "svc", Password: "pw"}, nil).Mailbox("anna@example.com")

	var ids []ews.ItemID
	for i := range 4 * ews.MaxBatch {
		ids = append(ids, ews.ItemID{ID: "m" + strconv.Itoa(i)})
	}
	var got []string
	done := make(chan error, 1)
	go func() {
		done <- mb.GetItem(context.Background(), ids, ews.ShapeMIME, func(it ews.Item) error {
			got = append(got, it.ID.ID)
			return nil
		})
	}()
	wait := func(what string) int {
		t.Helper()
		select {
		case b := <-arrived:
			return b
		case <-time.After(10 * time.Second):
			t.Fatalf("no GetItem call arrived %s", what)
			return -1
		}
	}
	first := map[int]bool{}
	for range 3 {
		first[wait("while the first three are unanswered")] = true
	}
	if !first[0] || !first[1] || !first[2] {
		t.Fatalf("the first calls asked for batches %v, want 0, 1 and 2", first)
	}
	free(0)
	if b := wait("after the first batch was answered"); b != 3 {
		t.Fatalf("the fourth call asked for batch %d", b)
	}
	for b := 1; b < 4; b++ {
		free(b)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if peak != 3 {
		t.Fatalf("peak GetItem calls in flight %d, want 3", peak)
	}
	inIDOrder(t, got, ids)
}

// requestItemID matches the ids of a GetItem request.
var requestItemID = regexp.MustCompile(`<t:ItemId Id="([^"]+)"`)

// requestedIDs returns the ids a GetItem request asks for.
func requestedIDs(body []byte) []string {
	var ids []string
	for _, m := range requestItemID.FindAllSubmatch(body, -1) {
		ids = append(ids, string(m[1]))
	}
	return ids
}

// writeMIMEItems answers a GetItem for ids with a small message each.
func writeMIMEItems(w http.ResponseWriter, ids []string) {
	var b strings.Builder
	for _, id := range ids {
		b.WriteString(`<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>` +
			`<t:MimeContent CharacterSet="UTF-8">U3ViamVjdDogaGkNCg0KaGVsbG8NCg==</t:MimeContent><t:ItemId Id="` + id + `" ChangeKey="CQAAAB"/>` +
			`</t:Message></m:Items></m:GetItemResponseMessage>`)
	}
	w.Header().Set("Content-Type", "text/xml; charset=utf-8")
	io.WriteString(w, soap(`<m:GetItemResponse `+nsAttrs+`><m:ResponseMessages>`+b.String()+`</m:ResponseMessages></m:GetItemResponse>`))
}

// TestGetItemSizedBoundsBytes: GetItemSized asks for at most maxBytes of
// items per call by their sizes (a larger item alone), and an item over
// the read-ahead bound is asked for only once no other answer is held:
// five 40 MB messages are read one at a time, one call after the other,
// not in one call as GetItem asks for up to MaxBatch of them. The items
// still come in the order of the ids.
func TestGetItemSizedBoundsBytes(t *testing.T) {
	var mu sync.Mutex
	var calls [][]string
	inFlight, peak := 0, 0
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		ids := requestedIDs(body)
		mu.Lock()
		calls = append(calls, ids)
		inFlight++
		peak = max(peak, inFlight)
		mu.Unlock()
		time.Sleep(20 * time.Millisecond) // calls that may overlap do
		mu.Lock()
		inFlight--
		mu.Unlock()
		writeMIMEItems(w, ids)
	}))
	t.Cleanup(srv.Close)
	mb := clientFor(t, srv, ews.Options{Username: "svc", Password: "pw"}, nil).Mailbox("anna@example.com")

	var ids []ews.ItemID
	var sizes []int64
	for i := range 12 {
		ids = append(ids, ews.ItemID{ID: "m" + strconv.Itoa(i)})
		sizes = append(sizes, map[bool]int64{true: 40_000_000, false: 1_000_000}[i < 5])
	}
	var got []string
	err := mb.GetItemSized(t.Context(), ids, sizes, 8<<20, ews.ShapeMIME, func(it ews.Item) error {
		got = append(got, it.ID.ID)
		return it.Err
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	var lens []int
	for _, c := range calls {
		lens = append(lens, len(c))
	}
	// Five 40 MB messages alone, then seven of 1 MB (7 MB) together.
	if want := []int{1, 1, 1, 1, 1, 7}; !slices.Equal(lens, want) {
		t.Errorf("GetItem calls asked for %v items, want %v", lens, want)
	}
	if peak != 1 {
		t.Errorf("%d GetItem calls in flight at once; want 1 (each 40 MB message fills the read-ahead)", peak)
	}
	inIDOrder(t, got, ids)
	if err := mb.GetItemSized(t.Context(), ids, sizes[1:], 8<<20, ews.ShapeMIME, func(ews.Item) error { return nil }); err == nil {
		t.Error("GetItemSized took fewer sizes than ids")
	}
}

// TestMigrateBoundsGetItemBytes: a pass reads a folder's messages in
// GetItem calls of at most getItemBytes by the sizes SyncFolderItems gave
// (here lowered to 256 KiB: two messages of 100 KB a call, where the
// count alone would ask for all twelve at once), and never asks for the
// MIME content of a message whose size is over MaxMessageSize.
func TestMigrateBoundsGetItemBytes(t *testing.T) {
	const bound, size, n = 256 << 10, 100_000, 12
	t.Cleanup(ews.SetGetItemBytes(bound))
	srv := newTestServer(t, ewstest.Options{})
	base := time.Date(2025, 11, 3, 8, 0, 0, 0, time.UTC)
	message := func(i, size int) []byte {
		raw := fmt.Appendf(nil, "From: anna@example.test\r\nSubject: large %d\r\nMessage-ID: <large%d@example.test>\r\n\r\n", i, i)
		for len(raw) < size {
			raw = append(raw, "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde\r\n"...)
		}
		return raw[:size]
	}
	for i := range n {
		if _, err := srv.ews.AddMessage(owner, "inbox", message(i, size), i%2 == 0, false, base.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	tooLarge, err := srv.ews.AddMessage(owner, "inbox", message(n, 2*size), false, false, base)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var mimeCalls [][]string
	hs := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, []byte("<t:IncludeMimeContent>true</t:IncludeMimeContent>")) {
			mu.Lock()
			mimeCalls = append(mimeCalls, requestedIDs(body))
			mu.Unlock()
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		srv.ews.ServeHTTP(w, r)
	}))
	t.Cleanup(hs.Close)
	st, dir, account := newTarget(t)
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: dir, MaxMessageSize: size * 3 / 2,
		Client: clientFor(t, hs, ews.Options{Username: svcLogin, Password: svcPass}, nil)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Sync(t.Context(), testJob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := st.ListMessages(t.Context(), account, "INBOX", nil)
	if err != nil || len(msgs) != n || res.Messages != n {
		t.Fatalf("target INBOX: %d messages (%v), pass copied %d; want %d", len(msgs), err, res.Messages, n)
	}
	for _, f := range res.Folders {
		if f.Target == "INBOX" && f.SkippedTooLarge != 1 {
			t.Errorf("INBOX status %+v: want one message skipped as too large", f)
		}
	}
	mu.Lock()
	defer mu.Unlock()
	asked := 0
	for _, ids := range mimeCalls {
		asked += len(ids)
		if len(ids) > 1 && len(ids)*size > bound {
			t.Errorf("one GetItem asked for the MIME content of %d messages of %d octets: over %d", len(ids), size, bound)
		}
		if slices.Contains(ids, tooLarge) {
			t.Errorf("GetItem asked for the message over MaxMessageSize")
		}
	}
	if asked != n || len(mimeCalls) < n/2 {
		t.Errorf("%d GetItem calls for %d messages; want the %d in calls of %d bytes", len(mimeCalls), asked, n, bound)
	}
}

// inIDOrder fails t unless got is the ids of ids, in order.
func inIDOrder(t *testing.T, got []string, ids []ews.ItemID) {
	t.Helper()
	if len(got) != len(ids) {
		t.Fatalf("got %d items, want %d", len(got), len(ids))
	}
	for i, id := range ids {
		if got[i] != id.ID {
			t.Fatalf("item %d is %s, want %s: not in the order of the ids", i, got[i], id.ID)
		}
	}
}

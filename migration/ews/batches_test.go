package ews_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mailyard/mailyard/migration/ews"
)

// TestGetItemReadsAhead reads four GetItem batches from a server that
// answers only when told: three batches are asked for before the first
// is answered (the one being handled and two ahead), a fourth only once
// the first was handed over, so at most three answers are held, and the
// items still come in the order of the ids.
func TestGetItemReadsAhead(t *testing.T) {
	itemID := regexp.MustCompile(`<t:ItemId Id="([^"]+)"`)
	var mu sync.Mutex
	inFlight, peak := 0, 0
	arrived := make(chan int, 8) // the batch index of each call that arrived
	release := map[int]chan struct{}{}
	for b := range 4 {
		release[b] = make(chan struct{})
	}
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ids []string
		for _, m := range itemID.FindAllStringSubmatch(string(body), -1) {
			ids = append(ids, m[1])
		}
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
		var b strings.Builder
		for _, id := range ids {
			b.WriteString(`<m:GetItemResponseMessage ResponseClass="Success"><m:ResponseCode>NoError</m:ResponseCode><m:Items><t:Message>` +
				`<t:MimeContent CharacterSet="UTF-8">U3ViamVjdDogaGkNCg0KaGVsbG8NCg==</t:MimeContent><t:ItemId Id="` + id + `" ChangeKey="CQAAAB"/>` +
				`</t:Message></m:Items></m:GetItemResponseMessage>`)
		}
		w.Header().Set("Content-Type", "text/xml; charset=utf-8")
		io.WriteString(w, soap(`<m:GetItemResponse `+nsAttrs+`><m:ResponseMessages>`+b.String()+`</m:ResponseMessages></m:GetItemResponse>`))
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
	if len(got) != len(ids) {
		t.Fatalf("got %d items, want %d", len(got), len(ids))
	}
	for i, id := range ids {
		if got[i] != id.ID {
			t.Fatalf("item %d is %s, want %s: not in the order of the ids", i, got[i], id.ID)
		}
	}
}

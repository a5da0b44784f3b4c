package storetest

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// fuzzyMessages are the messages of RunFuzzySearch, by the UID they get
// in INBOX.
var fuzzyMessages = []string{
	"Subject: booking\r\n\r\nThe accommodation was lovely, thank you.\r\n",
	"Subject: travel\r\n\r\nWe booked an accomodation near the station.\r\n",
	"Subject: =?utf-8?B?0JLRgdGC0YDQtdGH0LA=?=\r\n\r\nВажное сообщение о встрече в пятницу.\r\n",
	"Subject: zoo\r\n\r\nA zebra and a giraffe.\r\n",
	"Subject: documentation\r\n\r\nPlease read it.\r\n",
}

// RunFuzzySearch checks a backend's fuzzy search (store.FuzzySearcher)
// on what every backend promises: a long word found with one letter
// left out, added or replaced, in Latin and Cyrillic script; a word
// asked as it is scoring above a word found with an edit; every word of
// a term needed, and a term without words matching no message; TEXT
// looking in the header where BODY does not; scores from 1 to 100 and
// the messages' metadata; within, expunged messages and a missing
// mailbox. The store must implement store.FuzzySearcher.
func RunFuzzySearch(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := ctxT(t)
	s := open(t)
	defer s.Close()
	fs, is := s.(store.FuzzySearcher)
	if !is {
		t.Fatalf("%T does not implement store.FuzzySearcher", s)
	}
	newAccount(t, s, "u", store.Quota{})
	for _, m := range fuzzyMessages {
		appendMsg(t, s, "u", store.Inbox, m)
	}
	indexPending(t, s)
	search := func(terms []store.TextTerm, within store.UIDSet) map[uint32]int {
		t.Helper()
		hits, err := fs.SearchFuzzy(ctx, "u", store.Inbox, terms, within)
		ok(t, err, "SearchFuzzy(%v)", terms)
		got := make(map[uint32]int)
		var order []uint32
		for _, h := range hits {
			if h.BlobID == "" || h.Size == 0 || h.InternalDate.IsZero() {
				t.Fatalf("SearchFuzzy(%v) gave message %d without its metadata: %+v", terms, h.UID, h)
			}
			// These messages are small: the index holds them whole
			// and decides.
			if !h.Sure {
				t.Fatalf("SearchFuzzy(%v) left message %d undecided", terms, h.UID)
			}
			if h.Score < 1 || h.Score > 100 {
				t.Fatalf("SearchFuzzy(%v): message %d scored %d, not in 1..100", terms, h.UID, h.Score)
			}
			got[h.UID] = h.Score
			order = append(order, h.UID)
		}
		if !slices.IsSorted(order) {
			t.Fatalf("SearchFuzzy(%v) gave messages out of UID order: %v", terms, order)
		}
		return got
	}
	uidsOf := func(m map[uint32]int) []uint32 {
		var out []uint32
		for u := range m {
			out = append(out, u)
		}
		slices.Sort(out)
		return out
	}

	// The word as asked, and with one letter left out.
	got := search(body("accommodation"), nil)
	eqSlice(t, uidsOf(got), []uint32{1, 2}, "accommodation")
	if got[1] <= got[2] {
		t.Errorf("accommodation: the exact word scored %d, the misspelled one %d; want it higher", got[1], got[2])
	}
	eqSlice(t, uidsOf(search(body("accomodation"), nil)), []uint32{1, 2}, "accomodation")
	// A letter added.
	eqSlice(t, uidsOf(search(body("accommmodation"), nil)), []uint32{1, 2}, "accommmodation")
	// One letter replaced, Cyrillic.
	eqSlice(t, uidsOf(search(body("сообщенне"), nil)), []uint32{3}, "сообщенне")
	eqSlice(t, uidsOf(search(body("ВСТРЕЧЕ"), nil)), []uint32{3}, "ВСТРЕЧЕ")
	// Every word of a term; the rest of the text does not count.
	eqSlice(t, uidsOf(search(body("lovely accommodation"), nil)), []uint32{1}, "lovely accommodation")
	eqSlice(t, uidsOf(search(body("zebra accommodation"), nil)), nil, "zebra accommodation")
	eqSlice(t, uidsOf(search(append(body("zebra"), body("giraffe")...), nil)), []uint32{4}, "zebra, giraffe")
	eqSlice(t, uidsOf(search(body("xylophone"), nil)), nil, "xylophone")
	// TEXT looks in the header too; BODY does not.
	eqSlice(t, uidsOf(search(body("documentaton"), nil)), nil, "BODY documentaton")
	eqSlice(t, uidsOf(search(all("documentaton"), nil)), []uint32{5}, "TEXT documentaton")
	// A term without words holds in no message (store.FuzzySearcher),
	// alone or beside terms that match; no terms at all hold in every
	// message.
	eqSlice(t, uidsOf(search(body("--"), nil)), nil, "BODY without words")
	eqSlice(t, uidsOf(search(all(""), nil)), nil, "TEXT without words")
	eqSlice(t, uidsOf(search(append(body("accommodation"), all("?!")...), nil)), nil, "a word and a term without words")
	eqSlice(t, uidsOf(search(nil, nil)), []uint32{1, 2, 3, 4, 5}, "no terms")
	// Within.
	eqSlice(t, uidsOf(search(body("accommodation"), uids(2, 3))), []uint32{2}, "within 2:3")

	// Too many words is refused.
	_, err := fs.SearchFuzzy(ctx, "u", store.Inbox, body(strings.Repeat("word ", 40)), nil)
	isErr(t, err, store.ErrInvalid, "SearchFuzzy of 40 words")

	// An expunged message is gone; its copy elsewhere stays.
	_, err = s.CreateMailbox(ctx, "u", "Kept", store.SpecialNone)
	ok(t, err, "create")
	_, err = s.Copy(ctx, "u", store.Inbox, "Kept", uids(2))
	ok(t, err, "copy")
	_, err = s.StoreFlags(ctx, "u", store.Inbox, store.StoreFlagsRequest{UIDs: uids(2), Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "flag")
	_, err = s.Expunge(ctx, "u", store.Inbox, nil)
	ok(t, err, "expunge")
	eqSlice(t, uidsOf(search(body("accomodation"), nil)), []uint32{1}, "after the expunge")
	hits, err := fs.SearchFuzzy(ctx, "u", "Kept", body("accomodation"), nil)
	ok(t, err, "SearchFuzzy in Kept")
	if len(hits) != 1 || hits[0].UID != 1 || !hits[0].Sure {
		t.Fatalf("SearchFuzzy in Kept: %+v, want the copy, UID 1", hits)
	}
	// The words of a message gone with its body are gone too, also
	// from a message stored after it (which may take its place in an
	// index).
	_, err = s.StoreFlags(ctx, "u", store.Inbox, store.StoreFlagsRequest{UIDs: uids(4), Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "flag")
	_, err = s.Expunge(ctx, "u", store.Inbox, nil)
	ok(t, err, "expunge")
	fresh := appendMsg(t, s, "u", store.Inbox, "Subject: new\r\n\r\nplain words\r\n")
	indexPending(t, s)
	eqSlice(t, uidsOf(search(body("zebra"), nil)), nil, "zebra after its message's expunge")
	eqSlice(t, uidsOf(search(body("plain"), nil)), []uint32{fresh.UID}, "plain")
	_, err = fs.SearchFuzzy(ctx, "u", "Nope", body("accomodation"), nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SearchFuzzy of a missing mailbox: %v, want ErrNotFound", err)
	}
	_, err = fs.SearchFuzzy(ctx, "nobody", store.Inbox, body("accomodation"), nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SearchFuzzy of a missing account: %v, want ErrNotFound", err)
	}
	_, err = fs.SearchFuzzy(ctx, "u", "Nope", body("--"), nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SearchFuzzy without words in a missing mailbox: %v, want ErrNotFound", err)
	}
}

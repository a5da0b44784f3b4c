package storetest

import (
	"bytes"
	"encoding/base64"
	"errors"
	"mime/quotedprintable"
	"slices"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"

	"github.com/mailyard/mailyard/store"
)

// textMessages are the messages of RunTextSearch, by the UID they get in
// INBOX: Latin and Cyrillic text, in UTF-8, KOI8-R (quoted-printable)
// and windows-1251 (base64), plain and HTML, one with a multipart.
func textMessages() []string {
	koi, _ := charmap.KOI8R.NewEncoder().String("Привет, МИР! Почтовый ящик.")
	var qp bytes.Buffer
	w := quotedprintable.NewWriter(&qp)
	w.Write([]byte(koi))
	w.Close()
	cp, _ := charmap.Windows1251.NewEncoder().String("Ёлка и ЗЕБРА в лесу")
	return []string{
		"Subject: Weekly report\r\nContent-Type: text/plain\r\n\r\nThe Quick brown FOX jumps.\r\n",
		"Subject: lunch\r\n\r\nA lazy DOG sleeps.\r\n",
		"Subject: =?koi8-r?B?" + base64.StdEncoding.EncodeToString([]byte(mustKOI("Отчёт"))) + "?=\r\n" +
			"Content-Type: text/plain; charset=koi8-r\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n" + qp.String() + "\r\n",
		"Subject: html\r\nContent-Type: multipart/alternative; boundary=b\r\n\r\n--b\r\n" +
			"Content-Type: text/html; charset=windows-1251\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
			base64.StdEncoding.EncodeToString([]byte("<p class=hidden>"+cp+"</p><b>bold</b>&amp;more")) + "\r\n--b--\r\n",
	}
}

func mustKOI(s string) string {
	out, err := charmap.KOI8R.NewEncoder().String(s)
	if err != nil {
		panic(err)
	}
	return out
}

// RunTextSearch checks a backend's full-text index (store.TextSearcher):
// what SearchText finds in messages delivered, appended and copied
// (Latin and Cyrillic text, in any case, charset and transfer encoding,
// HTML without its tags), that expunged and deleted messages are gone
// from it, and that it survives reopening the store. open is as for
// RunReopen; the store must implement store.TextSearcher.
func RunTextSearch(t *testing.T, open func(t *testing.T, dir string) store.Store) {
	dir := t.TempDir()
	ctx := ctxT(t)
	s := open(t, dir)
	newAccount(t, s, "u", store.Quota{})
	for i, m := range textMessages() {
		if i%2 == 0 {
			appendMsg(t, s, "u", store.Inbox, m)
		} else {
			_, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "u"}}}, bytes.NewReader([]byte(m)))
			ok(t, err, "deliver")
		}
	}
	indexPending(t, s)
	cases := []textCase{
		{body("quick"), []uint32{1}},
		{body("QUICK BROWN fox"), []uint32{1}},
		{body("uick"), []uint32{1}},
		{body("dog"), []uint32{2}},
		{body("мир"), []uint32{3}},
		{body("ПРИВЕТ, мир"), []uint32{3}},
		{body("ящик"), []uint32{3}},
		{body("зебра"), []uint32{4}},
		{body("ёлка"), []uint32{4}},
		{body("bold"), []uint32{4}},
		{body("&more"), []uint32{4}},
		{body("hidden"), nil}, // an attribute is not text
		{body("<p"), []uint32{1, 2, 3, 4}},
		{body("<b>"), nil}, // tags are not text
		{body("report"), nil},
		{all("report"), []uint32{1}},
		{all("отчёт"), []uint32{3}},
		{all("subject: lunch"), []uint32{2}},
		{body("ab"), []uint32{1, 2, 3, 4}}, // too short to narrow
		{append(body("lazy"), all("lunch")...), []uint32{2}},
		{append(body("lazy"), all("report")...), nil},
		{append(body("lazy"), body("x")...), []uint32{2}},
		{body("absent"), nil},
	}
	check := func(s store.Store, when string) {
		t.Helper()
		ts := searcher(t, s)
		for _, c := range cases {
			hits, err := ts.SearchText(ctx, "u", store.Inbox, c.terms, nil)
			ok(t, err, "%s: SearchText(%v)", when, c.terms)
			eqSlice(t, candidates(t, hits), c.want, "%s: SearchText(%v)", when, c.terms)
			// These messages are small: an index holds them whole, and
			// answers for them unless a term is too short.
			var sure []uint32
			for _, h := range hits {
				if h.Sure {
					sure = append(sure, h.UID)
				}
			}
			if longTerms(c.terms) {
				eqSlice(t, sure, c.want, "%s: SearchText(%v) sure", when, c.terms)
			} else {
				eqSlice(t, sure, nil, "%s: SearchText(%v) sure with a short term", when, c.terms)
			}
		}
		hits, err := ts.SearchText(ctx, "u", store.Inbox, body("ab"), uids(2, 4))
		ok(t, err, "%s: SearchText within", when)
		eqSlice(t, candidates(t, hits), []uint32{2, 4}, "%s: SearchText within 2,4", when)
	}
	check(s, "stored")

	// A copy is found in its mailbox; its source's expunge leaves it.
	_, err := s.CreateMailbox(ctx, "u", "Kept", store.SpecialNone)
	ok(t, err, "create")
	_, err = s.Copy(ctx, "u", store.Inbox, "Kept", uids(1, 3))
	ok(t, err, "copy")
	ts := searcher(t, s)
	hits, err := ts.SearchText(ctx, "u", "Kept", body("мир"), nil)
	ok(t, err, "search copy")
	eqSlice(t, candidates(t, hits), []uint32{2}, "copy of message 3 in Kept")
	_, err = s.StoreFlags(ctx, "u", store.Inbox, store.StoreFlagsRequest{UIDs: uids(3), Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}})
	ok(t, err, "flag")
	_, err = s.Expunge(ctx, "u", store.Inbox, nil)
	ok(t, err, "expunge")
	hits, err = ts.SearchText(ctx, "u", store.Inbox, body("мир"), nil)
	ok(t, err, "search after expunge")
	eqSlice(t, candidates(t, hits), nil, "expunged message 3")
	hits, err = ts.SearchText(ctx, "u", "Kept", body("мир"), nil)
	ok(t, err, "search copy after expunge")
	eqSlice(t, candidates(t, hits), []uint32{2}, "copy after the source's expunge")
	_, err = ts.SearchText(ctx, "u", "Nope", body("мир"), nil)
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("SearchText of a missing mailbox: %v, want ErrNotFound", err)
	}
	cases = []textCase{{body("мир"), nil}, {body("quick"), []uint32{1}}, {all("lunch"), []uint32{2}}, {body("зебра"), []uint32{4}}}

	// The index survives reopening.
	ok(t, s.Close(), "Close")
	s = open(t, dir)
	defer s.Close()
	check(s, "reopened")
	ok(t, s.DeleteMailbox(ctx, "u", "Kept"), "delete mailbox")
	appendMsg(t, s, "u", store.Inbox, "Subject: new\r\n\r\nfresh words after reopening\r\n")
	hits, err = searcher(t, s).SearchText(ctx, "u", store.Inbox, body("after reopen"), nil)
	ok(t, err, "search new")
	eqSlice(t, candidates(t, hits), []uint32{5}, "message appended after reopening")
}

// indexPending fills the full-text entries a backend that indexes after
// Append and Deliver return (a textIndexFlusher) has not filled yet, so
// that the test can ask for the index's own answers (Sure).
func indexPending(t *testing.T, s store.Store) {
	t.Helper()
	if f, later := s.(textIndexFlusher); later {
		_, err := f.IndexPendingText(ctxT(t))
		ok(t, err, "IndexPendingText")
	}
}

// textCase is a search and the UIDs it finds.
type textCase struct {
	terms []store.TextTerm
	want  []uint32
}

// candidates is the UIDs of hits, which must be ascending and have the
// messages' metadata.
func candidates(t testing.TB, hits []store.TextHit) []uint32 {
	t.Helper()
	var out []uint32
	for _, h := range hits {
		if h.BlobID == "" || h.Size == 0 || h.InternalDate.IsZero() {
			t.Fatalf("SearchText gave message %d without its metadata: %+v", h.UID, h)
		}
		out = append(out, h.UID)
	}
	if !slices.IsSorted(out) {
		t.Fatalf("SearchText gave messages out of UID order: %v", out)
	}
	return out
}

func longTerms(terms []store.TextTerm) bool {
	for _, t := range terms {
		if utf8.RuneCountInString(t.Value) < store.MinTextTerm {
			return false
		}
	}
	return true
}

func searcher(t *testing.T, s store.Store) store.TextSearcher {
	t.Helper()
	ts, is := s.(store.TextSearcher)
	if !is {
		t.Fatalf("%T does not implement store.TextSearcher", s)
	}
	return ts
}

func body(v string) []store.TextTerm { return []store.TextTerm{{Field: store.TextBody, Value: v}} }
func all(v string) []store.TextTerm  { return []store.TextTerm{{Field: store.TextAll, Value: v}} }

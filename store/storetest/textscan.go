package storetest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"mime"
	"mime/quotedprintable"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"golang.org/x/text/encoding/charmap"
	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/internal/msgtext"
	"github.com/mailyard/mailyard/store"
)

// RunTextSearchScan checks a backend's full-text index against a
// brute-force scan of the messages' text (internal/msgtext, as IMAP
// SEARCH reads it), on random messages: Latin and Cyrillic words in
// mixed case, UTF-8, KOI8-R and windows-1251, 8bit, quoted-printable and
// base64, plain and HTML, multiparts, some with bytes no text column
// holds (NUL, invalid UTF-8). For random BODY and TEXT terms and UID
// sets, SearchText returns every message the scan finds, only messages
// of the mailbox, and Sure only for messages the scan finds; for the
// messages of well-formed text it returns exactly the scan's, Sure when
// no term is short, except that a message appended with DeferTextIndex,
// or any message of a backend that indexes after the call returns (one
// with IndexPendingText, such as store/sqlite), may still be a candidate
// that is not Sure until IndexPendingText ran. The same holds after an
// expunge and for copies.
func RunTextSearchScan(t *testing.T, open func(t *testing.T) store.Store) {
	s := open(t)
	ctx := ctxT(t)
	ts := searcher(t, s)
	flusher, later := s.(textIndexFlusher)
	newAccount(t, s, "scan", store.Quota{})
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		box := fmt.Sprintf("scan%d", n)
		if _, err := s.CreateMailbox(ctx, "scan", box, store.SpecialNone); err != nil {
			rt.Fatal(err)
		}
		msgs := map[uint32]scanMsg{}
		for i := rapid.IntRange(1, 6).Draw(rt, "messages"); i > 0; i-- {
			raw, clean := scanMessage(rt)
			var uid uint32
			deferred := false
			if rapid.Bool().Draw(rt, "deliver") {
				d, err := s.Deliver(ctx, store.Delivery{Recipients: []store.Recipient{{Account: "scan", Mailbox: box}}}, strings.NewReader(raw))
				if err != nil {
					rt.Fatalf("Deliver: %v", err)
				}
				uid = d[0].UID
			} else {
				deferred = rapid.Bool().Draw(rt, "defer")
				m, err := s.Append(ctx, "scan", box, strings.NewReader(raw), store.AppendOptions{DeferTextIndex: deferred})
				if err != nil {
					rt.Fatalf("Append: %v", err)
				}
				uid = m.UID
			}
			msgs[uid] = newScanMsg(raw, clean)
			if deferred || later {
				m := msgs[uid]
				m.deferred = true
				msgs[uid] = m
			}
		}
		if later && rapid.Bool().Draw(rt, "flush") {
			if _, err := flusher.IndexPendingText(ctx); err != nil {
				rt.Fatalf("IndexPendingText: %v", err)
			}
			for uid, m := range msgs {
				m.deferred = false
				msgs[uid] = m
			}
		}
		if rapid.Bool().Draw(rt, "copy") {
			pairs, err := s.Copy(ctx, "scan", box, box, store.UIDSet{{Start: 1, Stop: 0}})
			if err != nil {
				rt.Fatalf("Copy: %v", err)
			}
			for _, p := range pairs {
				msgs[p.Dst] = msgs[p.Src]
			}
		}
		compareScan(rt, ctx, ts, box, msgs)
		var gone []uint32
		for uid := range msgs {
			if rapid.Bool().Draw(rt, "expunge") {
				gone = append(gone, uid)
			}
		}
		if len(gone) > 0 {
			set := store.UIDSet{}
			for _, u := range gone {
				set = append(set, store.UIDRange{Start: u, Stop: u})
			}
			if _, err := s.StoreFlags(ctx, "scan", box, store.StoreFlagsRequest{UIDs: set, Op: store.FlagsAdd, Flags: []string{store.FlagDeleted}}); err != nil {
				rt.Fatal(err)
			}
			if _, err := s.Expunge(ctx, "scan", box, nil); err != nil {
				rt.Fatal(err)
			}
			for _, u := range gone {
				delete(msgs, u)
			}
			compareScan(rt, ctx, ts, box, msgs)
		}
	})
}

// textIndexFlusher is a store whose full-text entries may be filled
// after Append or Deliver returns; IndexPendingText fills every entry
// that waits, now.
type textIndexFlusher interface {
	IndexPendingText(ctx context.Context) (int, error)
}

// compareScan runs a few random searches and checks them against the
// scan of msgs, the mailbox's messages by UID.
func compareScan(rt *rapid.T, ctx context.Context, ts store.TextSearcher, box string, msgs map[uint32]scanMsg) {
	for q := rapid.IntRange(1, 4).Draw(rt, "queries"); q > 0; q-- {
		var terms []store.TextTerm
		for range rapid.IntRange(1, 2).Draw(rt, "terms") {
			f := store.TextBody
			if rapid.Bool().Draw(rt, "text") {
				f = store.TextAll
			}
			terms = append(terms, store.TextTerm{Field: f, Value: scanPattern(rt)})
		}
		var within store.UIDSet
		if rapid.IntRange(0, 3).Draw(rt, "within") == 0 {
			lo := uint32(rapid.IntRange(1, 8).Draw(rt, "lo"))
			within = store.UIDSet{{Start: lo, Stop: lo + uint32(rapid.IntRange(0, 4).Draw(rt, "len"))}}
		}
		hits, err := ts.SearchText(ctx, "scan", box, terms, within)
		if err != nil {
			rt.Fatalf("SearchText(%+v): %v", terms, err)
		}
		long := longTerms(terms)
		got := map[uint32]store.TextHit{}
		var order []uint32
		for _, h := range hits {
			if _, ok := msgs[h.UID]; !ok {
				rt.Fatalf("SearchText(%+v) gave message %d, not in the mailbox", terms, h.UID)
			}
			if !within.Contains(h.UID) {
				rt.Fatalf("SearchText(%+v) gave message %d, not within %v", terms, h.UID, within)
			}
			got[h.UID] = h
			order = append(order, h.UID)
		}
		if !slices.IsSorted(order) {
			rt.Fatalf("SearchText(%+v) out of UID order: %v", terms, order)
		}
		for uid, m := range msgs {
			if !within.Contains(uid) {
				continue
			}
			match := m.matches(terms)
			h, hit := got[uid]
			switch {
			case match && !hit:
				rt.Fatalf("SearchText(%+v): message %d has the text but was not found\n%s", terms, uid, m.raw)
			case hit && h.Sure && !match:
				rt.Fatalf("SearchText(%+v): message %d is Sure but lacks the text\n%s", terms, uid, m.raw)
			case m.clean && !m.deferred && long && hit && !match:
				rt.Fatalf("SearchText(%+v): message %d found though it lacks the text (the index does not narrow)\n%s", terms, uid, m.raw)
			case m.clean && !m.deferred && long && hit && !h.Sure:
				rt.Fatalf("SearchText(%+v): message %d found but not Sure\n%s", terms, uid, m.raw)
			case !long && hit && h.Sure:
				rt.Fatalf("SearchText(%+v): message %d Sure with a term shorter than MinTextTerm", terms, uid)
			}
		}
	}
}

// scanMsg is a stored message and its texts as a scan reads them.
type scanMsg struct {
	raw   string
	clean bool // well-formed text an index holds whole
	// deferred: appended with DeferTextIndex, so its entry may not be
	// there yet, and it may be a candidate that is not Sure.
	deferred bool
	header   string   // lower-cased
	texts    []string // lower-cased
}

func newScanMsg(raw string, clean bool) scanMsg {
	var h, b textList
	msgtext.Read(bufio.NewReader(strings.NewReader(raw)), &h, &b)
	h.Next()
	b.Next()
	return scanMsg{raw: raw, clean: clean, header: strings.Join(h.texts, "\n"), texts: b.texts}
}

// matches reports whether the message holds every term, as a scan
// decides it (RFC 9051 §6.4.4: a case-insensitive substring).
func (m scanMsg) matches(terms []store.TextTerm) bool {
	for _, t := range terms {
		v := strings.ToLower(t.Value)
		in := t.Field == store.TextAll && strings.Contains(m.header, v)
		for _, x := range m.texts {
			in = in || strings.Contains(x, v)
		}
		if !in {
			return false
		}
	}
	return true
}

// textList is a msgtext.Sink that keeps each text apart, lower-cased.
type textList struct {
	texts []string
	cur   []byte
}

func (l *textList) Write(p []byte) (int, error) { l.cur = append(l.cur, p...); return len(p), nil }

func (l *textList) Next() {
	if len(l.cur) > 0 {
		l.texts = append(l.texts, strings.ToLower(string(l.cur)))
		l.cur = nil
	}
}

// The vocabulary of the generated messages.
var scanWords = []string{"Quick", "brown", "FOX", "lazy", "dog", "Zebra", "mailbox", "needle", "hay", "Straße", "façade",
	"Привет", "мир", "ПОЧТА", "ёлка", "сообщение", "Ящик", "поиск"}

// scanText is a few words of the vocabulary, in mixed case; without
// unicodeAll only words KOI8-R and windows-1251 can carry.
func scanText(rt *rapid.T, label string, unicodeAll bool) string {
	n := rapid.IntRange(1, 8).Draw(rt, label+"-len")
	words := make([]string, n)
	for i := range words {
		w := rapid.SampledFrom(scanWords).Draw(rt, label+"-word")
		if !unicodeAll && (w == "Straße" || w == "façade") {
			w = "plain"
		}
		switch rapid.IntRange(0, 2).Draw(rt, label+"-case") {
		case 0:
			w = strings.ToUpper(w)
		case 1:
			w = strings.ToLower(w)
		}
		words[i] = w
	}
	return strings.Join(words, rapid.SampledFrom([]string{" ", "\r\n", ", "}).Draw(rt, label+"-sep"))
}

// scanPart is one text part with its header; clean is false when its
// text holds bytes no text column holds.
func scanPart(rt *rapid.T, label string) (part string, clean bool) {
	charset := rapid.SampledFrom([]string{"utf-8", "koi8-r", "windows-1251"}).Draw(rt, label+"-charset")
	text := scanText(rt, label, charset == "utf-8")
	subtype := "plain"
	if rapid.Bool().Draw(rt, label+"-html") {
		subtype = "html"
		text = "<p title=\"hidden\">" + strings.ReplaceAll(text, "Zebra", "<b>Zebra</b>") + "</p>"
	}
	enc := []byte(text)
	switch charset {
	case "koi8-r":
		enc, _ = charmap.KOI8R.NewEncoder().Bytes(enc)
	case "windows-1251":
		enc, _ = charmap.Windows1251.NewEncoder().Bytes(enc)
	}
	clean = true
	if rapid.IntRange(0, 5).Draw(rt, label+"-junk") == 0 {
		enc = append(enc, "\x00\xff junk"...)
		clean = false
	}
	var body string
	cte := rapid.SampledFrom([]string{"8bit", "quoted-printable", "base64"}).Draw(rt, label+"-cte")
	switch cte {
	case "quoted-printable":
		var b bytes.Buffer
		w := quotedprintable.NewWriter(&b)
		w.Write(enc)
		w.Close()
		body = b.String()
	case "base64":
		body = base64.StdEncoding.EncodeToString(enc)
	default:
		body = string(enc)
	}
	return "Content-Type: text/" + subtype + "; charset=" + charset + "\r\nContent-Transfer-Encoding: " + cte + "\r\n\r\n" + body + "\r\n", clean
}

// scanMessage is a random message and whether all its text is clean.
func scanMessage(rt *rapid.T) (string, bool) {
	subject := mime.BEncoding.Encode("utf-8", scanText(rt, "subject", true))
	head := "From: a@example.org\r\nSubject: " + subject + "\r\n"
	if !rapid.Bool().Draw(rt, "multipart") {
		p, clean := scanPart(rt, "part")
		return head + p, clean
	}
	a, ca := scanPart(rt, "first")
	b, cb := scanPart(rt, "second")
	return head + "Content-Type: multipart/mixed; boundary=zz\r\n\r\n--zz\r\n" + a + "--zz\r\n" + b + "--zz--\r\n", ca && cb
}

// scanPattern is a search pattern: a piece of a word or two of the
// vocabulary in any case, a word of none, or one too short to index.
func scanPattern(rt *rapid.T) string {
	switch rapid.IntRange(0, 4).Draw(rt, "pattern") {
	case 0:
		return rapid.SampledFrom([]string{"absent", "ничего", "xyz"}).Draw(rt, "none")
	case 1:
		w := []rune(rapid.SampledFrom(scanWords).Draw(rt, "short"))
		return string(w[:rapid.IntRange(1, 2).Draw(rt, "shortlen")])
	case 2:
		return strings.ToUpper(rapid.SampledFrom(scanWords).Draw(rt, "a")) + " " + rapid.SampledFrom(scanWords).Draw(rt, "b")
	default:
		w := []rune(rapid.SampledFrom(scanWords).Draw(rt, "word"))
		lo := rapid.IntRange(0, len(w)-3).Draw(rt, "from")
		hi := rapid.IntRange(lo+3, len(w)).Draw(rt, "to")
		p := string(w[lo:hi])
		if rapid.Bool().Draw(rt, "upper") {
			p = strings.ToUpper(p)
		}
		if !utf8.ValidString(p) {
			rt.Fatalf("bad pattern %q", p)
		}
		return p
	}
}

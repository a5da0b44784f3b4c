package imap

import (
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/text/encoding/charmap"
	"pgregory.net/rapid"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// scanOnly hides the store's full-text index (store.TextSearcher) from
// a server, which then answers BODY and TEXT by reading every message.
type scanOnly struct{ Backend }

// indexAndScan is an env with a second server on the same store that
// does not use the index, both logged in as alice over plain text.
func indexAndScan(t *testing.T) (e *env, indexed, scanned *raw) {
	e = newEnvIn(t, memDir(t), func(o *Options) { o.AllowInsecureAuth = true })
	if _, ok := Backend(e.st).(store.TextSearcher); !ok {
		t.Fatal("the sqlite store has no full-text index")
	}
	_, addr := e.start(Options{Backend: scanOnly{e.st}, Auth: e.dir, AllowInsecureAuth: true})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	indexed, scanned = e.raw(), e.greeted(c)
	for _, r := range []*raw{indexed, scanned} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	}
	return e, indexed, scanned
}

// ftsWords are what the generated messages say: Latin with and without
// diacritics, Cyrillic, in mixed case.
var (
	ftsLatin    = []string{"Quick", "brown", "FOX", "jumps", "over", "lazy", "dog", "Zebra", "mailbox", "Needle", "hay"}
	ftsAccented = []string{"naïve", "Straße", "ÉCOLE", "façade"}
	ftsCyrillic = []string{"Привет", "мир", "ПОЧТА", "ёлка", "сообщение", "Ящик", "поиск", "Тест"}
)

// ftsText is a few words of the vocabulary a charset can carry.
func ftsText(t *rapid.T, label, charset string) string {
	vocab := slices.Concat(ftsLatin, ftsCyrillic)
	if charset == "utf-8" {
		vocab = append(vocab, ftsAccented...)
	}
	n := rapid.IntRange(1, 12).Draw(t, label+"-len")
	words := make([]string, n)
	for i := range words {
		words[i] = rapid.SampledFrom(vocab).Draw(t, label+"-word")
		switch rapid.IntRange(0, 3).Draw(t, label+"-case") {
		case 0:
			words[i] = strings.ToUpper(words[i])
		case 1:
			words[i] = strings.ToLower(words[i])
		}
	}
	return strings.Join(words, rapid.SampledFrom([]string{" ", "\r\n", ", "}).Draw(t, label+"-sep"))
}

// ftsPart is a text part: its charset, transfer encoding and HTML or
// plain form drawn.
func ftsPart(t *rapid.T, label string) string {
	charset := rapid.SampledFrom([]string{"utf-8", "koi8-r", "windows-1251"}).Draw(t, label+"-charset")
	text := ftsText(t, label, charset)
	subtype := "plain"
	if rapid.Bool().Draw(t, label+"-html") {
		subtype = "html"
		words := strings.Fields(text)
		for i := range words {
			switch rapid.IntRange(0, 4).Draw(t, label+"-tag") {
			case 0:
				words[i] = "<b>" + words[i] + "</b>"
			case 1:
				words[i] = "<p class=\"Zebra\">" + words[i] + "</p>"
			case 2:
				words[i] += "&amp;<br>"
			}
		}
		text = "<html><head><style>p{}</style></head><body>" + strings.Join(words, " ") + "</body></html>"
	}
	raw := []byte(text)
	switch charset {
	case "koi8-r":
		raw, _ = charmap.KOI8R.NewEncoder().Bytes(raw)
	case "windows-1251":
		raw, _ = charmap.Windows1251.NewEncoder().Bytes(raw)
	}
	h := fmt.Sprintf("Content-Type: text/%s; charset=%s\r\n", subtype, charset)
	switch rapid.IntRange(0, 2).Draw(t, label+"-cte") {
	case 0:
		return h + "Content-Transfer-Encoding: 8bit\r\n\r\n" + string(raw) + "\r\n"
	case 1:
		var sb strings.Builder
		w := quotedprintable.NewWriter(&sb)
		w.Write(raw)
		w.Close()
		return h + "Content-Transfer-Encoding: quoted-printable\r\n\r\n" + sb.String() + "\r\n"
	default:
		enc := base64.StdEncoding.EncodeToString(raw)
		var sb strings.Builder
		for len(enc) > 76 {
			sb.WriteString(enc[:76] + "\r\n")
			enc = enc[76:]
		}
		return h + "Content-Transfer-Encoding: base64\r\n\r\n" + sb.String() + enc + "\r\n"
	}
}

// ftsMessage is a whole message: a single part, an alternative, or a
// mixed multipart with a binary attachment and an attached message.
func ftsMessage(t *rapid.T) string {
	subject := ftsText(t, "subject", "utf-8")
	if rapid.Bool().Draw(t, "subject-encoded") {
		subject = mime.BEncoding.Encode("utf-8", subject)
	}
	hdr := "From: Sender <s@example.org>\r\nTo: alice@example.com\r\nSubject: " + strings.ReplaceAll(subject, "\r\n", " ") + "\r\nMIME-Version: 1.0\r\n"
	switch rapid.IntRange(0, 2).Draw(t, "structure") {
	case 0:
		return hdr + ftsPart(t, "single")
	case 1:
		return hdr + "Content-Type: multipart/alternative; boundary=alt\r\n\r\n--alt\r\n" + ftsPart(t, "plain") +
			"--alt\r\n" + ftsPart(t, "html") + "--alt--\r\n"
	default:
		att := base64.StdEncoding.EncodeToString([]byte(ftsText(t, "attachment", "utf-8")))
		return hdr + "Content-Type: multipart/mixed; boundary=mix\r\n\r\n--mix\r\n" + ftsPart(t, "text") +
			"--mix\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n" + att + "\r\n" +
			"--mix\r\nContent-Type: message/rfc822\r\n\r\nSubject: " + strings.ReplaceAll(ftsText(t, "inner-subject", "utf-8"), "\r\n", " ") +
			"\r\n\r\n" + strings.ReplaceAll(ftsText(t, "inner", "utf-8"), "\r\n", " ") + "\r\n--mix--\r\n"
	}
}

// ftsPattern is a search string: a piece of a word of the vocabulary
// (or two words), in any case, or a string no message holds.
func ftsPattern(t *rapid.T) string {
	vocab := slices.Concat(ftsLatin, ftsAccented, ftsCyrillic)
	w := []rune(rapid.SampledFrom(vocab).Draw(t, "pattern-word"))
	var p string
	switch rapid.IntRange(0, 5).Draw(t, "pattern-kind") {
	case 0:
		p = string(w) + " " + rapid.SampledFrom(vocab).Draw(t, "pattern-next")
	case 1:
		p = "absent" + string(w)
	default:
		i := rapid.IntRange(0, len(w)-1).Draw(t, "pattern-start")
		j := rapid.IntRange(i+1, len(w)).Draw(t, "pattern-end")
		p = string(w[i:j])
	}
	switch rapid.IntRange(0, 2).Draw(t, "pattern-case") {
	case 0:
		p = strings.ToUpper(p)
	case 1:
		p = strings.ToLower(p)
	}
	return p
}

// nonSyncLiteral is s as an IMAP non-synchronizing literal (RFC 7888).
func nonSyncLiteral(s string) string { return fmt.Sprintf("{%d+}\r\n%s", len(s), s) }

// TestFullTextMatchesScan: over random messages (Latin and Cyrillic text
// in mixed case, UTF-8, KOI8-R and windows-1251, plain and HTML, 8bit,
// quoted-printable and base64, multiparts with attachments and attached
// messages), UID SEARCH with BODY and TEXT keys answers exactly what a
// server without the index answers by reading every message, also after
// an expunge.
func TestFullTextMatchesScan(t *testing.T) {
	indexMatchesScan(t, "fts", func(rt *rapid.T) string {
		return "UID SEARCH CHARSET UTF-8 " + textSearchKey(rt, ftsPattern, "", "TEXT")
	}, slices.Equal[[]string])
}

// textSearchKey draws a search key of BODY and TEXT keys (under AND, OR
// and NOT) over two strings pattern draws, each key after mod ("" or
// "FUZZY "); one of the shapes is mod+last on a string, and UNSEEN.
// TestFullTextMatchesScan and TestFuzzyMatchesScan draw their keys here.
func textSearchKey(rt *rapid.T, pattern func(*rapid.T) string, mod, last string) string {
	a, b := nonSyncLiteral(pattern(rt)), nonSyncLiteral(pattern(rt))
	switch rapid.IntRange(0, 5).Draw(rt, "key") {
	case 0:
		return mod + "BODY " + a
	case 1:
		return mod + "TEXT " + a
	case 2:
		return mod + "BODY " + a + " " + mod + "TEXT " + b
	case 3:
		return "OR " + mod + "BODY " + a + " " + mod + "TEXT " + b
	case 4:
		return "NOT " + mod + "BODY " + a
	default:
		return mod + last + " " + a + " UNSEEN"
	}
}

// indexMatchesScan delivers random messages (ftsMessage) to a new
// mailbox per round and checks that the commands query draws give the
// same answers (same) from the server with the store's indexes as from
// one that reads every message (indexAndScan), before and after an
// expunge.
func indexMatchesScan(t *testing.T, prefix string, query func(rt *rapid.T) string, same func(got, want []string) bool) {
	e, indexed, scanned := indexAndScan(t)
	ctx := context.Background()
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		mbox := fmt.Sprintf("%s%d", prefix, n)
		if _, err := e.st.CreateMailbox(ctx, e.aliceID, mbox, ""); err != nil {
			rt.Fatal(err)
		}
		for i := rapid.IntRange(1, 8).Draw(rt, "messages"); i > 0; i-- {
			e.deliverTo(rt, e.aliceID, mbox, ftsMessage(rt))
		}
		for _, r := range []*raw{indexed, scanned} {
			r.t = rt
			r.expectOK("SELECT " + mbox)
		}
		compare := func() {
			for q := rapid.IntRange(1, 6).Draw(rt, "queries"); q > 0; q-- {
				cmd := query(rt)
				want := scanned.expectOK(cmd)
				if got := indexed.expectOK(cmd); !same(got, want) {
					rt.Fatalf("%q: with the index %q, by a scan %q", cmd, got, want)
				}
			}
		}
		compare()
		// Expunge some; the index forgets them, the answers still agree.
		indexed.expectOK("UID STORE 1:* +FLAGS.SILENT (\\Deleted)")
		indexed.expectOK("UID STORE " + fmt.Sprint(rapid.IntRange(1, 8).Draw(rt, "keep")) + " -FLAGS.SILENT (\\Deleted)")
		indexed.expectOK("EXPUNGE")
		scanned.expectOK("NOOP")
		compare()
	})
}

// countingStore counts the bodies a server opens.
type countingStore struct {
	*sqlite.Store
	opens atomic.Int64
}

func (c *countingStore) OpenBody(ctx context.Context, account, mailbox string, uid uint32) (io.ReadCloser, error) {
	c.opens.Add(1)
	return c.Store.OpenBody(ctx, account, mailbox, uid)
}

// TestFullTextWire: SEARCH BODY and TEXT with Latin and Cyrillic
// patterns over the wire, answered from the index: a body is read only
// for what the index cannot decide.
func TestFullTextWire(t *testing.T) {
	e := newEnvIn(t, memDir(t), func(o *Options) { o.AllowInsecureAuth = true })
	cs := &countingStore{Store: e.st}
	_, addr := e.start(Options{Backend: cs, Auth: e.dir, AllowInsecureAuth: true})
	for i := 1; i <= 40; i++ {
		e.deliver(e.aliceID, "", fmt.Sprintf("From: s%d@example.org\r\nSubject: filler %d\r\n\r\nnothing to see %d\r\n", i, i, i))
	}
	koi, _ := charmap.KOI8R.NewEncoder().String("Срочно: ПОЧТОВЫЙ ящик переполнен")
	e.deliver(e.aliceID, "", "From: admin@example.org\r\nSubject: =?utf-8?B?"+base64.StdEncoding.EncodeToString([]byte("Квота"))+"?=\r\n"+
		"Content-Type: text/plain; charset=koi8-r\r\n\r\n"+koi+"\r\n")
	e.deliver(e.aliceID, "", "From: bob@example.org\r\nSubject: Lunch\r\nContent-Type: text/html\r\n\r\n<p>Meet at the <b>Zebra</b> café</p>\r\n")
	e.indexText() // the store indexes in the background; this test counts the bodies read beside the index
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	r := e.greeted(c)
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	r.expectOK("SELECT INBOX")
	for _, tc := range []struct {
		key  string
		want string
		// opens is how many bodies the search may read.
		opens int64
	}{
		{"BODY " + nonSyncLiteral("почтовый"), "* SEARCH 41", 0},
		{"BODY " + nonSyncLiteral("ящик ПЕРЕПОЛНЕН"), "* SEARCH 41", 0},
		{"TEXT " + nonSyncLiteral("квота"), "* SEARCH 41", 0},
		{"BODY " + nonSyncLiteral("квота"), "* SEARCH", 0},
		{"BODY zebra", "* SEARCH 42", 0},
		{"BODY " + nonSyncLiteral("ZEBRA CAFÉ"), "* SEARCH 42", 0},
		{"BODY <b>", "* SEARCH", 0},
		{"TEXT lunch", "* SEARCH 42", 0},
		{"BODY absent", "* SEARCH", 0},
		{"BODY see", "* SEARCH " + seqList(1, 40), 0},
		{"BODY zebra BODY ca", "* SEARCH 42", 1}, // "ca" is too short for the index
		{"BODY zebra TEXT " + nonSyncLiteral("line\nfeed"), "* SEARCH", 1},
		{"NOT BODY see", "* SEARCH 41 42", 42}, // NOT is not narrowed
	} {
		before := cs.opens.Load()
		got := r.expectOK("SEARCH CHARSET UTF-8 " + tc.key)
		if fmt.Sprint(got) != fmt.Sprint([]string{tc.want}) {
			t.Errorf("SEARCH %s: %q, want %q", tc.key, got, tc.want)
		}
		if n := cs.opens.Load() - before; n != tc.opens {
			t.Errorf("SEARCH %s read %d bodies, want %d", tc.key, n, tc.opens)
		}
	}
}

func seqList(from, to int) string {
	var s []string
	for i := from; i <= to; i++ {
		s = append(s, fmt.Sprint(i))
	}
	return strings.Join(s, " ")
}

package imap

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"pgregory.net/rapid"
)

// fuzzyEnv is indexAndScan with messages for the FUZZY tests, by UID:
//
//	1 Subject "IMAP break", from user@example.com, body "Helo there"
//	2 Subject "IMAP breaks", from other@example.org, body "hello world"
//	3 Subject "work", from user@example.com, body "The accommodation was fine", answered
//	4 Subject "works", from other@example.org, body "an accomodation near the sea"
//	5 Subject "Отчёт", body "Важное сообщение о встрече"
//	6 Subject "lunch", body "nothing to see"
func fuzzyEnv(t *testing.T) (indexed, scanned *raw) {
	e, indexed, scanned := indexAndScan(t)
	msgs := []struct{ from, subject, body string }{
		{"user@example.com", "IMAP break", "Helo there"},
		{"other@example.org", "IMAP breaks", "hello world"},
		{"user@example.com", "work", "The accommodation was fine"},
		{"other@example.org", "works", "an accomodation near the sea"},
		{"user@example.com", "=?utf-8?B?0J7RgtGH0ZHRgg==?=", "Важное сообщение о встрече"},
		{"other@example.org", "lunch", "nothing to see"},
	}
	for _, m := range msgs {
		e.deliver(e.aliceID, "INBOX", "From: "+m.from+"\r\nSubject: "+m.subject+"\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"+m.body+"\r\n")
	}
	for _, r := range []*raw{indexed, scanned} {
		r.expectOK("SELECT INBOX")
		r.expectOK(`STORE 3 +FLAGS.SILENT (\Answered)`)
	}
	return indexed, scanned
}

// both runs cmd on both servers, which must answer the same, and
// returns the untagged lines.
func both(t *testing.T, indexed, scanned *raw, cmd string) []string {
	t.Helper()
	a, b := indexed.expectOK(cmd), scanned.expectOK(cmd)
	norm := func(lines []string) string {
		return regexp.MustCompile(`\(TAG "[^"]*"\)`).ReplaceAllString(strings.Join(lines, "\n"), `(TAG)`)
	}
	if norm(a) != norm(b) {
		t.Fatalf("%s: the index answered\n%s\nthe scan\n%s", cmd, strings.Join(a, "\n"), strings.Join(b, "\n"))
	}
	return a
}

func wantLine(t *testing.T, lines []string, want string) {
	t.Helper()
	for _, l := range lines {
		if l == want {
			return
		}
	}
	t.Fatalf("want %q, got %q", want, lines)
}

// TestSearchFuzzyRFCExamples runs the examples of RFC 6203 §3 to §6 on
// the word index and on a scan of every message.
func TestSearchFuzzyRFCExamples(t *testing.T) {
	indexed, scanned := fuzzyEnv(t)
	if !slices.Contains(capsOf(t, indexed), "SEARCH=FUZZY") {
		t.Fatal("SEARCH=FUZZY not announced")
	}
	// §3: FUZZY (SUBJECT "IMAP break"): "breaks" as well.
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY (SUBJECT "IMAP break")`), "* SEARCH 1 2")
	// §3: a fuzzy SUBJECT, an exact FROM.
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY SUBJECT work FROM user@example.com`), "* SEARCH 3")
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY SUBJECT work`), "* SEARCH 3 4")
	// §5: FUZZY around keys without strings matches them exactly.
	wantLine(t, both(t, indexed, scanned, `SEARCH SUBJECT "work" FUZZY ANSWERED`), "* SEARCH 3")
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY (FROM "user" SINCE 1-Jan-2000 BEFORE 1-Jan-2100)`), "* SEARCH 1 3 5")
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY (LARGER 900000 SMALLER 1100000)`), "* SEARCH")
	// §4: B1 SEARCH RETURN (RELEVANCY ALL) FUZZY TEXT "Helo": exact
	// (100) and one edit (70).
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (RELEVANCY ALL) FUZZY TEXT "Helo"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") ALL 1:2 RELEVANCY (100 70)`)
	// §6: C1 SORT (RELEVANCY): the highest score first.
	wantLine(t, both(t, indexed, scanned, `SORT (RELEVANCY) UTF-8 FUZZY BODY "hello"`), "* SORT 2 1")
	// §6: C2 SORT RETURN (RELEVANCY ALL) (RELEVANCY): scores in that order.
	wantLine(t, both(t, indexed, scanned, `UID SORT RETURN (RELEVANCY ALL) (RELEVANCY) UTF-8 FUZZY TEXT "hello"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") UID ALL 2,1 RELEVANCY (100 70)`)
	// RELEVANCY without ALL gives the scores alone.
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (RELEVANCY) FUZZY BODY "accommodation"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") RELEVANCY (100 70)`)
}

// TestSearchFuzzyMisspelled: FUZZY finds a misspelled word, in Latin and
// Cyrillic script, that plain BODY does not, and ranks the word as
// asked above the misspelling.
func TestSearchFuzzyMisspelled(t *testing.T) {
	indexed, scanned := fuzzyEnv(t)
	wantLine(t, both(t, indexed, scanned, `SEARCH BODY "accomodation"`), "* SEARCH 4")
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY BODY "accomodation"`), "* SEARCH 3 4")
	wantLine(t, both(t, indexed, scanned, `SEARCH CHARSET UTF-8 BODY "сообщенне"`), "* SEARCH")
	wantLine(t, both(t, indexed, scanned, `SEARCH CHARSET UTF-8 FUZZY BODY "сообщенне"`), "* SEARCH 5")
	wantLine(t, both(t, indexed, scanned, `SEARCH CHARSET UTF-8 FUZZY (BODY "ВАЖНОЕ сообщенне")`), "* SEARCH 5")
	wantLine(t, both(t, indexed, scanned, `SEARCH CHARSET UTF-8 FUZZY SUBJECT "отчет"`), "* SEARCH 5")
	// RELEVANCY: the word as asked above the word found with an edit.
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (ALL RELEVANCY) FUZZY BODY "accommodation"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") ALL 3:4 RELEVANCY (100 70)`)
	wantLine(t, both(t, indexed, scanned, `SORT (RELEVANCY) UTF-8 FUZZY BODY "accomodation"`), "* SORT 4 3")
	wantLine(t, both(t, indexed, scanned, `SORT (REVERSE RELEVANCY) UTF-8 FUZZY BODY "accomodation"`), "* SORT 3 4")
	// NOT and OR.
	wantLine(t, both(t, indexed, scanned, `SEARCH NOT FUZZY BODY "accomodation"`), "* SEARCH 1 2 5 6")
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (ALL RELEVANCY) OR FUZZY BODY "accommodation" FUZZY BODY "hello"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") ALL 1:4 RELEVANCY (70 100 100 70)`)
	// Words that match nothing.
	wantLine(t, both(t, indexed, scanned, `SEARCH FUZZY BODY "xylophone"`), "* SEARCH")
}

// TestSearchFuzzyPartial: RELEVANCY with RFC 5267's PARTIAL gives the
// scores of the results returned (RFC 6203 §6), for SEARCH in mailbox
// order and for SORT in sort order.
func TestSearchFuzzyPartial(t *testing.T) {
	indexed, scanned := fuzzyEnv(t)
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (PARTIAL 2:5 RELEVANCY) FUZZY BODY "hello"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") PARTIAL (2:5 2) RELEVANCY (100)`)
	wantLine(t, both(t, indexed, scanned, `SORT RETURN (RELEVANCY PARTIAL 1:1) (RELEVANCY) UTF-8 FUZZY TEXT "hello"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") PARTIAL (1:1 2) RELEVANCY (100)`)
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (PARTIAL 5:9 RELEVANCY) FUZZY BODY "hello"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") PARTIAL (5:9 NIL) RELEVANCY ()`)
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (CONTEXT COUNT RELEVANCY) FUZZY BODY "hello"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") COUNT 2 RELEVANCY (70 100)`)
}

// TestSearchFuzzyNoWords: a FUZZY key with no words (punctuation, bytes
// that are not UTF-8) matches no message, on the index and on a scan,
// where BODY "" matches every one; NOT of it matches every message.
func TestSearchFuzzyNoWords(t *testing.T) {
	indexed, scanned := fuzzyEnv(t)
	for _, key := range []string{
		`FUZZY BODY "!!!"`,
		`FUZZY TEXT "-- ?"`,
		`FUZZY SUBJECT "..."`,
		`FUZZY BODY ""`,
		"FUZZY BODY " + nonSyncLiteral("\xff\xfe\x80"),
		`FUZZY (BODY "!!!" SUBJECT "work")`,
	} {
		wantLine(t, both(t, indexed, scanned, "SEARCH "+key), "* SEARCH")
		wantLine(t, both(t, indexed, scanned, "SEARCH NOT "+key), "* SEARCH 1 2 3 4 5 6")
	}
	wantLine(t, both(t, indexed, scanned, `SEARCH RETURN (ALL RELEVANCY) OR FUZZY BODY "!!!" FUZZY SUBJECT "works"`),
		`* ESEARCH (TAG "`+lastTag(indexed)+`") ALL 3:4 RELEVANCY (70 100)`)
	wantLine(t, both(t, indexed, scanned, `SEARCH BODY ""`), "* SEARCH 1 2 3 4 5 6")
}

// TestSearchFuzzyRefusals: RELEVANCY without FUZZY is BAD (RFC 6203 §4,
// §6: "MUST NOT be used unless a FUZZY search key is also given"), as is
// FUZZY without a key; too many words is NO [LIMIT].
func TestSearchFuzzyRefusals(t *testing.T) {
	indexed, _ := fuzzyEnv(t)
	indexed.expectStatus(`SEARCH RETURN (RELEVANCY) BODY "hello"`, "BAD")
	indexed.expectStatus(`SORT (RELEVANCY) UTF-8 ALL`, "BAD")
	indexed.expectStatus(`SEARCH FUZZY`, "BAD")
	indexed.expectStatus(`SEARCH FUZZY BODY "`+strings.Repeat("word ", 17)+`"`, "NO [LIMIT]")
	indexed.expectOK("NOOP")
}

// capsOf returns the capabilities r's server announces now.
func capsOf(t *testing.T, r *raw) []string {
	t.Helper()
	for _, l := range r.expectOK("CAPABILITY") {
		if rest, ok := strings.CutPrefix(l, "* CAPABILITY "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("no CAPABILITY response")
	return nil
}

// lastTag is the tag of the command r sent last.
func lastTag(r *raw) string { return "t" + strconv.Itoa(r.n) }

// fuzzyPattern is one or two words of ftsMessage's vocabulary, each
// maybe with a typing error after its first letter: a letter left out,
// doubled, replaced or swapped with the next, or the word cut short.
func fuzzyPattern(t *rapid.T) string {
	vocab := slices.Concat(ftsLatin, ftsAccented, ftsCyrillic)
	var words []string
	for range rapid.IntRange(1, 2).Draw(t, "fuzzy-words") {
		w := []rune(strings.ToLower(rapid.SampledFrom(vocab).Draw(t, "fuzzy-word")))
		if len(w) > 2 {
			i := rapid.IntRange(1, len(w)-1).Draw(t, "typo-at")
			switch rapid.IntRange(0, 5).Draw(t, "typo") {
			case 0:
				w = append(w[:i:i], w[i+1:]...)
			case 1:
				w = slices.Insert(w, i, w[i])
			case 2:
				w[i] = 'x'
			case 3:
				if i+1 < len(w) {
					w[i], w[i+1] = w[i+1], w[i]
				}
			case 4:
				w = w[:max(3, len(w)-2)]
			}
		}
		words = append(words, string(w))
	}
	if rapid.Bool().Draw(t, "fuzzy-upper") {
		return strings.ToUpper(strings.Join(words, " "))
	}
	return strings.Join(words, " ")
}

// TestFuzzyMatchesScan: over ftsMessage's random messages, UID SEARCH
// with FUZZY keys and RETURN (ALL RELEVANCY) answers the same messages
// and scores from the store's word index as from a server that reads
// every message, also after an expunge: the index and the scan follow
// the same rules (package internal/fuzzy).
func TestFuzzyMatchesScan(t *testing.T) {
	tags := regexp.MustCompile(`\(TAG "[^"]*"\)`)
	indexMatchesScan(t, "fuzzy", func(rt *rapid.T) string {
		return "UID SEARCH RETURN (ALL RELEVANCY) CHARSET UTF-8 " + textSearchKey(rt, fuzzyPattern, "FUZZY ", "SUBJECT")
	}, func(got, want []string) bool {
		// ESEARCH tags name each session's own command.
		return tags.ReplaceAllString(strings.Join(got, "\n"), "") == tags.ReplaceAllString(strings.Join(want, "\n"), "")
	})
}

// TestSearchSmallerKept: SMALLER holds when another key follows it that
// is merged into the criteria, LARGER or FUZZY (imap.SearchCriteria.And
// dropped a SMALLER when the other side had none).
func TestSearchSmallerKept(t *testing.T) {
	e := newEnvIn(t, memDir(t), func(o *Options) { o.AllowInsecureAuth = true })
	for _, n := range []int{10, 200, 2000} {
		e.deliver(e.aliceID, "INBOX", "Subject: size\r\n\r\n"+strings.Repeat("x", n)+"\r\n")
	}
	r := e.raw()
	r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	r.expectOK("SELECT INBOX")
	wantLine(t, r.expectOK("SEARCH SMALLER 1000 LARGER 100"), "* SEARCH 2")
	wantLine(t, r.expectOK("SEARCH SMALLER 1000 FUZZY SUBJECT size"), "* SEARCH 1 2")
	wantLine(t, r.expectOK("SEARCH FUZZY SUBJECT size SMALLER 1000"), "* SEARCH 1 2")
}

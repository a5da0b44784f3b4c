package postgres

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/internal/textdoc"
)

// textWordsCases are texts whose words are easy to split wrongly:
// punctuation of every ASCII kind, digits, non-ASCII letters and
// punctuation, repeated words, no words at all.
var textWordsCases = [][2]string{
	{"", ""},
	{"subject: re: hello", "hello, world! hello again.\n-- \nsig"},
	{"", "a_b c%d e\\f g'h \"quoted\" (paren) [br] {cb} <ang> x@y.z 1+1=2 ~tilde` ^caret |pipe #hash $d &amp; *star ?q"},
	{"ёлка и зебра", "зебра\u00a0ёлка — “quotes” ß straße ǅ 日本語のテキスト"},
	{"\t\r\n", "\x01\x1f\x7f tab\tsep\x7fdel"},
	{"same same same", "same"},
	{"x", "y z 42 4.2 4,2"},
}

// mailyard_text_words (the migration's SQL) and textWords (the
// writers' Go) make the same words column.
func TestTextWordsSQL(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	for _, c := range textWordsCases {
		var got string
		if err := s.pool.QueryRow(ctx, `SELECT mailyard_text_words($1, $2)`, c[0], c[1]).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if want := textWords(c[0], c[1]); got != want {
			t.Errorf("header %q, body %q:\nSQL %q\nGo  %q", c[0], c[1], got, want)
		}
	}
	if got := textWords("b a", "a, c"); got != " a b c " {
		t.Errorf("textWords: %q, want \" a b c \"", got)
	}
}

func TestWordPatterns(t *testing.T) {
	for _, c := range []struct {
		v    string
		want []string
	}{
		{"oba", []string{"%oba%"}},
		{"ob", nil}, // unbounded and shorter than a trigram
		{"foo bar", []string{"%foo %", "% bar%"}},
		{" foo bar ", []string{"% foo %", "% bar %"}},
		{"a, b", []string{"%a %", "% b%"}},
		{"x y z", []string{"%x %", "% y %", "% z%"}},
		{"-- ", nil},
		{"ёлк", []string{"%ёлк%"}},
		{"日本", nil},
		{"100%_", []string{"%100 %"}},
	} {
		if got := wordPatterns(c.v); !slices.Equal(got, c.want) {
			t.Errorf("wordPatterns(%q) = %q, want %q", c.v, got, c.want)
		}
	}
}

// Every piece of an indexed text, cut anywhere (inside words, at
// punctuation, across lines), is found Sure through the words index,
// and a piece of no text is not: the narrowing never drops a match.
func TestTextWordsSearchExact(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	if _, err := s.CreateAccount(ctx, "u", store.Quota{}); err != nil {
		t.Fatal(err)
	}
	bodies := []string{
		"Re: the quarterly report, v2.1 (draft)\r\nSee https://example.com/a_b?c=d -- Jörg's notes: straße & \"zebra-crossing\".",
		"Ёлка и зебра; 日本語のテキスト. x@y.z 1+1=2",
	}
	var raws []string
	for i, b := range bodies {
		raw := fmt.Sprintf("Subject: m%d\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n%s\r\n", i, b)
		raws = append(raws, raw)
		if _, err := s.Append(ctx, "u", store.Inbox, strings.NewReader(raw), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.IndexPendingText(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range bodies {
		text := textdoc.Read(strings.NewReader(raws[i])).Body
		for from := 0; from < len(text); from++ {
			for _, n := range []int{3, 4, 6, 9, 14} {
				to := from + n
				if to > len(text) || !utf8Boundary(text, from) || !utf8Boundary(text, to) {
					continue
				}
				v := text[from:to]
				if utf8.RuneCountInString(v) < store.MinTextTerm {
					continue
				}
				uids, sure := sureHits(t, s, "u", v)
				if !slices.Contains(uids, uint32(i+1)) || sure != len(uids) {
					t.Fatalf("BODY %q (of message %d): hits %v, %d sure", v, i+1, uids, sure)
				}
			}
		}
	}
	for _, v := range []string{"quarterly zebra", "jörgs", "ёлка зебра", "a_b_c"} {
		if uids, _ := sureHits(t, s, "u", v); len(uids) != 0 {
			t.Errorf("BODY %q: hits %v, want none", v, uids)
		}
	}
}

func utf8Boundary(s string, i int) bool { return i == len(s) || s[i] < 0x80 || s[i] >= 0xc0 }

// A version-9 database's entries get their words when it is migrated.
func TestMigrateTextWords(t *testing.T) {
	dsn := freshDB(t)
	ctx := ctxFor(t)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "CREATE TABLE mailyard_schema (version integer NOT NULL, applied timestamptz NOT NULL DEFAULT now())"); err != nil {
		t.Fatal(err)
	}
	for v := 0; v < 9; v++ {
		if _, err := conn.Exec(ctx, ms[v]); err != nil {
			t.Fatalf("to version %d: %v", v+1, err)
		}
		if _, err := conn.Exec(ctx, "INSERT INTO mailyard_schema (version) VALUES ($1)", v+1); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range textWordsCases {
		state := textWhole
		if i == 0 {
			state = textMissing
		}
		if _, err := conn.Exec(ctx, `WITH b AS (INSERT INTO blobs (size) VALUES (1) RETURNING id)
			INSERT INTO text_docs (blob_id, state, header, body) SELECT id, $1, $2, $3 FROM b`, state, c[0], c[1]); err != nil {
			t.Fatal(err)
		}
	}
	openTest(t, dsn, Options{})
	rows, err := conn.Query(ctx, `SELECT header, body, words FROM text_docs ORDER BY blob_id`)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for rows.Next() {
		var h, b, w string
		if err := rows.Scan(&h, &b, &w); err != nil {
			t.Fatal(err)
		}
		if want := textWords(h, b); w != want {
			t.Errorf("header %q, body %q: words %q after migrating, want %q", h, b, w, want)
		}
		n++
	}
	if rows.Err() != nil || n != len(textWordsCases) {
		t.Fatalf("%d entries, %v", n, rows.Err())
	}
}

// Without the cascades of the foreign keys schema 11 dropped, deleting
// a mailbox, an account and then their bodies leaves no row behind,
// and Check sees a row whose parent went.
func TestDeletesLeaveNoOrphans(t *testing.T) {
	s := openTest(t, freshDB(t), Options{})
	ctx := ctxFor(t)
	for _, a := range []string{"u", "v"} {
		if _, err := s.CreateAccount(ctx, a, store.Quota{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.CreateMailbox(ctx, a, "Old", store.SpecialNone); err != nil {
			t.Fatal(err)
		}
		for _, box := range []string{store.Inbox, "Old"} {
			for i := 0; i < 3; i++ {
				raw := fmt.Sprintf("Subject: %s %d\r\n\r\nbody %s %d\r\n", box, i, a, i)
				if _, err := s.Append(ctx, a, box, strings.NewReader(raw), store.AppendOptions{Flags: []string{store.FlagDeleted}}); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.Expunge(ctx, a, box, store.UIDSet{{Start: 1, Stop: 1}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := s.IndexPendingText(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteMailbox(ctx, "v", "Old"); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteAccount(ctx, "u"); err != nil {
		t.Fatal(err)
	}
	if err := (chunkBlobs{}).sweep(ctx, s.pool, time.Now().Add(time.Hour).UnixNano()); err != nil {
		t.Fatal(err)
	}
	count := func(q string) int {
		var n int
		if err := s.pool.QueryRow(ctx, q).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for q, want := range map[string]int{
		`SELECT count(*) FROM mailboxes WHERE account = 'u' OR name = 'Old'`: 0,
		`SELECT count(*) FROM messages`:                                      2,
		`SELECT count(*) FROM expunged`:                                      1,
		`SELECT count(*) FROM blobs`:                                         2,
		`SELECT count(*) FROM blob_chunks`:                                   2,
		`SELECT count(*) FROM text_docs`:                                     2,
	} {
		if got := count(q); got != want {
			t.Errorf("%s: %d, want %d", q, got, want)
		}
	}
	if ps, err := s.Check(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("Check: %v, %v", ps, err)
	}
	// A row left without its parent is reported.
	if _, err := s.pool.Exec(ctx, `INSERT INTO expunged (mailbox, uid, modseq) VALUES (999999, 1, 1)`); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Check(ctx)
	if err != nil || len(ps) != 1 || ps[0].Kind != "orphan-row" {
		t.Fatalf("Check after an orphan tombstone: %v, %v", ps, err)
	}
}

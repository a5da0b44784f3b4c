package fuzzy

import (
	"slices"
	"testing"
)

func TestWords(t *testing.T) {
	got := Words("Hello, WORLD! Встреча в 10:30 — café-au-lait")
	want := []string{"hello", "world", "встреча", "в", "10", "30", "café", "au", "lait"}
	if !slices.Equal(got, want) {
		t.Fatalf("Words: %q, want %q", got, want)
	}
}

func TestCompare(t *testing.T) {
	cases := []struct {
		q, t string
		want Match
	}{
		{"message", "message", Exact},
		{"meet", "meeting", Prefix},
		{"me", "meeting", None}, // too short for a prefix
		{"mesage", "message", Edit1},
		{"massage", "message", Edit1},
		{"recieve", "receive", Edit1},            // adjacent runes swapped: one edit
		{"accomodation", "accommodation", Edit1}, // a rune left out
		{"acommodatoin", "accommodation", Edit2}, // two edits, 12 runes
		{"recve", "receive", None},               // two edits, 5 runes
		{"nessage", "message", None},             // first letter
		{"fox", "box", None},                     // short words only exactly
		{"fox", "fix", None},
		{"сообщенне", "сообщение", Edit1}, // Cyrillic
		{"встреча", "встречи", Edit1},
		{"zebra", "message", None},
	}
	for _, c := range cases {
		if got := Compare(c.q, c.t); got != c.want {
			t.Errorf("Compare(%q, %q) = %d, want %d", c.q, c.t, got, c.want)
		}
	}
}

func TestDistance(t *testing.T) {
	cases := []struct {
		a, b string
		max  int
		want int
	}{
		{"kitten", "sitting", 5, 3},
		{"kitten", "sitting", 2, 3},
		{"ab", "ba", 2, 1},
		{"", "abc", 3, 3},
		{"abc", "abc", 0, 0},
		{"abcdef", "abdcef", 1, 1},
	}
	for _, c := range cases {
		if got := Distance([]rune(c.a), []rune(c.b), c.max); got != c.want {
			t.Errorf("Distance(%q, %q, %d) = %d, want %d", c.a, c.b, c.max, got, c.want)
		}
	}
}

func TestScore(t *testing.T) {
	if s := Score([]Match{Exact, Exact}); s != 100 {
		t.Errorf("exact: %d", s)
	}
	if s := Score([]Match{Exact, Edit1}); s != 85 {
		t.Errorf("exact and one edit: %d", s)
	}
	if s := Score([]Match{None}); s != 1 {
		t.Errorf("no match: %d, want the floor 1", s)
	}
	if s := Score(nil); s != 100 {
		t.Errorf("no words: %d", s)
	}
}

// TestScannerCutAnywhere: the Scanner finds the same matches however
// the text is cut into writes, also inside a UTF-8 sequence.
func TestScannerCutAnywhere(t *testing.T) {
	text := "Привет! The mesage about our meeting, сообщенне.\nNext line"
	query := []string{"message", "meet", "сообщение", "zebra"}
	want := Best(query, text)
	if !slices.Equal(want, []Match{Edit1, Prefix, Edit1, None}) {
		t.Fatalf("Best: %v", want)
	}
	for cut := 0; cut <= len(text); cut++ {
		for cut2 := cut; cut2 <= len(text); cut2 += 7 {
			s := NewScanner(query)
			for _, part := range []string{text[:cut], text[cut:cut2], text[cut2:]} {
				s.Write([]byte(part))
			}
			s.Close()
			if !slices.Equal(s.Best(), want) {
				t.Fatalf("cut at %d, %d: %v, want %v", cut, cut2, s.Best(), want)
			}
		}
	}
	// Next ends a word: "mes" + "sage" in two texts are two words.
	s := NewScanner([]string{"message"})
	s.Write([]byte("mes"))
	s.Next()
	s.Write([]byte("sage"))
	s.Close()
	if s.Best()[0] != None {
		t.Errorf("a word across two texts matched: %v", s.Best())
	}
}

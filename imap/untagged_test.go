package imap

import (
	"slices"
	"strconv"
	"strings"
	"testing"
)

// Exact assertions on untagged responses, for where their order matters
// (RFC 9051 §7: FLAGS before the FETCH that uses a new keyword, EXPUNGE
// sequence numbers that depend on the ones before, VANISHED before FETCH).
// mustHave, which finds a line anywhere, cannot tell a wrong order or an
// extra response.

// expectUntagged fails unless the untagged responses got (as raw.cmd
// returns them) are exactly want, in order.
func expectUntagged(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: untagged responses\n got: %s\nwant: %s", what, quoteLines(got), quoteLines(want))
	}
}

// expectUntaggedSet is expectUntagged for responses whose order the RFC
// leaves open (LIST, LSUB: RFC 9051 §6.3.9): exactly want, in any order.
func expectUntaggedSet(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Fatalf("%s: untagged responses (any order)\n got: %s\nwant: %s", what, quoteLines(got), quoteLines(want))
	}
}

// untagged is one untagged response split into its parts:
// "* 2 FETCH (UID 2)" is {Num: 2, Kind: "FETCH", Rest: "(UID 2)"} and
// "* FLAGS (\Seen)" is {Kind: "FLAGS", Rest: "(\Seen)"} (RFC 9051 §7:
// message-data starts with a number, the other responses with a name).
type untagged struct {
	Num  uint32 // 0 when the response has no number
	Kind string // FETCH, EXPUNGE, EXISTS, FLAGS, OK, VANISHED, ...
	Rest string
}

// parseUntagged splits an untagged response line.
func parseUntagged(t testing.TB, line string) untagged {
	t.Helper()
	s, ok := strings.CutPrefix(line, "* ")
	if !ok {
		t.Fatalf("not an untagged response: %q", line)
	}
	var u untagged
	first, rest, _ := strings.Cut(s, " ")
	if n, err := strconv.ParseUint(first, 10, 32); err == nil {
		u.Num = uint32(n)
		first, rest, _ = strings.Cut(rest, " ")
	}
	u.Kind, u.Rest = strings.ToUpper(first), rest
	return u
}

// kind is the response's number and name, "2 FETCH" or "FLAGS".
func (u untagged) kind() string {
	if u.Num == 0 {
		return u.Kind
	}
	return strconv.FormatUint(uint64(u.Num), 10) + " " + u.Kind
}

// expectKinds fails unless the untagged responses got are, in order,
// exactly the kinds want ("2 FETCH", "VANISHED", ...): for responses
// whose contents vary (MODSEQ values) but whose order does not.
func expectKinds(t testing.TB, what string, got []string, want ...string) {
	t.Helper()
	kinds := make([]string, len(got))
	for i, l := range got {
		kinds[i] = parseUntagged(t, l).kind()
	}
	if !slices.Equal(kinds, want) {
		t.Fatalf("%s: untagged responses\n got: %s\nwant kinds: %s", what, quoteLines(got), quoteLines(want))
	}
}

func quoteLines(lines []string) string {
	if len(lines) == 0 {
		return "(none)"
	}
	q := make([]string, len(lines))
	for i, l := range lines {
		q[i] = strconv.Quote(l)
	}
	return strings.Join(q, ", ")
}

// TestParseUntagged pins the helper's split.
func TestParseUntagged(t *testing.T) {
	for line, want := range map[string]untagged{
		"* 2 FETCH (UID 2)":        {Num: 2, Kind: "FETCH", Rest: "(UID 2)"},
		`* FLAGS (\Seen)`:          {Kind: "FLAGS", Rest: `(\Seen)`},
		"* 4 EXPUNGE":              {Num: 4, Kind: "EXPUNGE"},
		"* VANISHED (EARLIER) 3:4": {Kind: "VANISHED", Rest: "(EARLIER) 3:4"},
		"* ok [ALERT] x":           {Kind: "OK", Rest: "[ALERT] x"},
	} {
		if got := parseUntagged(t, line); got != want {
			t.Errorf("parseUntagged(%q) = %+v, want %+v", line, got, want)
		}
	}
}

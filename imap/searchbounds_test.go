package imap

import (
	"fmt"
	"runtime"
	"strings"
	"testing"
)

// TestSearchManySetsBoundedMemory: a SEARCH of thousands of message
// sets costs memory by the size of the command, not by the sets times
// the mailbox. Each set was a map of every UID it selects: 10,000 "1:*"
// (40 KiB) against 300 messages allocated some 200 MB, and a large
// mailbox took the server down with one command.
func TestSearchManySetsBoundedMemory(t *testing.T) {
	e := newEnv(t)
	for range 300 {
		e.deliver(e.aliceID, "", simpleMsg)
	}
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	r.expectOK("SEARCH RETURN (SAVE) 1:150")
	for _, keys := range []string{
		strings.Repeat("1:* ", 10000),
		strings.Repeat("UID 1:* ", 5000),
		strings.Repeat("$ ", 20000),
	} {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		lines := r.expectOK("SEARCH " + keys)
		runtime.ReadMemStats(&after)
		want := "* SEARCH 1 2 3"
		mustHave(t, lines, want)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 40<<20 {
			t.Errorf("SEARCH of %d bytes of sets allocated %d MiB", len(keys), alloc>>20)
		}
	}
	// Sets still select what they name.
	mustHave(t, r.expectOK("SEARCH 2:3,7 1:5"), "* SEARCH 2 3")
	mustHave(t, r.expectOK("SEARCH UID 2:* 2:3,7 1:5 NOT 3"), "* SEARCH 2")
	mustHave(t, r.expectOK("SEARCH $ 149:*"), "* SEARCH 149 150")
	mustNotHave(t, r.expectOK("SEARCH 301"), "* SEARCH 3") // out of range: nothing
	mustHave(t, r.expectOK("SEARCH 299:*"), "* SEARCH 299 300")
}

// TestSearchTextPatternsLimit: each BODY or TEXT string is looked for
// in all the text read, so their number multiplies a search's CPU; past
// maxTextPatterns distinct ones the search is refused with NO [LIMIT]
// before any message is read, whether they are ANDed, ORed or negated.
func TestSearchTextPatternsLimit(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	leaves := func(n int, key string) []string {
		var out []string
		for i := range n {
			out = append(out, fmt.Sprintf("%s zz%03d", key, i))
		}
		return out
	}
	var orTree func([]string) string
	orTree = func(ks []string) string {
		if len(ks) == 1 {
			return ks[0]
		}
		return "OR (" + orTree(ks[:len(ks)/2]) + ") (" + orTree(ks[len(ks)/2:]) + ")"
	}
	// At the limit: answered. The same string twice counts once.
	r.expectOK("SEARCH " + orTree(append(leaves(maxTextPatterns, "BODY"), "TEXT zz000")))
	for _, q := range []string{
		orTree(leaves(maxTextPatterns+1, "BODY")),
		strings.Join(leaves(maxTextPatterns+1, "NOT TEXT"), " "),
		orTree(leaves(700, "BODY")),
	} {
		r.expectStatus("SEARCH "+q, "NO [LIMIT]")
	}
	r.expectOK("NOOP")
}

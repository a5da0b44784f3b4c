package imap

import (
	"fmt"
	"strings"
	"testing"
)

// The OBJECTID, SAVEDATE and PREVIEW items read fields the session's
// view does not hold (the body's ID, the save date, the body): a FETCH
// of them with FLAGS, answered while the view is current, must give
// what the store's listing gives.
func TestFetchExtrasNotFromView(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.send(fmt.Sprintf("a APPEND INBOX {%d+}\r\n%s\r\n", len(multiMsg1), multiMsg1))
	if _, st := r.readUntil("a"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %q", st)
	}
	r.expectOK("SELECT INBOX")
	// INTERNALDATE is not in the view: this FETCH reads the store.
	want := r.expectOK("FETCH 1 (EMAILID SAVEDATE PREVIEW INTERNALDATE)")
	got := r.expectOK("FETCH 1 (FLAGS EMAILID SAVEDATE PREVIEW)")
	if len(want) != 1 || len(got) != 1 {
		t.Fatalf("FETCH: %q, %q", want, got)
	}
	for _, item := range []string{"EMAILID (", "SAVEDATE \"", "PREVIEW \""} {
		wi, gi := strings.Index(want[0], item), strings.Index(got[0], item)
		if wi < 0 || gi < 0 {
			t.Fatalf("%s missing: %q, %q", item, want[0], got[0])
		}
		if w, g := want[0][wi:wi+len(item)+12], got[0][gi:gi+len(item)+12]; w != g {
			t.Fatalf("%s from the view %q, from the store %q", item, g, w)
		}
	}
	if strings.Contains(got[0], "SAVEDATE NIL") {
		t.Fatalf("SAVEDATE NIL from the view: %q", got[0])
	}
	u := r.expectOK("SEARCH SAVEDSINCE 1-Jan-2020")
	if len(u) != 1 || u[0] != "* SEARCH 1" {
		t.Fatalf("SEARCH SAVEDSINCE with a current view: %q", u)
	}
}

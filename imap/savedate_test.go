package imap

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestSaveDate: SAVEDATE (RFC 8514) as the RFC's example uses it: FETCH
// SAVEDATE beside INTERNALDATE, and the SAVED* search keys. A message
// appended with an INTERNALDATE in 1994 was saved today; its copy was
// saved at the COPY, no earlier than the original.
func TestSaveDate(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "SAVEDATE")
	r.send(fmt.Sprintf("a APPEND INBOX \" 7-Feb-1994 22:43:04 -0800\" {%d+}\r\n%s\r\n", len(multiMsg1), multiMsg1))
	if _, st := r.readUntil("a"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("APPEND: %q", st)
	}
	r.expectOK("SELECT INBOX")
	today := time.Now().UTC()
	u := r.expectOK("FETCH 1 (INTERNALDATE SAVEDATE)")
	mustHave(t, u, `* 1 FETCH (INTERNALDATE " 7-Feb-1994 22:43:04 -0800" SAVEDATE "`)
	line := u[len(u)-1]
	i := strings.Index(line, `SAVEDATE "`)
	saved, err := time.Parse("_2-Jan-2006 15:04:05 -0700", line[i+len(`SAVEDATE "`):strings.LastIndexByte(line, '"')])
	if err != nil {
		t.Fatalf("SAVEDATE in %q: %v", line, err)
	}
	if d := time.Since(saved); d < -time.Minute || d > time.Minute {
		t.Fatalf("SAVEDATE %v, want about now", saved)
	}

	day := func(t time.Time) string { return t.Format("2-Jan-2006") }
	for _, c := range []struct{ key, want string }{
		{"SAVEDON " + day(saved), "* SEARCH 1"},
		{"SAVEDSINCE " + day(saved), "* SEARCH 1"},
		{"SAVEDBEFORE " + day(saved.AddDate(0, 0, 1)), "* SEARCH 1"},
		{"SAVEDBEFORE " + day(saved), "* SEARCH"},
		{"SAVEDON 7-Feb-1994", "* SEARCH"},
		{"ON 7-Feb-1994 SAVEDSINCE " + day(saved), "* SEARCH 1"},
		{"SAVEDATESUPPORTED", "* SEARCH 1"},
		{"NOT SAVEDATESUPPORTED", "* SEARCH"},
		{"OR SAVEDON 1-Jan-2000 SAVEDON " + day(saved), "* SEARCH 1"},
	} {
		u := r.expectOK("SEARCH " + c.key)
		if len(u) != 1 || u[0] != c.want {
			t.Fatalf("SEARCH %s: got %q, want %q (saved %v, today %v)", c.key, u, c.want, saved, today)
		}
	}
	r.expectStatus("SEARCH SAVEDON 31-Foo-2020", "BAD")

	// A copy has its own save date, its INTERNALDATE stays.
	time.Sleep(1100 * time.Millisecond) // the date-time has whole seconds
	r.expectOK("COPY 1 Archive")
	r.expectOK("EXAMINE Archive")
	u = r.expectOK("FETCH 1 (INTERNALDATE SAVEDATE)")
	mustHave(t, u, `INTERNALDATE " 7-Feb-1994 22:43:04 -0800" SAVEDATE "`)
	line = u[len(u)-1]
	i = strings.Index(line, `SAVEDATE "`)
	copied, err := time.Parse("_2-Jan-2006 15:04:05 -0700", line[i+len(`SAVEDATE "`):strings.LastIndexByte(line, '"')])
	if err != nil || !copied.After(saved) {
		t.Fatalf("copy's SAVEDATE %v (%v), want after the original's %v", copied, err, saved)
	}
	// UID FETCH answers it with the UID.
	u = r.expectOK("UID FETCH 1:* (SAVEDATE)")
	mustHave(t, u, "* 1 FETCH (UID 1 SAVEDATE \"")
}

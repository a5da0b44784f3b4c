package imap

import (
	"strings"
	"testing"
)

// TestCachedAnswersFollowChanges: STATUS, LIST, LSUB and the poll after
// a command are answered from memory while nothing changed (see
// ChangeCounter), and never stale after another session's or a
// delivery's change, however soon it is asked.
func TestCachedAnswersFollowChanges(t *testing.T) {
	e := newEnv(t, func(o *Options) { o.AllowInsecureAuth = true })
	a, b := e.raw(), e.raw()
	for _, r := range []*raw{a, b} {
		r.expectOK("LOGIN " + alice + ` "` + alicePW + `"`)
	}
	has := func(lines []string, want string) bool {
		for _, l := range lines {
			if strings.Contains(l, want) {
				return true
			}
		}
		return false
	}
	a.expectOK("SELECT INBOX")
	for i := 1; i <= 3; i++ {
		// Asked twice so that the second answer is the cached one.
		a.expectOK("STATUS INBOX (MESSAGES)")
		a.expectOK("STATUS INBOX (MESSAGES)")
		e.deliver(e.aliceID, "INBOX", simpleMsg)
		if got := a.expectOK("STATUS INBOX (MESSAGES)"); !has(got, "(MESSAGES "+string(rune('0'+i))+")") {
			t.Fatalf("STATUS after delivery %d: %q", i, got)
		}
		// The poll of the STATUS command itself reported the new
		// message; a NOOP now has nothing to say.
		if got := a.expectOK("NOOP"); has(got, "EXISTS") {
			t.Fatalf("NOOP repeated EXISTS: %q", got)
		}
	}
	a.expectOK(`LIST "" "*"`)
	b.expectOK("CREATE Fresh")
	if got := a.expectOK(`LIST "" "*"`); !has(got, "Fresh") {
		t.Fatalf("LIST after CREATE by another session: %q", got)
	}
	a.expectOK(`LSUB "" "*"`)
	b.expectOK("UNSUBSCRIBE Fresh")
	if got := a.expectOK(`LSUB "" "*"`); has(got, "Fresh") {
		t.Fatalf("LSUB after UNSUBSCRIBE by another session: %q", got)
	}
	b.expectOK("SELECT INBOX")
	a.expectOK("NOOP")
	b.expectOK(`STORE 1 +FLAGS (\Flagged)`)
	if got := a.expectOK("NOOP"); !has(got, `\Flagged`) {
		t.Fatalf("NOOP after another session's STORE: %q", got)
	}
	a.expectOK("STATUS INBOX (UNSEEN)")
	b.expectOK(`STORE 1:* +FLAGS (\Seen)`)
	if got := a.expectOK("STATUS INBOX (UNSEEN)"); !has(got, "(UNSEEN 0)") {
		t.Fatalf("STATUS after another session's STORE: %q", got)
	}
	b.expectOK(`STORE 1 +FLAGS (\Deleted)`)
	b.expectOK("EXPUNGE")
	if got := a.expectOK("NOOP"); !has(got, "* 1 EXPUNGE") {
		t.Fatalf("NOOP after another session's EXPUNGE: %q", got)
	}
}

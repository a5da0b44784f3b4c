package imap

import (
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"
)

// sortMailbox delivers the messages the SORT and THREAD tests use: two
// threads linked by References and In-Reply-To, one whose root is
// missing (a dummy with two children), a message without a Date and
// one that is threaded by subject only.
func sortMailbox(e *env) (sizes []int) {
	msgs := []struct{ from, to, subject, date, id, refs string }{
		{"zed@x.example", "Bob <bob@x.example>", "Re: hello", "Fri, 03 Jan 2020 10:00:00 +0000", "<a2@x>", "References: <a1@x>"},
		{`"Anna" <yak@x.example>`, "carl@x.example", "hello", "Wed, 01 Jan 2020 10:00:00 +0000", "<a1@x>", ""},
		{"carl@x.example", "amy@x.example", "[list] Fwd: other (fwd)", "Thu, 02 Jan 2020 10:00:00 +0000", "<b1@x>", ""},
		{"Zoe <bob@x.example>", "zed@x.example", "other", "Sun, 05 Jan 2020 10:00:00 +0000", "<b2@x>", "In-Reply-To: <b1@x>"},
		{"amy@x.example", "", "RE: [list] Re: hello", "Sat, 04 Jan 2020 10:00:00 +0000", "<a3@x>", "References: <a1@x>\r\n <a2@x>"},
		{"", "", "lonely", "", "<c1@x>", "References: <missing@x>"},
		{"dan@x.example", "", "Re: lost", "Mon, 06 Jan 2020 10:00:00 +0000", "<d1@x>", "References: <gone@x>"},
		{"Dan2 <dan@y.example>", "", "Re: lost", "Tue, 07 Jan 2020 10:00:00 +0000", "<d2@x>", "References: <gone@x>"},
		{"eve@x.example", "", "Re: other", "Wed, 08 Jan 2020 10:00:00 +0000", "<e1@x>", ""},
	}
	for _, m := range msgs {
		var sb strings.Builder
		for _, f := range [][2]string{{"From", m.from}, {"To", m.to}, {"Subject", m.subject}, {"Date", m.date}, {"Message-ID", m.id}} {
			if f[1] != "" {
				fmt.Fprintf(&sb, "%s: %s\r\n", f[0], f[1])
			}
		}
		if m.refs != "" {
			sb.WriteString(m.refs + "\r\n")
		}
		sb.WriteString("\r\n" + strings.Repeat("x", len(m.subject)) + "\r\n")
		e.deliver(e.aliceID, "", sb.String())
		sizes = append(sizes, sb.Len())
	}
	return sizes
}

func TestSortKeys(t *testing.T) {
	e := newEnv(t)
	sizes := sortMailbox(e)
	bySize := []int{1, 2, 3, 4, 5, 6, 7, 8, 9}
	sort.SliceStable(bySize, func(i, j int) bool { return sizes[bySize[i]-1] < sizes[bySize[j]-1] })
	r := loggedIn(e)
	mustHave(t, r.expectOK("CAPABILITY"), "SORT", "SORT=DISPLAY", "ESORT", "THREAD=ORDEREDSUBJECT", "THREAD=REFERENCES", "WITHIN")
	r.expectOK("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"SORT (DATE) UTF-8 ALL", "* SORT 2 3 1 5 4 7 8 9 6"},
		{"SORT (REVERSE DATE) UTF-8 ALL", "* SORT 6 9 8 7 4 5 1 3 2"},
		// RFC 5256 §3's example shape: SORT (SUBJECT) UTF-8 SINCE ...
		{"SORT (SUBJECT) UTF-8 SINCE 1-Feb-1994", "* SORT 1 2 5 6 7 8 3 4 9"},
		{"SORT (SUBJECT DATE) UTF-8 ALL", "* SORT 2 1 5 6 7 8 3 4 9"},
		{"SORT (SUBJECT REVERSE DATE) UTF-8 ALL", "* SORT 5 1 2 6 8 7 9 4 3"},
		{"SORT (FROM) UTF-8 ALL", "* SORT 6 5 4 3 7 8 9 2 1"},
		{"SORT (DISPLAYFROM) UTF-8 ALL", "* SORT 6 5 2 3 8 7 9 1 4"},
		{"SORT (TO) UTF-8 ALL", "* SORT 5 6 7 8 9 3 1 2 4"},
		{"SORT (DISPLAYTO) UTF-8 ALL", "* SORT 5 6 7 8 9 3 1 2 4"},
		{"SORT (CC DATE) US-ASCII ALL", "* SORT 2 3 1 5 4 7 8 9 6"},
		{"SORT (SIZE ARRIVAL) UTF-8 ALL", "* SORT " + strings.Trim(fmt.Sprint(bySize), "[]")},
		{"sort (subject) utf-8 FROM dan", "* SORT 7 8"},
		{"SORT (REVERSE ARRIVAL) UTF-8 SUBJECT nothing", "* SORT"},
	} {
		u := r.expectOK(tc.cmd)
		if len(u) != 1 || u[0] != tc.want {
			t.Errorf("%s: got %q, want %q", tc.cmd, u, tc.want)
		}
	}
	for _, tc := range []struct{ cmd, status string }{
		{"SORT (DATE) KOI8-R ALL", "NO [BADCHARSET]"},
		{"SORT (FOO) UTF-8 ALL", "BAD"},
		{"SORT () UTF-8 ALL", "BAD"},
		{"SORT (DATE) ALL", "BAD"},
		{"SORT DATE UTF-8 ALL", "BAD"},
		{"SORT RETURN (SAVE) (DATE) UTF-8 ALL", "BAD"},
		{"THREAD FOO UTF-8 ALL", "BAD"},
		{"THREAD REFERENCES ALL", "BAD"},
	} {
		r.expectStatus(tc.cmd, tc.status)
	}
	// UID SORT answers UIDs: with the first message expunged, UIDs are
	// one more than sequence numbers.
	r.expectOK("STORE 2 +FLAGS (\\Deleted)")
	r.expectOK("EXPUNGE")
	u := r.expectOK("UID SORT (DATE) UTF-8 ALL")
	mustHave(t, u, "* SORT 3 1 5 4 7 8 9 6")
	u = r.expectOK("SORT (DATE) UTF-8 ALL")
	mustHave(t, u, "* SORT 2 1 4 3 6 7 8 5")
}

func TestESort(t *testing.T) {
	e := newEnv(t)
	sortMailbox(e)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		// RFC 5267 §3.3's examples' shapes.
		{"SORT RETURN (MIN MAX COUNT) (DATE) UTF-8 ALL", `MIN 2 MAX 6 COUNT 9`},
		{"SORT RETURN (ALL) (DATE) UTF-8 ALL", `ALL 2:3,1,5,4,7:9,6`},
		{"SORT RETURN () (DATE) UTF-8 ALL", `ALL 2:3,1,5,4,7:9,6`},
		{"SORT RETURN (COUNT) (DATE) UTF-8 SUBJECT nothing", `COUNT 0`},
		{"UID SORT RETURN (MIN MAX) (REVERSE DATE) UTF-8 FROM dan", `UID MIN 8 MAX 7`},
	} {
		r.n++
		tag := fmt.Sprintf("t%d", r.n)
		r.send(tag + " " + tc.cmd + "\r\n")
		u, st := r.readUntil(tag)
		want := fmt.Sprintf(`* ESEARCH (TAG "%s") %s`, tag, tc.want)
		if !strings.HasPrefix(st, "OK") || len(u) != 1 || u[0] != want {
			t.Errorf("%s: got %q %q, want %q", tc.cmd, u, st, want)
		}
	}
}

func TestThread(t *testing.T) {
	e := newEnv(t)
	sortMailbox(e)
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	for _, tc := range []struct{ cmd, want string }{
		{"THREAD ORDEREDSUBJECT UTF-8 ALL", "* THREAD (2 (1)(5))(3 (4)(9))(7 8)(6)"},
		// RFC 5256 §2.2's example shape: THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000
		{"THREAD ORDEREDSUBJECT UTF-8 SINCE 5-MAR-2000 NOT SUBJECT other", "* THREAD (2 (1)(5))(7 8)(6)"},
		{"THREAD REFERENCES UTF-8 ALL", "* THREAD (2 1 5)((3 4)(9))((7)(8))(6)"},
		// Without the thread's root, its replies are children of a
		// dummy; with one reply left, that reply is the root.
		{"THREAD REFERENCES US-ASCII NOT FROM yak", "* THREAD ((3 4)(9))(1 5)((7)(8))(6)"},
		{"THREAD REFERENCES US-ASCII NOT FROM yak NOT FROM zed", "* THREAD ((3 4)(9))(5)((7)(8))(6)"},
		// A reply with the subject of a thread that is not one is
		// its child (§2.3 (6)(C)).
		{"THREAD REFERENCES US-ASCII NOT FROM carl", "* THREAD (2 1 5)(4 9)((7)(8))(6)"},
		{"UID THREAD REFERENCES UTF-8 SUBJECT lost", "* THREAD ((7)(8))"},
		{"THREAD REFERENCES UTF-8 SUBJECT nothing", "* THREAD"},
	} {
		u := r.expectOK(tc.cmd)
		if len(u) != 1 || u[0] != tc.want {
			t.Errorf("%s: got %q, want %q", tc.cmd, u, tc.want)
		}
	}
}

// TestBaseSubject: RFC 5256 §2.1's extraction, step by step.
func TestBaseSubject(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		reply    bool
	}{
		{"hello", "hello", false},
		{"Re: hello", "hello", true},
		{"RE:hello", "hello", true},
		{"re : hello", "hello", true},
		{"Fwd: hello", "hello", true},
		{"FW: hello", "hello", true},
		{"Re[2]: hello", "hello", true},
		{"Re [2]: hello", "hello", true},
		{"Re: Re: Fwd: hello", "hello", true},
		{"[list] Re: hello", "hello", true},
		{"[list] [other] Re: hello", "hello", true},
		{"[list] hello", "hello", false},
		{"[list]", "[list]", false},    // (4): nothing would be left
		{"[list] [x]", "[x]", false},   // the last blob stays
		{"hello (fwd)", "hello", true}, // (2)
		{"hello (FWD)  (fwd) ", "hello", true},
		{"[Fwd: hello]", "hello", true}, // (6)
		{"[fwd: Re: [list] hello (fwd)]", "hello", true},
		{"\thello\r\n  world  ", "hello world", false}, // (1)
		{"Red: hello", "Red: hello", false},            // "red" is no subj-refwd
		{"Fwdx: hello", "Fwdx: hello", false},
		{"Re: [a]b", "b", true},
		{"", "", false},
		{"Re:", "", true},
	} {
		got, reply := baseSubject(tc.in)
		if got != tc.want || reply != tc.reply {
			t.Errorf("baseSubject(%q) = %q, %v; want %q, %v", tc.in, got, reply, tc.want, tc.reply)
		}
	}
}

// TestWithin: OLDER and YOUNGER (RFC 5032) compare the INTERNALDATE with
// now; RFC 5032 §3's example shape is "SEARCH UNSEEN YOUNGER 259200".
func TestWithin(t *testing.T) {
	e := newEnv(t)
	e.deliver(e.aliceID, "", simpleMsg) // now
	r := loggedIn(e)
	r.expectOK("SELECT INBOX")
	old := time.Now().Add(-48 * time.Hour).Format("02-Jan-2006 15:04:05 -0700")
	r.send(fmt.Sprintf("a APPEND INBOX \"%s\" {%d+}\r\n%s\r\n", old, len(simpleMsg), simpleMsg))
	if _, st := r.readUntil("a"); !strings.HasPrefix(st, "OK") {
		t.Fatal(st)
	}
	for _, tc := range []struct{ cmd, want string }{
		{"SEARCH UNSEEN YOUNGER 259200", "* SEARCH 1 2"},
		{"SEARCH YOUNGER 86400", "* SEARCH 1"},
		{"SEARCH OLDER 86400", "* SEARCH 2"},
		{"SEARCH OLDER 259200", "* SEARCH"},
		{"SEARCH NOT YOUNGER 3600", "* SEARCH 2"},
		{"SEARCH OR OLDER 86400 YOUNGER 60 SUBJECT hello", "* SEARCH 1 2"},
		{"SEARCH OLDER 3600 YOUNGER 259200", "* SEARCH 2"},
		{"SORT (REVERSE ARRIVAL) UTF-8 YOUNGER 259200", "* SORT 1 2"},
	} {
		u := r.expectOK(tc.cmd)
		if len(u) != 1 || u[0] != tc.want {
			t.Errorf("%s: got %q, want %q", tc.cmd, u, tc.want)
		}
	}
	r.expectStatus("SEARCH OLDER 0", "BAD")
	r.expectStatus("SEARCH YOUNGER x", "BAD")
	// A HEADER key cannot reach the encoding of OLDER.
	r.expectOK("SEARCH HEADER OLDER 5")
}

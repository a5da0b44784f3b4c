package imap

import (
	"context"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// metaStatus sends c and checks that the tagged answer starts with want.
func metaStatus(t *testing.T, r *raw, c, want string) []string {
	t.Helper()
	u, st := r.cmd(c)
	if !strings.HasPrefix(st, want) {
		t.Fatalf("%s: got %q (untagged %q), want %q", c, st, u, want)
	}
	return u
}

// oneLine checks that lines are exactly one response, want.
func oneLine(t *testing.T, what string, lines []string, want string) {
	t.Helper()
	if len(lines) != 1 || lines[0] != want {
		t.Fatalf("%s: got %q, want [%q]", what, lines, want)
	}
}

// TestMetadataCapability: METADATA and METADATA-SERVER are announced
// after login, not before, and not with a Backend without
// store.Metadata, whose server knows neither command.
func TestMetadataCapability(t *testing.T) {
	e := newEnv(t)
	r := e.rawTLS()
	mustNotHave(t, r.expectOK("CAPABILITY"), "METADATA")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	caps := r.expectOK("CAPABILITY")
	mustHave(t, caps, " METADATA ")
	mustHave(t, caps, " METADATA-SERVER")

	type plain struct{ Backend }
	e2 := newEnv(t, func(o *Options) { o.Backend = plain{o.Backend} })
	r2 := loggedIn(e2)
	mustNotHave(t, r2.expectOK("CAPABILITY"), "METADATA")
	metaStatus(t, r2, `GETMETADATA "" /shared/comment`, "BAD")
	metaStatus(t, r2, `SETMETADATA "" (/shared/comment "x")`, "BAD")
}

// TestMetadataRFCExamples runs RFC 5464's examples of §4.2 and §4.3 (the
// comments, the MAXSIZE and DEPTH options, the server's entries), with
// the values they set read back.
func TestMetadataRFCExamples(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)

	// §4.3: a value in a synchronising literal, across two lines.
	r.send("s1 SETMETADATA INBOX (/private/comment {33}\r\n")
	if l := r.line(); !strings.HasPrefix(l, "+ ") {
		t.Fatalf("got %q, want a continuation request", l)
	}
	r.send("My new comment across\r\ntwo lines.)\r\n")
	if u, st := r.readUntil("s1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SETMETADATA with a literal: %q %q", u, st)
	}
	u := r.expectOK(`GETMETADATA "INBOX" /private/comment`)
	oneLine(t, "a comment across two lines", u, "* METADATA INBOX (/private/comment {33}\nMy new comment across\r\ntwo lines.)")

	// NIL deletes; a named entry that is not there is NIL.
	r.expectOK("SETMETADATA INBOX (/private/comment NIL)")
	oneLine(t, "deleted", r.expectOK(`GETMETADATA "INBOX" /private/comment`), "* METADATA INBOX (/private/comment NIL)")
	r.expectOK(`SETMETADATA INBOX (/shared/comment "My new comment")`)
	r.expectOK(`SETMETADATA INBOX (/private/comment "My own comment" /shared/comment "This one is for you!")`)
	// §4.2.1: several entries at once, in the order asked.
	oneLine(t, "two entries", r.expectOK(`GETMETADATA "INBOX" (/shared/comment /private/comment)`),
		`* METADATA INBOX (/shared/comment "This one is for you!" /private/comment "My own comment")`)

	// The server's entries (mailbox ""), apart from INBOX's.
	r.expectOK(`SETMETADATA "" (/shared/comment "Shared comment")`)
	oneLine(t, "server entry", r.expectOK(`GETMETADATA "" /shared/comment`), `* METADATA "" (/shared/comment "Shared comment")`)
	oneLine(t, "server private comment", r.expectOK(`GETMETADATA "" /private/comment`), `* METADATA "" (/private/comment NIL)`)

	// §4.2.2: MAXSIZE leaves out the longer entries and the OK says how
	// long the longest of them is; both placements of the options.
	long := strings.Repeat("x", 2199)
	r.send("s2 SETMETADATA INBOX (/shared/comment {2199+}\r\n" + long + ")\r\n")
	if _, st := r.readUntil("s2"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SETMETADATA of 2199 bytes: %q", st)
	}
	for _, c := range []string{
		`GETMETADATA "INBOX" (MAXSIZE 1024) (/shared/comment /private/comment)`,
		`GETMETADATA (MAXSIZE 1024) "INBOX" (/shared/comment /private/comment)`,
	} {
		u := metaStatus(t, r, c, "OK [METADATA LONGENTRIES 2199]")
		oneLine(t, c, u, `* METADATA INBOX (/private/comment "My own comment")`)
	}
	u = r.expectOK(`GETMETADATA "INBOX" (MAXSIZE 4096) /shared/comment`)
	oneLine(t, "under MAXSIZE", u, `* METADATA INBOX (/shared/comment "`+long+`")`)
	// Nothing left: no METADATA response, only the OK's code.
	u = metaStatus(t, r, `GETMETADATA "INBOX" (MAXSIZE 10) /shared/comment`, "OK [METADATA LONGENTRIES 2199]")
	if len(u) != 0 {
		t.Fatalf("every entry over MAXSIZE: got %q, want no METADATA response", u)
	}

	// §4.2.3: DEPTH 1 gives the children, infinity every descendant;
	// the entry asked for itself, which does not exist, is not NIL.
	r.expectOK(`SETMETADATA INBOX (/private/filters/values/small "By size less than 10000" /private/filters/values/boss "Messages from my boss" /private/filters/values/boss/deep "x")`)
	oneLine(t, "DEPTH 1", r.expectOK(`GETMETADATA "INBOX" (DEPTH 1) "/private/filters/values"`),
		`* METADATA INBOX (/private/filters/values/boss "Messages from my boss" /private/filters/values/small "By size less than 10000")`)
	oneLine(t, "DEPTH infinity", r.expectOK(`GETMETADATA "INBOX" (DEPTH infinity) "/private/filters/values"`),
		`* METADATA INBOX (/private/filters/values/boss "Messages from my boss" /private/filters/values/boss/deep "x" /private/filters/values/small "By size less than 10000")`)
	oneLine(t, "DEPTH 0", r.expectOK(`GETMETADATA "INBOX" (DEPTH 0) "/private/filters/values"`), `* METADATA INBOX (/private/filters/values NIL)`)
	oneLine(t, "DEPTH with MAXSIZE", r.expectOK(`GETMETADATA INBOX (DEPTH 1 MAXSIZE 21) /private/filters/values`),
		`* METADATA INBOX (/private/filters/values/boss "Messages from my boss")`)

	// Entry names are case-insensitive (RFC 5464 §3.2).
	oneLine(t, "upper case", r.expectOK(`GETMETADATA INBOX /PRIVATE/Comment`), `* METADATA INBOX (/private/comment "My own comment")`)
}

// TestMetadataErrors: invalid names and options are BAD, a missing
// mailbox NO [NONEXISTENT], the limits NO [METADATA MAXSIZE n] and
// NO [METADATA TOOMANY] with nothing changed, and /private/specialuse
// is read-only and holds the special use where there is one.
func TestMetadataErrors(t *testing.T) {
	e := newEnv(t, func(o *Options) {
		o.Metadata = store.MetadataLimits{MaxValueBytes: 16, MaxEntries: 2, MaxAccountBytes: 100}
	})
	r := loggedIn(e)
	for _, c := range []string{
		`GETMETADATA INBOX /vendor/x`,
		`GETMETADATA INBOX /private/a*`,
		`GETMETADATA INBOX (/shared/comment /private//x)`,
		`GETMETADATA INBOX (DEPTH 2) /shared/comment`,
		`GETMETADATA INBOX (MAXSIZE -1) /shared/comment`,
		`GETMETADATA INBOX (FOO 1) /shared/comment`,
		`GETMETADATA INBOX ()`,
		`SETMETADATA INBOX (/shared/comment "a" /other "b")`,
		`SETMETADATA INBOX (/shared/comment)`,
		`SETMETADATA INBOX (/shared/comment FOO)`,
		`SETMETADATA INBOX (/shared/comment ~"x")`,
		`SETMETADATA INBOX ()`,
	} {
		metaStatus(t, r, c, "BAD")
	}
	metaStatus(t, r, `GETMETADATA Nope /shared/comment`, "NO [NONEXISTENT]")
	metaStatus(t, r, `SETMETADATA Nope (/shared/comment "x")`, "NO [NONEXISTENT]")
	oneLine(t, "nothing set by the BAD commands", r.expectOK(`GETMETADATA INBOX /shared/comment`), `* METADATA INBOX (/shared/comment NIL)`)

	metaStatus(t, r, `SETMETADATA INBOX (/shared/a "12345678901234567")`, "NO [METADATA MAXSIZE 16]")
	metaStatus(t, r, `SETMETADATA INBOX (/shared/a {17}`, "NO [METADATA MAXSIZE 16]")
	r.expectOK(`SETMETADATA INBOX (/shared/a "1234567890123456" /shared/b "b")`)
	metaStatus(t, r, `SETMETADATA INBOX (/shared/c "c" /shared/a NIL /shared/d "d")`, "NO [METADATA TOOMANY]")
	oneLine(t, "a refused SETMETADATA changes nothing", r.expectOK(`GETMETADATA INBOX (/shared/a /shared/c)`),
		`* METADATA INBOX (/shared/a "1234567890123456" /shared/c NIL)`)
	r.expectOK(`SETMETADATA INBOX (/shared/c "c" /shared/a NIL)`)
	// The account's bytes: 100 at most over all mailboxes.
	r.expectOK(`SETMETADATA Sent (/shared/long1 "1234567890123456" /shared/long2 "1234567890123456")`)
	metaStatus(t, r, `SETMETADATA Drafts (/shared/long1 "1234567890123456" /shared/long2 "1234567890123456")`, "NO [METADATA TOOMANY]")

	// RFC 6154's /private/specialuse: the mailbox's attribute, read-only.
	oneLine(t, "special use", r.expectOK(`GETMETADATA Sent /private/specialuse`), `* METADATA "Sent" (/private/specialuse "\\Sent")`)
	oneLine(t, "no special use", r.expectOK(`GETMETADATA INBOX /private/specialuse`), `* METADATA INBOX (/private/specialuse NIL)`)
	metaStatus(t, r, `SETMETADATA Sent (/private/specialuse "\\Trash")`, "NO [CANNOT]")
	oneLine(t, "with DEPTH", r.expectOK(`GETMETADATA Junk (DEPTH infinity) /private`), `* METADATA "Junk" (/private/specialuse "\\Junk")`)
}

// TestMetadataBinaryValue: a value holding NUL is set with a literal8
// and comes back as one (RFC 5464 §5: value = nstring / literal8).
func TestMetadataBinaryValue(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.send("b1 SETMETADATA INBOX (/private/vendor/x/bin ~{5+}\r\na\x00b\r\n)\r\n")
	if u, st := r.readUntil("b1"); !strings.HasPrefix(st, "OK") {
		t.Fatalf("SETMETADATA of a literal8: %q %q", u, st)
	}
	oneLine(t, "binary", r.expectOK(`GETMETADATA INBOX /private/vendor/x/bin`), "* METADATA INBOX (/private/vendor/x/bin ~{5}\na\x00b\r\n)")
	got, err := e.st.Metadata(context.Background(), e.aliceID, "INBOX")
	if err != nil || len(got) != 1 || string(got[0].Value) != "a\x00b\r\n" {
		t.Fatalf("stored %+v, %v", got, err)
	}
}

// TestMetadataOversizedLiteral: a SETMETADATA value over the limit is
// refused before its data is read: a synchronising literal gets no
// continuation request, a non-synchronising one's data (lines that
// would be commands) is skipped, and the connection stays usable with
// nothing stored.
func TestMetadataOversizedLiteral(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	want := "NO [METADATA MAXSIZE 65536]"

	r.send("a SETMETADATA INBOX (/shared/comment {70000}\r\n")
	refusedInStep(t, r, "a", "oversized synchronising literal", want)

	data := strings.Repeat("z LOGOUT\r\n", 7000) // 70000 bytes
	r.send("b SETMETADATA INBOX (/shared/comment {70000+}\r\n" + data + ")\r\n")
	refusedInStep(t, r, "b", "oversized non-synchronising literal", want)

	// Many values under the limit, over what one command may hold.
	var sb strings.Builder
	sb.WriteString("c SETMETADATA INBOX (")
	for i := range 5 {
		if i > 0 {
			sb.WriteString(" ")
		}
		sb.WriteString("/shared/v" + string(rune('0'+i)) + " {60000+}\r\n" + strings.Repeat("z NOOP\r\n", 7500))
	}
	sb.WriteString(")\r\n")
	r.send(sb.String())
	refusedInStep(t, r, "c", "values over the command's budget", "NO [TOOBIG]")

	if u := r.expectOK(`GETMETADATA INBOX (DEPTH infinity) /shared`); len(u) != 0 {
		t.Fatalf("after the refused commands: %q, want nothing stored", u)
	}
}

// TestMetadataFollowsMailbox: entries move with RENAME and go with
// DELETE: a mailbox created again under the name has none.
func TestMetadataFollowsMailbox(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK("CREATE Work/Sub")
	r.expectOK(`SETMETADATA Work (/shared/comment "work")`)
	r.expectOK(`SETMETADATA Work/Sub (/private/comment "sub")`)
	r.expectOK("RENAME Work Job")
	oneLine(t, "renamed", r.expectOK(`GETMETADATA Job /shared/comment`), `* METADATA "Job" (/shared/comment "work")`)
	oneLine(t, "renamed child", r.expectOK(`GETMETADATA Job/Sub /private/comment`), `* METADATA "Job/Sub" (/private/comment "sub")`)
	r.expectOK("CREATE Work")
	oneLine(t, "new mailbox under the old name", r.expectOK(`GETMETADATA Work /shared/comment`), `* METADATA "Work" (/shared/comment NIL)`)
	r.expectOK("DELETE Job/Sub")
	r.expectOK("CREATE Job/Sub")
	oneLine(t, "deleted and created again", r.expectOK(`GETMETADATA Job/Sub /private/comment`), `* METADATA "Job/Sub" (/private/comment NIL)`)
}

package imap

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// listLines sends a LIST and checks that its tagged answer is want and
// its untagged responses exactly lines.
func listLines(t *testing.T, r *raw, c, want string, lines ...string) {
	t.Helper()
	u, st := r.cmd(c)
	if st != want || strings.Join(u, "\n") != strings.Join(lines, "\n") {
		t.Fatalf("%s:\ngot  %q\n%q\nwant %q\n%q", c, st, u, want, lines)
	}
}

// TestListMetadataCapability: LIST-METADATA is announced after login
// with METADATA, and not with a Backend without store.Metadata, whose
// LIST refuses the METADATA return option as an unknown one.
func TestListMetadataCapability(t *testing.T) {
	e := newEnv(t)
	r := e.rawTLS()
	mustNotHave(t, r.expectOK("CAPABILITY"), "LIST-METADATA")
	r.expectOK("LOGIN alice@example.com \"correct horse\"")
	mustHave(t, r.expectOK("CAPABILITY"), " LIST-METADATA")

	type plain struct{ Backend }
	e2 := newEnv(t, func(o *Options) { o.Backend = plain{o.Backend} })
	r2 := loggedIn(e2)
	mustNotHave(t, r2.expectOK("CAPABILITY"), "METADATA")
	metaStatus(t, r2, `LIST "" INBOX RETURN (METADATA (/shared/comment))`, "BAD")
	// The same LIST without the option still works there.
	listLines(t, r2, `LIST "" INBOX RETURN (CHILDREN)`, "OK LIST completed", `* LIST (\HasNoChildren) "/" INBOX`)
}

// TestListMetadataReturn: RFC 9590 §3's return option, shaped like its
// example (a comment and a colour asked of every mailbox of one level):
// each listed mailbox's LIST response is followed by one METADATA
// response with the entries asked, in the order asked, NIL for those it
// does not have, as GETMETADATA answers; after LIST-STATUS's STATUS when
// both are asked. A subscribed name without a mailbox (\NonExistent) has
// no entries and gets no METADATA response.
func TestListMetadataReturn(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK(`SETMETADATA INBOX (/shared/comment "Really useful mailbox" /private/color "#ff0000")`)
	r.expectOK(`SETMETADATA Sent (/private/color "#00ff00")`)
	r.expectOK(`SETMETADATA "" (/shared/comment "the server's, not a mailbox's")`)

	listLines(t, r, `LIST "" "%" RETURN (METADATA (/shared/comment /private/color))`, "OK LIST completed",
		`* LIST (\HasNoChildren \Archive) "/" "Archive"`,
		`* METADATA "Archive" (/shared/comment NIL /private/color NIL)`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
		`* METADATA "Drafts" (/shared/comment NIL /private/color NIL)`,
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* METADATA INBOX (/shared/comment "Really useful mailbox" /private/color "#ff0000")`,
		`* LIST (\HasNoChildren \Junk) "/" "Junk"`,
		`* METADATA "Junk" (/shared/comment NIL /private/color NIL)`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* METADATA "Sent" (/shared/comment NIL /private/color "#00ff00")`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
		`* METADATA "Trash" (/shared/comment NIL /private/color NIL)`,
	)

	// One entry name, case folded as GETMETADATA folds it; with
	// LIST-STATUS the METADATA response comes after the STATUS one.
	listLines(t, r, `LIST "" (INBOX Sent) RETURN (STATUS (MESSAGES) METADATA (/PRIVATE/Color))`, "OK LIST completed",
		`* LIST (\HasNoChildren) "/" INBOX`,
		`* STATUS INBOX (MESSAGES 0)`,
		`* METADATA INBOX (/private/color "#ff0000")`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* STATUS "Sent" (MESSAGES 0)`,
		`* METADATA "Sent" (/private/color "#00ff00")`,
	)

	// RFC 6154's /private/specialuse, from the mailbox, as GETMETADATA.
	listLines(t, r, `LIST (SPECIAL-USE) "" "*" RETURN (METADATA (/private/specialuse))`, "OK LIST completed",
		`* LIST (\HasNoChildren \Archive) "/" "Archive"`,
		`* METADATA "Archive" (/private/specialuse "\\Archive")`,
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
		`* METADATA "Drafts" (/private/specialuse "\\Drafts")`,
		`* LIST (\HasNoChildren \Junk) "/" "Junk"`,
		`* METADATA "Junk" (/private/specialuse "\\Junk")`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* METADATA "Sent" (/private/specialuse "\\Sent")`,
		`* LIST (\HasNoChildren \Trash) "/" "Trash"`,
		`* METADATA "Trash" (/private/specialuse "\\Trash")`,
	)

	// A subscribed name without a mailbox: listed, but no entries.
	r.expectOK(`SUBSCRIBE Gone`)
	listLines(t, r, `LIST (SUBSCRIBED) "" (Gone INBOX) RETURN (METADATA (/shared/comment))`, "OK LIST completed",
		`* LIST (\NonExistent \HasNoChildren \Subscribed) "/" "Gone"`,
		`* LIST (\HasNoChildren \Subscribed) "/" INBOX`,
		`* METADATA INBOX (/shared/comment "Really useful mailbox")`,
	)
	// A new mailbox without entries: NIL, like GETMETADATA's answer.
	r.expectOK(`CREATE Empty`)
	listLines(t, r, `LIST "" Empty RETURN (METADATA (/shared/comment /private/comment))`, "OK LIST completed",
		`* LIST (\HasNoChildren) "/" "Empty"`,
		`* METADATA "Empty" (/shared/comment NIL /private/comment NIL)`,
	)
	oneLine(t, "GETMETADATA agrees", r.expectOK(`GETMETADATA Empty (/shared/comment /private/comment)`),
		`* METADATA "Empty" (/shared/comment NIL /private/comment NIL)`)
	// LSUB is not LIST: no return options, no METADATA.
	listLines(t, r, `LSUB "" INBOX`, "OK LSUB completed", `* LSUB () "/" INBOX`)
}

// TestListMetadataMaxSize: MAXSIZE leaves out the values over it, as
// GETMETADATA's does, and the tagged OK says how long the longest left
// out was ([METADATA LONGENTRIES n], RFC 5464 §4.2.2); a mailbox all of
// whose entries are left out gets no METADATA response. The option is
// read bare or in a list, before or after the entries.
func TestListMetadataMaxSize(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	r.expectOK(`SETMETADATA INBOX (/shared/comment "short" /private/comment "a comment of 27 bytes, long")`)
	r.expectOK(`SETMETADATA Sent (/private/comment "twenty bytes exactly")`)
	r.expectOK(`SETMETADATA Drafts (/private/comment "sixteen bytes..")`)

	for _, opt := range []string{
		`(/shared/comment /private/comment MAXSIZE 10)`,
		`(MAXSIZE 10 /shared/comment /private/comment)`,
		`((MAXSIZE 10) (/shared/comment /private/comment))`,
		`((/shared/comment /private/comment) (maxsize 10))`,
	} {
		listLines(t, r, `LIST "" (INBOX Sent Drafts) RETURN (METADATA `+opt+`)`, "OK [METADATA LONGENTRIES 27] LIST completed",
			`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
			`* METADATA "Drafts" (/shared/comment NIL)`,
			`* LIST (\HasNoChildren) "/" INBOX`,
			`* METADATA INBOX (/shared/comment "short")`,
			`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
			`* METADATA "Sent" (/shared/comment NIL)`,
		)
	}
	// Only Sent's value is over 16: LONGENTRIES is its size, and Sent
	// has nothing left to send.
	listLines(t, r, `LIST "" (Sent Drafts) RETURN (METADATA (/private/comment MAXSIZE 16))`, "OK [METADATA LONGENTRIES 20] LIST completed",
		`* LIST (\HasNoChildren \Drafts) "/" "Drafts"`,
		`* METADATA "Drafts" (/private/comment "sixteen bytes..")`,
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
	)
	// Nothing over MAXSIZE, or no MAXSIZE: a plain OK.
	listLines(t, r, `LIST "" Sent RETURN (METADATA (/private/comment MAXSIZE 20))`, "OK LIST completed",
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* METADATA "Sent" (/private/comment "twenty bytes exactly")`,
	)
	listLines(t, r, `LIST "" Sent RETURN (METADATA (/private/comment))`, "OK LIST completed",
		`* LIST (\HasNoChildren \Sent) "/" "Sent"`,
		`* METADATA "Sent" (/private/comment "twenty bytes exactly")`,
	)
}

// TestListMetadataErrors: a malformed METADATA return option, or an
// entry name GETMETADATA would refuse, is BAD before any LIST response.
func TestListMetadataErrors(t *testing.T) {
	e := newEnv(t)
	r := loggedIn(e)
	for _, opt := range []string{
		`METADATA ()`,
		`METADATA`,
		`METADATA /shared/comment`,
		`METADATA (MAXSIZE 10)`,
		`METADATA (/vendor/x)`,
		`METADATA (/shared/comment /private//x)`,
		`METADATA (/shared/comment MAXSIZE)`,
		`METADATA (/shared/comment MAXSIZE -1)`,
		`METADATA (/shared/comment MAXSIZE x)`,
		`METADATA (/shared/comment DEPTH 1)`,
		`METADATA (/shared/comment) METADATA (/private/comment)`,
	} {
		if u, st := r.cmd(`LIST "" "*" RETURN (` + opt + `)`); !strings.HasPrefix(st, "BAD") || len(u) != 0 {
			t.Errorf("RETURN (%s): got %q %q, want BAD and no response", opt, st, u)
		}
	}
}

// countingMetadata is a Backend whose store.Metadata counts its reads.
type countingMetadata struct {
	Backend
	meta  store.Metadata
	reads atomic.Int64
}

func (c *countingMetadata) Metadata(ctx context.Context, account, mailbox string) ([]store.MetadataEntry, error) {
	c.reads.Add(1)
	return c.meta.Metadata(ctx, account, mailbox)
}

func (c *countingMetadata) SetMetadata(ctx context.Context, account, mailbox string, entries []store.MetadataEntry, lim store.MetadataLimits) error {
	return c.meta.SetMetadata(ctx, account, mailbox, entries, lim)
}

// TestListMetadataOneReadPerMailbox: the entries of a listed mailbox are
// read once, however many entries are asked, and not at all for a LIST
// without the option.
func TestListMetadataOneReadPerMailbox(t *testing.T) {
	var counter *countingMetadata
	e := newEnv(t, func(o *Options) {
		counter = &countingMetadata{Backend: o.Backend, meta: o.Backend.(store.Metadata)}
		o.Backend = counter
	})
	r := loggedIn(e)
	u, _ := r.cmd(`LIST "" "*"`)
	before := counter.reads.Load()
	if before != 0 {
		t.Fatalf("a LIST without METADATA read metadata %d times", before)
	}
	r.expectOK(`LIST "" "*" RETURN (METADATA (/shared/a /shared/b /private/c /private/specialuse))`)
	if got := counter.reads.Load(); got != int64(len(u)) {
		t.Fatalf("%d metadata reads for %d mailboxes and 4 entries, want one per mailbox", got, len(u))
	}
}

package storetest

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// testMetadata checks store.Metadata (RFC 5464 annotations): the
// server's entries and each mailbox's are apart, a nil value deletes,
// SetMetadata is atomic, the limits hold (also across mailboxes for the
// account's bytes) and do not block deletions, and entries follow their
// mailbox through RenameMailbox and go with DeleteMailbox and
// DeleteAccount.
func testMetadata(t *testing.T, open Opener) {
	s, ctx := open(t), ctxT(t)
	md, is := s.(store.Metadata)
	if !is {
		t.Skip("the backend has no store.Metadata")
	}
	newAccount(t, s, "u", store.Quota{})
	newAccount(t, s, "v", store.Quota{})
	get := func(acct, mbox string) string {
		t.Helper()
		es, err := md.Metadata(ctx, acct, mbox)
		ok(t, err, "Metadata(%q, %q)", acct, mbox)
		var b bytes.Buffer
		for _, e := range es {
			fmt.Fprintf(&b, "%s=%q;", e.Name, e.Value)
		}
		return b.String()
	}
	want := func(acct, mbox, w string) {
		t.Helper()
		if got := get(acct, mbox); got != w {
			t.Fatalf("Metadata(%q, %q) = %s, want %s", acct, mbox, got, w)
		}
	}
	set := func(acct, mbox string, lim store.MetadataLimits, kv ...any) error {
		var es []store.MetadataEntry
		for i := 0; i < len(kv); i += 2 {
			e := store.MetadataEntry{Name: kv[i].(string)}
			if v := kv[i+1]; v != nil {
				e.Value = []byte(v.(string))
			}
			es = append(es, e)
		}
		return md.SetMetadata(ctx, acct, mbox, es, lim)
	}
	none := store.MetadataLimits{}

	want("u", "", "")
	want("u", "INBOX", "")
	ok(t, set("u", "", none, "/shared/comment", "server note", "/private/vendor/x/y", "bin\x00ary"), "set server entries")
	ok(t, set("u", "INBOX", none, "/private/comment", "mine", "/shared/comment", "", "/private/comment", "mine again"), "set INBOX entries")
	ok(t, set("u", "inbox", none, "/shared/vendor/a", "1"), "set through a lower-case INBOX")
	want("u", "", `/private/vendor/x/y="bin\x00ary";/shared/comment="server note";`)
	want("u", "INBOX", `/private/comment="mine again";/shared/comment="";/shared/vendor/a="1";`)
	want("u", "Sent", "")
	want("v", "", "")

	// Deletion, also of an entry that is not there.
	ok(t, set("u", "INBOX", none, "/shared/vendor/a", nil, "/shared/vendor/none", nil), "delete")
	want("u", "INBOX", `/private/comment="mine again";/shared/comment="";`)

	// Bad names, missing mailboxes and accounts; nothing changes.
	for _, name := range []string{"/Shared/Comment", "/other/x", "/private", "/private/", "/private//x", "/private/x/", "/private/a*", "/private/a%", "/private/\x01", ""} {
		isErr(t, set("u", "INBOX", none, "/shared/comment", "changed", name, "x"), store.ErrInvalid, "SetMetadata with name %q", name)
	}
	want("u", "INBOX", `/private/comment="mine again";/shared/comment="";`)
	isErr(t, set("u", "Nope", none, "/shared/comment", "x"), store.ErrNoMailbox, "SetMetadata on a missing mailbox")
	_, err := md.Metadata(ctx, "u", "Nope")
	isErr(t, err, store.ErrNoMailbox, "Metadata of a missing mailbox")
	isErr(t, set("nobody", "", none, "/shared/comment", "x"), store.ErrNotFound, "SetMetadata of a missing account")
	_, err = md.Metadata(ctx, "nobody", "INBOX")
	isErr(t, err, store.ErrNotFound, "Metadata of a missing account")

	// Limits: value size, entries per mailbox, bytes per account; a
	// refused call changes nothing.
	lim := store.MetadataLimits{MaxValueBytes: 8, MaxEntries: 3, MaxAccountBytes: 200}
	isErr(t, set("u", "Sent", lim, "/shared/a", "1", "/shared/b", "123456789"), store.ErrMetadataTooLarge, "a value over MaxValueBytes")
	ok(t, set("u", "Sent", lim, "/shared/a", "12345678", "/shared/b", "2"), "values at MaxValueBytes")
	isErr(t, set("u", "Sent", lim, "/shared/c", "3", "/shared/d", "4"), store.ErrMetadataTooMany, "a fourth and fifth entry")
	want("u", "Sent", `/shared/a="12345678";/shared/b="2";`)
	ok(t, set("u", "Sent", lim, "/shared/c", "3", "/shared/a", "replaced"), "a third entry and a replaced one")
	ok(t, set("u", "Sent", lim, "/shared/d", "4", "/shared/c", nil), "one in, one out at MaxEntries")
	want("u", "Sent", `/shared/a="replaced";/shared/b="2";/shared/d="4";`)
	ok(t, set("u", "Drafts", lim, "/shared/a", "x"), "another mailbox has its own count")
	// The account now holds more than 60 bytes; a MaxAccountBytes of 60
	// refuses growth anywhere but lets entries go.
	tight := store.MetadataLimits{MaxAccountBytes: 60}
	isErr(t, set("u", "Junk", tight, "/shared/a", "x"), store.ErrMetadataTooMany, "growth over MaxAccountBytes")
	isErr(t, set("u", "", tight, "/shared/zz", "x"), store.ErrMetadataTooMany, "server entry over MaxAccountBytes")
	ok(t, set("u", "Sent", tight, "/shared/a", nil), "a deletion over MaxAccountBytes")
	ok(t, set("v", "", tight, "/shared/a", "x"), "another account's bytes are its own")

	// Rename: the entries follow the mailbox and its children.
	_, err = s.CreateMailbox(ctx, "u", "Work/Sub", store.SpecialNone)
	ok(t, err, "CreateMailbox")
	ok(t, set("u", "Work", none, "/shared/comment", "work"), "set on Work")
	ok(t, set("u", "Work/Sub", none, "/shared/comment", "sub"), "set on Work/Sub")
	ok(t, s.RenameMailbox(ctx, "u", "Work", "Job"), "RenameMailbox")
	want("u", "Job", `/shared/comment="work";`)
	want("u", "Job/Sub", `/shared/comment="sub";`)
	_, err = s.CreateMailbox(ctx, "u", "Work", store.SpecialNone)
	ok(t, err, "CreateMailbox under the old name")
	want("u", "Work", "")

	// Delete: the entries go, and a mailbox made under the name starts
	// without them; their bytes no longer count.
	ok(t, s.DeleteMailbox(ctx, "u", "Job"), "DeleteMailbox")
	want("u", "Job/Sub", `/shared/comment="sub";`)
	_, err = s.CreateMailbox(ctx, "u", "Job", store.SpecialNone)
	ok(t, err, "CreateMailbox again")
	want("u", "Job", "")
	ok(t, s.DeleteMailbox(ctx, "u", "Sent"), "DeleteMailbox Sent")
	ok(t, s.DeleteMailbox(ctx, "u", "Drafts"), "DeleteMailbox Drafts")
	ok(t, s.DeleteMailbox(ctx, "u", "Job/Sub"), "DeleteMailbox Job/Sub")
	ok(t, s.DeleteMailbox(ctx, "u", "Work"), "DeleteMailbox Work")
	ok(t, set("u", "", none, "/private/vendor/x/y", nil), "drop a server entry")
	// Left: the server's /shared/comment (26 bytes) and INBOX's two (41).
	ok(t, set("u", "Junk", store.MetadataLimits{MaxAccountBytes: 90}, "/shared/a", "x"), "room freed by the deletions")
	isErr(t, set("u", "Junk", store.MetadataLimits{MaxAccountBytes: 90}, "/shared/b", "12345678"), store.ErrMetadataTooMany, "the account's bytes counted across mailboxes")

	// The account's entries go with it.
	ok(t, s.DeleteAccount(ctx, "u"), "DeleteAccount")
	newAccount(t, s, "u", store.Quota{})
	want("u", "", "")
	want("u", "INBOX", "")
	want("v", "", `/shared/a="x";`)
}

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
	"github.com/mailyard/mailyard/store/sqlite"
)

// search reindex reads a user's messages into the full-text index (and
// everyone's without an address); unknown users are refused.
func TestSearchReindex(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "bob@example.test", "-password", "pw")
	u := decode[userView](t, mustCLI(t, d, "user", "show", "bob@example.test", "-json"))
	st, err := sqlite.Open(context.Background(), d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []string{"Subject: a\r\n\r\nred apple\r\n", "Subject: b\r\n\r\ngreen pear\r\n"} {
		if _, err := st.Append(context.Background(), u.ID, "INBOX", strings.NewReader(m), store.AppendOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	if out := mustCLI(t, d, "search", "reindex", "bob@example.test"); out != "indexed 2 messages of bob@example.test\n" {
		t.Fatalf("search reindex: %q", out)
	}
	if out := mustCLI(t, d, "search", "reindex"); out != "indexed 2 messages of all users\n" {
		t.Fatalf("search reindex (all): %q", out)
	}
	mustFail(t, d, "", "nobody@example.test", "search", "reindex", "nobody@example.test")
	st, err = sqlite.Open(context.Background(), d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	hits, err := st.SearchText(context.Background(), u.ID, "INBOX", []store.TextTerm{{Field: store.TextBody, Value: "PEAR"}}, nil)
	if err != nil || len(hits) != 1 || hits[0].UID != 2 || !hits[0].Sure {
		t.Fatalf("SearchText after reindex: %+v, %v", hits, err)
	}
}

package main

import (
	"context"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/dav"
	"github.com/mailyard/mailyard/store/sqlite"
)

// TestShareCommands: share add, list and remove, with their refusals.
func TestShareCommands(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")
	mustCLI(t, d, "user", "add", "bob@example.test", "-password", "secret")
	mustCLI(t, d, "group", "add", "team@example.test", "bob@example.test")

	out := mustCLI(t, d, "share", "add", "alice@example.test", "calendar", "bob@example.test", "-access", "read-write")
	if !strings.Contains(out, "calendar calendar of alice@example.test shared with bob@example.test (read-write)") {
		t.Errorf("share add: %q", out)
	}
	mustCLI(t, d, "share", "add", "alice@example.test", "contacts", "team@example.test", "-kind", "addressbook")
	for _, args := range [][]string{
		{"share", "add", "alice@example.test", "calendar", "bob@example.test", "-access", "admin"},
		{"share", "add", "alice@example.test", "work", "bob@example.test"},
		{"share", "add", "alice@example.test", "default", "nobody@example.test"},
		{"share", "add", "team@example.test", "calendar", "bob@example.test"},
		{"share", "add", "alice@example.test", "calendar", "bob@example.test", "-kind", "tasks"},
		{"share", "remove", "alice@example.test", "calendar", "bob@example.test", "-access", "read-write"},
		{"share", "add", "alice@example.test", "default"},
	} {
		if code, _, _ := cli(t, d, "", args...); code == 0 {
			t.Errorf("%q: accepted", args)
		}
	}
	want := "addressbook\tcontacts\tteam@example.test (group)\tread\n" +
		"calendar\tcalendar\tbob@example.test\tread-write\n"
	if got := mustCLI(t, d, "share", "list", "alice@example.test"); got != want {
		t.Errorf("share list:\n%q\nwant\n%q", got, want)
	}
	mustCLI(t, d, "share", "remove", "alice@example.test", "calendar", "bob@example.test")
	if got := mustCLI(t, d, "share", "list", "alice@example.test"); got != "addressbook\tcontacts\tteam@example.test (group)\tread\n" {
		t.Errorf("share list after remove: %q", got)
	}
}

// TestShareRoomCommands: an administrator makes a user the booking
// manager of a room (share add ROOM '*' USER, dav.Handler.Delegate),
// lists and removes the grant; the room as its own proxy is refused.
func TestShareRoomCommands(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")
	mustCLI(t, d, "resource", "add", "room1@example.test", "-name", "Room 1")
	out := mustCLI(t, d, "share", "add", "room1@example.test", "*", "alice@example.test", "-access", "read-write")
	if !strings.Contains(out, "calendar * of room1@example.test shared with alice@example.test (read-write)") {
		t.Errorf("share add: %q", out)
	}
	if got := mustCLI(t, d, "share", "list", "room1@example.test"); got != "calendar\t*\talice@example.test\tread-write\n" {
		t.Errorf("share list: %q", got)
	}
	if code, _, _ := cli(t, d, "", "share", "add", "room1@example.test", "*", "room1@example.test"); code == 0 {
		t.Error("a room was made its own proxy")
	}
	mustCLI(t, d, "share", "remove", "room1@example.test", "*", "alice@example.test")
	if got := mustCLI(t, d, "share", "list", "room1@example.test"); got != "" {
		t.Errorf("share list after remove: %q", got)
	}
}

// TestUserDeleteDropsShares: `user delete` removes the user's grants,
// the grants to the user and its collections' properties from the
// store's records, not only its account; others' grants stay.
func TestUserDeleteDropsShares(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	for _, u := range []string{"alice", "bob", "carol"} {
		mustCLI(t, d, "user", "add", u+"@example.test", "-password", "secret")
	}
	mustCLI(t, d, "group", "add", "team@example.test", "bob@example.test")
	mustCLI(t, d, "share", "add", "alice@example.test", "calendar", "bob@example.test")
	mustCLI(t, d, "share", "add", "alice@example.test", "contacts", "team@example.test", "-kind", "addressbook")
	mustCLI(t, d, "share", "add", "bob@example.test", "calendar", "alice@example.test")
	mustCLI(t, d, "share", "add", "bob@example.test", "calendar", "carol@example.test")
	out := mustCLI(t, d, "user", "delete", "alice@example.test", "-yes")
	_, id, ok := strings.Cut(out, "(id ")
	id = strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(id), ")"))
	if !ok || id == "" {
		t.Fatalf("user delete said %q, no id", out)
	}
	if got := mustCLI(t, d, "share", "list", "bob@example.test"); got != "calendar\tcalendar\tcarol@example.test\tread\n" {
		t.Errorf("bob's grants after alice's deletion: %q", got)
	}
	st, err := sqlite.Open(context.Background(), d, sqlite.Options{MustExist: true})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	recs, err := st.ListRecords(context.Background(), dav.NamespaceShares, "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 {
		t.Errorf("%d share records left, want bob's grant to carol (2)", len(recs))
	}
	for _, r := range recs {
		if strings.Contains(r.Key, id) || strings.Contains(string(r.Value), "alice@") {
			t.Errorf("record %s left of alice's grants: %s", r.Key, r.Value)
		}
	}
}

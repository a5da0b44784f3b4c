package main

import (
	"strings"
	"testing"
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

package main

import (
	"strings"
	"testing"
)

// TestResourceCommands: resource add, list and policy over the built-in
// directory, with their refusals.
func TestResourceCommands(t *testing.T) {
	d := newDataDir(t)
	mustCLI(t, d, "domain", "add", "example.test")
	mustCLI(t, d, "user", "add", "alice@example.test", "-password", "secret")

	out := mustCLI(t, d, "resource", "add", "room1@example.test", "-name", "Room 1", "-capacity", "8", "-location", "2nd floor")
	if !strings.Contains(out, "room1@example.test added (room, policy auto)") {
		t.Errorf("resource add: %q", out)
	}
	mustCLI(t, d, "resource", "add", "beamer@example.test", "-kind", "equipment", "-policy", "manual", "-approver", "alice@example.test")
	for _, args := range [][]string{
		{"resource", "add", "van@example.test", "-kind", "vehicle"},
		{"resource", "add", "car@example.test", "-policy", "manual"},
		{"resource", "add", "bus@example.test", "-policy", "manual", "-approver", "nobody@example.test"},
		{"resource", "policy", "alice@example.test", "auto"},
		{"resource", "policy", "room1@example.test", "manual"},
		{"resource", "policy", "room1@example.test", "sometimes"},
		{"resource", "policy", "room1@example.test"},
	} {
		if code, _, _ := cli(t, d, "", args...); code == 0 {
			t.Errorf("%q: accepted", args)
		}
	}

	list := mustCLI(t, d, "resource", "list")
	want := "beamer@example.test\tequipment\tcapacity 0\tpolicy manual\tapprovers alice@example.test\n" +
		"room1@example.test\troom\tcapacity 8\tpolicy auto\tRoom 1\n"
	if list != want {
		t.Errorf("resource list:\n%q\nwant\n%q", list, want)
	}
	out = mustCLI(t, d, "resource", "policy", "room1@example.test", "manual", "-approver", "alice@example.test")
	if !strings.Contains(out, "policy manual") {
		t.Errorf("resource policy: %q", out)
	}
	mustCLI(t, d, "resource", "policy", "beamer@example.test", "auto")
	list = mustCLI(t, d, "resource", "list", "example.test")
	want = "beamer@example.test\tequipment\tcapacity 0\tpolicy auto\n" +
		"room1@example.test\troom\tcapacity 8\tpolicy manual\tapprovers alice@example.test\tRoom 1\n"
	if list != want {
		t.Errorf("resource list after policy:\n%q\nwant\n%q", list, want)
	}
}

package ewstest

import (
	"strings"
	"testing"
	"time"
)

func TestLoadSeedAndGenerate(t *testing.T) {
	s := New(Options{})
	seed := `{"users":[{"login":"alice","password":"pw","smtp":"alice@example.test",
		"folders":[{"parent":"inbox","name":"Проекты"},{"parent":"inbox/Проекты","name":"2026"}],
		"generate":{"messages":9,"calendar_items":13,"recurring":12,"contacts":3}}]}`
	if err := s.LoadSeed(strings.NewReader(seed)); err != nil {
		t.Fatal(err)
	}
	mb := s.mailboxes["alice@example.test"]
	count := func(path string) (n, recurring, withExceptions int) {
		f, err := mb.folderByPath(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, it := range mb.itemsIn(f) {
			n++
			if it.cal != nil && it.cal.rule != nil {
				recurring++
				if len(it.cal.modified) == 1 && len(it.cal.deleted) == 1 {
					withExceptions++
				}
			}
		}
		return
	}
	if n, _, _ := count("inbox"); n != 9 {
		t.Fatalf("%d messages", n)
	}
	if n, r, x := count("calendar"); n != 13 || r != 12 || x != 12 {
		t.Fatalf("calendar: %d items, %d series, %d with exceptions", n, r, x)
	}
	if n, _, _ := count("contacts"); n != 3 {
		t.Fatalf("%d contacts", n)
	}
	if _, err := mb.folderByPath("inbox/Проекты/2026"); err != nil {
		t.Fatal(err)
	}
	// The same seed gives the same contents.
	s2 := New(Options{})
	if err := s2.LoadSeed(strings.NewReader(seed)); err != nil {
		t.Fatal(err)
	}
	a, b := s.mailboxes["alice@example.test"], s2.mailboxes["alice@example.test"]
	calendar := func(mb *mailbox) string {
		var out []string
		for _, it := range mb.itemsIn(mb.byDist["calendar"]) {
			out = append(out, it.props.text("Subject")+" "+it.props.text("Start")+" "+dump(it.props.child("Recurrence")))
		}
		return strings.Join(out, "\n")
	}
	if ca, cb := calendar(a), calendar(b); ca != cb || len(a.items) != len(b.items) {
		t.Fatalf("two loads differ:\n%s\n--\n%s", ca, cb)
	}
	if err := s.LoadSeed(strings.NewReader(`{"users":[{"login":"x","smtp":"x@example.test","bogus":1}]}`)); err == nil {
		t.Fatal("unknown seed field accepted")
	}
	if _, err := s.AddMessage("alice@example.test", "nowhere", []byte("Subject: x\r\n\r\n"), false, false, time.Now()); err == nil {
		t.Fatal("message into a missing folder accepted")
	}
}

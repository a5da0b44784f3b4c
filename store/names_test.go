package store

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCleanMailboxName(t *testing.T) {
	ok := map[string]string{
		"INBOX":                                "INBOX",
		"inbox":                                "INBOX",
		"InBoX":                                "INBOX",
		"inbox/Sub":                            "INBOX/Sub",
		"Inbox/a/inbox":                        "INBOX/a/inbox",
		"INBOXES":                              "INBOXES",
		"inboxes/x":                            "inboxes/x",
		"Sent":                                 "Sent",
		"a/b/c":                                "a/b/c",
		"Entwürfe":                             "Entwürfe",
		"with space":                           "with space",
		strings.Repeat("a", MaxMailboxNameLen): strings.Repeat("a", MaxMailboxNameLen),
	}
	for in, want := range ok {
		got, err := CleanMailboxName(in)
		if err != nil || got != want {
			t.Errorf("CleanMailboxName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	bad := []string{
		"", "/", "/a", "a/", "a//b", "a\x00b", "a\rb", "a\nb", "a\tb", "\xff\xfe",
		strings.Repeat("a", MaxMailboxNameLen+1),
	}
	for _, in := range bad {
		if got, err := CleanMailboxName(in); !errors.Is(err, ErrInvalid) {
			t.Errorf("CleanMailboxName(%q) = %q, %v; want ErrInvalid", in, got, err)
		}
	}
}

func FuzzCleanMailboxName(f *testing.F) {
	for _, s := range []string{"INBOX", "inbox/x", "a//b", "/a", "a/", "", "Entwürfe/2024", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		c, err := CleanMailboxName(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		if c2, err := CleanMailboxName(c); err != nil || c2 != c {
			t.Fatalf("CleanMailboxName(%q) = %q, %v; not a fixed point", c, c2, err)
		}
		if len(c) != len(s) || !strings.EqualFold(c, s) || !utf8.ValidString(c) {
			t.Fatalf("CleanMailboxName(%q) = %q changed more than INBOX's case", s, c)
		}
		segs := strings.Split(c, Separator)
		for i, seg := range segs {
			if seg == "" {
				t.Fatalf("CleanMailboxName(%q) = %q has an empty segment", s, c)
			}
			if i > 0 && seg != strings.Split(s, Separator)[i] {
				t.Fatalf("segment %d of %q changed to %q", i, s, seg)
			}
		}
		if strings.EqualFold(segs[0], Inbox) && segs[0] != Inbox {
			t.Fatalf("CleanMailboxName(%q) = %q: INBOX not canonical", s, c)
		}
	})
}

package migration

import (
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

// FuzzParseAllowlist: no panic; an accepted entry is a valid prefix or a
// canonical host name.
func FuzzParseAllowlist(f *testing.F) {
	for _, s := range []string{"10.0.0.0/8", "mail.example.com", "::1", "2001:db8::/32", "*.x", "a..b", "1.2.3.4/99", "ПОЧТА.рф"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := parseAllowlist(strings.Split(s, ","))
		if err != nil {
			return
		}
		for n := range a.names {
			if c, err := canonicalHost(n); err != nil || c != n {
				t.Fatalf("accepted name %q not canonical", n)
			}
		}
	})
}

// FuzzFolderMapping: any source name either is refused or maps to a
// valid target mailbox name.
func FuzzFolderMapping(f *testing.F) {
	for _, s := range []string{"INBOX.Sent", "Проекты/2024/Отчёты", "a..b", "Sent Items/x", "&BB4EQgQ,-", "INBOX"} {
		f.Add(s, "INBOX.", '.')
	}
	f.Fuzz(func(t *testing.T, wire, prefix string, delim rune) {
		name, err := folderName(wire, prefix, delim)
		if err != nil {
			return
		}
		fs := []srcFolder{{Name: name}}
		mapFolders(fs, Job{FolderMap: map[string]string{"Sent Items": "Sent"}}, map[store.SpecialUse]string{store.SpecialSent: "Sent", store.SpecialTrash: "Trash", store.SpecialJunk: "Junk", store.SpecialArchive: "Archive", store.SpecialDrafts: "Drafts"})
		f := fs[0]
		if f.Excluded || f.Err != nil {
			return
		}
		if c, err := store.CleanMailboxName(f.Target); err != nil || c != f.Target {
			t.Fatalf("%q -> %q: invalid target (%v)", wire, f.Target, err)
		}
	})
}

// FuzzMessageIDHash: no panic on any header bytes; the sniffer agrees
// with a direct read.
func FuzzMessageIDHash(f *testing.F) {
	f.Add([]byte("Message-ID: <a@b>\r\n\r\n"))
	f.Add([]byte("message-id:\n <x>\n\nbody"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h := messageIDHash(b)
		var s headerSniffer
		s.reset(strings.NewReader(string(b)))
		buf := make([]byte, 7)
		for {
			if _, err := s.Read(buf); err != nil {
				break
			}
		}
		if len(b) < maxHeaderScan && s.hash() != h {
			t.Fatalf("sniffer %q, direct %q", s.hash(), h)
		}
	})
}

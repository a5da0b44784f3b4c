package migration

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/mailyard/mailyard/store"
)

func TestFolderName(t *testing.T) {
	for _, c := range []struct {
		wire, prefix string
		delim        rune
		want         string
		bad          bool
	}{
		{"Проекты/2024/Отчёты", "", '/', "Проекты/2024/Отчёты", false},
		{"INBOX.Sent", "INBOX.", '.', "Sent", false},
		{"INBOX", "INBOX.", '.', "INBOX", false},
		{"inbox.Archive.2019", "", '.', "INBOX/Archive/2019", false},
		{"a/b.c", "", '.', "a_b/c", false},
		{"flat", "", 0, "flat", false},
		{"a..b", "", '.', "", true},
		{"bad\x01name", "", '/', "", true},
	} {
		got, err := folderName(c.wire, c.prefix, c.delim)
		if (err != nil) != c.bad || (!c.bad && got != c.want) {
			t.Errorf("folderName(%q, %q, %q) = %q, %v; want %q (bad %v)", c.wire, c.prefix, c.delim, got, err, c.want, c.bad)
		}
	}
}

func TestExcluded(t *testing.T) {
	for _, c := range []struct {
		name string
		want bool
	}{
		{"Drafts", true}, {"drafts", true}, {"DRAFTS", false}, {"Drafts/Old", true}, {"Проекты/Drafts", true},
		{"Проекты/Drafts/x", true}, {"Черновики", true}, {"Tasks", true}, {"tasks", false}, {"Draftsman", false},
		{"INBOX", false}, {"Contacts/Work", true},
	} {
		if got := excluded(c.name, DefaultExclude()); got != c.want {
			t.Errorf("excluded(%q) = %v", c.name, got)
		}
	}
	if excluded("Drafts", []string{}) {
		t.Error("empty list excluded something")
	}
	if !excluded("Проекты/2024", []string{"Проекты/2024"}) || excluded("Проекты", []string{"Проекты/2024"}) {
		t.Error("multi-segment entry")
	}
}

func TestMapFolders(t *testing.T) {
	specials := map[store.SpecialUse]string{store.SpecialSent: "Sent", store.SpecialTrash: "Deleted", store.SpecialJunk: "Junk",
		store.SpecialArchive: "Archive", store.SpecialDrafts: "Drafts"}
	folders := []srcFolder{
		{Name: "INBOX"}, {Name: "Входящие"}, {Name: "Sent Items"}, {Name: "Sent Items/2019"}, {Name: "Gesendet", Special: store.SpecialSent},
		{Name: "Gesendet/Alt"}, {Name: "Удалённые"}, {Name: "Junk E-mail"}, {Name: "Нежелательная почта"}, {Name: "Архив"},
		{Name: "Drafts"}, {Name: "Custom/Deep"}, {Name: "Mapped/Child"}, {Name: "Папка"}, {Name: "Spam", Special: store.SpecialJunk},
	}
	job := Job{FolderMap: map[string]string{"Mapped": "Elsewhere", "Spam": "Quarantine"}}
	mapFolders(folders, job, specials)
	want := map[string]string{
		"INBOX": "INBOX", "Входящие": "INBOX", "Sent Items": "Sent", "Sent Items/2019": "Sent/2019", "Gesendet": "Sent",
		"Gesendet/Alt": "Sent/Alt", "Удалённые": "Deleted", "Junk E-mail": "Junk", "Нежелательная почта": "Junk", "Архив": "Archive",
		"Drafts": "", "Custom/Deep": "Custom/Deep", "Mapped/Child": "Elsewhere/Child", "Папка": "Папка", "Spam": "Quarantine",
	}
	for _, f := range folders {
		if f.Target != want[f.Name] || f.Excluded != (want[f.Name] == "") {
			t.Errorf("%q -> %q (excluded %v), want %q", f.Name, f.Target, f.Excluded, want[f.Name])
		}
	}
}

func TestSecretMasked(t *testing.T) {
	const pw = "hunter2-very-secret"
	job := Job{Target: "a@example.com", Credentials: Credentials{Mode: AuthUser, Login: "a", Password: pw}}
	var out strings.Builder
	slog.New(slog.NewJSONHandler(&out, nil)).Info("job", "job", job, "pw", job.Credentials.Password)
	slog.New(slog.NewTextHandler(&out, nil)).Info("job", "job", job, "pw", job.Credentials.Password)
	fmt.Fprintf(&out, "%v %+v %#v %s %q", job, job, job, job.Credentials.Password, job.Credentials.Password)
	b, err := json.Marshal(job)
	if err != nil {
		t.Fatal(err)
	}
	out.Write(b)
	if strings.Contains(out.String(), pw) {
		t.Errorf("password shown:\n%s", out.String())
	}
	if !strings.Contains(out.String(), Mask) {
		t.Errorf("no mask:\n%s", out.String())
	}
	if m := job.Masked(); m.Credentials.Password.Reveal() != Mask || job.Credentials.Password.Reveal() != pw {
		t.Error("Masked")
	}
	// The stored form keeps it sealed (it must log in again).
	s, err := newSealer(testSecretKey)
	if err != nil {
		t.Fatal(err)
	}
	job.Target = "alice@example.com"
	r, err := toJobRecord(job, s)
	if err != nil {
		t.Fatal(err)
	}
	if j, err := r.open(s); err != nil || r.Password != "" || j.Credentials.Password.Reveal() != pw {
		t.Errorf("job record lost the password: %v", err)
	}
	if r.masked().Credentials.Password.Reveal() != Mask {
		t.Error("masked record shows the password")
	}
}

func TestMessageIDHash(t *testing.T) {
	a := messageIDHash([]byte("Subject: x\r\nMessage-ID: <a@b>\r\n\r\nMessage-ID: <body@b>\r\n"))
	b := messageIDHash([]byte("message-id:\r\n   <a@b>  \r\nX: y\r\n\r\n"))
	c := messageIDHash([]byte("Message-Id: <c@b>\n\n"))
	if a == "" || a != b || a == c {
		t.Errorf("hashes %q %q %q", a, b, c)
	}
	if h := messageIDHash([]byte("Subject: none\r\n\r\nMessage-ID: <body@b>\r\n")); h != "" {
		t.Errorf("Message-ID in the body counted: %q", h)
	}
	// The sniffer sees the same header as a direct read, across reads.
	msg := "From: x\r\nMessage-ID: <s@b>\r\n\r\nbody body body"
	var s headerSniffer
	s.reset(strings.NewReader(msg))
	buf := make([]byte, 3)
	for {
		if _, err := s.Read(buf); err != nil {
			break
		}
	}
	direct, err := readHeaderHash(strings.NewReader(msg))
	if err != nil || s.hash() != direct || direct != messageIDHash([]byte("Message-ID: <s@b>\r\n\r\n")) {
		t.Errorf("sniffer %q, direct %q, %v", s.hash(), direct, err)
	}
}

// The package's default lists are handed out as copies: a caller editing
// its slice changes neither the next caller's list nor the folders a job
// without Exclude leaves out.
func TestDefaultListsAreCopies(t *testing.T) {
	for name, list := range map[string]func() []string{"DefaultExclude": DefaultExclude, "CSVColumns": CSVColumns} {
		want := list()
		got := list()
		for i := range got {
			got[i] = "changed"
		}
		if again := list(); !slices.Equal(again, want) {
			t.Errorf("%s after a caller edited its copy = %q, want %q", name, again, want)
		}
	}
	folders := []srcFolder{{Wire: "Drafts", Name: "Drafts"}, {Wire: "changed", Name: "changed"}}
	mapFolders(folders, Job{}, nil)
	if !folders[0].Excluded || folders[1].Excluded {
		t.Errorf("default exclusions after callers edited their copies: %+v", folders)
	}
}

// The Message-ID hash is the one kept in checkpoints before the header
// was scanned by msgheader: a line of CRs still ends the header, and a
// CR inside a folded value is kept.
func TestMessageIDHashStable(t *testing.T) {
	if h := messageIDHash([]byte("Subject: x\r\n\r\r\nMessage-ID: <a@b>\r\n\r\n")); h != "" {
		t.Errorf("Message-ID after a line of CRs: %q", h)
	}
	if a, b := messageIDHash([]byte("Message-ID: <a\r@b>\r\n\r\n")), messageIDHash([]byte("Message-ID: <a@b>\r\n\r\n")); a == b {
		t.Error("a CR inside the value was dropped")
	}
}

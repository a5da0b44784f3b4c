package ews_test

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration/ews"
)

// attachICS is an event with the given ATTACH lines (name=content as
// inline binary, or a URI).
func attachICS(summary string, files ...string) string {
	var atts strings.Builder
	for _, f := range files {
		if strings.HasPrefix(f, "https:") {
			atts.WriteString("ATTACH:" + f + "\n")
			continue
		}
		name, content, _ := strings.Cut(f, "=")
		atts.WriteString("ATTACH;ENCODING=BASE64;VALUE=BINARY;FMTTYPE=text/plain;X-FILENAME=" + name + ":" +
			base64.StdEncoding.EncodeToString([]byte(content)) + "\n")
	}
	return `BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//test//EN
BEGIN:VEVENT
UID:files-1@example.com
DTSTAMP:20270101T000000Z
DTSTART:20270301T090000Z
DTEND:20270301T100000Z
SUMMARY:` + summary + `
` + atts.String() + `END:VEVENT
END:VCALENDAR`
}

// exchangeFiles is the file attachments of the Exchange item of
// subject, as name=content, sorted.
func (e *twoWayEnv) exchangeFiles(t *testing.T, subject string) []string {
	t.Helper()
	ci := e.exchange(t)[subject]
	if ci == nil {
		t.Fatalf("no Exchange item %q: %v", subject, keysOf(e.exchange(t)))
	}
	if ci.Attachments == nil {
		return nil
	}
	var ids []string
	for _, a := range ci.Attachments.File {
		ids = append(ids, a.AttachmentID.ID)
	}
	got, err := e.mb.GetAttachment(t.Context(), ids...)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range got {
		out = append(out, a.Name+"="+string(a.Content))
	}
	slices.Sort(out)
	return out
}

// storeFiles is the inline ATTACH properties of the Mailyard event of
// summary, as name=content, sorted.
func (e *twoWayEnv) storeFiles(t *testing.T, summary string) []string {
	t.Helper()
	o, ok := e.events(t)[summary]
	if !ok {
		t.Fatalf("no Mailyard event %q: %v", summary, keysOf(e.events(t)))
	}
	parsed, err := calendar.Parse(o.Data, calendar.Limits{MaxSize: len(o.Data) + 1})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, a := range parsed.Calendar().Events()[0].Props.Values(ical.PropAttach) {
		if data, err := a.Binary(); err == nil {
			out = append(out, a.Params.Get("X-FILENAME")+"="+string(data))
		}
	}
	slices.Sort(out)
	return out
}

// TestTwoWayAttachments: a file attached to an event in Mailyard
// reaches Exchange by CreateAttachment, one removed there is deleted by
// DeleteAttachment, one added in Exchange reaches Mailyard; an
// Exchange file over MaxAttachmentSize (never in Mailyard) stays there
// and an ATTACH by URI is not sent; the sync's own attachment writes do
// not come back. Regression: the sync sent no attachment to
// Exchange.
func TestTwoWayAttachments(t *testing.T) {
	e := newTwoWayEnv(t)
	ctx := t.Context()
	s, err := ews.NewSyncer(ews.SyncerOptions{Store: e.st, Directory: e.users, Client: e.client, Access: twoWay,
		MaxAttachmentSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	job := ews.Job{Target: targetAddr, Mailbox: owner}
	once := func(what string) ews.CycleReport {
		t.Helper()
		r := s.SyncOnce(ctx, job)
		if r.Err != nil {
			t.Fatalf("%s: %v", what, r.Err)
		}
		return r
	}
	once("first pass")

	// Made in Mailyard with a file and a link.
	obj := e.putData(t, "files.ics", "files-1@example.com", attachICS("files", "agenda.txt=the agenda", "https://example.com/slides.pdf"))
	if r := once("push"); r.Pushed != 1 {
		t.Fatalf("push: %+v", r)
	}
	if got := e.exchangeFiles(t, "files"); !slices.Equal(got, []string{"agenda.txt=the agenda"}) {
		t.Fatalf("Exchange's files after the push: %q", got)
	}
	if r := once("settle"); r.Pulled+r.Pushed != 0 {
		t.Errorf("the push came back: %+v", r)
	}

	// Added in Exchange: a small file, and one over MaxAttachmentSize.
	id := e.exchange(t)["files"].ItemID
	if _, _, err := e.mb.CreateAttachment(ctx, ews.ItemID{ID: id.ID}, ews.FileAttachment{Name: "minutes.txt", Content: []byte("the minutes")},
		ews.FileAttachment{Name: "big.bin", Content: bytes.Repeat([]byte{'b'}, 500)}); err != nil {
		t.Fatal(err)
	}
	if r := once("pull"); r.Pulled != 1 {
		t.Fatalf("pull: %+v", r)
	}
	if got := e.storeFiles(t, "files"); !slices.Equal(got, []string{"agenda.txt=the agenda", "minutes.txt=the minutes"}) {
		t.Fatalf("Mailyard's files after the pull: %q", got)
	}

	// Removed and added in Mailyard.
	obj = e.putData(t, obj.Name, obj.UID, attachICS("files", "minutes.txt=the minutes", "notes.txt=new notes"))
	if r := once("second push"); r.Pushed != 1 {
		t.Fatalf("second push: %+v", r)
	}
	want := []string{"big.bin=" + strings.Repeat("b", 500), "minutes.txt=the minutes", "notes.txt=new notes"}
	if got := e.exchangeFiles(t, "files"); !slices.Equal(got, want) {
		t.Fatalf("Exchange's files after the second push:\n got %q\nwant %q", got, want)
	}
	ck := e.exchange(t)["files"].ItemID.ChangeKey
	for i := range 2 {
		if r := once("settle"); r.Pulled+r.Pushed+r.Conflicts != 0 {
			t.Errorf("pass %d after the second push wrote: %+v", i, r)
		}
	}
	if got := e.exchange(t)["files"].ItemID.ChangeKey; got != ck {
		t.Errorf("the Exchange item changed with nobody editing")
	}
	if got := e.storeFiles(t, "files"); !slices.Equal(got, []string{"minutes.txt=the minutes", "notes.txt=new notes"}) {
		t.Errorf("Mailyard's files at the end: %q", got)
	}
}

package ews_test

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
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
		atts.WriteString(attachLine(f))
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

// attachLine is an inline binary ATTACH of file name=content.
func attachLine(file string) string {
	name, content, _ := strings.Cut(file, "=")
	return "ATTACH;ENCODING=BASE64;VALUE=BINARY;FMTTYPE=text/plain;X-FILENAME=" + name + ":" +
		base64.StdEncoding.EncodeToString([]byte(content)) + "\n"
}

// exchangeFiles is the file attachments of the Exchange item of
// subject, as name=content, sorted.
func (e *twoWayEnv) exchangeFiles(t *testing.T, subject string) []string {
	t.Helper()
	ci := e.exchange(t)[subject]
	if ci == nil {
		t.Fatalf("no Exchange item %q: %v", subject, keysOf(e.exchange(t)))
	}
	return e.files(t, ci.Attachments)
}

// files reads the file attachments listed, as name=content, sorted.
func (e *twoWayEnv) files(t *testing.T, atts *ews.Attachments) []string {
	t.Helper()
	if atts == nil || len(atts.File) == 0 {
		return nil
	}
	var ids []string
	for _, a := range atts.File {
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

// occurrenceFiles is the file attachments of each modified occurrence
// of the Exchange series of subject, by the occurrence's subject.
func (e *twoWayEnv) occurrenceFiles(t *testing.T, subject string) map[string][]string {
	t.Helper()
	ci := e.exchange(t)[subject]
	if ci == nil {
		t.Fatalf("no Exchange item %q: %v", subject, keysOf(e.exchange(t)))
	}
	out := map[string][]string{}
	if ci.ModifiedOccurrences == nil {
		return out
	}
	var ids []ews.ItemID
	for _, o := range ci.ModifiedOccurrences.Occurrence {
		ids = append(ids, *o.ItemID)
	}
	var occs []*ews.CalendarItem
	err := e.mb.GetItem(t.Context(), ids, ews.ShapeAttachments, func(it ews.Item) error {
		if it.Err == nil {
			occs = append(occs, it.CalendarItem)
		}
		return it.Err
	})
	if err != nil {
		t.Fatal(err)
	}
	subjects := map[string]string{}
	if err := e.mb.GetItem(t.Context(), ids, ews.ShapeCalendar, func(it ews.Item) error {
		subjects[it.ID.ID] = it.CalendarItem.Subject
		return it.Err
	}); err != nil {
		t.Fatal(err)
	}
	for i, o := range occs {
		out[subjects[ids[i].ID]] = e.files(t, o.Attachments)
	}
	return out
}

// passes returns a function running one pass of s on the target that
// fails the test when the pass fails.
func (e *twoWayEnv) passes(t *testing.T, s *ews.Syncer) func(what string) ews.CycleReport {
	job := ews.Job{Target: targetAddr, Mailbox: owner}
	return func(what string) ews.CycleReport {
		t.Helper()
		r := s.SyncOnce(t.Context(), job)
		if r.Err != nil {
			t.Fatalf("%s: %v", what, r.Err)
		}
		return r
	}
}

// attachSyncer is a two-way syncer that mirrors files up to 100 bytes.
func (e *twoWayEnv) attachSyncer(t *testing.T) *ews.Syncer {
	t.Helper()
	s, err := ews.NewSyncer(ews.SyncerOptions{Store: e.st, Directory: e.users, Client: e.client, Access: twoWay,
		MaxAttachmentSize: 100})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// storeFiles is the inline ATTACH properties of the Mailyard event of
// summary, as name=content, sorted.
func (e *twoWayEnv) storeFiles(t *testing.T, summary string) []string {
	t.Helper()
	o, ok := e.events(t)[summary]
	if !ok {
		t.Fatalf("no Mailyard event %q: %v", summary, keysOf(e.events(t)))
	}
	return componentFiles(t, o, "")
}

// componentFiles is the inline ATTACH properties of the VEVENT of o
// whose SUMMARY is summary ("": the first), as name=content, sorted.
func componentFiles(t *testing.T, o store.Object, summary string) []string {
	t.Helper()
	parsed, err := calendar.Parse(o.Data, calendar.Limits{MaxSize: len(o.Data) + 1})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for i, ev := range parsed.Calendar().Events() {
		if s, _ := ev.Props.Text(ical.PropSummary); summary == "" && i > 0 || summary != "" && s != summary {
			continue
		}
		for _, a := range ev.Props.Values(ical.PropAttach) {
			if data, err := a.Binary(); err == nil {
				out = append(out, a.Params.Get("X-FILENAME")+"="+string(data))
			}
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
	once := e.passes(t, e.attachSyncer(t))
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

// TestTwoWayOccurrenceAttachments: a file attached to an overridden
// instance of a series made in Mailyard reaches the modified occurrence
// in Exchange (CreateAttachment on the occurrence's ItemId, not on the
// series), stays in Mailyard's overriding VEVENT, is deleted in
// Exchange when removed in Mailyard, and no pass after either writes
// anything (no edit loop). Regression: the occurrence's files never
// reached Exchange.
func TestTwoWayOccurrenceAttachments(t *testing.T) {
	e := newTwoWayEnv(t)
	once := e.passes(t, e.attachSyncer(t))
	once("first pass")
	plain := seriesICS("20270329T100000", "20270329T140000", "20270329T150000", "20270412T100000")
	withFile := strings.Replace(plain, "LOCATION:Room 2\n", "LOCATION:Room 2\n"+attachLine("slides.txt=the slides"), 1)
	obj := e.putData(t, "series.ics", "series-1@example.com", withFile)
	if r := once("push"); r.Pushed != 1 {
		t.Fatalf("push: %+v", r)
	}
	if got := e.occurrenceFiles(t, "weekly"); !slices.Equal(got["moved"], []string{"slides.txt=the slides"}) {
		t.Fatalf("the occurrence's files in Exchange: %q", got)
	}
	if got := e.exchangeFiles(t, "weekly"); len(got) != 0 {
		t.Errorf("the occurrence's file went to the series: %q", got)
	}
	settle := func(phase string) {
		t.Helper()
		ck := e.exchange(t)["weekly"].ItemID.ChangeKey
		for i := range 2 {
			if r := once(phase); r.Pulled+r.Pushed+r.Conflicts+r.Deleted != 0 {
				t.Errorf("%s: pass %d wrote: %+v", phase, i, r)
			}
		}
		if got := e.exchange(t)["weekly"].ItemID.ChangeKey; got != ck {
			t.Errorf("%s: the Exchange series changed with nobody editing", phase)
		}
	}
	settle("after the push")
	if got := componentFiles(t, e.events(t)["weekly"], "moved"); !slices.Equal(got, []string{"slides.txt=the slides"}) {
		t.Errorf("Mailyard's override lost its file: %q", got)
	}

	// The series edited in Mailyard, its files not: the update sets the
	// pattern again, which drops the exceptions in Exchange, and the
	// occurrence gets its file again.
	e.putData(t, obj.Name, obj.UID, strings.Replace(withFile, "LOCATION:Room 2", "LOCATION:Room 3", 1))
	if r := once("edit"); r.Pushed != 1 {
		t.Fatalf("edit: %+v", r)
	}
	if got := e.occurrenceFiles(t, "weekly"); !slices.Equal(got["moved"], []string{"slides.txt=the slides"}) {
		t.Fatalf("the occurrence's files in Exchange after an edit of the series: %q", got)
	}
	settle("after the edit")

	// Removed in Mailyard: deleted from the occurrence in Exchange.
	e.putData(t, obj.Name, obj.UID, plain)
	if r := once("second push"); r.Pushed != 1 {
		t.Fatalf("second push: %+v", r)
	}
	if got := e.occurrenceFiles(t, "weekly"); len(got["moved"]) != 0 || len(got) != 1 {
		t.Errorf("the occurrence's files after the removal: %q", got)
	}
	settle("after the removal")
	if got := componentFiles(t, e.events(t)["weekly"], "moved"); len(got) != 0 {
		t.Errorf("Mailyard's override after the removal: %q", got)
	}
}

// TestTwoWayPushCalls: an event pushed to Exchange, created and then
// edited, costs its CreateItem and its UpdateItem and no GetItem: the
// ChangeKey the link keeps is the one CreateItem's and UpdateItem's
// responses carry, the files known unchanged are not listed again, and
// the pushed event coming back in SyncFolderItems is recognised by the
// ChangeKey the change names without being fetched; a pass with no
// change makes no GetItem either (an empty ItemIds is a schema error in
// Exchange). Regression: each pushed event cost a GetItem of its
// attachments, and another when it came back.
func TestTwoWayPushCalls(t *testing.T) {
	e := newTwoWayEnv(t)
	once := e.passes(t, e.syncer(t, twoWay, nil))
	once("first pass")
	calls := func() (get, create, update int) {
		return e.srv.ews.Calls("GetItem"), e.srv.ews.Calls("CreateItem"), e.srv.ews.Calls("UpdateItem")
	}
	g0, c0, u0 := calls()
	start := time.Date(2027, 5, 3, 9, 0, 0, 0, time.UTC)
	e.put(t, "calls.ics", "calls-1@example.com", "pushed", start)
	if r := once("create"); r.Pushed != 1 {
		t.Fatalf("create: %+v", r)
	}
	once("settle")
	e.put(t, "calls.ics", "calls-1@example.com", "pushed and edited", start.Add(time.Hour))
	if r := once("edit"); r.Pushed != 1 {
		t.Fatalf("edit: %+v", r)
	}
	if r := once("settle"); r.Pulled+r.Pushed != 0 {
		t.Errorf("the edit came back: %+v", r)
	}
	g, c, u := calls()
	if g-g0 != 0 || c-c0 != 1 || u-u0 != 1 {
		t.Errorf("a create, an edit and two passes with nothing new cost %d GetItem, %d CreateItem, %d UpdateItem; want 0, 1, 1", g-g0, c-c0, u-u0)
	}
	if ci := e.exchange(t)["pushed and edited"]; ci == nil || !ci.Start.Equal(start.Add(time.Hour)) {
		t.Errorf("Exchange does not have the edit: %v", keysOf(e.exchange(t)))
	}
}

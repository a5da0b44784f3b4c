package ews_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-ical"

	"github.com/mailyard/mailyard/internal/calendar"
	"github.com/mailyard/mailyard/internal/ewstest"
	"github.com/mailyard/mailyard/migration/ews"
	"github.com/mailyard/mailyard/store"
)

// logRecords keeps the messages and attributes logged through it.
type logRecords struct {
	mu   sync.Mutex
	recs []string
}

func (l *logRecords) Enabled(context.Context, slog.Level) bool { return true }
func (l *logRecords) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.Key + "=" + a.Value.String())
		return true
	})
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, b.String())
	return nil
}
func (l *logRecords) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logRecords) WithGroup(string) slog.Handler      { return l }

func (l *logRecords) matching(sub string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs {
		if strings.Contains(r, sub) {
			out = append(out, r)
		}
	}
	return out
}

func fileAttachment(name, ct string, data []byte) string {
	return `<FileAttachment><Name>` + name + `</Name><ContentType>` + ct + `</ContentType><Content>` +
		base64.StdEncoding.EncodeToString(data) + `</Content></FileAttachment>`
}

// TestCalendarAttachments: the file attachments of a calendar item
// within MaxAttachmentSize each and MaxEventAttachments together are in
// its event as inline binary ATTACH properties (RFC 5545 §3.8.1.1) with
// FMTTYPE and X-FILENAME; one over either limit and an item attachment
// are left out, each logged with its reason and counted. Regression:
// attachments were not migrated at all.
func TestCalendarAttachments(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	agenda := bytes.Repeat([]byte("agenda\x00\xff"), 125) // 1000 bytes
	big := bytes.Repeat([]byte{'b'}, 5000)
	notes := bytes.Repeat([]byte{'n'}, 3000)
	_, err := srv.ews.AddItem(owner, "calendar", `<CalendarItem><Subject>With files</Subject><Attachments>`+
		fileAttachment("agenda; v2.pdf", "application/pdf", agenda)+
		fileAttachment("big.bin", "application/octet-stream", big)+
		fileAttachment("notes.txt", "text/plain", notes)+
		`<ItemAttachment><Name>Forwarded</Name><Message><Subject>Forwarded</Subject></Message></ItemAttachment>`+
		`</Attachments><Start>2026-06-01T09:00:00Z</Start><End>2026-06-01T10:00:00Z</End><StartTimeZone Id="UTC"/></CalendarItem>`)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := srv.ews.AddItem(owner, "calendar", `<CalendarItem><Subject>Plain</Subject><Start>2026-06-02T09:00:00Z</Start><End>2026-06-02T10:00:00Z</End></CalendarItem>`); err != nil {
		t.Fatal(err)
	}
	st, dir, account := newTarget(t)
	logs := &logRecords{}
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: dir, Client: srv.client(t, nil),
		MaxAttachmentSize: 4000, MaxEventAttachments: 3500, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Sync(t.Context(), testJob)
	if err != nil {
		t.Fatal(err)
	}
	if res.Events != 2 || res.Attachments != 1 || res.AttachmentsSkipped != 3 {
		t.Errorf("pass: %d events, %d attachments copied, %d skipped; want 2, 1, 3", res.Events, res.Attachments, res.AttachmentsSkipped)
	}
	for _, want := range []string{"attachment=big.bin size=5000 reason=larger than MaxAttachmentSize",
		"attachment=notes.txt size=3000 reason=the event's attachments would exceed MaxEventAttachments",
		"attachment=Forwarded size=", "reason=an item attachment"} {
		if len(logs.matching(want)) != 1 {
			t.Errorf("no one log line with %q in %q", want, logs.matching("attachment"))
		}
	}
	colls, err := st.ListCollections(t.Context(), account, store.KindCalendar)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := st.QueryObjects(t.Context(), colls[0].ID, store.ObjectQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var attached []ical.Prop
	for _, o := range objs {
		parsed, err := calendar.Parse(o.Data, calendar.Limits{MaxSize: len(o.Data) + 1})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range parsed.Calendar().Events() {
			attached = append(attached, ev.Props.Values(ical.PropAttach)...)
		}
	}
	if len(attached) != 1 {
		t.Fatalf("%d ATTACH properties, want 1", len(attached))
	}
	a := attached[0]
	data, err := a.Binary()
	if err != nil || !bytes.Equal(data, agenda) {
		t.Errorf("ATTACH content: %v (%d bytes)", err, len(data))
	}
	if a.Params.Get(ical.ParamEncoding) != "BASE64" || a.Params.Get(ical.ParamFormatType) != "application/pdf" ||
		a.Params.Get("X-FILENAME") != "agenda; v2.pdf" {
		t.Errorf("ATTACH parameters: %v", a.Params)
	}

	// A second pass copies nothing again.
	res, err = m.Sync(t.Context(), testJob)
	if err != nil || res.Events != 0 || res.Attachments != 0 {
		t.Errorf("second pass: %+v %v", res, err)
	}
}

// eventAttachNames lists, for each VEVENT of the target's calendar
// objects, its RECURRENCE-ID (or "master") and the X-FILENAME and
// content of its ATTACH properties.
func eventAttachNames(t *testing.T, st store.Store, account string) map[string][]string {
	t.Helper()
	colls, err := st.ListCollections(t.Context(), account, store.KindCalendar)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, c := range colls {
		objs, err := st.QueryObjects(t.Context(), c.ID, store.ObjectQuery{})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs {
			parsed, err := calendar.Parse(o.Data, calendar.Limits{MaxSize: len(o.Data) + 1})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range parsed.Calendar().Events() {
				key := "master"
				if rid := ev.Props.Get(ical.PropRecurrenceID); rid != nil {
					key = rid.Value
				}
				for _, a := range ev.Props.Values(ical.PropAttach) {
					data, _ := a.Binary()
					out[key] = append(out[key], a.Params.Get("X-FILENAME")+"="+string(data))
				}
			}
		}
	}
	return out
}

// TestOccurrenceAttachmentsMigrated: a modified occurrence with its own
// attachments (in Exchange an exception has its own attachment table)
// gets them in its overriding VEVENT; the master's stay in the master;
// MaxEventAttachments bounds the whole series. Regression: the
// exceptions' attachments were not read at all.
func TestOccurrenceAttachmentsMigrated(t *testing.T) {
	srv := newTestServer(t, ewstest.Options{})
	rec := `<Recurrence><DailyRecurrence><Interval>1</Interval></DailyRecurrence><NumberedRecurrence><StartDate>2026-06-01</StartDate><NumberOfOccurrences>4</NumberOfOccurrences></NumberedRecurrence></Recurrence>`
	id, err := srv.ews.AddItem(owner, "calendar", `<CalendarItem><Subject>Daily</Subject><Attachments>`+
		fileAttachment("series.txt", "text/plain", []byte("for every day"))+`</Attachments>`+
		`<Start>2026-06-01T09:00:00Z</Start><End>2026-06-01T10:00:00Z</End>`+rec+`<StartTimeZone Id="UTC"/><EndTimeZone Id="UTC"/></CalendarItem>`)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	mb := srv.client(t, nil).Mailbox(owner)
	// The second and third occurrences get files of their own.
	for i, file := range []string{"day2.txt", "day3.bin"} {
		if _, err := mb.UpdateOccurrence(ctx, id, i+2, ews.CalendarItem{Subject: "Daily " + file}); err != nil {
			t.Fatal(err)
		}
	}
	var occs []ews.Occurrence
	if err := mb.GetItem(ctx, []ews.ItemID{{ID: id}}, ews.ShapeCalendar, func(it ews.Item) error {
		occs = it.CalendarItem.ModifiedOccurrences.Occurrence
		return it.Err
	}); err != nil {
		t.Fatal(err)
	}
	if len(occs) != 2 {
		t.Fatalf("%d modified occurrences", len(occs))
	}
	if _, _, err := mb.CreateAttachment(ctx, *occs[0].ItemID, ews.FileAttachment{Name: "day2.txt", ContentType: "text/plain", Content: []byte("second day")}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := mb.CreateAttachment(ctx, *occs[1].ItemID, ews.FileAttachment{Name: "day3.bin", Content: bytes.Repeat([]byte{'3'}, 100)}); err != nil {
		t.Fatal(err)
	}

	st, dir, account := newTarget(t)
	logs := &logRecords{}
	// Room for the master's file (13 bytes), the second day's copy of
	// it and its own (10), not for the third day's own 100 bytes.
	m, err := ews.NewMigrator(ews.MigratorOptions{Store: st, Directory: dir, Client: srv.client(t, nil),
		MaxAttachmentSize: 1000, MaxEventAttachments: 13*3 + 10, Logger: slog.New(logs)})
	if err != nil {
		t.Fatal(err)
	}
	res, err := m.Sync(ctx, testJob)
	if err != nil {
		t.Fatal(err)
	}
	rid := func(i int) string { return time.Date(2026, 6, i, 9, 0, 0, 0, time.UTC).Format("20060102T150405Z") }
	got := eventAttachNames(t, st, account)
	want := map[string][]string{
		"master": {"series.txt=for every day"},
		rid(2):   {"series.txt=for every day", "day2.txt=second day"},
		rid(3):   {"series.txt=for every day"},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ATTACH by VEVENT:\n got %q\nwant %q", got, want)
	}
	if res.Attachments != 4 || res.AttachmentsSkipped != 1 || len(logs.matching("attachment=day3.bin size=100 reason=the event's attachments would exceed")) != 1 {
		t.Errorf("%d copied, %d skipped; want 4, 1; log %q", res.Attachments, res.AttachmentsSkipped, logs.matching("attachment"))
	}
}

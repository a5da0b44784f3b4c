package ews_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"log/slog"
	"strings"
	"sync"
	"testing"

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

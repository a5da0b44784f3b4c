package report

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"io"
	"mime"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-message/mail"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/mailyard/mailyard/migration"
)

// sampleReport is a report with a mailbox with folders (one excluded, one
// with a hostile name), one with an error and one without a collector.
func sampleReport() migration.Report {
	sync := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
	inbox := migration.FolderReport{Source: "INBOX", Target: "INBOX", LastSync: sync,
		Counts: migration.Counts{SourceMessages: 10, SourceBytes: 10_000, TargetMessages: 10, TargetBytes: 10_000}}
	evil := migration.FolderReport{Source: `=HYPERLINK("x")<script>alert(1)</script>`, Target: "Evil", LastSync: sync,
		Counts: migration.Counts{SourceMessages: 3, SourceBytes: 3000, TargetMessages: 1, TargetBytes: 1000, SkippedTooLarge: 1}}
	drafts := migration.FolderReport{Source: "Drafts", Excluded: true, LastSync: sync,
		Counts: migration.Counts{SourceMessages: 4, SourceBytes: 400, SkippedExcluded: 4}}
	a := migration.MailboxReport{Target: "alice@example.com", State: migration.StateOK, LastSync: sync, Passes: 2,
		Protocol: "IMAP", Source: "imap.old.example:993", Message: "copied 3 messages (3.0 KiB) in 3 folders",
		Folders: []migration.FolderReport{inbox, evil, drafts}}
	// The sums of the three folders, as Migrator.Report adds them up.
	a.Counts = migration.Counts{SourceMessages: 17, SourceBytes: 13_400, TargetMessages: 11, TargetBytes: 11_000,
		SkippedExcluded: 4, SkippedTooLarge: 1}
	b := migration.MailboxReport{Target: "bob@example.com", State: migration.StateError, LastError: "LOGIN failed", ErrorClass: migration.ErrClassAuth}
	c := migration.MailboxReport{Target: "carol@example.com", Message: "no collector"}
	d := migration.MailboxReport{Target: "dave@example.com", State: migration.StateOK, LastSync: sync, Passes: 3,
		Protocol: "EWS", Source: "https://mail.example.com/EWS/Exchange.asmx", Message: "-copied 7 messages (7.0 KiB) in 2 folders, 1 events, 0 contacts"}
	r := migration.Report{Generated: sync.Add(time.Hour), Domain: "example.com", Mailboxes: []migration.MailboxReport{a, b, c, d}}
	r.Totals = a.Counts // bob, carol and dave have no counts
	return r
}

func TestWriteCSV(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	require.NoError(t, WriteCSV(&buf, r))
	assert.Contains(t, buf.String(), "\r\n", "RFC 4180 line ends")
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	require.Len(t, rows, 1+3+1+1+1, "header, 3 folders, 3 mailboxes without folders")
	assert.Equal(t, CSVHeader(), rows[0])
	assert.Equal(t, []string{"mailbox", "state", "source_folder", "target_folder", "excluded",
		"source_messages", "source_bytes", "target_messages", "target_bytes",
		"skipped_excluded", "skipped_too_large", "failed", "last_sync", "last_error"}, rows[0][:14], "the first columns keep their order")
	col := func(row []string, name string) string {
		for i, h := range CSVHeader() {
			if h == name {
				return row[i]
			}
		}
		t.Fatalf("no column %s", name)
		return ""
	}
	assert.Equal(t, "alice@example.com", col(rows[1], "mailbox"))
	assert.Equal(t, "INBOX", col(rows[1], "source_folder"))
	assert.Equal(t, "10000", col(rows[1], "source_bytes"))
	assert.Equal(t, "2026-03-04T05:06:07Z", col(rows[1], "last_sync"))
	assert.Equal(t, `'=HYPERLINK("x")<script>alert(1)</script>`, col(rows[2], "source_folder"), "formula defused")
	assert.Equal(t, "1", col(rows[2], "skipped_too_large"))
	assert.Equal(t, "true", col(rows[3], "excluded"))
	assert.Equal(t, "4", col(rows[3], "skipped_excluded"))
	assert.Equal(t, "error", col(rows[4], "state"))
	assert.Equal(t, "LOGIN failed", col(rows[4], "last_error"))
	assert.Equal(t, "", col(rows[4], "source_folder"))
	assert.Equal(t, "", col(rows[5], "state"), "no collector")
	assert.Equal(t, "", col(rows[5], "protocol"))
	assert.Equal(t, "0", col(rows[5], "passes"))
	for _, row := range rows[1:4] {
		assert.Equal(t, "IMAP", col(row, "protocol"), "mailbox columns on every folder row")
		assert.Equal(t, "imap.old.example:993", col(row, "source"))
		assert.Equal(t, "2", col(row, "passes"))
		assert.Equal(t, "copied 3 messages (3.0 KiB) in 3 folders", col(row, "message"))
	}
	assert.Equal(t, "dave@example.com", col(rows[6], "mailbox"))
	assert.Equal(t, "EWS", col(rows[6], "protocol"))
	assert.Equal(t, "https://mail.example.com/EWS/Exchange.asmx", col(rows[6], "source"))
	assert.Equal(t, "3", col(rows[6], "passes"))
	assert.Equal(t, "2026-03-04T05:06:07Z", col(rows[6], "last_sync"))
	assert.Equal(t, "'-copied 7 messages (7.0 KiB) in 2 folders, 1 events, 0 contacts", col(rows[6], "message"), "formula defused")
}

func TestWriteHTML(t *testing.T) {
	r := sampleReport()
	var buf bytes.Buffer
	require.NoError(t, WriteHTML(&buf, r))
	page := buf.String()
	assert.True(t, strings.HasPrefix(page, "<!DOCTYPE html>"))
	assert.NotContains(t, page, "<script>", "folder names are escaped")
	assert.Contains(t, page, "&lt;script&gt;alert(1)&lt;/script&gt;")
	assert.Contains(t, page, "alice@example.com")
	assert.Contains(t, page, "LOGIN failed")
	assert.Contains(t, page, "no collector")
	assert.Contains(t, page, "source: EWS https://mail.example.com/EWS/Exchange.asmx; last successful sync: 2026-03-04 05:06:07 UTC; passes: 3.")
	assert.Contains(t, page, "(excluded)")
	assert.Contains(t, page, "9.8 KiB", "sizes readable")
	assert.Contains(t, page, `class="short"`, "a folder with fewer messages on the target is marked")
}

func TestSummary(t *testing.T) {
	s := Summary(sampleReport())
	assert.Contains(t, s, "Migration report for example.com")
	assert.Contains(t, s, "Mailboxes: 4 (ok 2, with errors 1")
	assert.Contains(t, s, "without collector 1")
	assert.Contains(t, s, "Source: 17 messages")
	assert.Contains(t, s, "bob@example.com: auth: LOGIN failed")
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1024: "1.0 KiB", 1536: "1.5 KiB", 5 << 20: "5.0 MiB", 3 << 30: "3.0 GiB"} {
		assert.Equal(t, want, FormatBytes(n), "%d", n)
	}
}

// recordingMailer keeps what it is asked to send.
type recordingMailer struct {
	from string
	to   []string
	msg  []byte
	err  error
}

func (m *recordingMailer) SendMail(_ context.Context, from string, to []string, msg io.Reader) error {
	if m.err != nil {
		return m.err
	}
	b, err := io.ReadAll(msg)
	m.from, m.to, m.msg = from, to, b
	return err
}

func TestSend(t *testing.T) {
	r := sampleReport()
	var rm recordingMailer
	require.NoError(t, Send(context.Background(), &rm, r, "migration@example.com", "admin@example.com"))
	assert.Equal(t, "migration@example.com", rm.from)
	assert.Equal(t, []string{"admin@example.com"}, rm.to)

	mr, err := mail.CreateReader(bytes.NewReader(rm.msg))
	require.NoError(t, err)
	h := mr.Header
	date, err := h.Date()
	require.NoError(t, err)
	assert.WithinDuration(t, time.Now(), date, time.Minute)
	id, err := h.MessageID()
	require.NoError(t, err)
	assert.True(t, strings.HasSuffix(id, "@example.com"), "Message-ID %q", id)
	subj, err := h.Subject()
	require.NoError(t, err)
	assert.Equal(t, "Migration report: example.com", subj)
	from, err := h.AddressList("From")
	require.NoError(t, err)
	require.Len(t, from, 1)
	assert.Equal(t, "migration@example.com", from[0].Address)
	ct, _, err := mime.ParseMediaType(h.Get("Content-Type"))
	require.NoError(t, err)
	assert.Equal(t, "multipart/mixed", ct)

	var text, html, csvBody string
	var csvName string
	for {
		p, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p.Body)
		require.NoError(t, err)
		switch ph := p.Header.(type) {
		case *mail.InlineHeader:
			ct, _, _ := ph.ContentType()
			switch ct {
			case "text/plain":
				text = string(body)
			case "text/html":
				html = string(body)
			}
		case *mail.AttachmentHeader:
			csvName, _ = ph.Filename()
			csvBody = string(body)
		}
	}
	assert.Contains(t, text, "Mailboxes: 4")
	assert.Contains(t, html, "&lt;script&gt;")
	assert.Equal(t, "migration-report-example.com-20260304-060607.csv", csvName)
	var want bytes.Buffer
	require.NoError(t, WriteCSV(&want, r))
	assert.Equal(t, want.String(), csvBody, "the attachment is the CSV report")
}

func TestSendErrors(t *testing.T) {
	r := sampleReport()
	rm := recordingMailer{err: errors.New("554 rejected")}
	err := Send(context.Background(), &rm, r, "migration@example.com", "admin@example.com")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "554 rejected")

	rm.err = nil
	require.Error(t, Send(context.Background(), &rm, r, "not an address", "admin@example.com"))
	require.Error(t, Send(context.Background(), &rm, r, "migration@example.com", "admin@example.com\r\nBcc: x@evil.example"))
	assert.Nil(t, rm.msg, "nothing sent for bad addresses")
}

// The CSV header is handed out as a copy: a caller editing its slice
// changes neither the next caller's header nor the file WriteCSV writes.
func TestCSVHeaderIsACopy(t *testing.T) {
	want := CSVHeader()
	got := CSVHeader()
	for i := range got {
		got[i] = "changed"
	}
	assert.Equal(t, want, CSVHeader())
	var buf bytes.Buffer
	require.NoError(t, WriteCSV(&buf, sampleReport()))
	rows, err := csv.NewReader(&buf).ReadAll()
	require.NoError(t, err)
	assert.Equal(t, want, rows[0])
}

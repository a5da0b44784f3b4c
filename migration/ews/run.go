package ews

import (
	"context"
	"fmt"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/internal/bytesize"
)

// Pass is a [migration.RunSpec] Pass that migrates each job of a run
// from this migrator's EWS source, so that EWS migrations are kept in
// the same run history, with the same per-mailbox statuses and reports,
// as the IMAP collectors'. The job's Target receives the mailbox whose
// SMTP address is Credentials.Login (the target's address when empty);
// its Exclude and FolderMap apply. Its Source and the rest of its
// Credentials are only recorded: the migrator's client says where and
// as whom to connect.
func (m *Migrator) Pass(ctx context.Context, job migration.Job, progress migration.ProgressFunc) (string, error) {
	source := job.Credentials.Login
	if source == "" {
		source = job.Target
	}
	res, err := m.sync(ctx, Job{Target: job.Target, Mailbox: source, Exclude: job.Exclude, FolderMap: job.FolderMap}, progress)
	return res.Summary(), err
}

// Summary is a one-line account of a pass for statuses and history:
// "copied 207 messages (1.2 MiB) in 8 folders, 50 events, 30 contacts".
func (r Result) Summary() string {
	folders := 0
	for _, f := range r.Folders {
		if !f.Excluded {
			folders++
		}
	}
	s := fmt.Sprintf("copied %d messages (%s) in %d folders, %d events, %d contacts", r.Messages, bytesize.Format(r.Bytes), folders, r.Events, r.Contacts)
	if r.Attachments > 0 || r.AttachmentsSkipped > 0 {
		s += fmt.Sprintf(", %d calendar attachments", r.Attachments)
		if r.AttachmentsSkipped > 0 {
			s += fmt.Sprintf(" (%d left out, see the log)", r.AttachmentsSkipped)
		}
	}
	if r.Meetings > 0 {
		s += fmt.Sprintf(", %d meeting messages applied", r.Meetings)
	}
	if r.Deleted > 0 {
		s += fmt.Sprintf(", %d deleted", r.Deleted)
	}
	if r.CalendarLeft != "" {
		s += "; calendar not copied: " + r.CalendarLeft
	}
	return s
}

package report_test

import (
	"fmt"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/report"
)

// A report as [migration.Migrator.Report] returns it, rendered as the
// plain-text summary. WriteCSV and WriteHTML take the same value.
func ExampleSummary() {
	inbox := migration.Counts{SourceMessages: 120, SourceBytes: 4_400_000, TargetMessages: 120, TargetBytes: 4_400_000}
	r := migration.Report{
		Generated: time.Date(2026, 12, 5, 6, 0, 0, 0, time.UTC),
		Domain:    "example.com",
		Mailboxes: []migration.MailboxReport{
			{Target: "alice@example.com", State: migration.StateOK, Passes: 3,
				Folders: []migration.FolderReport{{Source: "INBOX", Target: "INBOX", Counts: inbox}}, Counts: inbox},
			{Target: "bob@example.com", State: migration.StateError, ErrorClass: migration.ErrClassAuth, LastError: "LOGIN failed"},
		},
		Totals: inbox,
	}
	fmt.Print(report.Summary(r))
	// Output:
	// Migration report for example.com, generated 2026-12-05 06:00:00 UTC.
	//
	// Mailboxes: 2 (ok 1, with errors 1, running 0, queued 0, cut over 0, without collector 0)
	// Source: 120 messages, 4.2 MiB
	// Target: 120 messages, 4.2 MiB
	// Skipped: 0 in excluded folders, 0 too large; failed: 0
	//
	// Mailboxes with errors:
	//   bob@example.com: auth: LOGIN failed
}

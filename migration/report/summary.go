package report

import (
	"fmt"
	"strings"

	"github.com/mailyard/mailyard/migration"
)

// Summary is a short plain-text account of r: how many mailboxes are in
// each state, the source and target totals, what was skipped or failed,
// and each mailbox with an error and its error. It is what examples/migrate
// prints when no file is asked for, and the text part of [Message] (which
// adds a line pointing at its attachments; the summary alone has none).
func Summary(r migration.Report) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Migration report for %s, generated %s.\n\n", summaryScope(r), r.Generated.UTC().Format("2006-01-02 15:04:05 MST"))
	writeStateCounts(&b, r.Mailboxes)
	t := r.Totals
	fmt.Fprintf(&b, "Source: %d messages, %s\n", t.SourceMessages, FormatBytes(t.SourceBytes))
	fmt.Fprintf(&b, "Target: %d messages, %s\n", t.TargetMessages, FormatBytes(t.TargetBytes))
	fmt.Fprintf(&b, "Skipped: %d in excluded folders, %d too large; failed: %d\n", t.SkippedExcluded, t.SkippedTooLarge, t.Failed)
	writeErrors(&b, r.Mailboxes)
	return b.String()
}

// summaryScope names what r covers: its domain, or how many mailboxes
// were listed.
func summaryScope(r migration.Report) string {
	if r.Domain != "" {
		return r.Domain
	}
	return fmt.Sprintf("%d listed mailboxes", len(r.Mailboxes))
}

// writeStateCounts writes the line that counts the mailboxes per
// collector state.
func writeStateCounts(b *strings.Builder, mailboxes []migration.MailboxReport) {
	counts := map[migration.State]int{}
	for _, mb := range mailboxes {
		counts[mb.State]++
	}
	fmt.Fprintf(b, "Mailboxes: %d (ok %d, with errors %d, running %d, queued %d, cut over %d, without collector %d)\n",
		len(mailboxes), counts[migration.StateOK], counts[migration.StateError], counts[migration.StateRunning],
		counts[migration.StateQueued], counts[migration.StateDisabled], counts[""])
}

// writeErrors lists the mailboxes whose collector is in error, if any.
func writeErrors(b *strings.Builder, mailboxes []migration.MailboxReport) {
	first := true
	for _, mb := range mailboxes {
		if mb.State != migration.StateError {
			continue
		}
		if first {
			b.WriteString("\nMailboxes with errors:\n")
			first = false
		}
		fmt.Fprintf(b, "  %s: %s: %s\n", mb.Target, mb.ErrorClass, mb.LastError)
	}
}

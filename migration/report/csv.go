package report

import (
	"encoding/csv"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/mailyard/mailyard/migration"
)

// csvHeader is the list behind [CSVHeader], never handed out.
var csvHeader = []string{
	"mailbox", "state", "source_folder", "target_folder", "excluded",
	"source_messages", "source_bytes", "target_messages", "target_bytes",
	"skipped_excluded", "skipped_too_large", "failed", "last_sync", "last_error",
	// Added later, so at the end: a consumer reading columns by position
	// keeps working.
	"protocol", "source", "passes", "message",
}

// CSVHeader returns the header row of [WriteCSV].
// Each call returns a fresh slice the caller may change.
func CSVHeader() []string { return slices.Clone(csvHeader) }

// WriteCSV writes r as CSV (RFC 4180, CRLF line ends): the header
// [CSVHeader], then one row per mailbox and folder; a mailbox without
// folders gets one row with empty folder columns. The mailbox's columns
// (state, last_error, protocol, source: "host:port" for IMAP or the EWS
// URL, passes: its successful passes, message: the last pass's summary)
// repeat on each of its rows. Times are RFC 3339 in
// UTC. Text that a spreadsheet would run as a formula (starting with =, +,
// -, @, tab or carriage return; folder names come from the source server)
// is prefixed with a single quote.
func WriteCSV(w io.Writer, r migration.Report) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(csvHeader); err != nil {
		return err
	}
	for _, mb := range r.Mailboxes {
		if len(mb.Folders) == 0 {
			if err := cw.Write(csvRow(mb, migration.FolderReport{Counts: mb.Counts, LastSync: mb.LastSync})); err != nil {
				return err
			}
			continue
		}
		for _, f := range mb.Folders {
			if err := cw.Write(csvRow(mb, f)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
}

// csvRow is the row of folder f of mailbox mb; a folder without a source
// name stands for the whole mailbox and leaves the folder columns empty.
func csvRow(mb migration.MailboxReport, f migration.FolderReport) []string {
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	excluded := ""
	if f.Source != "" {
		excluded = strconv.FormatBool(f.Excluded)
	}
	c := f.Counts
	return []string{
		csvText(mb.Target), string(mb.State), csvText(f.Source), csvText(f.Target), excluded,
		num(c.SourceMessages), num(c.SourceBytes), num(c.TargetMessages), num(c.TargetBytes),
		num(c.SkippedExcluded), num(c.SkippedTooLarge), num(c.Failed),
		csvTime(f.LastSync), csvText(mb.LastError),
		mb.Protocol, csvText(mb.Source), strconv.Itoa(mb.Passes), csvText(mb.Message),
	}
}

// csvText defuses spreadsheet formulas (OWASP "CSV injection").
func csvText(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		return "'" + s
	}
	return s
}

func csvTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339)
}

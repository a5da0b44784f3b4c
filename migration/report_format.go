package migration

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
)

// reportCSVHeader is the list behind [ReportCSVHeader], never handed out.
var reportCSVHeader = []string{
	"mailbox", "state", "source_folder", "target_folder", "excluded",
	"source_messages", "source_bytes", "target_messages", "target_bytes",
	"skipped_excluded", "skipped_too_large", "failed", "last_sync", "last_error",
}

// ReportCSVHeader returns the header row of [Report.WriteCSV].
// Each call returns a fresh slice the caller may change.
func ReportCSVHeader() []string { return slices.Clone(reportCSVHeader) }

// WriteCSV writes the report as CSV (RFC 4180): the header
// [ReportCSVHeader], then one row per mailbox and folder; a mailbox without
// folders gets one row with empty folder columns. Times are RFC 3339 in
// UTC. Text that a spreadsheet would run as a formula (starting with =, +,
// -, @, tab or carriage return; folder names come from the source server)
// is prefixed with a single quote.
func (r Report) WriteCSV(w io.Writer) error {
	cw := csv.NewWriter(w)
	cw.UseCRLF = true
	if err := cw.Write(reportCSVHeader); err != nil {
		return err
	}
	num := func(n int64) string { return strconv.FormatInt(n, 10) }
	row := func(mb MailboxReport, src, dst string, excluded bool, c Counts, last time.Time) []string {
		ex := ""
		if src != "" {
			ex = strconv.FormatBool(excluded)
		}
		return []string{
			csvText(mb.Target), string(mb.State), csvText(src), csvText(dst), ex,
			num(c.SourceMessages), num(c.SourceBytes), num(c.TargetMessages), num(c.TargetBytes),
			num(c.SkippedExcluded), num(c.SkippedTooLarge), num(c.Failed),
			csvTime(last), csvText(mb.LastError),
		}
	}
	for _, mb := range r.Mailboxes {
		if len(mb.Folders) == 0 {
			if err := cw.Write(row(mb, "", "", false, mb.Counts, mb.LastSync)); err != nil {
				return err
			}
			continue
		}
		for _, f := range mb.Folders {
			if err := cw.Write(row(mb, f.Source, f.Target, f.Excluded, f.Counts, f.LastSync)); err != nil {
				return err
			}
		}
	}
	cw.Flush()
	return cw.Error()
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

// WriteHTML writes the report as a self-contained HTML page: a summary,
// then a table per mailbox with its folders. Every value is escaped by
// html/template.
func (r Report) WriteHTML(w io.Writer) error {
	return reportHTML.Execute(w, r)
}

// Summary is a short plain-text account of the report: totals and the
// mailboxes with errors.
func (r Report) Summary() string {
	var b strings.Builder
	scope := r.Domain
	if scope == "" {
		scope = fmt.Sprintf("%d listed mailboxes", len(r.Mailboxes))
	}
	fmt.Fprintf(&b, "Migration report for %s, generated %s.\n\n", scope, r.Generated.UTC().Format("2006-01-02 15:04:05 MST"))
	counts := map[State]int{}
	for _, mb := range r.Mailboxes {
		counts[mb.State]++
	}
	fmt.Fprintf(&b, "Mailboxes: %d (ok %d, with errors %d, running %d, queued %d, cut over %d, without collector %d)\n",
		len(r.Mailboxes), counts[StateOK], counts[StateError], counts[StateRunning], counts[StateQueued], counts[StateDisabled], counts[""])
	t := r.Totals
	fmt.Fprintf(&b, "Source: %d messages, %s\n", t.SourceMessages, FormatBytes(t.SourceBytes))
	fmt.Fprintf(&b, "Target: %d messages, %s\n", t.TargetMessages, FormatBytes(t.TargetBytes))
	fmt.Fprintf(&b, "Skipped: %d in excluded folders, %d too large; failed: %d\n", t.SkippedExcluded, t.SkippedTooLarge, t.Failed)
	first := true
	for _, mb := range r.Mailboxes {
		if mb.State != StateError {
			continue
		}
		if first {
			b.WriteString("\nMailboxes with errors:\n")
			first = false
		}
		fmt.Fprintf(&b, "  %s: %s: %s\n", mb.Target, mb.ErrorClass, mb.LastError)
	}
	b.WriteString("\nThe attached page and CSV file have the counts per mailbox and folder.\n")
	return b.String()
}

// FormatBytes formats n bytes with a binary unit ("4.2 MiB").
func FormatBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	div, exp := int64(unit), 0
	for v := n / unit; v >= unit && exp < 5; v /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

var reportHTML = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": FormatBytes,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 MST")
	},
	"differs": func(c Counts) bool {
		return c.SourceMessages-c.SkippedExcluded-c.SkippedTooLarge > c.TargetMessages
	},
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Migration report{{with .Domain}} for {{.}}{{end}}</title>
<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right; }
th:first-child, td:first-child, td.text { text-align: left; }
th { background: #f2f2f2; }
tr.excluded td { color: #888; }
.state-error { color: #b00020; font-weight: bold; }
.state-ok { color: #1b7f3b; }
.short { background: #fff4e5; }
</style>
</head>
<body>
<h1>Migration report{{with .Domain}} for {{.}}{{end}}</h1>
<p>Generated {{time .Generated}}. {{len .Mailboxes}} mailboxes.</p>
<table>
<tr><th></th><th>Messages</th><th>Bytes</th></tr>
<tr><td>Source</td><td>{{.Totals.SourceMessages}}</td><td>{{bytes .Totals.SourceBytes}}</td></tr>
<tr><td>Target</td><td>{{.Totals.TargetMessages}}</td><td>{{bytes .Totals.TargetBytes}}</td></tr>
<tr><td>Skipped (excluded folders)</td><td>{{.Totals.SkippedExcluded}}</td><td></td></tr>
<tr><td>Skipped (too large)</td><td>{{.Totals.SkippedTooLarge}}</td><td></td></tr>
<tr><td>Failed</td><td>{{.Totals.Failed}}</td><td></td></tr>
</table>
{{range .Mailboxes}}
<h2>{{.Target}}</h2>
<p>State: <span class="state-{{.State}}">{{if .State}}{{.State}}{{else}}no collector{{end}}</span>;
last successful sync: {{time .LastSync}}; passes: {{.Passes}}.{{if .State}}{{with .Message}} {{.}}{{end}}{{end}}</p>
{{if .LastError}}<p class="state-error">Last error ({{.ErrorClass}}): {{.LastError}}</p>{{end}}
{{if .Folders}}
<table>
<tr><th>Source folder</th><th>Target folder</th><th>Source messages</th><th>Source bytes</th><th>Target messages</th><th>Target bytes</th><th>Excluded</th><th>Too large</th><th>Failed</th><th>Last sync</th></tr>
{{range .Folders}}
<tr{{if .Excluded}} class="excluded"{{else if differs .Counts}} class="short"{{end}}>
<td class="text">{{.Source}}</td><td class="text">{{if .Excluded}}(excluded){{else}}{{.Target}}{{end}}</td>
<td>{{.SourceMessages}}</td><td>{{bytes .SourceBytes}}</td><td>{{.TargetMessages}}</td><td>{{bytes .TargetBytes}}</td>
<td>{{.SkippedExcluded}}</td><td>{{.SkippedTooLarge}}</td><td>{{.Failed}}</td><td class="text">{{time .LastSync}}</td>
</tr>
{{end}}
<tr><th class="text">Total</th><th></th><th>{{.SourceMessages}}</th><th>{{bytes .SourceBytes}}</th><th>{{.TargetMessages}}</th><th>{{bytes .TargetBytes}}</th><th>{{.SkippedExcluded}}</th><th>{{.SkippedTooLarge}}</th><th>{{.Failed}}</th><th></th></tr>
</table>
{{end}}
{{end}}
</body>
</html>
`))

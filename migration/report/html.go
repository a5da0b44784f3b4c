package report

import (
	"html/template"
	"io"
	"time"

	"github.com/mailyard/mailyard/migration"
	"github.com/mailyard/mailyard/migration/internal/bytesize"
)

// WriteHTML writes r as a self-contained HTML page (styles inline, no
// scripts, nothing fetched): the totals, then a table per mailbox with its
// folders. Excluded folders are greyed; a folder whose target holds fewer
// messages than its source less the skipped ones is highlighted. Every
// value is escaped by html/template.
func WriteHTML(w io.Writer, r migration.Report) error {
	return pageTemplate.Execute(w, r)
}

// pageTemplate is parsed once and only executed afterwards, which
// html/template allows from several goroutines at once.
var pageTemplate = template.Must(template.New("report").Funcs(template.FuncMap{
	"bytes": bytesize.Format,
	"time": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05 MST")
	},
	"differs": func(c migration.Counts) bool {
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
{{if .Protocol}}source: {{.Protocol}} {{.Source}}; {{end}}last successful sync: {{time .LastSync}}; passes: {{.Passes}}.{{if .State}}{{with .Message}} {{.}}{{end}}{{end}}</p>
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

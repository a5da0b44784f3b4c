// Package report renders a [migration.Report] for people: as a CSV file
// (one row per mailbox and folder, for a spreadsheet), as a self-contained
// HTML page, as a plain-text summary, and as a mail message that carries
// all three, sent through any [Mailer].
//
// The migration engine builds the report as data ([migration.Migrator.Report]
// reads only the store, never a source); this package only formats it, so an
// embedder can render the same data its own way or use these writers as
// they are. examples/migrate's "report" command uses every writer here.
//
// Guarantees:
//
//   - Text from the source server (folder names, error texts) never runs:
//     the HTML page escapes every value through html/template, and CSV
//     cells a spreadsheet would take for a formula are prefixed with a
//     single quote.
//   - Byte counts read the same everywhere: [FormatBytes] is the formatter
//     the engine's pass summaries use too.
//   - [Message] checks both addresses before it builds anything, so a bad
//     or injected address sends nothing.
package report

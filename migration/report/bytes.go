package report

import "github.com/mailyard/mailyard/migration/internal/bytesize"

// FormatBytes formats n bytes with a binary unit ("4.2 MiB"), as the
// engine's pass summaries ([migration.MailboxStatus.LastMessage]) do.
func FormatBytes(n int64) string { return bytesize.Format(n) }

// Package bytesize formats byte counts for people. It is the one byte
// formatter of the migration packages: the engine's pass summaries and
// the report writers in migration/report both use it, so a count reads the
// same in a status line, a report and the command's progress.
package bytesize

import (
	"fmt"
	"strconv"
)

// Format formats n bytes with a binary (IEC) unit, one decimal: "512 B",
// "1.5 KiB", "4.2 MiB", up to EiB.
func Format(n int64) string {
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

package calendar

import (
	"bytes"
	"fmt"
)

// checkSyntaxLimits walks the content lines (unfolded, RFC 5545 §3.1)
// once before go-ical decodes them and refuses data that would make the
// decoder slow or deep: components nested more than maxDepth, a name and
// parameter part longer than maxParamSection, or parameter parts whose
// squared lengths add up to more than maxParamWork. It reads no values.
func checkSyntaxLimits(data []byte) error {
	var (
		depth, work     int
		name            []byte
		nameDone        bool
		paramLen        int
		inQuote, inBody bool
		lineStart       = true
	)
	endLine := func() error {
		work += paramLen * paramLen
		if work > maxParamWork {
			return fmt.Errorf("property parameters too long in total")
		}
		switch string(bytes.ToUpper(name)) {
		case "BEGIN":
			if depth++; depth > maxDepth {
				return fmt.Errorf("components nested deeper than %d", maxDepth)
			}
		case "END":
			depth--
		}
		name, nameDone, paramLen, inQuote, inBody = name[:0], false, 0, false, false
		return nil
	}
	for i := 0; i < len(data); i++ {
		c := data[i]
		if lineStart {
			lineStart = false
			if (c == ' ' || c == '\t') && i > 0 {
				continue // a folded continuation of the same content line
			}
			if i > 0 {
				if err := endLine(); err != nil {
					return err
				}
			}
		}
		switch {
		case c == '\n':
			lineStart = true
			continue
		case c == '\r':
			continue
		case inBody:
			continue
		}
		paramLen++
		if paramLen > maxParamSection {
			return fmt.Errorf("property name and parameters longer than %d bytes", maxParamSection)
		}
		switch {
		case c == '"':
			inQuote = !inQuote
		case c == ':' && !inQuote:
			inBody = true
		case c == ';' && !inQuote:
			nameDone = true
		}
		if !nameDone && !inBody && len(name) < 8 {
			name = append(name, c)
		}
	}
	return endLine()
}

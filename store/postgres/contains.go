package postgres

import (
	"strconv"
	"strings"

	"github.com/mailyard/mailyard/store"
)

// containsSQL returns the SQL test of canonical Contains clauses (their
// texts' letters in lower case) on the bytea column col, with its
// arguments numbered from first. A text with letters is looked for in
// the data as encode(…, 'escape') writes it, its ASCII letters put in
// lower case by translate (not lower, which follows the locale), the
// text escaped the same way (escapeBytea): that encoding maps each byte
// on its own, so the data holds the text exactly when its encoding holds
// the text's (or more often: an escape's digits may line up with digits
// of the text, which only returns more). A text without letters is
// looked for in the bytes themselves (position). NonASCII is true when
// the escaped data is longer than the data: it holds a byte above 0x7F,
// a zero byte or a backslash (more than store.ContainsClause asks).
func containsSQL(col string, clauses []store.ContainsClause, first int) (string, []any) {
	var b strings.Builder
	var args []any
	arg := func(v any) string {
		args = append(args, v)
		return "$" + strconv.Itoa(first+len(args)-1)
	}
	folded := "translate(encode(" + col + ", 'escape'), 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')"
	for i, c := range clauses {
		if i > 0 {
			b.WriteString(" AND ")
		}
		b.WriteString("(")
		for j, text := range c.Any {
			if j > 0 {
				b.WriteString(" OR ")
			}
			if hasLetter(text) {
				b.WriteString("strpos(" + folded + ", " + arg(escapeBytea([]byte(text))) + ") > 0")
			} else {
				b.WriteString("position(" + arg([]byte(text)) + "::bytea in " + col + ") > 0")
			}
		}
		if c.NonASCII {
			if len(c.Any) > 0 {
				b.WriteString(" OR ")
			}
			b.WriteString("octet_length(encode(" + col + ", 'escape')) <> octet_length(" + col + ")")
		}
		b.WriteString(")")
	}
	return b.String(), args
}

// escapeBytea is PostgreSQL's encode(b, 'escape'): a zero byte or one
// above 0x7F as a backslash and three octal digits, a backslash doubled,
// every other byte as it is.
func escapeBytea(b []byte) string {
	var out strings.Builder
	for _, c := range b {
		switch {
		case c == 0 || c >= 0x80:
			out.WriteByte('\\')
			out.WriteByte('0' + c>>6)
			out.WriteByte('0' + (c>>3)&7)
			out.WriteByte('0' + c&7)
		case c == '\\':
			out.WriteString(`\\`)
		default:
			out.WriteByte(c)
		}
	}
	return out.String()
}

func hasLetter(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i] | 0x20; 'a' <= c && c <= 'z' {
			return true
		}
	}
	return false
}

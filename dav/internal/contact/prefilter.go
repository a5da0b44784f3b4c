package contact

import (
	"bytes"
	"strings"

	"github.com/mailyard/mailyard/internal/textmatch"
)

// CannotMatch reports whether the vCard resource data cannot satisfy f
// whatever it parses to, judged from its raw text without parsing it:
// when it says true, Parse(data) either fails or gives a card that
// [Match] rejects, so an addressbook-query can skip the resource. When it
// says false nothing is known and the caller parses and matches.
//
// The argument: go-vcard joins a folded line by dropping the line break
// and the one space or tab after it, and then replaces only the escapes
// "\\", "\n" and "\," in a value. So every property value, read back
// without those three escapes, is a contiguous substring of the data
// with its folds undone (unfold). A text-match whose folded text holds
// none of the characters the escapes produce ("\", newline, ",") can
// therefore be satisfied by some value only if the unfolded data
// contains its text, which textmatch.Matcher.Excludes tests. From there:
// a prop-filter that needs such a text-match and cannot have it fails, and
// the filter's anyof/allof over its prop-filters decides (RFC 6352
// §10.5). Negated text-matches, is-not-defined and param-filters never
// exclude.
func CannotMatch(data []byte, f Filter) bool {
	if len(f.Props) == 0 {
		return false
	}
	text := unfold(data)
	for i := range f.Props {
		out := propCannotMatch(text, &f.Props[i])
		if out == f.AllOf {
			// allof: one impossible prop-filter decides; anyof: one
			// possible one keeps the card.
			return out
		}
	}
	return !f.AllOf
}

// propCannotMatch reports whether no property instance of text can
// satisfy pf (see CannotMatch).
func propCannotMatch(text string, pf *PropFilter) bool {
	if pf.IsNotDefined || len(pf.TextMatches) == 0 {
		return false
	}
	if !pf.AllOf && len(pf.Params) > 0 {
		// anyof: a param-filter alone may satisfy it.
		return false
	}
	for _, tm := range pf.TextMatches {
		out := excludes(tm, text)
		if out && pf.AllOf {
			// allof: every instance needs this text-match.
			return true
		}
		if !out && !pf.AllOf {
			return false
		}
	}
	return !pf.AllOf
}

// excludes is tm.Excludes for a text-match that go-vcard's escapes
// cannot satisfy on their own (see CannotMatch).
func excludes(tm *textmatch.Matcher, text string) bool {
	if strings.ContainsAny(tm.Needle(), "\\\n,") {
		return false
	}
	return tm.Excludes(text)
}

// unfold returns data with every line fold undone the way go-vcard's
// decoder undoes it: a line break (a "\n" and the carriage returns
// before it) followed by a space or a tab is removed together with that
// space or tab.
func unfold(data []byte) string {
	if !bytes.Contains(data, []byte("\n ")) && !bytes.Contains(data, []byte("\n\t")) {
		return string(data)
	}
	b := make([]byte, 0, len(data))
	for i := 0; i < len(data); i++ {
		if data[i] == '\n' && i+1 < len(data) && (data[i+1] == ' ' || data[i+1] == '\t') {
			b = bytes.TrimRight(b, "\r")
			i++
			continue
		}
		b = append(b, data[i])
	}
	return string(b)
}

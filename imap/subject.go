package imap

import "strings"

// baseSubject extracts the base subject of a decoded Subject field (RFC
// 5256 §2.1) and reports whether the extraction removed text that marks
// a reply or forward ("Re:", "Fwd:", "(fwd)", "[fwd: ...]"), which
// THREAD=REFERENCES needs (§2.3 step 6). Its caller has decoded the
// encoded words (step 1's first half); the result is compared with
// sortFold.
func baseSubject(s string) (base string, reply bool) {
	// (1) Tabs and line breaks are spaces, runs of spaces one space.
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return r == ' ' || r == '\t' || r == '\r' || r == '\n'
	}), " ")
	for {
		// (2) Trailers: subj-trailer = "(fwd)" / WSP, repeatedly.
		for {
			t := strings.TrimRight(s, " \t")
			if len(t) >= 5 && strings.EqualFold(t[len(t)-5:], "(fwd)") {
				t = t[:len(t)-5]
				reply = true
			}
			if t == s {
				break
			}
			s = t
		}
		// (3)-(5) Leaders and blobs, until neither matches.
		for {
			if n, refwd := subjLeader(s); n > 0 {
				s = s[n:]
				reply = reply || refwd
				continue
			}
			if n := subjBlob(s, 0); n > 0 && strings.TrimLeft(s[n:], " \t") != "" {
				s = s[n:]
				continue
			}
			break
		}
		// (6) "[fwd:" subject "]": take the subject and start again.
		if len(s) >= 6 && strings.EqualFold(s[:5], "[fwd:") && s[len(s)-1] == ']' {
			s = s[5 : len(s)-1]
			reply = true
			continue
		}
		return s, reply
	}
}

// subjLeader returns the length of a subj-leader at the start of s, and
// whether it is a subj-refwd (RFC 5256 §5):
//
//	subj-leader = (*subj-blob subj-refwd) / WSP
func subjLeader(s string) (n int, refwd bool) {
	if s != "" && (s[0] == ' ' || s[0] == '\t') {
		return 1, false
	}
	for i := 0; ; {
		if m := subjRefwd(s, i); m > 0 {
			return m, true
		}
		m := subjBlob(s, i)
		if m == 0 {
			return 0, false
		}
		i = m
	}
}

// subjRefwd returns the end of a subj-refwd starting at s[i], or 0:
//
//	subj-refwd = ("re" / ("fw" ["d"])) *WSP [subj-blob] ":"
func subjRefwd(s string, i int) int {
	switch {
	case hasPrefixFold(s[i:], "re"), hasPrefixFold(s[i:], "fw"):
		i += 2
		if i < len(s) && (s[i] == 'd' || s[i] == 'D') && !hasPrefixFold(s[i-2:], "re") {
			i++
		}
	default:
		return 0
	}
	for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
		i++
	}
	if m := subjBlob(s, i); m > 0 {
		i = m
	}
	if i < len(s) && s[i] == ':' {
		return i + 1
	}
	return 0
}

// subjBlob returns the end of a subj-blob starting at s[i], or 0:
//
//	subj-blob = "[" *BLOBCHAR "]" *WSP
//	BLOBCHAR  = %x01-5a / %x5c / %x5e-ff
func subjBlob(s string, i int) int {
	if i >= len(s) || s[i] != '[' {
		return 0
	}
	for i++; i < len(s); i++ {
		switch s[i] {
		case ']':
			for i++; i < len(s) && (s[i] == ' ' || s[i] == '\t'); i++ {
			}
			return i
		case '[', 0:
			return 0
		}
	}
	return 0
}

func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// sortFold is the collation key of sort and thread strings: upper case,
// as the i;unicode-casemap comparator of I18NLEVEL=1 compares (RFC 5255
// §4.3 titlecases; for the letters that differ the order is the same
// here), without its Unicode decomposition.
func sortFold(s string) string {
	return strings.ToUpper(s)
}

// mailyard: this file is ours (not in upstream go-imap): a tolerant RFC
// 5322 address-list parser for ENVELOPE and SEARCH FROM/TO/CC/BCC.

package imapserver

import "strings"

// ParseAddressList parses an address-list header field value (RFC 5322
// §3.4, with the obsolete syntax of §4.4) into ENVELOPE addresses.
//
// It never fails as a whole, as RFC 9051 §7.5.2 asks for a best effort
// on malformed headers:
//
//  1. The value is split into tokens: words (atoms and quoted strings),
//     domain literals, comments and the specials < > @ , ; : .
//  2. The tokens are split into elements at "," and ";" outside angle
//     brackets (and outside a source route). A ":" before any "@" or
//     "<" starts a group; ";" or the end of the value closes it. Group
//     start and end come out as markers (see Address).
//  3. Each element is a mailbox: an optional phrase and an angle-addr
//     with an optional source route, or a bare addr-spec. Comments (CFWS)
//     are dropped from the addr-spec, so "<user (c)@ (c) example.org>"
//     is user@example.org. An element that is not a mailbox (say
//     "broken@@x") is left out, and only that element.
//
// The work is linear in the length of s, of which at most
// maxAddressListBytes are read: a longer list (thousands of recipients)
// loses its tail, and a header stuffed to make ENVELOPE or SEARCH FROM
// expensive costs no more than that.
func ParseAddressList(s string) []Address {
	if len(s) > maxAddressListBytes {
		s = s[:maxAddressListBytes]
	}
	toks := tokenizeAddresses(s)
	var (
		out     []Address
		elem    []addrToken
		inGroup bool
		angle   bool // inside <...>
		route   bool // inside the source route of an angle-addr
		// elem holds an "@" or "<" token: kept as it grows rather than
		// scanned at every ":", which made the parse quadratic.
		sawAddr bool
	)
	emit := func() {
		if a, ok := parseMailbox(elem); ok {
			out = append(out, a)
		}
		elem = elem[:0]
		angle, route, sawAddr = false, false, false
	}
	for i, t := range toks {
		if t.kind == tokSpecial {
			switch t.text {
			case "<":
				if !angle {
					angle = true
					route = i+1 < len(toks) && toks[i+1].is("@")
				}
			case ">":
				angle, route = false, false
			case ",":
				if !route {
					emit()
					continue
				}
			case ";":
				if !route {
					emit()
					if inGroup {
						out = append(out, Address{})
						inGroup = false
					}
					continue
				}
			case ":":
				if route {
					route = false
				} else if !angle && !inGroup && !sawAddr {
					// RFC 5322 §3.4: group = display-name ":" [group-list] ";"
					if name := renderPhrase(elem); name != "" {
						out = append(out, Address{Mailbox: name})
						inGroup = true
					}
					elem = elem[:0]
					continue
				}
			}
			if t.text == "@" || t.text == "<" {
				sawAddr = true
			}
		}
		elem = append(elem, t)
	}
	emit()
	if inGroup {
		out = append(out, Address{})
	}
	return out
}

// maxAddressListBytes bounds how much of one address header is parsed.
const maxAddressListBytes = 128 << 10

type tokKind uint8

const (
	tokAtom    tokKind = iota // atom (dots are separate specials)
	tokQuoted                 // quoted-string; text is unquoted
	tokLiteral                // domain-literal, brackets included
	tokComment                // comment; text is its content
	tokSpecial                // one of < > @ , ; : .
)

type addrToken struct {
	kind tokKind
	text string // the value: unquoted for quoted strings and comments
	raw  string // as in the source (for quoted strings in a local-part)
	sp   bool   // preceded by white space or a comment
	open bool   // unterminated quoted string or domain literal
}

func (t addrToken) is(special string) bool { return t.kind == tokSpecial && t.text == special }

// tokenizeAddresses splits s into tokens. Unterminated quoted strings,
// comments and domain literals run to the end of s.
func tokenizeAddresses(s string) []addrToken {
	var toks []addrToken
	sp := false
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\r' || c == '\n':
			sp = true
			i++
			continue
		case c == '(':
			// Comments nest (RFC 5322 §3.2.2); depth is a counter, so
			// deep nesting costs nothing.
			var sb strings.Builder
			depth := 1
			j := i + 1
			for ; j < len(s) && depth > 0; j++ {
				switch s[j] {
				case '\\':
					if j+1 < len(s) {
						j++
					}
				case '(':
					depth++
				case ')':
					depth--
					if depth == 0 {
						continue
					}
				}
				sb.WriteByte(s[j])
			}
			toks = append(toks, addrToken{kind: tokComment, text: strings.TrimSpace(sb.String())})
			sp = true
			i = j
			continue
		case c == '"':
			var sb strings.Builder
			j := i + 1
			for ; j < len(s) && s[j] != '"'; j++ {
				if s[j] == '\\' && j+1 < len(s) {
					j++
				}
				sb.WriteByte(s[j])
			}
			end := min(j+1, len(s))
			toks = append(toks, addrToken{kind: tokQuoted, text: sb.String(), raw: s[i:end], sp: sp, open: j == len(s)})
			i = end
		case c == '[':
			j := strings.IndexByte(s[i:], ']')
			end := len(s)
			if j >= 0 {
				end = i + j + 1
			}
			toks = append(toks, addrToken{kind: tokLiteral, text: s[i:end], raw: s[i:end], sp: sp, open: j < 0})
			i = end
		case strings.IndexByte("<>@,;:.", c) >= 0:
			toks = append(toks, addrToken{kind: tokSpecial, text: s[i : i+1], raw: s[i : i+1], sp: sp})
			i++
		default:
			j := i
			for j < len(s) && strings.IndexByte(" \t\r\n()\"[<>@,;:.", s[j]) < 0 {
				j++
			}
			if j == i {
				j++ // a stray ")": part of an atom
			}
			toks = append(toks, addrToken{kind: tokAtom, text: s[i:j], raw: s[i:j], sp: sp})
			i = j
		}
		sp = false
	}
	return toks
}

// parseMailbox parses one element of an address list: name-addr or
// addr-spec (RFC 5322 §3.4).
func parseMailbox(elem []addrToken) (Address, bool) {
	var lastComment string
	toks := make([]addrToken, 0, len(elem))
	for _, t := range elem {
		if t.kind == tokComment {
			lastComment = t.text
			continue
		}
		toks = append(toks, t)
	}
	if len(toks) == 0 {
		return Address{}, false
	}
	var a Address
	spec := toks
	lt := -1
	for i, t := range toks {
		if t.is("<") {
			lt = i
			break
		}
	}
	if lt >= 0 {
		a.Name = renderPhrase(toks[:lt])
		spec = toks[lt+1:]
		for i, t := range spec {
			if t.is(">") {
				spec = spec[:i]
				break
			}
		}
		// RFC 5322 §4.4: obs-angle-addr = "<" obs-route addr-spec ">"
		if len(spec) > 0 && spec[0].is("@") {
			for i, t := range spec {
				if t.is(":") {
					a.ADL = joinRaw(spec[:i])
					spec = spec[i+1:]
					break
				}
			}
		}
	} else {
		// "user@example.org (Real Name)": the comment is the only name.
		a.Name = lastComment
	}
	at := -1
	for i, t := range spec {
		if t.is("@") {
			at = i
			break
		}
	}
	local := spec
	var domain []addrToken
	if at >= 0 {
		local, domain = spec[:at], spec[at+1:]
	}
	if !dotSeparated(local) || at >= 0 && !dotSeparated(domain) {
		return Address{}, false
	}
	a.Mailbox = joinRaw(local)
	a.Host = joinRaw(domain)
	if at < 0 {
		a.Host = missingDomain
	}
	return a, true
}

// dotSeparated reports whether toks are a non-empty dot-atom-like run
// of words: word *("." word), with the obsolete forms' empty words
// (RFC 5322 §4.4 allows "a..b" in obs-local-part and obs-domain through
// CFWS, and real mail has them) tolerated.
func dotSeparated(toks []addrToken) bool {
	words := 0
	prevWord := false
	for _, t := range toks {
		switch {
		case t.kind == tokAtom || t.kind == tokQuoted || t.kind == tokLiteral:
			if prevWord || t.open {
				return false
			}
			prevWord = true
			words++
		case t.is("."):
			prevWord = false
		default:
			return false
		}
	}
	return words > 0
}

// joinRaw concatenates tokens as they are in the source, without the
// white space and comments between them.
func joinRaw(toks []addrToken) string {
	var sb strings.Builder
	for _, t := range toks {
		sb.WriteString(t.raw)
	}
	return sb.String()
}

// renderPhrase renders a display name: words unquoted, separated by a
// single space where the source had white space or a comment.
func renderPhrase(toks []addrToken) string {
	var sb strings.Builder
	for _, t := range toks {
		if t.kind == tokComment {
			continue
		}
		if t.sp && sb.Len() > 0 {
			sb.WriteByte(' ')
		}
		sb.WriteString(t.text)
	}
	return sb.String()
}

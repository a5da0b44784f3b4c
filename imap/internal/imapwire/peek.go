package imapwire

// mailyard: this file is ours, not upstream's.

import "strings"

// SPListOf consumes SP if the input goes on with SP "(" atom, the atom
// (in any case) followed by SP or ")", and reports whether it did;
// otherwise nothing is consumed. It tells an item's parenthesized
// modifiers (RFC 8970's "PREVIEW" [SP "(" preview-mod ... ")"]) from
// the SP before the next item of a list, and from a command's own
// modifier list after a single item (FETCH 1 PREVIEW (CHANGEDSINCE 1)),
// which SP alone would take.
func (dec *Decoder) SPListOf(atom string) bool {
	if dec.err != nil || dec.open != nil {
		return false
	}
	want := " (" + strings.ToUpper(atom)
	// One byte more at a time: each is there if the ones before match,
	// as a command goes on at least to its CRLF, so no read waits for
	// input the client need not send.
	for i := 1; i <= len(want)+1; i++ {
		b, err := dec.r.Peek(i)
		if err != nil {
			return false
		}
		c := b[i-1]
		if i <= len(want) {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			if c != want[i-1] {
				return false
			}
		} else if c != ' ' && c != ')' {
			return false
		}
	}
	return dec.SP()
}

// SPList consumes SP if the input goes on with SP "(", and reports
// whether it did; otherwise nothing is consumed. It tells an item's
// optional list (RFC 5465's "MessageNew" [SP "(" fetch-att ... ")"])
// from the SP before the next item of the enclosing list.
func (dec *Decoder) SPList() bool {
	if dec.err != nil || dec.open != nil {
		return false
	}
	b, err := dec.r.Peek(2)
	if err != nil || b[0] != ' ' || b[1] != '(' {
		return false
	}
	return dec.SP()
}

// ListNext reports whether the input goes on with "(", consuming
// nothing.
func (dec *Decoder) ListNext() bool {
	if dec.err != nil || dec.open != nil {
		return false
	}
	b, err := dec.r.Peek(1)
	return err == nil && b[0] == '('
}

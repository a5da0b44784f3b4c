package smtp

import (
	"bytes"
	"errors"
	"strings"

	"github.com/emersion/go-milter"

	"github.com/mailyard/mailyard/internal/msgheader"
)

// headerField is one field of a message's header block, as received.
type headerField struct {
	name string
	raw  []byte // "Name: value\r\n" with any folded lines
}

// value is the field value as the milter protocol passes it: after the
// colon, without the leading space (SMFIP_HDR_LEADSPC is not negotiated)
// and without the final CRLF; folded lines are joined with LF, as Sendmail
// and Postfix send them.
func (f headerField) value() string {
	v := f.raw[len(f.name)+1:]
	v = bytes.TrimSuffix(v, []byte("\r\n"))
	if len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	return strings.ReplaceAll(string(v), "\r\n", "\n")
}

// parseHeaderFields splits a CRLF-normalised header block (as read by
// readHeaderBlock) into its fields (msgheader.Scan) and what ends it (the
// empty line, or nothing for a message that is all header). A line
// before the first field that is not a field (no colon, or a name that
// is not valid) is kept as a field without a name, so that the block is
// rebuilt byte for byte; after a field, such a line is part of that
// field, as a lenient parser would read it.
func parseHeaderFields(block []byte) ([]headerField, []byte) {
	var fields []headerField
	consumed := 0
	msgheader.Scan(block, func(e msgheader.Field) {
		consumed += len(e.Raw)
		name := ""
		if e.Name != nil {
			// The bytes before the colon as they are: a name with white
			// space before the colon is not valid.
			if n := e.Raw[:len(e.Raw)-len(e.Value)-1]; validFieldName(string(n)) {
				name = string(n)
			}
		}
		if name == "" && len(fields) > 0 {
			last := &fields[len(fields)-1]
			last.raw = append(last.raw[:len(last.raw):len(last.raw)], e.Raw...)
			return
		}
		fields = append(fields, headerField{name: name, raw: e.Raw})
	})
	if consumed == len(block) {
		return fields, nil
	}
	return fields, block[consumed:]
}

// validFieldName reports whether s is an RFC 5322 §3.6.8 field name:
// printable US-ASCII except colon.
func validFieldName(s string) bool {
	if s == "" || len(s) > 998 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == ':' {
			return false
		}
	}
	return true
}

// errHeaderEdit is a modification that would corrupt the message.
var errHeaderEdit = errors.New("milter header modification would make an invalid header")

// newField builds "Name: value\r\n" from a milter's value: LF line ends
// (Sendmail's convention) become CRLF, and every line after the first
// must be a folded continuation, so that a value cannot inject fields or
// end the header block.
func newField(name, value string) (headerField, error) {
	value = strings.ReplaceAll(value, "\r\n", "\n")
	if strings.ContainsAny(value, "\r\x00") {
		return headerField{}, errHeaderEdit
	}
	lines := strings.Split(value, "\n")
	for _, l := range lines[1:] {
		if l == "" || (l[0] != ' ' && l[0] != '\t') {
			return headerField{}, errHeaderEdit
		}
	}
	raw := name + ":"
	if value != "" && value[0] != ' ' && value[0] != '\t' {
		raw += " "
	}
	raw += strings.Join(lines, "\r\n") + "\r\n"
	return headerField{name: name, raw: []byte(raw)}, nil
}

// applyHeaderEdits applies milter header modifications, in order, to the
// fields (Sendmail's semantics):
//
//   - SMFIR_ADDHEADER appends a field (smfi_addheader).
//   - SMFIR_INSHEADER inserts a field before the index-th field, counting
//     every field from 0 (smfi_insheader); beyond the end it appends.
//   - SMFIR_CHGHEADER changes the index-th field of that name (1-based,
//     smfi_chgheader); an empty value deletes it; an index beyond the
//     fields of that name adds a new field.
//
// The result is bounded by max bytes.
func applyHeaderEdits(fields []headerField, edits []milter.ModifyAction, max int) ([]headerField, error) {
	out := append([]headerField(nil), fields...)
	for _, e := range edits {
		switch e.Code {
		case milter.ActAddHeader:
			f, err := newField(e.HeaderName, e.HeaderValue)
			if err != nil {
				return nil, err
			}
			out = append(out, f)
		case milter.ActInsertHeader:
			f, err := newField(e.HeaderName, e.HeaderValue)
			if err != nil {
				return nil, err
			}
			i := min(int(e.HeaderIndex), len(out))
			out = append(out[:i], append([]headerField{f}, out[i:]...)...)
		case milter.ActChangeHeader:
			idx := max1(int(e.HeaderIndex))
			at := -1
			for i, n := 0, 0; i < len(out); i++ {
				if strings.EqualFold(out[i].name, e.HeaderName) {
					if n++; n == idx {
						at = i
						break
					}
				}
			}
			switch {
			case e.HeaderValue == "" && at >= 0:
				out = append(out[:at], out[at+1:]...)
			case e.HeaderValue == "":
			case at >= 0:
				f, err := newField(out[at].name, e.HeaderValue)
				if err != nil {
					return nil, err
				}
				out[at] = f
			default:
				f, err := newField(e.HeaderName, e.HeaderValue)
				if err != nil {
					return nil, err
				}
				out = append(out, f)
			}
		}
	}
	size := 0
	for _, f := range out {
		size += len(f.raw)
	}
	if size > max {
		return nil, errors.New("milter header modifications exceed the header size limit")
	}
	return out, nil
}

func max1(n int) int {
	if n < 1 {
		return 1
	}
	return n
}

// joinFields rebuilds a header block.
func joinFields(fields []headerField, term []byte) []byte {
	n := len(term)
	for _, f := range fields {
		n += len(f.raw)
	}
	b := make([]byte, 0, n)
	for _, f := range fields {
		b = append(b, f.raw...)
	}
	return append(b, term...)
}

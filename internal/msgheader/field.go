package msgheader

import (
	"bufio"
	"bytes"

	"github.com/emersion/go-message/textproto"
)

// Field is one entry of a header block: a line, with the folded lines
// (starting with SP or HTAB, RFC 5322 §2.2.3) after it. Its slices point
// into the block, capped so that appending to them copies.
type Field struct {
	// Raw is the entry's bytes as in the block, line ends included.
	Raw []byte
	// Name is the bytes before the first colon of the first line,
	// without the SP and HTAB before the colon; nil when the first line
	// has no colon, or starts with one.
	Name []byte
	// Value is the bytes after that colon, to the end of Raw: folded,
	// line ends included. Nil when Name is.
	Value []byte
}

// Valid reports whether f is a header field: it has a name, and it does
// not start with white space (a header block's first line can, and is
// then no field's continuation).
func (f Field) Valid() bool {
	return f.Name != nil && f.Raw[0] != ' ' && f.Raw[0] != '\t'
}

// Scan calls fn for each entry of the header block, in order, up to the
// empty line that ends it (which is no entry): every byte of the block
// before that line is in exactly one entry's Raw, whether it is a field
// (Valid) or not.
func Scan(block []byte, fn func(Field)) {
	for pos := 0; pos < len(block); {
		end := lineEnd(block, pos)
		if isBlankLine(block[pos:end]) {
			return
		}
		start, vstart := pos, -1
		var name []byte
		if i := bytes.IndexByte(block[pos:end], ':'); i > 0 {
			name, vstart = bytes.TrimRight(block[pos:pos+i:pos+i], " \t"), pos+i+1
		}
		for pos = end; pos < len(block) && (block[pos] == ' ' || block[pos] == '\t'); pos = end {
			end = lineEnd(block, pos)
		}
		f := Field{Raw: block[start:pos:pos], Name: name}
		if name != nil {
			f.Value = block[vstart:pos:pos]
		}
		fn(f)
	}
}

// lineEnd returns the end of the line starting at pos: after its LF, or
// the end of b.
func lineEnd(b []byte, pos int) int {
	if i := bytes.IndexByte(b[pos:], '\n'); i >= 0 {
		return pos + i + 1
	}
	return len(b)
}

// ParseHeader returns the fields of a header block (as ReadBlock reads
// it), each with its raw bytes, so that textproto.WriteHeader gives them
// back as they were. Entries that are not fields (Field.Valid) are left
// out: they are part of the block but of no field.
func ParseHeader(block []byte) textproto.Header {
	var fields [][]byte
	Scan(block, func(f Field) {
		if !f.Valid() {
			return
		}
		field := f.Raw
		if !bytes.HasSuffix(field, []byte("\n")) {
			// The last line of a message that is all header: ended, so
			// that a field written after it stays on its own line.
			field = append(field, '\r', '\n')
		}
		fields = append(fields, field)
	})
	var h textproto.Header
	// AddRaw puts each field before the others.
	for i := len(fields) - 1; i >= 0; i-- {
		h.AddRaw(fields[i])
	}
	return h
}

// ReadHeader reads a header block from br (ReadBlock) and parses it
// (ParseHeader); the body is what br holds after it.
func ReadHeader(br *bufio.Reader) (block []byte, h textproto.Header, err error) {
	block, err = ReadBlock(br)
	if err != nil {
		return nil, textproto.Header{}, err
	}
	return block, ParseHeader(block), nil
}

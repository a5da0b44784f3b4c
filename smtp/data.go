package smtp

import (
	"bufio"
	"bytes"
	"io"
	"reflect"
	"strings"
	"sync"
	"unsafe"

	gosmtp "github.com/emersion/go-smtp"
)

// dotReader reads the message of a DATA command up to its end, a line
// holding only "." (RFC 5321 §4.1.1.4), removing the dot that the client
// put before every line starting with one (§4.5.2). Line ends are passed
// through as sent (lineNormalizer deals with bare CRs and LFs).
//
// Why not go-smtp's reader: its state machine forgets that it has just
// read a CR when another CR follows, so after a line ending "\r\r\n" (a
// bare CR, then the CRLF) it is no longer at the start of a line and reads
// the ".\r\n" that follows as content. The client, having sent its end of
// data, then waits for a reply until a timeout, and whatever it pipelined
// behind the message becomes part of it. Postfix ends the message there,
// and so does dotReader: a line starts after every CRLF, whatever came
// before the CR. The end still needs that CRLF, so the smuggling variants
// ("\n.\n", "\n.\r\n", "\r.\r\n", ".\r" lines, see TestMXSmuggling) stay
// content; and a "." after "\r\r\n" follows a CRLF, so any sender that
// relays such content dot-stuffs it: it cannot end a message by accident.
type dotReader struct {
	br    *bufio.Reader
	state dotState
	limit int64 // bytes still allowed; <0 means no limit
}

type dotState int

const (
	dotBeginLine dotState = iota // after a CRLF, or at the start
	dotDot                       // a "." at the start of a line
	dotDotCR                     // ".\r" at the start of a line
	dotCR                        // after a CR that an LF may follow
	dotData                      // inside a line
	dotEOF                       // after ".\r\n"
)

// Read implements io.Reader. Past the size limit it returns
// gosmtp.ErrDataTooLarge, as go-smtp's reader does.
func (r *dotReader) Read(b []byte) (n int, err error) {
	if r.state == dotEOF {
		return 0, io.EOF
	}
	if r.limit == 0 {
		return 0, gosmtp.ErrDataTooLarge
	}
	if r.limit > 0 && int64(len(b)) > r.limit {
		b = b[:r.limit]
	}
	for n < len(b) && r.state != dotEOF {
		if r.state == dotData && r.br.Buffered() > 0 {
			// Inside a line only a CR matters: copy up to the next one.
			buf, _ := r.br.Peek(min(r.br.Buffered(), len(b)-n))
			i := bytes.IndexByte(buf, '\r')
			if i < 0 {
				i = len(buf)
			}
			if i > 0 {
				n += copy(b[n:], buf[:i])
				_, _ = r.br.Discard(i)
				continue
			}
		}
		var c byte
		if c, err = r.br.ReadByte(); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			break
		}
		switch r.state {
		case dotBeginLine:
			if c == '.' {
				r.state = dotDot // never content: stuffing or the end
				continue
			}
		case dotDot:
			if c == '\r' {
				r.state = dotDotCR
				continue
			}
		case dotDotCR:
			if c == '\n' {
				r.state = dotEOF
				continue
			}
			// The CR after the dot was a bare one: it is content, and c
			// is read again after it.
			_ = r.br.UnreadByte()
			c = '\r'
		case dotCR:
			if c == '\n' {
				r.state = dotBeginLine
				b[n] = c
				n++
				continue
			}
		}
		if c == '\r' {
			r.state = dotCR // also after a CR: this one may start the CRLF
		} else {
			r.state = dotData
		}
		b[n] = c
		n++
	}
	if err == nil && r.state == dotEOF {
		err = io.EOF
	}
	if r.limit > 0 {
		r.limit -= int64(n)
	}
	return n, err
}

// takeOverData returns the reader Session.Data reads the message from and
// a function to call before Data returns. For DATA, go-smtp passes its own
// reader over the connection's buffered reader; takeOverData reads that
// buffered reader with a dotReader instead, and done reads to the end of
// the message (what go-smtp does after Data returns) and then marks
// go-smtp's reader as finished, so that go-smtp's own draining reads
// nothing more. Both the buffered reader and that mark are unexported in
// go-smtp, so they are reached by reflection: the buffered reader holds
// whatever the client pipelined after the message, so no reader of ours
// below it could tell where the message ends, and go-smtp reads on after
// Data unless its reader has seen the end. A go-smtp whose reader no
// longer has that shape gets its own reader back unchanged, and
// TestMXEndOfDataAfterBareCR fails. BDAT's reader is left as it is: its
// chunks are counted, not dot-terminated (RFC 3030 §2).
func takeOverData(r io.Reader, maxBytes int64) (io.Reader, func()) {
	gr, ok := goSMTPDataReader(r)
	if !ok {
		return r, func() {}
	}
	limit := int64(-1)
	if maxBytes > 0 {
		limit = maxBytes
	}
	dr := &dotReader{br: gr.br(), limit: limit}
	return dr, func() {
		dr.limit = -1
		_, _ = io.Copy(io.Discard, dr)
		gr.finish()
	}
}

// goSMTPReader is go-smtp's DATA reader as takeOverData reaches into it:
// its fields "r" (the connection's *bufio.Reader) and "state".
type goSMTPReader struct {
	fields readerFields
	eof    int
}

func (g goSMTPReader) br() *bufio.Reader { return *g.fields.r }

// finish puts go-smtp's reader into its end-of-data state, in which its
// Read reads nothing and returns io.EOF.
func (g goSMTPReader) finish() { *g.fields.state = g.eof }

// goSMTPDataReader returns r's fields if r is go-smtp's DATA reader.
func goSMTPDataReader(r io.Reader) (goSMTPReader, bool) {
	v := reflect.ValueOf(r)
	if !v.IsValid() {
		return goSMTPReader{}, false
	}
	t := v.Type()
	if t.Kind() != reflect.Pointer || t.Elem().PkgPath() != goSMTPPath || t.Elem().Name() != "dataReader" || v.IsNil() {
		return goSMTPReader{}, false
	}
	l := layoutOf(t)
	if !l.ok {
		return goSMTPReader{}, false
	}
	return goSMTPReader{fields: fieldsOf(v, l), eof: l.eof}, true
}

const goSMTPPath = "github.com/emersion/go-smtp"

// dataLayout is what takeOverData relies on in go-smtp's reader.
type dataLayout struct {
	ok       bool
	r, state int // field indexes
	eof      int // the state after ".\r\n"
}

// dataLayouts caches layoutOf by type (there is one: go-smtp's reader).
var dataLayouts sync.Map

// layoutOf checks the shape of go-smtp's DATA reader type t and learns
// its end-of-data state from a reader of that type that has just read
// ".\r\n".
func layoutOf(t reflect.Type) *dataLayout {
	if l, ok := dataLayouts.Load(t); ok {
		return l.(*dataLayout)
	}
	l := &dataLayout{}
	defer dataLayouts.Store(t, l)
	fr, okR := t.Elem().FieldByName("r")
	fs, okS := t.Elem().FieldByName("state")
	if !okR || !okS || fr.Type != reflect.TypeFor[*bufio.Reader]() || fs.Type.Kind() != reflect.Int ||
		len(fr.Index) != 1 || len(fs.Index) != 1 {
		return l
	}
	l.r, l.state = fr.Index[0], fs.Index[0]
	probe := reflect.New(t.Elem())
	f := fieldsOf(probe, l)
	*f.r = bufio.NewReader(strings.NewReader(".\r\n"))
	if n, err := probe.Interface().(io.Reader).Read(make([]byte, 1)); n != 0 || err != io.EOF {
		return l
	}
	l.eof = *f.state
	l.ok = l.eof != 0 // 0 is the start state
	return l
}

// readerFields are the addresses of the fields of one go-smtp reader.
type readerFields struct {
	r     **bufio.Reader
	state *int
}

func fieldsOf(v reflect.Value, l *dataLayout) readerFields {
	e := v.Elem()
	return readerFields{
		r:     (**bufio.Reader)(unsafe.Pointer(e.Field(l.r).UnsafeAddr())),
		state: (*int)(unsafe.Pointer(e.Field(l.state).UnsafeAddr())),
	}
}

package smtp

import (
	"bytes"
	"strings"
	"testing"

	"github.com/emersion/go-milter"
)

// Header blocks split into fields and join back byte for byte; folded
// lines stay with their field and reach the milter joined with LF.
func TestParseHeaderFields(t *testing.T) {
	block := []byte("Received: from a\r\n\tby b\r\nSubject: hi\r\nX-Empty:\r\n\r\n")
	fields, term := parseHeaderFields(block)
	if len(fields) != 3 || string(term) != "\r\n" {
		t.Fatalf("fields %q term %q", fields, term)
	}
	if v := fields[0].value(); v != "from a\n\tby b" {
		t.Errorf("folded value %q", v)
	}
	if v := fields[2].value(); v != "" {
		t.Errorf("empty value %q", v)
	}
	if got := joinFields(fields, term); !bytes.Equal(got, block) {
		t.Errorf("rebuilt %q", got)
	}
}

// A value that would start a new field or end the header block is refused.
func TestHeaderEditInjectionRefused(t *testing.T) {
	for _, v := range []string{"x\nBcc: victim@example.test", "x\n\nbody", "x\r\n", "a\rb", "a\x00b"} {
		if _, err := newField("X-Scan", v); err == nil {
			t.Errorf("%q accepted", v)
		}
	}
	if f, err := newField("X-Scan", "clean\n\tby av"); err != nil || string(f.raw) != "X-Scan: clean\r\n\tby av\r\n" {
		t.Errorf("folded value: %q %v", f.raw, err)
	}
	mc := &milterConn{spec: milterSpec{Milter: Milter{Actions: milterAllActions}}}
	if err := mc.allowed([]milter.ModifyAction{{Code: milter.ActAddHeader, HeaderName: "X-A", HeaderValue: "x\nTo: y"}}); err == nil {
		t.Error("an injecting header value was allowed")
	}
	if err := mc.allowed([]milter.ModifyAction{{Code: milter.ActAddHeader, HeaderName: "Bad Name", HeaderValue: "x"}}); err == nil {
		t.Error("a bad field name was allowed")
	}
	mc.spec.Actions = MilterQuarantine
	if err := mc.allowed([]milter.ModifyAction{{Code: milter.ActAddHeader, HeaderName: "X-A", HeaderValue: "x"}}); err == nil {
		t.Error("a header change was allowed to a milter offered only quarantine")
	}
}

// Whatever the header block and the edits, parsing never panics, the
// block rebuilds byte for byte, and edited blocks stay within the bound
// and parse back into the same fields.
func FuzzHeaderEdits(f *testing.F) {
	f.Add([]byte("Subject: a\r\nX-Tag: 1\r\n\tmore\r\n\r\n"), "X-Tag", "new\n\tvalue", uint32(1), byte('m'))
	f.Add([]byte("no colon line\r\nA: b\r\n"), "A", "", uint32(0), byte('i'))
	f.Fuzz(func(t *testing.T, block []byte, name, value string, idx uint32, code byte) {
		if len(block) > 1<<16 {
			return
		}
		fields, term := parseHeaderFields(block)
		if got := joinFields(fields, term); !bytes.Equal(got, block) {
			t.Fatalf("rebuilt %q from %q", got, block)
		}
		for _, fl := range fields {
			if fl.name != "" {
				_ = fl.value()
			}
		}
		var c milter.ModifyActCode
		switch code % 3 {
		case 0:
			c = milter.ActAddHeader
		case 1:
			c = milter.ActInsertHeader
		default:
			c = milter.ActChangeHeader
		}
		e := milter.ModifyAction{Code: c, HeaderName: name, HeaderValue: value, HeaderIndex: idx}
		mc := &milterConn{spec: milterSpec{Milter: Milter{Actions: milterAllActions}}}
		if mc.allowed([]milter.ModifyAction{e}) != nil {
			return
		}
		out, err := applyHeaderEdits(fields, []milter.ModifyAction{e}, 1<<17)
		if err != nil {
			return
		}
		edited := joinFields(out, []byte("\r\n"))
		if len(edited) > 1<<17+2 {
			t.Fatalf("edited block of %d bytes", len(edited))
		}
		// Every field the edit made is one field when parsed again.
		again, _ := parseHeaderFields(edited)
		n := 0
		for _, fl := range again {
			if strings.EqualFold(fl.name, name) {
				n++
			}
		}
		before := 0
		for _, fl := range fields {
			if strings.EqualFold(fl.name, name) {
				before++
			}
		}
		if n > before+1 {
			t.Fatalf("one edit made %d fields named %q from %d:\n%q", n, name, before, edited)
		}
	})
}

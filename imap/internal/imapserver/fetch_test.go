package imapserver

import (
	"bufio"
	"bytes"
	"reflect"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: tests of BINARY's section parser, which takes BODY's
// section-text as Dovecot does.

// binaryAtt parses one BINARY-family item (its name given apart, as
// readFetchAttName returns it) and returns its section as FetchWriter
// gives it and as the writer writes it back.
func binaryAtt(name, s string) (section *imap.FetchItemBodySection, wire string, err error) {
	var (
		o  imap.FetchOptions
		wo fetchWriterOptions
	)
	if err := handleFetchAtt(decoderFor(s), name, &o, &wo); err != nil {
		return nil, "", err
	}
	w := &FetchWriter{options: wo}
	var buf bytes.Buffer
	bw := bufio.NewWriter(&buf)
	enc := imapwire.NewEncoder(bw, imapwire.ConnSideServer)
	if name == "BINARY.SIZE" {
		bss := o.BinarySectionSize[0]
		section = w.BinarySectionSize(bss)
		writeSectionBinary(enc, bss.Part, wo.binarySize[bss])
	} else {
		bs := o.BinarySection[0]
		section = w.BinarySection(bs)
		writeSectionBinary(enc, bs.Part, wo.binary[bs])
	}
	if err := bw.Flush(); err != nil {
		return nil, "", err
	}
	return section, buf.String(), nil
}

func TestReadSectionBinary(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		want     imap.FetchItemBodySection
		wire     string
	}{
		{"BINARY.PEEK", "[]", imap.FetchItemBodySection{Peek: true}, "[]"},
		{"BINARY.PEEK", "[1.2]<0.10>", imap.FetchItemBodySection{Part: []int{1, 2}, Peek: true, Partial: &imap.SectionPartial{Size: 10}}, "[1.2]"},
		{"BINARY.SIZE", "[3]", imap.FetchItemBodySection{Part: []int{3}}, "[3]"},
		{"BINARY.PEEK", "[text]", imap.FetchItemBodySection{Specifier: imap.PartSpecifierText, Peek: true}, "[TEXT]"},
		{"BINARY", "[1.mime]", imap.FetchItemBodySection{Part: []int{1}, Specifier: imap.PartSpecifierMIME}, "[1.MIME]"},
		{"BINARY.SIZE", "[2.1.MIME]", imap.FetchItemBodySection{Part: []int{2, 1}, Specifier: imap.PartSpecifierMIME}, "[2.1.MIME]"},
		{"BINARY.PEEK", "[2.HEADER]<5.7>", imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, Peek: true, Partial: &imap.SectionPartial{Offset: 5, Size: 7}}, "[2.HEADER]"},
		{"BINARY.PEEK", "[2.header.fields (from subject X-foo)]", imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFields: []string{"from", "subject", "X-foo"}, Peek: true}, `[2.HEADER.FIELDS ("from" "subject" "X-foo")]`},
		{"BINARY.SIZE", "[2.HEADER.FIELDS.NOT (from)]", imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierHeader, HeaderFieldsNot: []string{"from"}}, `[2.HEADER.FIELDS.NOT ("from")]`},
		{"BINARY.SIZE", "[2.TEXT]", imap.FetchItemBodySection{Part: []int{2}, Specifier: imap.PartSpecifierText}, "[2.TEXT]"},
	} {
		got, wire, err := binaryAtt(tc.name, tc.in)
		if err != nil {
			t.Errorf("%s%s: %v", tc.name, tc.in, err)
			continue
		}
		if !reflect.DeepEqual(*got, tc.want) || wire != tc.wire {
			t.Errorf("%s%s:\n got %+v %s\nwant %+v %s", tc.name, tc.in, *got, wire, tc.want, tc.wire)
		}
	}
	for _, s := range []string{"[1.]", "[1.FOO]", "[FOO]", "[1.HEADER.FIELDS]", "[1.HEADER.FIELDS ()", "[1.MIME", "[1", "1]", "[.1]"} {
		if _, _, err := binaryAtt("BINARY", s); err == nil {
			t.Errorf("BINARY%s accepted", s)
		}
	}
}

// FuzzReadSectionBinary: what the parser accepts, written back, reads as
// the same section.
func FuzzReadSectionBinary(f *testing.F) {
	for _, s := range []string{"[]", "[1.2.3]", "[TEXT]", "[1.MIME]", "[2.HEADER.FIELDS (a \"b c\" {1}\r\nd)]", "[2.HEADER.FIELDS.NOT (x)]"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		first, wire, err := binaryAtt("BINARY.SIZE", s)
		if err != nil {
			return
		}
		again, wire2, err := binaryAtt("BINARY.SIZE", wire)
		if err != nil || wire2 != wire || !reflect.DeepEqual(first, again) {
			t.Fatalf("%q: written as %q, read back as %+v (%v), want %+v", s, wire, again, err, first)
		}
	})
}

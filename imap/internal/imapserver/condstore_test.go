package imapserver

import (
	"bufio"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/imap/internal/imapwire"
)

// mailyard: tests of the CONDSTORE/QRESYNC (RFC 7162) parameter parsers.

func decoderFor(s string) *imapwire.Decoder {
	return imapwire.NewDecoder(bufio.NewReader(strings.NewReader(s)), imapwire.ConnSideServer)
}

func TestReadSelectParams(t *testing.T) {
	var p selectParams
	if err := readSelectParams(decoderFor("(CONDSTORE QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3,5 41,43,44,47)))"), &p); err != nil {
		t.Fatal(err)
	}
	qr := p.qresync
	if !p.condStore || qr == nil || qr.UIDValidity != 67890007 || qr.ModSeq != 20050715194045000 ||
		qr.KnownUIDs.String() != "41,43:211,214:541" || qr.SeqMatchSeqs.String() != "1:3,5" || qr.SeqMatchUIDs.String() != "41,43:44,47" {
		t.Fatalf("%+v %+v", p, qr)
	}
	for _, s := range []string{
		"(QRESYNC (1 2 (1 5)))",
		"(QRESYNC (1 2))",
		"(qresync (1 2 1:9))",
	} {
		if err := readSelectParams(decoderFor(s), &selectParams{}); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	for _, s := range []string{
		"(QRESYNC (1))", "(QRESYNC (0 2))", "(QRESYNC (1 2 1:*))", "(QRESYNC (1 2 1:3 (1:2 5)))",
		"(QRESYNC (1 9223372036854775808))", "(QRESYNC (1 0))", "(QRESYNC (1 2 $))", "(QRESYNC (1 2 ($ 1)))", "(QRESYNC (1 2) CONDSTORE QRESYNC (1 2))", "(FOO)", "()", "(QRESYNC (1 2 (1 5))",
	} {
		if err := readSelectParams(decoderFor(s), &selectParams{}); err == nil {
			t.Errorf("%s: accepted", s)
		}
	}
}

func TestReadFetchModifiersNeedNonZeroModSeq(t *testing.T) {
	var fo imap.FetchOptions
	if _, err := readFetchModifiers(decoderFor("(CHANGEDSINCE 7 VANISHED)"), &fo); err != nil || fo.ChangedSince != 7 {
		t.Fatalf("%v %+v", err, fo)
	}
	// RFC 7162 §7: CHANGEDSINCE takes a mod-sequence-value, 1 or more.
	if _, err := readFetchModifiers(decoderFor("(CHANGEDSINCE 0)"), &imap.FetchOptions{}); err == nil {
		t.Fatal("CHANGEDSINCE 0 accepted")
	}
}

// FuzzConditionalParams feeds the parsers of RFC 7162's parameters
// arbitrary input: they must not panic, and what they accept must hold
// the guarantees the session relies on.
func FuzzConditionalParams(f *testing.F) {
	for _, s := range []string{
		"(CONDSTORE)",
		"(QRESYNC (67890007 20050715194045000 41,43:211,214:541 (1:3,5 41,43,44,47)))",
		"(QRESYNC (1 2 (1 5)))",
		"(CHANGEDSINCE 12345 VANISHED)",
		"(UNCHANGEDSINCE 0)",
		"\"/flags/\\\\draft\" all 620162338",
		"(QRESYNC (1 2 4294967295:1 (4294967295:1 1:4294967295)))",
		"(QRESYNC (1 2 $ ($ $)))",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var p selectParams
		if err := readSelectParams(decoderFor(s), &p); err == nil && p.qresync != nil {
			qr := p.qresync
			if qr.UIDValidity == 0 || qr.ModSeq > maxModSeq || qr.KnownUIDs.Dynamic() {
				t.Fatalf("%q accepted as %+v", s, qr)
			}
			if (qr.SeqMatchSeqs == nil) != (qr.SeqMatchUIDs == nil) || qr.SeqMatchSeqs.Dynamic() || qr.SeqMatchUIDs.Dynamic() ||
				setSize(qr.SeqMatchSeqs) != setSize(imap.SeqSet(uidRanges(qr.SeqMatchUIDs))) {
				t.Fatalf("%q: seq-match-data %v / %v", s, qr.SeqMatchSeqs, qr.SeqMatchUIDs)
			}
		}
		var fo imap.FetchOptions
		if vanished, err := readFetchModifiers(decoderFor(s), &fo); err == nil {
			if fo.ChangedSince > maxModSeq || vanished && !fo.ModSeq {
				t.Fatalf("%q accepted as %+v, vanished %v", s, fo, vanished)
			}
		}
		var so imap.StoreOptions
		dec := decoderFor(s)
		if _, err := dec.List(func() error { return readStoreModifier(dec, &so) }); err == nil {
			if so.UnchangedSince > maxModSeq && so.UnchangedSince != UnchangedSinceZero {
				t.Fatalf("%q accepted as %+v", s, so)
			}
		}
		if ms, err := readSearchModSeq(decoderFor(" " + s)); err == nil && ms.ModSeq > maxModSeq {
			t.Fatalf("%q accepted as %+v", s, ms)
		}
	})
}

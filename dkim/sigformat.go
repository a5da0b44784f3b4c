package dkim

import (
	"encoding/base64"
	"strconv"
	"strings"
)

// The DKIM-Signature field a signer emits (RFC 6376 §3.5). Tags come in
// a fixed order, v= a= c= d= s= t= [x=] h= bh= b= (the order OpenDKIM
// and dkimpy write; go-msgauth, which signed before, sorted them
// alphabetically, and any order is valid), folded with CRLF SP so that no
// line passes 78 characters (RFC 5322 §2.1.1). b= comes last and starts
// where the text before it ends, whatever its value, so the field with
// an empty b= that is hashed (§3.7) is, for both canonicalisations, what
// a verifier gets by removing the value (withoutSignature).

// maxSigLine is the line length folding keeps to, CRLF excluded.
const maxSigLine = 78

// sigTemplate holds the tags of one signature but b=.
type sigTemplate struct {
	alg, canon       string
	domain, selector string
	t, x             int64 // x == 0: no x=
	headerKeys       []string
	bh               []byte
}

// format returns the whole field, CRLF-terminated, with sig (nil: empty)
// as b=.
func (s sigTemplate) format(sig []byte) string {
	var f folder
	f.b.Grow(512)
	f.b.WriteString("DKIM-Signature:")
	f.line = len("DKIM-Signature:")
	f.word(" ", "v=1;")
	f.word(" ", "a="+s.alg+";")
	f.word(" ", "c="+s.canon+";")
	f.word(" ", "d="+s.domain+";")
	f.word(" ", "s="+s.selector+";")
	f.word(" ", "t="+strconv.FormatInt(s.t, 10)+";")
	if s.x != 0 {
		f.word(" ", "x="+strconv.FormatInt(s.x, 10)+";")
	}
	// h= folds between names (RFC 6376 §3.5: FWS around ":").
	for i, k := range s.headerKeys {
		w := k + ":"
		if i == len(s.headerKeys)-1 {
			w = k + ";"
		}
		if i == 0 {
			f.word(" ", "h="+w)
		} else {
			f.word("", w)
		}
	}
	f.word(" ", "bh=")
	f.base64(base64.StdEncoding.EncodeToString(s.bh) + ";")
	f.word(" ", "b=")
	f.base64(base64.StdEncoding.EncodeToString(sig))
	f.b.WriteString("\r\n")
	return f.b.String()
}

// folder writes a header field's value in words, folding before a word
// that does not fit on the current line.
type folder struct {
	b    strings.Builder
	line int // length of the current line so far
}

// word writes sep and w, or a fold and w when they would pass the line
// length (never on a line that holds only the fold's SP).
func (f *folder) word(sep, w string) {
	if f.line+len(sep)+len(w) > maxSigLine && f.line > 1 {
		f.b.WriteString("\r\n ")
		f.line = 1
		sep = ""
	}
	f.b.WriteString(sep)
	f.b.WriteString(w)
	f.line += len(sep) + len(w)
}

// base64 writes v filling each line, folding inside it: base64 in a tag
// value may contain FWS anywhere (RFC 6376 §2.4, §3.5 b= and bh=).
func (f *folder) base64(v string) {
	for len(v) > 0 {
		room := maxSigLine - f.line
		if room <= 0 {
			f.b.WriteString("\r\n ")
			f.line = 1
			room = maxSigLine - 1
		}
		n := min(room, len(v))
		f.b.WriteString(v[:n])
		f.line += n
		v = v[n:]
	}
}

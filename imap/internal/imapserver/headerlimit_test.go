package imapserver

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	gomessage "github.com/emersion/go-message"
	"github.com/emersion/go-message/textproto"
)

// TestHugeHeaderBlocksAreBounded: a message whose part header is 8 MiB of
// short fields (go-message parses a header block whole, at some 80
// bytes of memory per byte) costs BODYSTRUCTURE and a section FETCH a
// few MiB, not 640: the multipart ends with that part, described from
// the fields read within the bounds and with an empty body; the parts
// before it are as they are. A message's own header is cut likewise, and
// the rest of it read as the body.
func TestHugeHeaderBlocksAreBounded(t *testing.T) {
	bomb := strings.Repeat("A: b\r\n", (8<<20)/6)
	long := "X: " + strings.Repeat("a", 8<<20) + "\r\nContent-Type: text/html\r\n\r\nbody\r\n"
	for _, tc := range []struct{ name, msg, want string }{
		{"part header", "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--q\r\n" +
			bomb + "\r\nbody\r\n--q--\r\n", "(mixed(text/plain map[charset:us-ascii] 5 0)(text/plain map[charset:us-ascii] 0 0))"},
		// The header is cut after MaxHeaderBlockLines lines; the rest,
		// every byte of it, is the body.
		{"message header", bomb + "Content-Type: text/html\r\n\r\nbody\r\n", fmt.Sprintf("(text/plain map[charset:us-ascii] %d %d)",
			len(bomb)-6*MaxHeaderBlockLines+len("Content-Type: text/html\r\n\r\nbody\r\n"), (8<<20)/6-MaxHeaderBlockLines+3)},
		{"message header line", long, fmt.Sprintf("(text/plain map[charset:us-ascii] %d %d)",
			len(long)-MaxHeaderBlockBytes, strings.Count(long[MaxHeaderBlockBytes:], "\n"))},
	} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		bs := ExtractBodyStructure(strings.NewReader(tc.msg))
		var sec bytes.Buffer
		WriteBodySection(&sec, strings.NewReader(tc.msg), &imap.FetchItemBodySection{Part: []int{2}})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s: %d MiB allocated", tc.name, alloc>>20)
		}
		if got := bodyStructureString(bs); !strings.Contains(got, tc.want) {
			t.Errorf("%s: BODYSTRUCTURE %.300s, want %s", tc.name, got, tc.want)
		}
	}
}

// TestHeaderLimitIsTransparent: on messages whose header blocks are within
// the bounds, reading through the limiter changes nothing, however the
// lines end and whatever lines that look like delimiters stand in the
// bodies.
func TestHeaderLimitIsTransparent(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	bodyLines := []string{"text\r\n", "text\n", "--q\r\n", "--q\n", "--q \r\n", "--qq\r\n", "--q--\r\n", "\r\n", "\n",
		"A: b\r\n", " cont\r\n", strings.Repeat("x", 5000) + "\r\n", "--q\rx\r\n", "--r\r\n", "--r--\r\n"}
	for round := 0; round < 3000; round++ {
		nl := "\r\n"
		if rng.IntN(4) == 0 {
			nl = "\n"
		}
		var sb strings.Builder
		body := func() {
			for n := rng.IntN(6); n > 0; n-- {
				sb.WriteString(bodyLines[rng.IntN(len(bodyLines))])
			}
		}
		sb.WriteString("Content-Type: multipart/mixed; boundary=q" + nl + nl)
		body()
		for parts := rng.IntN(4); parts > 0; parts-- {
			sb.WriteString(nl + "--q" + nl)
			switch rng.IntN(3) {
			case 0:
				sb.WriteString("Content-Type: multipart/alternative; boundary=r" + nl + nl)
				body()
				sb.WriteString(nl + "--r" + nl + "X: y" + nl + nl)
				body()
				sb.WriteString(nl + "--r--" + nl)
			case 1:
				sb.WriteString("Content-Type: text/plain" + nl + nl)
			}
			body()
		}
		if rng.IntN(2) == 0 {
			sb.WriteString(nl + "--q--" + nl)
		}
		body()
		msg := sb.String()
		sameWithoutLimits(t, msg)
	}
}

// sameWithoutLimits fails t unless msg reads the same through the
// header limiter as without it.
func sameWithoutLimits(t *testing.T, msg string) {
	t.Helper()
	limited := dumpMIME(strings.NewReader(msg), NewMultipartReader, func(r io.Reader) (textproto.Header, io.Reader) {
		h, br, _ := ReadHeader(r)
		return h, br
	})
	unlimited := dumpMIME(strings.NewReader(msg), textproto.NewMultipartReader, func(r io.Reader) (textproto.Header, io.Reader) {
		br := bufio.NewReader(r)
		h, _ := textproto.ReadHeader(br)
		return h, br
	})
	if limited != unlimited {
		t.Fatalf("message %q:\n limited   %q\n unlimited %q", msg, limited, unlimited)
	}
}

// dumpMIME reads a message as ExtractBodyStructure does, with the given
// multipart and header readers, and writes down every header and body.
func dumpMIME(r io.Reader, newMR func(io.Reader, string) *textproto.MultipartReader,
	readHeader func(io.Reader) (textproto.Header, io.Reader)) string {
	var sb strings.Builder
	var walk func(h textproto.Header, body io.Reader)
	walk = func(h textproto.Header, body io.Reader) {
		for f := h.Fields(); f.Next(); {
			fmt.Fprintf(&sb, "[%s: %s]", f.Key(), f.Value())
		}
		t, params, _ := (&gomessage.Header{Header: h}).ContentType()
		if !strings.HasPrefix(t, "multipart/") {
			b, err := io.ReadAll(body)
			fmt.Fprintf(&sb, "{%q %v}", b, err)
			return
		}
		mr := newMR(body, params["boundary"])
		for {
			p, err := mr.NextPart()
			if err != nil {
				fmt.Fprintf(&sb, "<%v>", err)
				return
			}
			sb.WriteString("(")
			walk(p.Header, p)
			sb.WriteString(")")
		}
	}
	h, body := readHeader(r)
	walk(h, body)
	return sb.String()
}

func bodyStructureString(bs imap.BodyStructure) string {
	var sb strings.Builder
	var walk func(imap.BodyStructure)
	walk = func(bs imap.BodyStructure) {
		switch bs := bs.(type) {
		case *imap.BodyStructureMultiPart:
			fmt.Fprintf(&sb, "(%s", bs.Subtype)
			for _, c := range bs.Children {
				walk(c)
			}
			sb.WriteString(")")
		case *imap.BodyStructureSinglePart:
			fmt.Fprintf(&sb, "(%s/%s %v %d", bs.Type, bs.Subtype, bs.Params, bs.Size)
			if bs.Text != nil {
				fmt.Fprintf(&sb, " %d", bs.Text.NumLines)
			}
			sb.WriteString(")")
		}
	}
	walk(bs)
	return sb.String()
}

// FuzzHeaderLimit: a message smaller than the header bounds reads the
// same through the limiter as without it, whatever its bytes.
func FuzzHeaderLimit(f *testing.F) {
	f.Add("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nA: b\r\n\r\nx\r\n--q--\r\n")
	f.Add("Content-Type: multipart/mixed; boundary=q\n\n--q\nA: b\n\nx\r\n--q\r\n\r\n--q--\n")
	f.Add("Content-Type: multipart/mixed; boundary=q\r\n\r\n--q \t\r\nContent-Type: multipart/alternative; boundary=q\r\n\r\n--q\r\n\r\n--q--\r\n--q--")
	f.Fuzz(func(t *testing.T, msg string) {
		if len(msg) > MaxHeaderBlockBytes || strings.Count(msg, "\n") >= MaxHeaderBlockLines {
			return
		}
		sameWithoutLimits(t, msg)
	})
}

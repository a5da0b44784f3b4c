package imapserver

import (
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/emersion/go-imap/v2"
	"github.com/mailyard/mailyard/internal/msgheader"
)

// TestHugeHeaderBlocksAreBounded: a message whose part header is 8 MiB of
// short fields costs BODYSTRUCTURE and a section FETCH a few MiB, not the
// whole header held and parsed (go-message's reader cost 640 MiB): the
// part's header is cut after msgheader.MaxBlockLines lines and the rest of
// it, every byte, is the part's body, up to the next boundary; the parts
// before it are as they are. A message's own header is cut likewise, and
// the rest of it read as the body.
func TestHugeHeaderBlocksAreBounded(t *testing.T) {
	bomb := strings.Repeat("A: b\r\n", (8<<20)/6)
	long := "X: " + strings.Repeat("a", 8<<20) + "\r\nContent-Type: text/html\r\n\r\nbody\r\n"
	for _, tc := range []struct {
		name, msg, want string
		part            []int // a section whose size is the want's last part's
	}{
		{"part header", "Content-Type: multipart/mixed; boundary=q\r\n\r\n--q\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--q\r\n" +
			bomb + "\r\nbody\r\n--q--\r\n", fmt.Sprintf("(mixed(text/plain map[charset:us-ascii] 5 0)(text/plain map[charset:us-ascii] %d %d))",
			len(bomb)-6*msgheader.MaxBlockLines+len("\r\nbody"), (8<<20)/6-msgheader.MaxBlockLines+1), []int{2}},
		// The header is cut after msgheader.MaxBlockLines lines; the rest,
		// every byte of it, is the body.
		{"message header", bomb + "Content-Type: text/html\r\n\r\nbody\r\n", fmt.Sprintf("(text/plain map[charset:us-ascii] %d %d)",
			len(bomb)-6*msgheader.MaxBlockLines+len("Content-Type: text/html\r\n\r\nbody\r\n"), (8<<20)/6-msgheader.MaxBlockLines+3), []int{1}},
		{"message header line", long, fmt.Sprintf("(text/plain map[charset:us-ascii] %d %d)",
			len(long)-msgheader.MaxBlockBytes, strings.Count(long[msgheader.MaxBlockBytes:], "\n")), []int{1}},
	} {
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		bs := ExtractBodyStructure(strings.NewReader(tc.msg))
		var sec countingWriter
		// Not a WriterTo: strings.Reader's would copy the message
		// (io.WriteString), as a store's file does not.
		msg := struct{ io.Reader }{strings.NewReader(tc.msg)}
		WriteBodySection(&sec, msg, &imap.FetchItemBodySection{Part: tc.part})
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 8<<20 {
			t.Errorf("%s: %d MiB allocated", tc.name, alloc>>20)
		}
		if got := bodyStructureString(bs); !strings.Contains(got, tc.want) {
			t.Errorf("%s: BODYSTRUCTURE %.300s, want %s", tc.name, got, tc.want)
		}
		if want := fmt.Sprintf(" %d ", sec.n); !strings.Contains(tc.want, want) {
			t.Errorf("%s: BODY%v of %d bytes, want the size in %s", tc.name, tc.part, sec.n, tc.want)
		}
	}
}

// countingWriter counts what is written to it.
type countingWriter struct{ n int }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += len(p)
	return len(p), nil
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

package migration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"

	"github.com/mailyard/mailyard/internal/msgheader"
)

// maxHeaderScan bounds how much of a message's header is examined for
// its Message-ID.
const maxHeaderScan = 64 << 10

// messageIDHash returns a short hash of the Message-ID header field in
// header (the first one; folded lines unfolded, surrounding white space
// dropped), or "" if there is none. Malformed headers give whatever
// Message-ID field msgheader.Scan finds before the first empty line; the
// hash only has to be the same for the same bytes on source and target.
func messageIDHash(header []byte) string {
	var val []byte
	found, ended := false, false
	msgheader.Scan(header, func(f msgheader.Field) {
		// A line of CRs ends the header here, as it did before hashes
		// were computed on msgheader's entries: hashes kept in
		// checkpoints stay valid.
		if first, _, _ := bytes.Cut(f.Raw, []byte("\n")); len(bytes.TrimRight(first, "\r")) == 0 {
			ended = true
		}
		if found || ended || !f.Valid() || !bytes.EqualFold(bytes.TrimSpace(f.Name), []byte("Message-ID")) {
			return
		}
		found = true
		// Unfolded as before: each line without its line end, the CRs
		// before it included.
		for line := range bytes.Lines(f.Value) {
			val = append(val, bytes.TrimRight(line, "\r\n")...)
		}
	})
	val = bytes.TrimSpace(val)
	if len(val) == 0 {
		return ""
	}
	sum := sha256.Sum256(val)
	return hex.EncodeToString(sum[:8])
}

// headerSniffer passes a body through and keeps a copy of its header (up
// to the first empty line, at most maxHeaderScan bytes), so the
// Message-ID is found while the body streams into the store.
type headerSniffer struct {
	r    io.Reader
	buf  []byte
	done bool
}

func (h *headerSniffer) reset(r io.Reader) {
	h.r, h.buf, h.done = r, h.buf[:0], false
}

func (h *headerSniffer) Read(p []byte) (int, error) {
	n, err := h.r.Read(p)
	if !h.done && n > 0 {
		start := max(len(h.buf)-3, 0)
		room := maxHeaderScan - len(h.buf)
		h.buf = append(h.buf, p[:min(n, room)]...)
		tail := h.buf[start:]
		if bytes.Contains(tail, []byte("\r\n\r\n")) || bytes.Contains(tail, []byte("\n\n")) || len(h.buf) >= maxHeaderScan {
			h.done = true
		}
	}
	return n, err
}

// hash returns the Message-ID hash of what has been read.
func (h *headerSniffer) hash() string { return messageIDHash(h.buf) }

// readHeaderHash reads r's header (at most maxHeaderScan bytes of it, as
// headerSniffer keeps) and returns its Message-ID hash.
func readHeaderHash(r io.Reader) (string, error) {
	block, err := msgheader.ReadBlockMax(bufio.NewReaderSize(r, 4096), maxHeaderScan)
	if err != nil {
		return "", err
	}
	return messageIDHash(block), nil
}

package migration

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
)

// maxHeaderScan bounds how much of a message's header is examined for
// its Message-ID.
const maxHeaderScan = 64 << 10

// messageIDHash returns a short hash of the Message-ID header field in
// header (the first one; folded lines unfolded, surrounding white space
// dropped), or "" if there is none. Malformed headers give whatever
// Message-ID line can be found before the first empty line; the hash only
// has to be the same for the same bytes on source and target.
func messageIDHash(header []byte) string {
	var val []byte
	found := false
	for len(header) > 0 {
		line := header
		i := bytes.IndexByte(header, '\n')
		if i >= 0 {
			line, header = header[:i], header[i+1:]
		} else {
			header = nil
		}
		line = bytes.TrimRight(line, "\r")
		if len(line) == 0 {
			break
		}
		if line[0] == ' ' || line[0] == '\t' {
			if found {
				val = append(val, line...)
			}
			continue
		}
		if found {
			break
		}
		name, rest, ok := bytes.Cut(line, []byte(":"))
		if ok && bytes.EqualFold(bytes.TrimSpace(name), []byte("Message-ID")) {
			found = true
			val = append(val[:0], rest...)
		}
	}
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

// readHeaderHash reads r's header and returns its Message-ID hash.
func readHeaderHash(r io.Reader) (string, error) {
	br := bufio.NewReaderSize(r, 4096)
	var buf []byte
	for len(buf) < maxHeaderScan {
		line, err := br.ReadSlice('\n')
		buf = append(buf, line...)
		if len(bytes.TrimRight(line, "\r\n")) == 0 && len(line) > 0 && (line[0] == '\r' || line[0] == '\n') {
			break
		}
		if err == io.EOF {
			break
		}
		if err != nil && err != bufio.ErrBufferFull {
			return "", err
		}
	}
	return messageIDHash(buf), nil
}

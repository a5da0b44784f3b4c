package smtp

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"sync"
)

// spool holds one incoming message so that checks which must see all of it
// (DKIM body hashes, DMARC, signing) can run before the first byte reaches
// the store, and the message can then be read again for delivery. Small
// messages stay in memory; from memLimit bytes on the message goes to an
// unlinked-on-close temp file (not fsynced: the store's durable copy is
// the one that counts). The size bound is the caller's (go-smtp's
// MaxMessageBytes).
type spool struct {
	dir      string
	memLimit int
	buf      *bytes.Buffer
	file     *os.File
	linked   bool // file still has a name that Close must remove
	size     int64
}

// defaultSpoolMemory is how much of a message is kept in memory before it
// spills to a temp file. Most mail is far smaller.
const defaultSpoolMemory = 256 << 10

func newSpool(dir string, memLimit int) *spool {
	if memLimit <= 0 {
		memLimit = defaultSpoolMemory
	}
	return &spool{dir: dir, memLimit: memLimit, buf: spoolBuffers.Get().(*bytes.Buffer)}
}

// spoolBuffers recycles the in-memory spool buffers: growing a fresh one
// for every message costs more than checking it.
var spoolBuffers = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxPooledSpool is the largest buffer kept for reuse; a rare big message
// should not pin its memory.
const maxPooledSpool = 64 << 10

// ReadFrom copies r into the spool: into memory up to memLimit bytes,
// the rest (and what was in memory) into a temp file.
func (s *spool) ReadFrom(r io.Reader) (int64, error) {
	n, err := s.buf.ReadFrom(io.LimitReader(r, int64(s.memLimit)+1))
	s.size += n
	if err != nil || n <= int64(s.memLimit) {
		return n, err
	}
	f, err := os.CreateTemp(s.dir, "spool-*")
	if err != nil {
		return n, fmt.Errorf("smtp: spool: %w", err)
	}
	s.file = f
	s.linked = os.Remove(f.Name()) != nil
	if _, err := f.Write(s.buf.Bytes()); err != nil {
		return n, fmt.Errorf("smtp: spool: %w", err)
	}
	s.buf.Reset()
	m, err := io.Copy(f, r)
	s.size += m
	return n + m, err
}

// Size is the number of bytes spooled.
func (s *spool) Size() int64 { return s.size }

// Reader returns a reader over the whole spooled message, from the start.
// Each call starts again at the beginning.
func (s *spool) Reader() (io.Reader, error) {
	if s.file == nil {
		return bytes.NewReader(s.buf.Bytes()), nil
	}
	return io.NewSectionReader(s.file, 0, s.size), nil
}

// section returns a reader over the spooled message from byte off on.
func (s *spool) section(off int64) (io.Reader, error) {
	off = min(off, s.size)
	if s.file == nil {
		return bytes.NewReader(s.buf.Bytes()[off:]), nil
	}
	return io.NewSectionReader(s.file, off, s.size-off), nil
}

// Close removes the temp file, if any, and recycles the memory buffer.
func (s *spool) Close() error {
	if s.buf != nil {
		if s.buf.Cap() <= maxPooledSpool {
			s.buf.Reset()
			spoolBuffers.Put(s.buf)
		}
		s.buf = nil
	}
	if s.file == nil {
		return nil
	}
	err := s.file.Close()
	if s.linked {
		if rerr := os.Remove(s.file.Name()); err == nil {
			err = rerr
		}
	}
	s.file = nil
	return err
}

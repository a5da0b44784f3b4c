// Package iobuf copies between readers and writers as io.Copy and
// io.CopyN do, but with buffers from a pool: io.Copy allocates a fresh
// 32 KiB buffer (or one the size of a LimitedReader's rest) for every
// copy where neither end lends one (no io.WriterTo or io.ReaderFrom),
// which for the bodies IMAP FETCH streams and the texts the index
// extracts was a large share of the server's allocation.
package iobuf

import (
	"io"
	"sync"
)

var bufs = sync.Pool{New: func() any { return new([32 << 10]byte) }}

// Copy is io.Copy with a pooled buffer.
func Copy(w io.Writer, r io.Reader) (int64, error) {
	buf := bufs.Get().(*[32 << 10]byte)
	defer bufs.Put(buf)
	return io.CopyBuffer(w, r, buf[:])
}

// CopyN is io.CopyN with a pooled buffer: it copies n bytes, or fewer
// and an error (io.EOF if r ended first).
func CopyN(w io.Writer, r io.Reader, n int64) (int64, error) {
	written, err := Copy(w, io.LimitReader(r, n))
	if written == n {
		return n, nil
	}
	if err == nil {
		err = io.EOF
	}
	return written, err
}

package imapserver

// mailyard: this file is ours, not upstream's.
//
// A connection holds its read buffer (4 KiB) and write buffer (writeBufSize)
// only while it reads a command or writes a response. While it waits for the client (between
// commands, and in IDLE) the buffers are back in a pool and the connection
// waits on a one-byte read, so an idle connection costs no buffer memory
// here. With 10,000 idle clients that is 80 MiB less. (A TLS connection
// still has crypto/tls's own record buffers, which this cannot release.)
//
// The *bufio.Reader and *bufio.Writer of a Conn never change identity (a
// Decoder or Encoder may hold the pointer); what moves in and out of the
// pool is their contents, the buffer slice included.

import (
	"bufio"
	"io"
	"sync"
)

var (
	readers bufPool[bufio.Reader]
	writers bufPool[bufio.Writer]
)

// writeBufSize is the write buffer's size: a FETCH response of a few
// bodies or twenty envelopes goes out in one write. With bufio's
// default 4 KiB, each literal over it was a write of its own, and each
// write on a TCP connection costs the sender the receiver's side of the
// stack too (a third of the server's CPU was writes in the IMAP mix,
// bench/README.md "Session 16"). Only connections writing hold one.
const writeBufSize = 32 << 10

// bufPool keeps the contents of idle bufio.Readers or bufio.Writers:
// full holds structs whose buf is a slice, empty zeroed shells to
// carry them in, so that moving a buffer in or out allocates nothing.
type bufPool[T any] struct{ full, empty sync.Pool }

// get moves pooled contents into dst; false if there were none.
func (p *bufPool[T]) get(dst *T) bool {
	full, ok := p.full.Get().(*T)
	if !ok {
		return false
	}
	*dst = *full
	var zero T
	*full = zero
	p.empty.Put(full)
	return true
}

// put moves src's contents, buffer included, into the pool and leaves
// src zero.
func (p *bufPool[T]) put(src *T) {
	shell, _ := p.empty.Get().(*T)
	if shell == nil {
		shell = new(T)
	}
	*shell = *src
	var zero T
	*src = zero
	p.full.Put(shell)
}

// connSource is what a Conn's bufio.Reader reads from: the byte read while
// the connection waited, if any, then the connection.
type connSource struct {
	r   io.Reader
	b   [1]byte
	has bool
}

func (s *connSource) Read(p []byte) (int, error) {
	if s.has && len(p) > 0 {
		p[0] = s.b[0]
		s.has = false
		return 1, nil
	}
	return s.r.Read(p)
}

// setReadWriter points the connection's buffers at rw (after STARTTLS).
// Bytes buffered from the previous reader are dropped.
func (c *Conn) setReadWriter(rw io.ReadWriter) {
	c.src = connSource{r: rw}
	c.rw = rw
	c.br.Reset(&c.src)
	if c.bwHeld.Load() {
		c.bw.Reset(rw)
	}
}

// waitInput blocks until the client has sent something, holding no read
// buffer while it waits. Bytes already buffered return at once. The error
// is the connection's (EOF, timeout, closed).
func (c *Conn) waitInput() error {
	if c.brHeld.Load() && c.br.Buffered() > 0 {
		return nil
	}
	c.releaseReader()
	for !c.src.has {
		n, err := c.src.r.Read(c.src.b[:])
		if n > 0 {
			// An error that came with the byte comes back on the next
			// read.
			c.src.has = true
			break
		}
		if err != nil {
			return err
		}
	}
	c.holdReader()
	return nil
}

// holdReader gives the connection's reader a buffer (before a command is
// decoded). Its position in the stream is unchanged.
func (c *Conn) holdReader() {
	if c.brHeld.Load() {
		return
	}
	readers.get(c.br)
	c.br.Reset(&c.src) // allocates a buffer when the pool had none
	c.brHeld.Store(true)
}

// releaseReader returns the reader's buffer to the pool. It must be empty.
func (c *Conn) releaseReader() {
	if !c.brHeld.Load() || c.br.Buffered() > 0 {
		return
	}
	c.br.Reset(nil) // keeps no reference to the connection in the pool
	readers.put(c.br)
	c.brHeld.Store(false)
}

// holdWriter gives the connection's writer a buffer; c.encMutex is held.
func (c *Conn) holdWriter() {
	if c.bwHeld.Load() {
		return
	}
	if writers.get(c.bw) {
		c.bw.Reset(c.rw)
	} else {
		*c.bw = *bufio.NewWriterSize(c.rw, writeBufSize)
	}
	c.bwHeld.Store(true)
}

// releaseWriter returns the writer's buffer to the pool if everything in
// it was written; c.encMutex is held.
func (c *Conn) releaseWriter() {
	if !c.bwHeld.Load() || c.bw.Buffered() > 0 {
		return
	}
	c.bw.Reset(nil)
	writers.put(c.bw)
	c.bwHeld.Store(false)
}

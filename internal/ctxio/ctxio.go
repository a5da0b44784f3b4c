// Package ctxio ties long reads to a context: a body copy stops once the
// caller has given up, instead of running to the end of a large message.
package ctxio

import (
	"context"
	"io"
)

// NewReader returns a reader that fails with ctx.Err() once ctx is done.
// It exposes only Read, so copies use the copier's buffer.
func NewReader(ctx context.Context, r io.Reader) io.Reader { return reader{ctx, r} }

type reader struct {
	ctx context.Context
	r   io.Reader
}

func (c reader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

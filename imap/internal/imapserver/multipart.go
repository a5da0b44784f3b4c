package imapserver

import (
	"io"

	"github.com/mailyard/mailyard/internal/msgtext"
)

// MultipartReader is the bounded multipart reader shared with the
// full-text indexer (msgtext.MultipartReader).
type MultipartReader = msgtext.MultipartReader

// Part is one part read by a MultipartReader.
type Part = msgtext.Part

// NewMultipartReader creates a multipart reader reading from r with the
// given MIME boundary (msgtext.NewMultipartReader).
func NewMultipartReader(r io.Reader, boundary string) *MultipartReader {
	return msgtext.NewMultipartReader(r, boundary)
}

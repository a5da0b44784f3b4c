package sqlite

import (
	"io"
	"io/fs"
	"os"

	"github.com/mailyard/mailyard/internal/durable"
)

// blobFS is the file system the blob tree lives on. The store uses the
// operating system's (osFS); the power-loss test (powerloss_test.go)
// plugs in one that keeps only what was fsynced, through the unexported
// Options.fsys. Every file operation on blobs goes through it, so that
// test sees each fsync the store makes, and misses each it does not.
type blobFS interface {
	MkdirAll(path string) error
	Mkdir(path string) error
	Stat(path string) (fs.FileInfo, error)
	// Create creates a file that must not exist yet, for writing.
	Create(path string) (blobWriter, error)
	Open(path string) (blobReader, error)
	Remove(path string) error
	RemoveAll(path string) error
	ReadDir(path string) ([]fs.DirEntry, error)
	// SyncDir makes the entries of directory path durable (fsync).
	SyncDir(path string) error
}

// blobWriter is a blob being written; Sync makes its content durable.
type blobWriter interface {
	io.Writer
	Sync() error
	Close() error
}

// blobReader is an open blob: Seeker, because the IMAP server seeks
// bodies it sends in parts; WriterTo, so that io.Copy from a body keeps
// *os.File's own copy path (sendfile or splice where the writer allows).
type blobReader interface {
	io.ReadSeekCloser
	io.ReaderAt
	io.WriterTo
}

// osFS is the operating system's file system.
type osFS struct{}

func (osFS) MkdirAll(path string) error            { return os.MkdirAll(path, 0o700) }
func (osFS) Mkdir(path string) error               { return os.Mkdir(path, 0o700) }
func (osFS) Stat(path string) (fs.FileInfo, error) { return os.Stat(path) }
func (osFS) Remove(path string) error              { return os.Remove(path) }
func (osFS) RemoveAll(path string) error           { return os.RemoveAll(path) }

func (osFS) ReadDir(path string) ([]fs.DirEntry, error) { return os.ReadDir(path) }

func (osFS) Create(path string) (blobWriter, error) {
	return os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
}

func (osFS) Open(path string) (blobReader, error) { return os.Open(path) }

func (osFS) SyncDir(path string) error { return durable.SyncDir(path) }

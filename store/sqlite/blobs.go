package sqlite

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/mailyard/mailyard/internal/ctxio"
)

// blobStore keeps message bodies as files: root/xx/<id> with id 32 lower
// hex digits and xx its first two. Bodies are written in place (see
// write); tmp only holds files of older versions, removed at open.
type blobStore struct {
	fs   blobFS
	root string
	tmp  string

	// pending holds blobs that are durable on disk but whose index rows
	// are not committed yet, so Check does not call them orphans.
	mu      sync.Mutex
	pending map[string]bool
	// readers counts the open handles on each blob (open); a blob freed
	// while it has readers is doomed, and removed when the last of them
	// closes it, so that a body being read is never removed under its
	// reader, whether or not the system lets an open file be removed.
	// Both maps are guarded by mu.
	readers map[string]int
	doomed  map[string]bool

	bufs sync.Pool // *[]byte copy buffers

	// seq numbers the blobs this process writes; it picks the fan-out
	// directory (see newID).
	seq atomic.Uint64
	// dirs coalesces the fsyncs of fan-out directories (see syncEntry).
	dirsMu sync.Mutex
	dirs   map[string]*dirSync
}

// dirSync tracks one fan-out directory's entries and fsyncs: an fsync that
// starts after an entry was created makes that entry durable, so blobs
// created while another fsync of the same directory runs share the next
// one instead of paying one each.
type dirSync struct {
	created uint64 // entries created so far (a generation number)
	synced  uint64 // every entry up to this generation is durable
	running bool
	done    *sync.Cond // on dirsMu; broadcast when an fsync ends
}

const blobIDLen = 32

func newBlobStore(dir string, fsys blobFS) (*blobStore, error) {
	if fsys == nil {
		fsys = osFS{}
	}
	b := &blobStore{
		fs:      fsys,
		root:    filepath.Join(dir, "blobs"),
		tmp:     filepath.Join(dir, "tmp"),
		pending: make(map[string]bool),
		readers: make(map[string]int),
		doomed:  make(map[string]bool),
		dirs:    make(map[string]*dirSync),
	}
	for _, d := range []string{dir, b.root, b.tmp} {
		if err := b.fs.MkdirAll(d); err != nil {
			return nil, fmt.Errorf("sqlite: create %s: %w", d, err)
		}
	}
	for i := range 256 {
		d := filepath.Join(b.root, fmt.Sprintf("%02x", i))
		if _, err := b.fs.Stat(d); err == nil {
			continue
		}
		if err := b.fs.Mkdir(d); err != nil && !errors.Is(err, fs.ErrExist) {
			return nil, fmt.Errorf("sqlite: create %s: %w", d, err)
		}
	}
	// The fan-out directories must survive a crash before any blob
	// created in them is acknowledged. Every Open makes sure, not only
	// the one that created them: an Open killed between the creates and
	// these fsyncs leaves the directories in the page cache, where the
	// next Open finds them; a power loss would then take them, and every
	// body written into them since (TestPowerLossAfterKilledOpen).
	for _, d := range []string{b.root, dir, filepath.Dir(dir)} {
		if err := b.fs.SyncDir(d); err != nil {
			return nil, err
		}
	}
	return b, nil
}

func (b *blobStore) path(id string) string {
	return filepath.Join(b.root, id[:2], id)
}

func validBlobID(id string) bool {
	if len(id) != blobIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// stat returns the file information of a blob.
func (b *blobStore) stat(id string) (fs.FileInfo, error) { return b.fs.Stat(b.path(id)) }

// write streams r into a new durable blob: the file is created at its
// final path (exclusively: ids are random), written, fsynced, and the
// fan-out directory fsynced. The blob is pending until the caller calls
// settle (rows committed) or discard (nothing committed). On error nothing
// is left behind.
//
// No temp file and rename: no index row can name the blob before write
// returns, so no reader ever opens a partial file, and a crash mid-write
// leaves an orphan that the sweep at open removes like any other. Creating
// straight into the 256 fan-out directories also spares the single tmp
// directory's lock, which concurrent appends contended on (a create and a
// rename per message there).
func (b *blobStore) write(ctx context.Context, r io.Reader) (id string, size int64, err error) {
	id, err = b.newID()
	if err != nil {
		return "", 0, err
	}
	b.mu.Lock()
	b.pending[id] = true
	b.mu.Unlock()
	defer func() {
		if err != nil {
			b.settle(id)
			err = noSpace(err)
		}
	}()

	dst := b.path(id)
	dir := filepath.Dir(dst)
	f, err := b.fs.Create(dst)
	if err != nil {
		return "", 0, fmt.Errorf("sqlite: blob create: %w", err)
	}
	gen := b.created(dir)
	fail := func(e error) (string, int64, error) {
		f.Close()
		b.fs.Remove(dst)
		return "", 0, e
	}
	size, err = b.copyBody(ctx, f, r)
	if err != nil {
		return fail(fmt.Errorf("sqlite: reading message body: %w", err))
	}
	if err := f.Sync(); err != nil {
		return fail(fmt.Errorf("sqlite: blob fsync: %w", err))
	}
	if err := f.Close(); err != nil {
		b.fs.Remove(dst)
		return "", 0, fmt.Errorf("sqlite: blob close: %w", err)
	}
	if err := b.syncEntry(dir, gen); err != nil {
		b.fs.Remove(dst)
		return "", 0, err
	}
	return id, size, nil
}

// copyBody copies a body into a blob file through a pooled buffer.
func (b *blobStore) copyBody(ctx context.Context, f blobWriter, r io.Reader) (int64, error) {
	bp, _ := b.bufs.Get().(*[]byte)
	if bp == nil {
		buf := make([]byte, 64<<10)
		bp = &buf
	}
	defer b.bufs.Put(bp)
	// writerOnly hides (*os.File).ReadFrom, which would ignore our buffer
	// and allocate its own.
	return io.CopyBuffer(writerOnly{f}, ctxio.NewReader(ctx, r), *bp)
}

// blobSource is one body of a writeBatch: its reader, and once written
// its blob's id and size.
type blobSource struct {
	r    io.Reader
	id   string
	size int64
}

// batchSyncs bounds the fsyncs of a writeBatch that run at once, and
// batchOpen the files it holds open: written, waiting for their fsync.
const (
	batchSyncs = 16
	batchOpen  = 64
)

// writeBatch writes each source as a new durable blob, as write does
// one, and fills in its id and size; the blobs are pending until the
// caller settles or discards them. Up to batchOpen files are written
// before any of them is fsynced, their fsyncs then run at once
// (batchSyncs at a time) so that the file system commits them in shared
// journal transactions, and each fan-out directory is fsynced once for
// the batch, after all the files (syncEntry). On error nothing is left
// behind and nothing is pending.
func (b *blobStore) writeBatch(ctx context.Context, srcs []blobSource) (err error) {
	created := 0                // srcs[:created] have files
	var open []blobWriter       // the files of srcs[created-len(open):created]
	dirs := map[string]uint64{} // fan-out directory -> its newest entry's generation
	defer func() {
		if err == nil {
			return
		}
		for _, f := range open {
			f.Close()
		}
		for _, src := range srcs[:created] {
			b.fs.Remove(b.path(src.id))
			b.settle(src.id)
		}
		err = noSpace(err)
	}()
	for i := range srcs {
		if len(open) == batchOpen {
			err := b.syncClose(open)
			open = nil
			if err != nil {
				return err
			}
		}
		id, err := b.newID()
		if err != nil {
			return err
		}
		dst := b.path(id)
		b.mu.Lock()
		b.pending[id] = true
		b.mu.Unlock()
		f, err := b.fs.Create(dst)
		if err != nil {
			b.settle(id)
			return fmt.Errorf("sqlite: blob create: %w", err)
		}
		srcs[i].id = id
		created++
		open = append(open, f)
		dir := filepath.Dir(dst)
		dirs[dir] = b.created(dir)
		if srcs[i].size, err = b.copyBody(ctx, f, srcs[i].r); err != nil {
			return fmt.Errorf("sqlite: reading message body: %w", err)
		}
	}
	err = b.syncClose(open)
	open = nil
	if err != nil {
		return err
	}
	for dir, gen := range dirs {
		if err := b.syncEntry(dir, gen); err != nil {
			return err
		}
	}
	return nil
}

// syncClose fsyncs the files, batchSyncs at a time, and closes them all;
// it returns the first error.
func (b *blobStore) syncClose(files []blobWriter) error {
	errs := make([]error, len(files))
	sem := make(chan struct{}, batchSyncs)
	var wg sync.WaitGroup
	for i, f := range files {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f.Sync(); err != nil {
				errs[i] = fmt.Errorf("sqlite: blob fsync: %w", err)
			}
			<-sem
		}()
	}
	wg.Wait()
	for i, f := range files {
		if err := f.Close(); err != nil && errs[i] == nil {
			errs[i] = fmt.Errorf("sqlite: blob close: %w", err)
		}
	}
	for _, e := range errs {
		if e != nil {
			return e
		}
	}
	return nil
}

// newID returns a fresh blob id: 32 hex digits, random except the first
// two (the fan-out directory), which follow this process's blob count so
// that blobs written together land in the same directory and share its
// fsyncs (syncEntry), while over time every directory gets its share.
func (b *blobStore) newID() (string, error) {
	var raw [blobIDLen / 2]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return "", fmt.Errorf("sqlite: blob id: %w", err)
	}
	raw[0] = byte(b.seq.Add(1) / 64)
	return hex.EncodeToString(raw[:]), nil
}

// created records a new entry in dir and returns its generation.
func (b *blobStore) created(dir string) uint64 {
	b.dirsMu.Lock()
	defer b.dirsMu.Unlock()
	d := b.dirs[dir]
	if d == nil {
		d = &dirSync{done: sync.NewCond(&b.dirsMu)}
		b.dirs[dir] = d
	}
	d.created++
	return d.created
}

// syncEntry returns once the entry of generation gen in dir is durable:
// at once if an fsync that started after it was created has finished;
// after the running fsync and then one more if that one started too early;
// otherwise by running the fsync itself, for every entry created so far.
func (b *blobStore) syncEntry(dir string, gen uint64) error {
	b.dirsMu.Lock()
	d := b.dirs[dir]
	for d.running && d.synced < gen {
		d.done.Wait()
	}
	if d.synced >= gen {
		b.dirsMu.Unlock()
		return nil
	}
	d.running = true
	upTo := d.created
	b.dirsMu.Unlock()

	err := b.fs.SyncDir(dir)

	b.dirsMu.Lock()
	d.running = false
	if err == nil {
		d.synced = max(d.synced, upTo)
	}
	d.done.Broadcast()
	b.dirsMu.Unlock()
	return err
}

// settle ends the pending state of a blob whose rows are committed.
func (b *blobStore) settle(id string) {
	b.mu.Lock()
	delete(b.pending, id)
	b.mu.Unlock()
}

// discard removes a blob whose rows were never committed.
func (b *blobStore) discard(id string) error {
	err := b.remove(id)
	b.settle(id)
	return err
}

// inUse reports whether a blob without index rows is still wanted: it is
// pending, or freed while a reader has it open.
func (b *blobStore) inUse(id string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.pending[id] || b.doomed[id]
}

// free removes a blob whose last index row was deleted and committed; if
// a reader has it open, only once the last reader closes it.
func (b *blobStore) free(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.readers[id] > 0 {
		b.doomed[id] = true
		return nil
	}
	// Under mu: a reader that pins the blob after this finds no file
	// (see open).
	return b.remove(id)
}

// remove deletes a blob file; a missing file is not an error.
func (b *blobStore) remove(id string) error {
	if !validBlobID(id) {
		return fmt.Errorf("sqlite: invalid blob id %q", id)
	}
	if err := b.fs.Remove(b.path(id)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("sqlite: remove blob: %w", err)
	}
	return nil
}

// open opens a blob for reading. The blob is pinned until the returned
// file is closed: free then leaves it in place. The caller looked the id
// up in the index, possibly just before the row's deletion committed and
// the blob was freed; open then fails with fs.ErrNotExist, and a second
// look-up finds the row gone (rows are deleted before blobs are freed).
func (b *blobStore) open(id string) (*blobFile, error) {
	if !validBlobID(id) {
		return nil, fmt.Errorf("sqlite: invalid blob id %q", id)
	}
	b.mu.Lock()
	b.readers[id]++
	b.mu.Unlock()
	f, err := b.fs.Open(b.path(id))
	if err != nil {
		b.unpin(id)
		return nil, err
	}
	return &blobFile{blobReader: f, b: b, id: id}, nil
}

// unpin drops a reader of a blob and removes the blob if it was freed
// and that was its last reader.
func (b *blobStore) unpin(id string) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.readers[id] > 1 {
		b.readers[id]--
		return nil
	}
	delete(b.readers, id)
	if !b.doomed[id] {
		return nil
	}
	delete(b.doomed, id)
	return b.remove(id)
}

// blobFile is an open blob; Close unpins it.
type blobFile struct {
	blobReader
	b      *blobStore
	id     string
	closed atomic.Bool
}

// Close closes the file and unpins the blob, removing it if it was freed
// meanwhile.
func (f *blobFile) Close() error {
	if f.closed.Swap(true) {
		return os.ErrClosed
	}
	err := f.blobReader.Close()
	if uerr := f.b.unpin(f.id); err == nil {
		err = uerr
	}
	return err
}

// list returns every blob file with its size. Files whose names are not
// blob IDs are ignored.
func (b *blobStore) list(ctx context.Context) (map[string]int64, error) {
	out := make(map[string]int64)
	for i := range 256 {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		d := filepath.Join(b.root, fmt.Sprintf("%02x", i))
		ents, err := b.fs.ReadDir(d)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, fmt.Errorf("sqlite: list blobs: %w", err)
		}
		for _, e := range ents {
			if !validBlobID(e.Name()) || e.Name()[:2] != filepath.Base(d) {
				continue
			}
			info, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue
				}
				return nil, fmt.Errorf("sqlite: list blobs: %w", err)
			}
			out[e.Name()] = info.Size()
		}
	}
	return out, nil
}

// clearTmp removes every temporary file. Only safe while no other writer
// has the store open.
func (b *blobStore) clearTmp() (int, error) {
	ents, err := b.fs.ReadDir(b.tmp)
	if err != nil {
		return 0, fmt.Errorf("sqlite: list temp files: %w", err)
	}
	for _, e := range ents {
		if err := b.fs.RemoveAll(filepath.Join(b.tmp, e.Name())); err != nil {
			return 0, fmt.Errorf("sqlite: remove temp file: %w", err)
		}
	}
	return len(ents), nil
}

type writerOnly struct{ w io.Writer }

func (w writerOnly) Write(p []byte) (int, error) { return w.w.Write(p) }
